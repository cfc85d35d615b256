"""Group commit: the messages that arrive together share one transaction, and each sender is
answered only when that transaction has committed.

A commit costs an fsync (SQLite with synchronous=FULL, PostgreSQL's WAL flush), which bounds
one-message-per-transaction intake to a few dozen messages a second on ordinary disks. Here
one writer takes whatever is waiting, handles each message inside its own SAVEPOINT (so one
bad message rolls back alone), commits once, and then resolves every caller's future.
Batches form by themselves: while one commits, the next fills.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.messages import InboundMessage, Receipt

Work = Callable[[AsyncSession, InboundMessage], Awaitable[Receipt]]
Waiting = tuple[InboundMessage, "asyncio.Future[Receipt]"]


def breaks_the_transaction(exc: BaseException) -> bool:
    """Storage errors after which the whole batch cannot commit (lock, connection lost)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class GroupCommit:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], work: Work, *, max_batch: int = 100
    ) -> None:
        self.sessions = sessions
        self.work = work
        self.max_batch = max_batch
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
        outcomes: list[Receipt | Exception] = []
        try:
            async with self.sessions.begin() as session:
                for message, _ in batch:
                    outcomes.append(await self._one(session, message))
        except Exception as exc:  # the commit (or the batch) failed: nobody's message is kept
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller went away; its message is stored all the same
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _one(self, session: AsyncSession, message: InboundMessage) -> Receipt | Exception:
        try:
            async with session.begin_nested():
                return await self.work(session, message)
        except Exception as exc:
            if breaks_the_transaction(exc):
                raise
            return exc  # rolled back to its savepoint; the others go on
