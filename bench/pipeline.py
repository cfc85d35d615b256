"""Storing a message, without SMTP: what `intake.cli.app.build_pipeline` costs per message.

The pipeline is fed directly (no SMTP, no acknowledgements sent: they stay in the outbox) by
C concurrent callers, as the SMTP channel feeds it, on the embedded SQLite in a temporary
folder or on the PostgreSQL named by `--database-url` (dropped and made afresh: its name must
contain "bench"). CPU per message is the whole process's (the driver's threads too), against
a baseline measured in the same run: parsing the same messages into `InboundMessage`s
(`channels.email.inbound.inbound_from_raw`), which the pipeline's figure includes.

    python bench/pipeline.py [--messages 2000] [--connections 20] [--database-url ...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smtp_load import fresh_database, message  # noqa: E402

from channels.email.inbound import inbound_from_raw  # noqa: E402
from intake.cli.app import build_pipeline, open_storage  # noqa: E402
from intake.config import DatabaseSettings, Settings  # noqa: E402
from intake.pipeline.pipeline import Pipeline  # noqa: E402


async def feed(pipeline: Pipeline, raws: list[bytes], connections: int) -> None:
    async def caller(share: list[bytes]) -> None:
        for raw in share:
            await pipeline(inbound_from_raw(raw, received_at=datetime.now(UTC)))

    await asyncio.gather(*(caller(raws[c::connections]) for c in range(connections)))


async def measure(url: str, messages: int, connections: int) -> tuple[float, float, float]:
    """(CPU ms per parse, CPU ms per stored message, stored messages per second)."""
    raws = [message(n).as_bytes() for n in range(messages + 100)]
    began = time.process_time()
    for raw in raws[100:]:
        inbound_from_raw(raw, received_at=datetime.now(UTC))
    parse_ms = (time.process_time() - began) * 1000 / messages
    # Every stranger acknowledged, as before the unidentified budget (issue 16).
    settings = Settings(
        database=DatabaseSettings(url=url), pipeline={"unidentified_acks_per_hour": 10**9}
    )
    async with open_storage(settings) as storage:
        pipeline = await build_pipeline(settings, storage)
        await feed(pipeline, raws[:100], connections)  # warm up
        began, wall = time.process_time(), time.perf_counter()
        await feed(pipeline, raws[100:], connections)
        store_ms = (time.process_time() - began) * 1000 / messages
        return parse_ms, store_ms, messages / (time.perf_counter() - wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{folder}/bench.db"
        if args.database_url:
            asyncio.run(fresh_database(args.database_url))
        parse_ms, store_ms, rate = asyncio.run(measure(url, args.messages, args.connections))
    where = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    print(f"{args.messages} messages, {args.connections} concurrent callers, {where}")
    print(f"  baseline: parse into InboundMessage   CPU {parse_ms:5.2f} ms/msg   1.00x")
    print(
        f"  pipeline (parse included)            CPU {store_ms:5.2f} ms/msg   "
        f"{store_ms / parse_ms:.1f}x   {rate:.0f} msg/s"
    )


if __name__ == "__main__":
    main()
