"""Two `intake serve` processes polling one mailbox through one PostgreSQL: one polls at a time
(the advisory lock); when it is killed with SIGKILL the other takes over, and every message is
one ticket."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from dovecot import Dovecot
from nodes import Node
from sqlalchemy import func, select

from intake.cli.app import Storage
from storage.models import Message, Ticket

WAIT_SECONDS = 90.0
TAKEN = re.compile(r"IMAP \S+: UID (\d+) (accepted|duplicate|follow_up)", re.IGNORECASE)


def deliver(server: Dovecot, count: int) -> list[str]:
    ids = []
    for number in range(count):
        message_id = f"nodes-{uuid.uuid4().hex}@customer.example"
        server.deliver(
            (
                f"From: customer{number}@customer.example\r\n"
                "To: support@support.example.com\r\n"
                f"Subject: Export fails {number}\r\nMessage-ID: <{message_id}>\r\n"
                "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\n\r\nError 500.\r\n"
            ).encode()
        )
        ids.append(message_id)
    return ids


async def tickets(storage: Storage) -> int:
    async with storage.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Ticket)) or 0)


async def wait_tickets(storage: Storage, count: int, nodes: list[Node]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while (found := await tickets(storage)) < count:
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n.name}\n{n.output()[-3000:]}" for n in nodes)
            raise AssertionError(f"{found} of {count} tickets after {WAIT_SECONDS}s\n{logs}")
        await asyncio.sleep(0.1)


def taken(node: Node) -> list[int]:
    """The UIDs this node fed to its pipeline (its log says so for each)."""
    return [int(m.group(1)) for m in TAKEN.finditer(node.output())]


def unseen(server: Dovecot) -> list[int]:
    with server.client() as client:
        client.select_folder("INBOX", readonly=True)
        return list(client.search(["UNSEEN"]))


async def test_one_poller_at_a_time_and_a_killed_one_is_replaced(
    tmp_path: Path,
    database_url: str,
    shared_storage: Storage,
    dovecot: Dovecot,
    imap_env: Callable[..., dict[str, str]],
) -> None:
    first = Node("first", tmp_path, database_url, **imap_env())
    second = Node("second", tmp_path, database_url, **imap_env())
    nodes = [first, second]
    ids = deliver(dovecot, 10)
    try:
        first.start()
        first.wait_ready()
        await wait_tickets(shared_storage, 10, nodes)
        second.start()
        second.wait_ready()
        ids += deliver(dovecot, 10)
        await wait_tickets(shared_storage, 20, nodes)
        # Only the holder fetched; the other logged in, found the lock taken and waits.
        assert sorted(taken(first)) == list(range(1, 21))
        assert taken(second) == []
        assert "another node polls it; waiting" in second.output()

        # Killed in the middle of a batch: whatever it committed but did not flag yet is
        # fetched again by the successor and comes back a duplicate.
        ids += deliver(dovecot, 30)
        await wait_tickets(shared_storage, 25, nodes)
        first.kill()
        await wait_tickets(shared_storage, 50, nodes)
        assert set(taken(second)) | set(taken(first)) == set(range(1, 51))
        assert min(taken(second)) > 20
    finally:
        codes = [node.stop() for node in nodes]
    assert codes == [-9, 0]
    async with shared_storage.sessions() as session:
        stored = list(await session.scalars(select(Message.channel_message_id)))
    assert await tickets(shared_storage) == 50
    assert sorted(stored) == sorted(ids)
    assert await asyncio.to_thread(unseen, dovecot) == []
