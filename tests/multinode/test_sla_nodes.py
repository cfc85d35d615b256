"""The SLA watcher on two `intake serve` processes at once: each alert is queued and sent once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nodes import Node, Sink
from pipelines import make_pipeline
from sqlalchemy import func, select

from channels.email.inbound import inbound_from_raw
from intake.cli.app import Storage
from intake.messages import ReceiptStatus
from storage.models import Outbox, SlaAlert

TICKETS = 12
WAIT_SECONDS = 90.0


async def seed_overdue(storage: Storage) -> None:
    """Tickets received a month ago: both their deadlines are long past."""
    then = datetime.now(UTC) - timedelta(days=30)
    pipeline = make_pipeline(storage, clock=lambda: then)
    for number in range(TICKETS):
        raw = (
            f"From: customer{number}@customer.example\r\nTo: support@support.example.com\r\n"
            f"Subject: Export fails ({number})\r\nMessage-ID: <old-{number}@customer.example>\r\n"
            "\r\nThe PDF export shows error 500.\r\n"
        ).encode()
        receipt = await pipeline(inbound_from_raw(raw, received_at=then, recipients=()))
        assert receipt.status is ReceiptStatus.ACCEPTED


async def alert_count(storage: Storage) -> int:
    async with storage.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(SlaAlert)) or 0)


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    nodes: list[Node],
    what: str,
    state: Callable[[], Awaitable[str]],
) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n.name}\n{n.output()[-3000:]}" for n in nodes)
            raise AssertionError(f"timed out waiting for {what}\n{logs}\n{await state()}")
        await asyncio.sleep(0.2)


async def test_the_watcher_on_two_nodes_alerts_once(
    tmp_path: Path, database_url: str, shared_storage: Storage, sink: Sink
) -> None:
    await seed_overdue(shared_storage)
    env = {
        "INTAKE_OUTBOUND_SMTP_HOST": "127.0.0.1",
        "INTAKE_OUTBOUND_SMTP_PORT": str(sink.port),
        "INTAKE_SLA_CHECK_SECONDS": "0.2",  # both watchers pass over the same tickets at once
        "INTAKE_SLA_INACTIVITY_CLOSE_DAYS": "0",
        "INTAKE_NOTIFY_EMAILS": "oncall@vendor.example",
    }
    nodes = [Node(name, tmp_path, database_url, **env) for name in ("first", "second")]

    async def outbox_state() -> str:
        async with shared_storage.sessions() as session:
            rows = list(await session.scalars(select(Outbox)))
        return "\n".join(f"{r.id} {r.kind} {r.status} {r.attempts} {r.last_error}" for r in rows)

    async def all_sent() -> bool:
        async with shared_storage.sessions() as session:
            rows = list(await session.scalars(select(Outbox)))
        alerts = [r for r in rows if r.kind == "alert"]
        # A breach of the first response and of the resolution on each ticket.
        return len(alerts) == 2 * TICKETS and all(r.status == "sent" for r in rows)

    try:
        for node in nodes:
            node.start()
        for node in nodes:
            await asyncio.to_thread(node.wait_ready)
        await wait_until(all_sent, nodes, "every notice sent", outbox_state)
        # Several more passes of both watchers: nothing new may come of them.
        await asyncio.sleep(1.0)
    finally:
        codes = [await asyncio.to_thread(node.stop) for node in nodes]
    assert codes == [0, 0]
    assert await alert_count(shared_storage) == 2 * TICKETS
    async with shared_storage.sessions() as session:
        rows = list(await session.scalars(select(Outbox)))
    assert len(rows) == 3 * TICKETS  # an acknowledgement and two alerts per ticket
    assert all(r.status == "sent" and r.attempts == 1 for r in rows)  # claimed once each
    # Each notice arrived once (every subject names its ticket, and an alert its deadline).
    assert len(sink.subjects) == len(rows) and set(sink.subjects.values()) == {1}
