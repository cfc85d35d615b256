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
    """Insert or move forward the position of `mailbox`.

    One poller at a time holds a mailbox, but a frozen former holder may wake and save an older
    position after its successor saved a newer one: within one UIDVALIDITY it never goes back.
    """
    row = await session.get(MailboxState, mailbox, with_for_update=True)
    if row is None:
        row = MailboxState(mailbox=mailbox, uidvalidity=uidvalidity, last_uid=last_uid)
        session.add(row)
    elif row.uidvalidity == uidvalidity and row.last_uid > last_uid:
        last_uid = row.last_uid
    row.uidvalidity = uidvalidity
    row.last_uid = last_uid
    row.updated_at = at
    await session.flush()
    return MailboxPosition(mailbox, uidvalidity, last_uid, at)
