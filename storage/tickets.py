"""Tickets and their messages: what the pipeline reads and writes in its one transaction.

Repository functions take the session first and return plain dataclasses, never ORM rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Insert,
    Table,
    and_,
    case,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from intake.messages import InboundMessage, Spooled
from storage import spooled
from storage.models import Attachment, Blob, Message, Organization, Ticket

OPEN_STATUSES = ("open", "on_hold")


@dataclass(frozen=True, slots=True)
class TicketState:
    """What threading and follow-ups need to know of an existing ticket."""

    id: int
    organization_id: int | None
    sender: str
    channel: str
    status: str
    policy: str
    plan: str | None
    priority: str
    received_at: datetime
    urgent: bool
    decision: dict[str, Any]


def _state(t: Ticket) -> TicketState:
    return TicketState(
        t.id,
        t.organization_id,
        t.sender,
        t.channel,
        t.status,
        t.policy,
        t.plan,
        t.priority,
        t.received_at,
        t.urgent,
        t.decision,
    )


async def ticket_of_message(
    session: AsyncSession, channel: str, channel_message_id: str
) -> int | None:
    """The ticket already holding this (channel, message id): the idempotency check."""
    return await session.scalar(
        select(Message.ticket_id).where(
            Message.channel == channel, Message.channel_message_id == channel_message_id
        )
    )


async def get_ticket(session: AsyncSession, ticket_id: int) -> TicketState | None:
    ticket = await session.get(Ticket, ticket_id)
    return None if ticket is None else _state(ticket)


async def ticket_by_message_ids(session: AsyncSession, rfc_ids: list[str]) -> TicketState | None:
    """The most recent ticket holding a message with one of these Message-IDs."""
    if not rfc_ids:
        return None
    ticket = await session.scalar(
        select(Ticket)
        .join(Message, Message.ticket_id == Ticket.id)
        .where(Message.rfc_message_id.in_(rfc_ids))
        .order_by(Ticket.id.desc())
        .limit(1)
    )
    return None if ticket is None else _state(ticket)


async def open_ticket_of_sender(
    session: AsyncSession, sender: str, channel: str, since: datetime
) -> TicketState | None:
    """The sender's open ticket on this channel with a message since `since` (chat threads)."""
    ticket = await session.scalar(
        select(Ticket)
        .where(
            Ticket.sender == sender,
            Ticket.channel == channel,
            Ticket.status.in_(OPEN_STATUSES),
            Ticket.last_message_at >= since,
        )
        .order_by(Ticket.last_message_at.desc())
        .limit(1)
    )
    return None if ticket is None else _state(ticket)


async def count_organization_tickets(
    session: AsyncSession, organization_id: int, begin: datetime, end: datetime
) -> int:
    count = await session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.organization_id == organization_id,
            Ticket.received_at >= begin,
            Ticket.received_at < end,
            Ticket.status != "machine",  # machine mail is no request: it uses no quota
        )
    )
    return count or 0


async def insert_ticket(session: AsyncSession, **fields: Any) -> int:
    # Core INSERT ... RETURNING on the table, the values as parameters: one statement, its
    # compiled form cached, without the unit of work's (or ORM bulk insert's) bookkeeping.
    table = cast(Table, Ticket.__table__)
    inserted = await session.execute(insert(table).returning(table.c.id), fields)
    return int(inserted.scalar_one())


class TicketIds:
    """Ticket ids handed out before the tickets' rows are written, so that a group commit can
    write a whole batch's tickets in one executemany (and name them meanwhile).

    PostgreSQL: ids come from the table's own sequence, a block at a time; ids taken and not
    used wait for the next batch (a sequence never gives one out twice). SQLite: the batch
    holds the one writer's lock (`BEGIN IMMEDIATE`, storage.db), so the ids after the largest
    stored one are the batch's until it commits; they are read again in each batch (`forget`),
    since another process may write between two batches.
    """

    def __init__(self, block: int = 20) -> None:
        self.block = block
        self._pool: list[int] = []  # PostgreSQL: ascending, taken from the sequence
        self._last: int | None = None  # SQLite: the last id handed out in this batch

    def forget(self) -> None:
        """Before a batch (and after one rolled back): SQLite's next ids are read afresh."""
        self._last = None

    async def take(self, session: AsyncSession) -> int:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            if not self._pool:
                found = await session.execute(
                    text(
                        "SELECT nextval(pg_get_serial_sequence('tickets', 'id'))"
                        " FROM generate_series(1, :count)"
                    ),
                    {"count": self.block},
                )
                self._pool = sorted(int(value) for (value,) in found)
            return self._pool.pop(0)
        if self._last is None:
            self._last = await session.scalar(select(func.max(Ticket.id))) or 0
        self._last += 1
        return self._last


def insert_tickets_statement() -> Insert:
    """Core INSERT of ticket rows that carry their ids (`TicketIds`), for an executemany."""
    return insert(cast(Table, Ticket.__table__))


async def update_ticket(session: AsyncSession, ticket_id: int, **fields: Any) -> None:
    await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**fields))


def _insert_ignoring_duplicates(session: AsyncSession, values: dict[str, Any]) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(Blob).values(**values).on_conflict_do_nothing()


def message_values(
    ticket_id: int, message: InboundMessage, direction: str = "in"
) -> dict[str, Any]:
    """The `messages` row of `message` (its attachments are rows of their own; a spooled
    message's raw bytes are written by `insert_message`)."""
    return {
        "ticket_id": ticket_id,
        "channel": str(message.channel),
        "channel_message_id": message.channel_message_id,
        "rfc_message_id": message.rfc_message_id,
        "direction": direction,
        "sender": message.sender,
        "subject": message.subject,
        "text": message.text,
        "raw": message.raw,
        "problems": list(message.problems),
        "extra": dict(message.extra),
        "received_at": message.received_at,
    }


async def insert_messages(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write many `message_values` rows (of messages without attachments) in one executemany."""
    if rows:
        await session.execute(insert(cast(Table, Message.__table__)), rows)


async def insert_message(
    session: AsyncSession, ticket_id: int, message: InboundMessage, direction: str = "in"
) -> int:
    """Store the message and its attachments (bytes once per content, in `blobs`)."""
    values = message_values(ticket_id, message, direction)
    if message.raw_spooled is not None:  # a large mail: its bytes from the spool to `blobs`
        values["raw_sha256"] = await _store_spooled(session, message.raw_spooled)
    table = cast(Table, Message.__table__)  # as in insert_ticket
    inserted = await session.execute(insert(table).returning(table.c.id), values)
    message_id = int(inserted.scalar_one())
    for attachment in message.attachments:
        if attachment.spooled is not None:
            digest = await _store_spooled(session, attachment.spooled)
        else:
            digest = hashlib.sha256(attachment.data).hexdigest()
            await session.execute(
                _insert_ignoring_duplicates(session, {"sha256": digest, "data": attachment.data})
            )
        session.add(
            Attachment(
                message_id=message_id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                sha256=digest,
            )
        )
    if message.attachments:
        await session.flush()
    return message_id


async def _store_spooled(session: AsyncSession, content: Spooled) -> str:
    """Spooled bytes in `blobs` (unless the same content is there already): their digest."""
    data = spooled.column_value(session, content)
    inserted = await session.execute(
        _insert_ignoring_duplicates(session, {"sha256": content.sha256, "data": data})
    )
    if cast(CursorResult[Any], inserted).rowcount:  # new content: write it
        blobs = cast(Table, Blob.__table__)
        await spooled.fill(session, blobs, "data", blobs.c.sha256 == content.sha256, content)
    return content.sha256


@dataclass(frozen=True, slots=True)
class TicketSummary:
    id: int
    channel: str
    sender: str
    subject: str
    organization: str | None
    contact_status: str
    plan: str | None
    priority: str
    severity: int | None
    category: str
    status: str
    flags: tuple[str, ...]
    received_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    message_count: int
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    assignee: str | None = None


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What an agent narrows the queue to; None means any."""

    channel: str | None = None
    organization: str | None = None  # the organization's name
    priority: str | None = None
    status: str | None = None  # e.g. "machine": mail kept out of the open queue
    assignee: str | None = None  # an agent's email; "" for unassigned tickets

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.assignee is not None:
            found.append(
                Ticket.assignee.is_(None) if self.assignee == "" else
                Ticket.assignee == self.assignee
            )  # fmt: skip
        if self.channel is not None:
            found.append(Ticket.channel == self.channel)
        if self.organization is not None:
            found.append(Organization.name == self.organization)
        if self.priority is not None:
            found.append(Ticket.priority == self.priority)
        if self.status is not None:
            found.append(Ticket.status == self.status)
        return found


async def list_tickets(
    session: AsyncSession,
    *,
    only_open: bool,
    overdue_at: datetime | None,
    limit: int | None = None,
    ticket_id: int | None = None,
    offset: int = 0,
    where: TicketFilter | None = None,
) -> list[TicketSummary]:
    """Tickets soonest deadline first (those without a deadline last, oldest first).

    `overdue_at`: only tickets whose first response or resolution is past due at that time.
    `where`: only tickets of that channel, organization (by name) and priority.
    """
    # Per listed ticket, by its index: a grouped subquery would count every message stored.
    counts = (
        select(func.count(Message.id))
        .where(Message.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )
    conditions: list[ColumnElement[bool]] = []
    if ticket_id is not None:
        conditions.append(Ticket.id == ticket_id)
    if where is not None:
        conditions.extend(where.conditions())
    if only_open or overdue_at is not None:
        conditions.append(Ticket.status.in_(OPEN_STATUSES))
    if overdue_at is not None:
        conditions.append(
            or_(
                and_(Ticket.first_response_at.is_(None), Ticket.first_response_due < overdue_at),
                and_(Ticket.resolved_at.is_(None), Ticket.resolution_due < overdue_at),
            )
        )
    # The next deadline still open: first response until answered, then resolution.
    due = case(
        (
            Ticket.first_response_at.is_(None) & Ticket.first_response_due.is_not(None),
            Ticket.first_response_due,
        ),
        (Ticket.resolved_at.is_(None), Ticket.resolution_due),
        else_=None,
    )
    query = (
        select(Ticket, Organization.name, counts)
        .outerjoin(Organization, Ticket.organization_id == Organization.id)
        .where(*conditions)
        .order_by(due.is_(None), due, Ticket.received_at, Ticket.id)
        .limit(limit)
        .offset(offset or None)
    )
    return [
        TicketSummary(
            t.id,
            t.channel,
            t.sender,
            t.subject,
            org,
            t.contact_status,
            t.plan,
            t.priority,
            t.severity,
            t.category,
            t.status,
            tuple(t.flags),
            t.received_at,
            t.first_response_due,
            t.resolution_due,
            n or 0,
            t.first_response_at,
            t.resolved_at,
            t.assignee,
        )
        for t, org, n in (await session.execute(query)).all()
    ]


@dataclass(frozen=True, slots=True)
class MessageView:
    channel: str
    direction: str
    sender: str
    subject: str
    text: str
    received_at: datetime
    attachments: tuple[str, ...]
    problems: tuple[str, ...]
    extra: dict[str, Any]


async def ticket_messages(session: AsyncSession, ticket_id: int) -> list[MessageView]:
    messages = list(
        await session.scalars(
            select(Message).where(Message.ticket_id == ticket_id).order_by(Message.id)
        )
    )
    names: dict[int, list[str]] = {}
    if messages:
        rows = await session.execute(
            select(Attachment.message_id, Attachment.filename)
            .where(Attachment.message_id.in_([m.id for m in messages]))
            .order_by(Attachment.id)
        )
        for message_id, filename in rows:
            names.setdefault(message_id, []).append(filename)
    return [
        MessageView(
            m.channel,
            m.direction,
            m.sender,
            m.subject,
            m.text,
            m.received_at,
            tuple(names.get(m.id, ())),
            tuple(m.problems),
            m.extra,
        )
        for m in messages
    ]


async def ticket_decision(session: AsyncSession, ticket_id: int) -> dict[str, Any] | None:
    return await session.scalar(select(Ticket.decision).where(Ticket.id == ticket_id))


async def tickets_of_messages(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """`ticket_of_message` for many (channel, message id) keys in one query."""
    if not keys:
        return {}
    wanted = set(keys)
    rows = await session.execute(
        select(Message.channel, Message.channel_message_id, Message.ticket_id).where(
            # The channel too: the unique (channel, channel_message_id) index starts with it.
            Message.channel.in_({channel for channel, _ in keys}),
            Message.channel_message_id.in_({key for _, key in keys}),
        )
    )
    return {(c, k): t for c, k, t in rows.all() if (c, k) in wanted}


async def newest_tickets_by_message_ids(
    session: AsyncSession, rfc_ids: list[str]
) -> dict[str, int]:
    """For each of these Message-IDs that is stored, the newest ticket holding it."""
    if not rfc_ids:
        return {}
    rows = await session.execute(
        select(Message.rfc_message_id, func.max(Message.ticket_id))
        .where(Message.rfc_message_id.in_(set(rfc_ids)))
        .group_by(Message.rfc_message_id)
    )
    return {rfc_id: ticket_id for rfc_id, ticket_id in rows.all() if rfc_id is not None}


async def add_flags(session: AsyncSession, ticket_id: int, flags: list[str]) -> None:
    """Add `flags` to a ticket's (a raised priority brings its own, e.g. on_call)."""
    current = await session.scalar(select(Ticket.flags).where(Ticket.id == ticket_id))
    if current is not None:
        merged = [*current, *(flag for flag in flags if flag not in current)]
        await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(flags=merged))
