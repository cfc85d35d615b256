"""storage.locks on the real PostgreSQL, and the IMAP poller that holds a mailbox by it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dovecot import Dovecot
from pipelines import make_pipeline
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.email.imap import ImapChannel
from intake.cli.app import Storage
from intake.config import ImapSettings
from intake.messages import InboundMessage, Receipt
from storage import db
from storage.locks import LOCK_CLASS, AdvisoryLock, SoleNode, leadership
from storage.models import Message, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
WAIT_SECONDS = 30.0


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    """Two engines on one database: what two nodes have."""
    made = [db.create_engine(database_url) for _ in range(2)]
    yield made
    for engine in made:
        await engine.dispose()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")
        await asyncio.sleep(0.05)


async def terminate_holder(storage: Storage, lock: AdvisoryLock) -> None:
    """End the holder's lock session from the server side, as a lost connection does."""
    async with storage.engine.connect() as conn:
        ended = await conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND classid::int = :cls AND objid::int = :key"
                " AND objsubid = 2 AND granted"
            ),
            {"cls": LOCK_CLASS, "key": lock.key},
        )
    assert ended == 1


async def test_one_holder_at_a_time_and_release_hands_over(engines: list[AsyncEngine]) -> None:
    name = f"role {uuid.uuid4()}"
    first, second = (AdvisoryLock(engine, name) for engine in engines)
    assert await first.acquire()
    assert not await second.acquire()
    assert await first.held() and not await second.held()
    assert await first.acquire()  # asking again while holding: still held, not stacked
    await first.release()
    assert not await first.held()
    assert await second.acquire()
    assert not await first.acquire()
    await second.release()


async def test_a_dead_holder_connection_frees_the_lock(
    engines: list[AsyncEngine], shared_storage: Storage
) -> None:
    name = f"role {uuid.uuid4()}"
    first, second = (AdvisoryLock(engine, name) for engine in engines)
    assert await first.acquire()
    await terminate_holder(shared_storage, first)
    assert await second.acquire()
    assert not await first.held()  # the holder notices on its next check
    assert not await first.acquire()
    await second.release()


async def test_a_different_role_is_a_different_lock(engines: list[AsyncEngine]) -> None:
    first = AdvisoryLock(engines[0], f"imap {uuid.uuid4()}")
    second = AdvisoryLock(engines[1], f"imap {uuid.uuid4()}")
    assert first.key != second.key
    assert await first.acquire() and await second.acquire()
    await first.release()
    await second.release()


async def test_sqlite_is_one_node_without_a_lock(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    try:
        one, other = leadership(engine, "imap x"), leadership(engine, "imap x")
        assert isinstance(one, SoleNode)
        assert await one.acquire() and await other.acquire()
    finally:
        await engine.dispose()


# -- the IMAP poller holds its mailbox by the lock ---------------------------------------------


class Counting:
    """The real pipeline of one node, counting the messages it was given."""

    def __init__(self, storage: Storage) -> None:
        self.inner = make_pipeline(storage, clock=lambda: NOW)
        self.calls = 0

    async def __call__(self, message: InboundMessage) -> Receipt:
        self.calls += 1
        return await self.inner(message)


def deliver(server: Dovecot, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        message_id = f"lock-{uuid.uuid4().hex}@customer.example"
        server.deliver(
            (
                "From: carol@customer.example\r\nTo: support@support.example.com\r\n"
                f"Subject: Export fails\r\nMessage-ID: <{message_id}>\r\n"
                "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\n\r\nError 500.\r\n"
            ).encode()
        )
        ids.append(message_id)
    return ids


async def stored(storage: Storage) -> tuple[int, list[str]]:
    async with storage.sessions() as session:
        tickets = await session.scalar(select(func.count()).select_from(Ticket))
        ids = list(await session.scalars(select(Message.channel_message_id)))
    return int(tickets or 0), ids


def unseen(server: Dovecot) -> list[int]:
    with server.client() as client:
        client.select_folder("INBOX", readonly=True)
        return list(client.search(["UNSEEN"]))


async def test_a_poller_that_loses_its_lock_stops_and_another_takes_over(
    dovecot: Dovecot, engines: list[AsyncEngine], shared_storage: Storage
) -> None:
    settings = ImapSettings(
        enabled=True,
        host="127.0.0.1",
        port=dovecot.port,
        ssl=False,
        user=dovecot.user,
        password=SecretStr(dovecot.password),
        idle_seconds=2,
    )
    name = f"imap {uuid.uuid4()}"
    locks = [AdvisoryLock(engine, name) for engine in engines]
    nodes = [Storage(engine, db.session_factory(engine)) for engine in engines]
    intakes = [Counting(node) for node in nodes]
    # The first node would wait long before trying again: the second one takes over.
    pollers = [
        ImapChannel(settings, node.sessions, lambda: NOW, leadership=lock, lock_check=0.2,
                    lock_retry=retry, backoff_base=0.05, backoff_cap=0.5)
        for node, lock, retry in zip(nodes, locks, (600.0, 0.2), strict=True)
    ]  # fmt: skip
    first_ids = deliver(dovecot, 5)
    await pollers[0].start(intakes[0])
    try:

        async def first_has_all() -> bool:
            return (await stored(shared_storage))[0] == 5

        await eventually(first_has_all, "the first node's 5 tickets")
        await pollers[1].start(intakes[1])
        assert pollers[0].polling and not pollers[1].polling

        await terminate_holder(shared_storage, locks[0])

        async def handed_over() -> bool:
            return pollers[1].polling and not pollers[0].polling

        await eventually(handed_over, "the second node to poll")
        later_ids = deliver(dovecot, 5)

        async def second_has_all() -> bool:
            return (await stored(shared_storage))[0] == 10

        await eventually(second_has_all, "10 tickets")
    finally:
        for poller in pollers:
            await poller.stop()
    tickets, ids = await stored(shared_storage)
    assert tickets == 10 and sorted(ids) == sorted(first_ids + later_ids)
    assert intakes[0].calls == 5  # nothing after it lost the lock
    assert intakes[1].calls >= 5
    assert await asyncio.to_thread(unseen, dovecot) == []
