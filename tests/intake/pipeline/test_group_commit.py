"""Group commit: a batch commits once; a bad message rolls back alone; a failed commit fails
every message of its batch (none of them was kept, so every sender must retry)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from intake.cli.app import Storage
from intake.messages import ChannelKind, InboundMessage, Receipt, ReceiptStatus
from intake.pipeline.group_commit import GroupCommit
from storage.models import Setting

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def message(n: int) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.SMS,
        channel_message_id=f"m{n}",
        received_at=NOW,
        sender="+420601123456",
        text=f"message {n}",
    )


async def write(session: AsyncSession, incoming: InboundMessage) -> Receipt:
    """Stores one row per message; message 3 is broken after writing its row."""
    n = int(incoming.channel_message_id[1:])
    session.add(Setting(key=f"k{n}", value=incoming.text))
    await session.flush()
    if n == 3:
        raise ValueError("message 3 cannot be stored")
    return Receipt(ReceiptStatus.ACCEPTED, n, f"SUP-{n:06d}")


async def keys(storage: Storage) -> list[str]:
    async with storage.sessions() as session:
        return sorted(await session.scalars(select(Setting.key).where(Setting.key.like("k%"))))


async def test_a_bad_message_rolls_back_alone(storage: Storage) -> None:
    group = GroupCommit(storage.sessions, write)
    outcomes = await asyncio.gather(
        *(group.submit(message(n)) for n in range(6)), return_exceptions=True
    )
    assert isinstance(outcomes[3], ValueError)
    assert [o.ticket_id for o in outcomes if isinstance(o, Receipt)] == [0, 1, 2, 4, 5]
    assert await keys(storage) == ["k0", "k1", "k2", "k4", "k5"]


async def test_messages_that_arrive_together_share_commits(storage: Storage) -> None:
    commits = 0

    class Counting(GroupCommit):
        async def _commit(self, batch: list) -> None:  # type: ignore[type-arg]
            nonlocal commits
            commits += 1
            await super()._commit(batch)

    group = Counting(storage.sessions, write)
    await asyncio.gather(*(group.submit(message(n)) for n in (10, 11, 12, 13, 14, 15, 16, 17)))
    assert commits < 8 and len(await keys(storage)) == 8


async def test_a_broken_transaction_fails_the_whole_batch(storage: Storage) -> None:
    async def locked(session: AsyncSession, incoming: InboundMessage) -> Receipt:
        if incoming.channel_message_id == "m31":
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        return await write(session, incoming)

    group = GroupCommit(storage.sessions, locked)
    outcomes = await asyncio.gather(
        *(group.submit(message(n)) for n in (30, 31, 32)), return_exceptions=True
    )
    assert all(isinstance(o, OperationalError) for o in outcomes)
    assert await keys(storage) == []  # message 30 was not kept either: its sender must retry


async def test_a_caller_that_went_away_still_has_its_message_stored(storage: Storage) -> None:
    group = GroupCommit(storage.sessions, write)
    waiting = asyncio.create_task(group.submit(message(20)))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await group.submit(message(21))  # the writer goes on
    assert await keys(storage) == ["k20", "k21"]


async def test_the_bell_rings_after_each_commit_and_only_then(storage: Storage) -> None:
    """The deliverer's bell: rung once a batch is kept, never for a batch that was not."""
    rung: list[list[str]] = []

    async def broken(session: AsyncSession, incoming: InboundMessage) -> Receipt:
        if incoming.channel_message_id == "m41":
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        return await write(session, incoming)

    group = GroupCommit(storage.sessions, broken)
    group.after_commit = lambda: rung.append([])
    await group.submit(message(40))
    assert len(rung) == 1
    with pytest.raises(OperationalError):
        await group.submit(message(41))
    assert len(rung) == 1
    await asyncio.gather(*(group.submit(message(n)) for n in (42, 43)))
    assert len(rung) == 2 and await keys(storage) == ["k40", "k42", "k43"]
