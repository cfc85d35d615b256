"""What the Telegram bot reads and writes outside the pipeline: a ticket's status for its own
sender (`/status`), and linking a Telegram user id to the contact whose phone they shared.

No table of its own: the polling offset lives on Telegram's side (see `channels.telegram.channel`).
Repository functions take the session first and return plain dataclasses, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Contact, Organization, Ticket


@dataclass(frozen=True, slots=True)
class TicketStatus:
    """What `/status` may tell the ticket's own sender."""

    id: int
    status: str
    priority: str
    first_response_due: datetime | None
    first_response_at: datetime | None


async def ticket_status_for(
    session: AsyncSession, ticket_id: int, sender: str
) -> TicketStatus | None:
    """The ticket if `sender` opened it, else None: a stranger cannot tell "not yours" from
    "no such ticket"."""
    row = await session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.sender == sender)
    )
    if row is None:
        return None
    return TicketStatus(
        row.id, row.status, row.priority, row.first_response_due, row.first_response_at
    )


class LinkResult(StrEnum):
    LINKED = "linked"  # the contact now carries the Telegram user id
    ALREADY = "already"  # it carried it before
    UNKNOWN = "unknown"  # no contact has that phone
    CONFLICT = "conflict"  # the contact, or the id, is tied to another Telegram account


@dataclass(frozen=True, slots=True)
class Link:
    result: LinkResult
    contact_name: str | None = None
    organization: str | None = None


async def link_telegram(session: AsyncSession, phone: str, telegram_id: str) -> Link:
    """Set `Contact.telegram = telegram_id` on the contact whose phone is `phone` (E.164).

    The caller has checked that the phone is the Telegram user's own (a shared contact card
    whose user id is the sender's). Nothing is overwritten: a contact already tied to another
    Telegram id or username, or an id already on another contact, is a CONFLICT left for the
    agents. (Moving an id between contacts would also make the next contacts import merge the
    two rows, since it finds a contact by any of its identifiers.)
    """
    row = (
        await session.execute(
            select(Contact, Organization.name)
            .join(Organization, Contact.organization_id == Organization.id)
            .where(Contact.phone == phone)
        )
    ).first()
    if row is None:
        return Link(LinkResult.UNKNOWN)
    contact, organization = row
    if contact.telegram == telegram_id:
        return Link(LinkResult.ALREADY, contact.name, organization)
    holder = await session.scalar(select(Contact.id).where(Contact.telegram == telegram_id))
    if contact.telegram is not None or holder is not None:
        return Link(LinkResult.CONFLICT)
    contact.telegram = telegram_id
    await session.flush()
    return Link(LinkResult.LINKED, contact.name, organization)
