"""What the IMAP channel is handed: where each polled mailbox stands, and who may poll it.

The channel never reaches storage itself (DESIGN: channels import the intake's interfaces and
leaves only); the position and the leader lock live in `storage`, behind these.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.errors import TransientError
from storage import mailboxes
from storage.locks import Leadership, SoleNode
from storage.mailboxes import MailboxPosition

__all__ = ["Leadership", "MailboxPosition", "MailboxPositions", "SoleNode"]


class MailboxPositions:
    """Each mailbox folder's UIDVALIDITY and the last UID taken, kept in the database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, mailbox: str) -> MailboxPosition | None:
        with _storage_errors():
            async with self._sessions.begin() as session:
                return await mailboxes.get_position(session, mailbox)

    async def save(self, mailbox: str, *, uidvalidity: int, last_uid: int, at: datetime) -> None:
        with _storage_errors():
            async with self._sessions.begin() as session:
                await mailboxes.save_position(
                    session, mailbox, uidvalidity=uidvalidity, last_uid=last_uid, at=at
                )


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise TransientError(f"mailbox state: storage unavailable: {type(exc).__name__}") from exc
