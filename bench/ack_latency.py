"""How long an acknowledgement trails its 250, at a steady rate: `intake serve` under paced
SMTP load, its acknowledgements delivered to a sink that notes when each arrives.

The client sends `--rate` messages per second for `--seconds` over `--connections`
connections, each message at its own scheduled instant, and notes when each 250 came. The
sink (its own process) notes when each acknowledgement arrives, by the In-Reply-To that names
the customer's Message-ID. Printed: p50, p99 and the worst of (ack arrived - 250), and, as the
baseline measured in the same run, the same client's direct send of one mail to the sink
(connect, MAIL, RCPT, DATA, QUIT): what delivering one notice costs at the least.

    python bench/ack_latency.py [--rate 130] [--seconds 20] [--connections 20]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1/intake_bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smtp_load import free_port, fresh_database, wait_listening

# Notes "<In-Reply-To> <arrival time>" per acknowledgement (wall clock: shared by processes).
SINK = """
import asyncio, sys, time, email
from email import policy
from aiosmtpd.smtp import SMTP

class Sink:
    async def handle_DATA(self, server, session, envelope):
        arrived = time.time()
        mail = email.message_from_bytes(envelope.original_content, policy=policy.compat32)
        with open(sys.argv[2], "a") as notes:
            notes.write(f"{(mail['In-Reply-To'] or '-').strip()} {arrived}\\n")
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(Sink(), loop=loop), "127.0.0.1", int(sys.argv[1]))
    await asyncio.Event().wait()

asyncio.run(main())
"""


def message(n: int, run: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"customer{n}@example.org"  # one each: no per-sender cap in the way
    mail["To"] = "support@support.example.com"
    mail["Subject"] = f"Export fails ({n})"
    mail["Message-ID"] = f"<ack-{run}-{n}@example.org>"
    mail.set_content("The PDF export shows error 500 since the update this morning.\n" * 5)
    return mail


async def paced(
    port: int, rate: float, seconds: float, connections: int, run: str
) -> dict[str, float]:
    """Send at `rate` per second; the 250's wall-clock time per Message-ID."""
    total = int(rate * seconds)
    confirmed: dict[str, float] = {}
    start = time.monotonic() + 0.5

    async def connection(numbers: list[int]) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120) as smtp:
            for n in numbers:
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
                mail = message(n, run)
                await smtp.send_message(mail)
                confirmed[str(mail["Message-ID"])] = time.time()

    await asyncio.gather(
        *(connection(list(range(c, total, connections))) for c in range(connections))
    )
    return confirmed


async def direct_sends(port: int, count: int = 200) -> list[float]:
    """The baseline: one mail straight to the sink, connection and all, `count` times."""
    took = []
    for n in range(count):
        began = time.perf_counter()
        await aiosmtplib.send(message(n, "direct"), hostname="127.0.0.1", port=port)
        took.append(time.perf_counter() - began)
    return took


def arrivals(notes: Path) -> dict[str, float]:
    found = {}
    for line in notes.read_text().splitlines():
        key, _, at = line.rpartition(" ")
        found.setdefault(key, float(at))
    return found


def percentiles(values: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000, max(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=130)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--database-url", default="", help="default: SQLite; else dropped!")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.database_url:
        asyncio.run(fresh_database(args.database_url))
        env["INTAKE_DATABASE_URL"] = args.database_url
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sink_port, smtp_port = free_port(), free_port()
        notes = root / "acks.txt"
        notes.touch()
        (root / "sink.py").write_text(SINK, encoding="utf-8")
        (root / "intake.toml").write_text(
            f"[web]\nenabled = false\n[smtp]\nport = {smtp_port}\n"
            # Every connection comes from one loopback address: lift the per-client cap.
            "max_connections_per_client = 0\n"
            f'[outbound.smtp]\nhost = "127.0.0.1"\nport = {sink_port}\n'
            # The load's senders are strangers, one message each: no budget in the way.
            "[pipeline]\nacks_per_sender_per_hour = 1000000\n"
            "unidentified_acks_per_hour = 1000000\n",
            encoding="utf-8",
        )
        sink = subprocess.Popen([sys.executable, str(root / "sink.py"), str(sink_port), str(notes)])
        serve = subprocess.Popen(
            [sys.executable, "-m", "intake.cli", "serve"], cwd=root, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_listening(sink_port, sink)
            wait_listening(smtp_port, serve)
            baseline = asyncio.run(direct_sends(sink_port))
            asyncio.run(paced(smtp_port, args.rate, 2, args.connections, "warm"))
            confirmed = asyncio.run(
                paced(smtp_port, args.rate, args.seconds, args.connections, "timed")
            )
            deadline = time.monotonic() + 120
            while not set(confirmed) <= set(arrivals(notes)) and time.monotonic() < deadline:
                time.sleep(0.1)
            arrived = arrivals(notes)
        finally:
            serve.terminate()
            sink.terminate()
            serve.wait(60)
            sink.wait(60)
    missing = set(confirmed) - set(arrived)
    trail = [arrived[key] - at for key, at in confirmed.items() if key in arrived]
    where = args.database_url.split("@")[-1] if args.database_url else "SQLite"
    sent = f"{len(confirmed)} messages at {args.rate:.0f}/s"
    print(f"{sent} over {args.connections} connections, {where}")
    p50, p99, worst = percentiles(trail)
    b50, b99, _ = percentiles(baseline)
    print(f"ack after its 250:     p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   worst {worst:7.1f} ms")
    print(f"direct send to sink:   p50 {b50:7.1f} ms   p99 {b99:7.1f} ms   (baseline)")
    print(
        f"ack p99 / direct send p99: {p99 / b99:.1f}x"
        + (f"; {len(missing)} acks missing" if missing else "")
    )


if __name__ == "__main__":
    main()
