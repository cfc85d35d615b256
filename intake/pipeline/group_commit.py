"""Group commit: the messages that arrive together share one transaction, and each sender is
answered only when that transaction has committed.

A commit costs an fsync (SQLite with synchronous=FULL, PostgreSQL's WAL flush), which bounds
one-message-per-transaction intake to a few dozen messages a second on ordinary disks. Here
one writer takes whatever is waiting, handles the batch, commits once, and then resolves
every caller's future. Batches form by themselves: while one commits, the next fills.

Two ways through a batch:
- fast: `prepare` reads what the whole batch needs in a few set-based queries, then each
  message is handled in turn with no SAVEPOINT (each costs two round trips), and `prepare`'s
  finisher writes what it gathered (e.g. the outbox rows) before the one commit;
- careful: if any message fails on the fast way, that transaction is rolled back and the
  batch is done again with each message inside its own SAVEPOINT and without `prepare`, so
  one bad message rolls back alone and the others are kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.messages import InboundMessage, Receipt

Work = Callable[[AsyncSession, InboundMessage], Awaitable[Receipt]]
# Called once per fast batch before its messages; returns what to run before the commit.
Finish = Callable[[AsyncSession], Awaitable[None]]
Prepare = Callable[[AsyncSession, Sequence[InboundMessage]], Awaitable[Finish]]
Waiting = tuple[InboundMessage, "asyncio.Future[Receipt]"]


def breaks_the_transaction(exc: BaseException) -> bool:
    """Storage errors after which the whole batch cannot commit (lock, connection lost)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class _FastPathError(Exception):
    """A message failed on the fast way: the batch is done again the careful way."""


class GroupCommit:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        work: Work,
        *,
        prepare: Prepare | None = None,
        max_batch: int = 100,
    ) -> None:
        self.sessions = sessions
        self.work = work
        self.prepare = prepare
        self.max_batch = max_batch
        self.redone = 0  # batches that failed on the fast way and were done carefully
        # Called after each commit (the deliverer's bell: the batch's notices are due now).
        self.after_commit: Callable[[], None] | None = None
        self._waiting: list[Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, message: InboundMessage) -> Receipt:
        """Handle `message` in the next batch; returns once that batch has committed."""
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            await self._commit(batch)

    async def _commit(self, batch: list[Waiting]) -> None:
        messages = [message for message, _ in batch]
        try:
            try:
                outcomes = await self._fast(messages)
            except _FastPathError:
                self.redone += 1
                outcomes = await self._careful(messages)
        except Exception as exc:  # the commit (or the batch) failed: nobody's message is kept
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        if self.after_commit is not None:
            self.after_commit()
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away; its message is stored all the same
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _fast(self, messages: list[InboundMessage]) -> list[Receipt | Exception]:
        outcomes: list[Receipt | Exception] = []
        async with self.sessions.begin() as session:
            finish = await self.prepare(session, messages) if self.prepare else None
            try:
                for message in messages:
                    outcomes.append(await self.work(session, message))
                if finish is not None:
                    await finish(session)
            except Exception as exc:
                if breaks_the_transaction(exc):
                    raise
                raise _FastPathError from exc  # leaving the block rolls the whole batch back
        return outcomes

    async def _careful(self, messages: list[InboundMessage]) -> list[Receipt | Exception]:
        outcomes: list[Receipt | Exception] = []
        async with self.sessions.begin() as session:
            for message in messages:
                outcomes.append(await self._one(session, message))
        return outcomes

    async def _one(self, session: AsyncSession, message: InboundMessage) -> Receipt | Exception:
        try:
            async with session.begin_nested():
                return await self.work(session, message)
        except Exception as exc:
            if breaks_the_transaction(exc):
                raise
            return exc  # rolled back to its savepoint; the others go on
