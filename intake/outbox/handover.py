"""Handing a group commit's notices to this node's deliverer in memory (issue 19).

Before, a group commit wrote its notices as due rows and rang the deliverer's bell; the
deliverer then claimed them back from the database (a select, an update and a commit, on SQLite
another fsync) before sending. Here the batch writes them already leased to this node (in the
same transaction, with their ids RETURNING), and once that transaction has committed they go
to the deliverer as they are: no claim. The lease is the claim's, so the guarantee across nodes
and crashes is unchanged: the deliverer renews it while it works (the heartbeat), and if this
node dies after the commit another takes the rows over when the lease runs out.

Only the fast way of a batch hands over (one transaction, committed or rolled back whole); the
careful way's notices, written inside savepoints that may roll back alone, are claimed as
before, and their commit rings the bell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.outbox import OutboxItem

KEY = "intake.outbox.handover"  # in a batch's `session.info`: the handover its rows go to

Take = Callable[[list[OutboxItem], datetime], None]


class Receiver(Protocol):
    """The deliverer's side (intake.outbox.delivery.Deliverer)."""

    @property
    def lease(self) -> timedelta: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    def take(self, items: list[OutboxItem], leased_until: datetime) -> None: ...

    def wake(self) -> None: ...


@dataclass
class Handover:
    """Where this process's deliverer takes notices; until `attach`, nobody (rows are
    written due, for whichever deliverer claims them)."""

    take: Take | None = None
    wake: Callable[[], None] | None = None
    lease: timedelta = timedelta(seconds=20)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def attach(self, deliverer: Receiver) -> None:
        """From now on `deliverer.take(items, leased_until)` after each batch's commit, and
        `deliverer.wake()` after a commit that wrote rows to claim."""
        self.take, self.wake = deliverer.take, deliverer.wake
        self.lease, self.clock = deliverer.lease, deliverer.clock

    def mark(self, session: AsyncSession) -> None:
        """The batch in `session` writes notices (`write` finds this handover there)."""
        if self.take is not None:
            session.info[KEY] = self

    def ring_after_commit(self, session: AsyncSession) -> None:
        """`session` wrote due rows (the careful way): ring the bell once it commits."""
        wake = self.wake
        if wake is not None:
            event.listen(session.sync_session, "after_commit", lambda _: wake(), once=True)

    async def hand_over(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        take = self.take
        if take is None or not rows:
            await outbox.enqueue_many(session, rows)
            return
        until = self.clock() + self.lease
        items = await outbox.enqueue_leased(session, rows, until)
        # After the commit only: rolled back, the rows (and their ids) never existed.
        event.listen(session.sync_session, "after_commit", lambda _: take(items, until), once=True)


async def write(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write a batch's `outbox_row`s: handed to this node's deliverer when the batch's
    transaction commits, if one was attached; otherwise due, to be claimed."""
    found = session.info.get(KEY)
    if isinstance(found, Handover):
        await found.hand_over(session, rows)
    else:
        await outbox.enqueue_many(session, rows)
