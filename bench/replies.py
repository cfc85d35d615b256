"""The reply path's cost (issue 15): agents' replies through the JSON API, into the outbox,
and out through the deliverer to a real SMTP relay; against the same number of notes (the
same API, authentication, ticket lock and message row, but no outbox and no mail) measured
in the same run, on the same database.

T tickets are made by the real pipeline (SQLite in a temporary directory, or
--database-url); then one note and one reply per ticket are posted over C connections to the
real web channel, and the queued replies (and the tickets' acknowledgements) are delivered to
an aiosmtpd relay on loopback. Client, server, relay and deliverer share one event loop and
core, so the figures are an upper bound on the per-request cost, not a capacity.

    python bench/replies.py [--tickets 300] [--connections 10] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pipelines import make_pipeline
from serving import Relay

from channels.desk.api import api_routes
from channels.email.smtp import SmtpReplier
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import OutboundSmtpSettings, WebSettings
from intake.desk import agents
from intake.desk.conversation import ReplyOptions
from intake.messages import ChannelKind, InboundMessage
from intake.outbox.delivery import Deliverer
from storage import db

MAILBOX = "support@support.example.com"
SECRET = b"b" * 32


async def seed(storage: Storage, tickets: int) -> list[str]:
    pipeline = make_pipeline(storage, secret=SECRET, notify_emails=())
    refs = []
    for n in range(tickets):
        receipt = await pipeline(
            InboundMessage(
                channel=ChannelKind.EMAIL, channel_message_id=f"<q{n}@customer.example>",
                rfc_message_id=f"q{n}@customer.example", received_at=datetime.now(UTC),
                sender=f"c{n}@customer{n % 50}.example", subject=f"Export fails ({n})",
                text="The export fails with error 500.",
            )
        )  # fmt: skip
        refs.append(receipt.reference)
    return refs


async def timed(
    refs: list[str],
    connections: int,
    post: Callable[[httpx.AsyncClient, str], Awaitable[int]],
    client: Callable[[], httpx.AsyncClient],
) -> tuple[float, list[float]]:
    queue = list(refs)
    latencies: list[float] = []

    async def worker() -> None:
        async with client() as http:
            while queue:
                ref = queue.pop()
                start = time.perf_counter()
                status = await post(http, ref)
                latencies.append(time.perf_counter() - start)
                if status != 201:
                    raise SystemExit(f"{ref}: HTTP {status}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - start, sorted(latencies)


def line(name: str, count: int, seconds: float, latencies: list[float]) -> str:
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return (
        f"{name:<28} {count / seconds:8.0f}/s   p50 {statistics.median(latencies) * 1000:6.1f} ms"
        f"   p99 {p99 * 1000:6.1f} ms"
    )


async def run(url: str, tickets: int, connections: int) -> None:
    engine = db.create_engine(url)
    await db.upgrade(engine)
    storage = Storage(engine, db.session_factory(engine))
    refs = await seed(storage, tickets)
    token = await agents.add_agent(storage.sessions, "ann@vendor.example", "bench password",
                                   name="Ann", now=datetime.now(UTC))  # fmt: skip
    routes = api_routes(storage.sessions, replies=ReplyOptions(mailbox=MAILBOX, secret=SECRET))
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [routes])
    await web.start(make_pipeline(storage, secret=SECRET))
    relay = Relay()
    await relay.start()
    outbound = OutboundSmtpSettings.model_validate({"port": relay.port, "from": MAILBOX})
    replier = SmtpReplier(outbound, clock=lambda: datetime.now(UTC), timeout=30)
    deliverer = Deliverer(storage.sessions, {"email": replier}, batch=100)

    def client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}",
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    async def note(http: httpx.AsyncClient, ref: str) -> int:
        answer = await http.post(f"/api/tickets/{ref}/notes", json={"text": "Customer on 4.2"})
        return answer.status_code

    async def reply(http: httpx.AsyncClient, ref: str) -> int:
        body = {"text": "Hello,\nplease try again with version 4.3.\n\nAnn"}
        return (await http.post(f"/api/tickets/{ref}/replies", json=body)).status_code

    try:
        while await deliverer.run_once():  # the acknowledgements first, out of the way
            pass
        acks = len(relay.received)
        notes = await timed(refs, connections, note, client)
        replies = await timed(refs, connections, reply, client)
        start = time.perf_counter()
        while await deliverer.run_once():
            pass
        delivered = time.perf_counter() - start
        sent = len(relay.received) - acks
    finally:
        await replier.aclose()
        await relay.stop()
        await web.stop()
        await engine.dispose()
    print(f"{tickets} tickets, {connections} connections, {engine.dialect.name}")
    print(line("notes (baseline)", tickets, *notes))
    print(line("replies (API + outbox)", tickets, *replies))
    print(f"{'replies delivered by SMTP':<28} {sent / delivered:8.0f}/s   ({sent} mails)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        asyncio.run(run(url, args.tickets, args.connections))


if __name__ == "__main__":
    main()
