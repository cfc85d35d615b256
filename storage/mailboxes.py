"""Where IMAP polling of each mailbox folder stands: its UIDVALIDITY and the last UID done.

Repository functions take the session first and return plain dataclasses, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MailboxState


@dataclass(frozen=True, slots=True)
class MailboxPosition:
    mailbox: str  # user@host:port/folder
    uidvalidity: int
    last_uid: int
    updated_at: datetime


async def get_position(session: AsyncSession, mailbox: str) -> MailboxPosition | None:
    row = await session.get(MailboxState, mailbox)
    if row is None:
        return None
    return MailboxPosition(row.mailbox, row.uidvalidity, row.last_uid, row.updated_at)


async def save_position(
    session: AsyncSession, mailbox: str, *, uidvalidity: int, last_uid: int, at: datetime
) -> MailboxPosition:
    """Insert or overwrite the position of `mailbox` (one poller per mailbox writes it)."""
    row = await session.get(MailboxState, mailbox)
    if row is None:
        row = MailboxState(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid)
        session.add(row)
    row.uidvalidity = uidvalidity
    row.last_uid = last_uid
    row.updated_at = at
    await session.flush()
    return MailboxPosition(mailbox, uidvalidity, last_uid, at)
