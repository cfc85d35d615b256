"""What the Telegram channel is handed: linking a chat user to a contact, and `/status`.

The channel never reaches storage itself (DESIGN: channels import the intake's interfaces and
leaves only); the links and the tickets live in `storage`, behind this.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import telegram_state
from storage.telegram_state import Link, LinkResult, TicketStatus

__all__ = ["ChatAccounts", "Link", "LinkResult", "TicketStatus"]


class ChatAccounts:
    """Telegram users and the contacts whose phone they shared; tickets as their sender sees."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def ticket_status(self, ticket_id: int, sender: str) -> TicketStatus | None:
        """The ticket if `sender` opened it, else None (a stranger learns nothing)."""
        async with self._sessions() as session:
            return await telegram_state.ticket_status_for(session, ticket_id, sender)

    async def link(self, phone: str, telegram_id: str) -> Link:
        """Link `telegram_id` to the contact with this E.164 phone, if there is one."""
        async with self._sessions.begin() as session:
            return await telegram_state.link_telegram(session, phone, telegram_id)
