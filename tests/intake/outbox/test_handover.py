"""A batch's notices handed to this node's deliverer as the batch commits (intake.outbox.
handover): sent without a claim, never twice with another deliverer on the same database,
and taken over by a claim when the deliverer they were handed to stops before sending them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from reopenable import ReopenableStorage
from sqlalchemy import event
from test_delivery import NOW, Commits, Recorder, rows

from intake.outbox import handover
from intake.outbox.delivery import Deliverer
from intake.outbox.handover import Handover
from storage import outbox


def notices(first: int, count: int) -> list[dict[str, Any]]:
    return [
        outbox.outbox_row(
            ticket_id=None,
            kind="ack",
            channel="email",
            recipient=f"customer{n}@example.org",
            payload={"subject": f"[SUP-{n:06d}] Re: hi", "text": "hello"},
            now=NOW,
        )
        for n in range(first, first + count)
    ]


async def write_batch(
    storage: ReopenableStorage, handed: Handover, rows: list[dict[str, Any]]
) -> None:
    """What a group commit's fast way does with its notices: mark, write in `finish`, commit."""
    async with storage.sessions.begin() as session:
        handed.mark(session)
        await handover.write(session, rows)


class Statements:
    """The SQL statements run on an engine, for telling a claim from the rest."""

    def __init__(self, storage: ReopenableStorage) -> None:
        self.seen: list[str] = []
        self.engine = storage.engine.sync_engine
        event.listen(self.engine, "before_cursor_execute", self._ran)

    def _ran(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        self.seen.append(statement)

    def claims(self) -> int:
        return sum(1 for s in self.seen if s.lstrip().upper().startswith("UPDATE") and
                   "attempts + " in s)  # fmt: skip

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._ran)


def deliverer(storage: ReopenableStorage, replier: Recorder, **options: Any) -> Deliverer:
    return Deliverer(storage.sessions, {"email": replier}, clock=lambda: NOW, **options)


async def test_a_committed_batch_is_sent_without_a_claim(storage: ReopenableStorage) -> None:
    replier = Recorder()
    ours = deliverer(storage, replier, idle=3600)
    handed = Handover()
    handed.attach(ours)
    statements = Statements(storage)
    try:
        assert await ours.run_once() == 0  # the claim a deliverer makes on starting
    finally:
        statements.close()
    assert statements.claims() == 1  # as the claim is seen below
    await write_batch(storage, handed, notices(0, 3))
    written = await rows(storage)
    assert {(r.leased_until, r.attempts) for r in written} == {(NOW + ours.lease, 1)}
    statements, commits = Statements(storage), Commits(storage)
    try:
        assert await ours.run_once() == 3
    finally:
        statements.close()
        commits.close()
    assert statements.claims() == 0 and commits.count == 1  # the outcomes only
    assert [a.outbox_id for a in replier.sent] == [r.id for r in written]
    assert [a.to for a in replier.sent] == [f"customer{n}@example.org" for n in range(3)]
    assert {r.status for r in await rows(storage)} == {"sent"}
    assert await ours.run_once() == 0


async def test_a_batch_rolled_back_hands_nothing_over(storage: ReopenableStorage) -> None:
    replier = Recorder()
    ours = deliverer(storage, replier, idle=3600)
    handed = Handover()
    handed.attach(ours)
    with pytest.raises(RuntimeError):
        async with storage.sessions.begin() as session:
            handed.mark(session)
            await handover.write(session, notices(0, 2))
            raise RuntimeError("a message of the batch failed")
    await write_batch(storage, handed, notices(2, 1))  # the same ids may come again
    assert await ours.run_once() == 0  # the first pass claims (nothing is due)
    assert await ours.run_once() == 1
    assert [a.to for a in replier.sent] == ["customer2@example.org"]
    assert len(await rows(storage)) == 1


async def test_without_a_deliverer_the_rows_wait_due(storage: ReopenableStorage) -> None:
    await write_batch(storage, Handover(), notices(0, 2))
    assert {(r.leased_until, r.attempts) for r in await rows(storage)} == {(None, 0)}
    replier = Recorder()
    assert await deliverer(storage, replier).run_once() == 2


async def test_rows_written_to_claim_ring_the_bell_after_the_commit(
    storage: ReopenableStorage,
) -> None:
    rung: list[str] = []
    handed = Handover()
    ours = deliverer(storage, Recorder())
    ours.wake = lambda: rung.append("wake")  # type: ignore[method-assign]
    handed.attach(ours)
    async with storage.sessions.begin() as session:
        handed.ring_after_commit(session)
        assert rung == []
    assert rung == ["wake"]


async def test_two_deliverers_with_hand_overs_send_each_notice_once(
    storage: ReopenableStorage,
) -> None:
    replier = Recorder(pause=0.002)
    ours, theirs = deliverer(storage, replier, batch=5), deliverer(storage, replier, batch=5)
    handed = Handover()
    handed.attach(ours)
    await write_batch(storage, Handover(), notices(0, 10))  # due: anyone's to claim
    stop = asyncio.Event()
    running = [asyncio.create_task(d.run(stop)) for d in (ours, theirs)]
    for batch in range(8):
        await write_batch(storage, handed, notices(10 + 5 * batch, 5))
        await asyncio.sleep(0.01)
    for _ in range(500):
        if len(replier.sent) >= 50:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*running)
    recipients = [a.to for a in replier.sent]
    assert sorted(recipients) == sorted(f"customer{n}@example.org" for n in range(50))
    assert {r.status for r in await rows(storage)} == {"sent"}


async def test_notices_handed_over_but_never_sent_are_claimed_after_the_lease(
    storage: ReopenableStorage,
) -> None:
    gone = deliverer(storage, Recorder())
    handed = Handover()
    handed.attach(gone)
    await write_batch(storage, handed, notices(0, 3))  # committed; then the process stops
    replier = Recorder()
    other = deliverer(storage, replier)
    assert await other.run_once() == 0  # leased to the node that stopped
    later = Deliverer(
        storage.sessions, {"email": replier}, clock=lambda: NOW + gone.lease + timedelta(seconds=1)
    )
    assert await later.run_once() == 3
    assert await later.run_once() == 0
    assert sorted(a.to for a in replier.sent) == [f"customer{n}@example.org" for n in range(3)]
    assert {(r.status, r.attempts) for r in await rows(storage)} == {("sent", 2)}


async def test_a_hand_over_whose_lease_ran_short_is_released_to_a_claim(
    storage: ReopenableStorage,
) -> None:
    clock = [NOW]
    replier = Recorder()
    ours = Deliverer(storage.sessions, {"email": replier}, clock=lambda: clock[0], idle=3600)
    handed = Handover()
    handed.attach(ours)
    assert await ours.run_once() == 0
    await write_batch(storage, handed, notices(0, 2))
    clock[0] = NOW + ours.lease - ours.send_margin  # the deliverer was stalled meanwhile
    assert await ours.run_once() == 2  # attempted: released, not sent
    assert replier.sent == []
    assert {(r.leased_until, r.attempts) for r in await rows(storage)} == {(None, 0)}
    ours.wake()
    assert await ours.run_once() == 2 and len(replier.sent) == 2
