"""What the SLA watcher and the inactivity close read and write.

Safe with several nodes on one database: an SLA alert is claimed by inserting its
`sla_alerts` row with insert-or-ignore, so of two watchers (or a watcher and its restarted
self) exactly one inserts it and only that one queues the alert, in the same transaction. The
ticket row is locked first (`FOR UPDATE SKIP LOCKED` on PostgreSQL: a ticket another node is
working on is left to it; SQLite's `BEGIN IMMEDIATE` already serializes writers) and the
ticket is checked again under the lock, so an answer recorded meanwhile stops the alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from storage.models import Organization, SlaAlert, Ticket, TicketEvent

BREACH = "breach"
SYSTEM = "system"
OPEN_STATUSES = ("open", "on_hold")


class Deadline(StrEnum):
    """The deadlines a ticket has; the value is `sla_alerts.deadline`."""

    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


# Each deadline: its due column and the column that, once set, means it was met.
_COLUMNS: dict[Deadline, tuple[InstrumentedAttribute[Any], InstrumentedAttribute[Any]]] = {
    Deadline.FIRST_RESPONSE: (Ticket.first_response_due, Ticket.first_response_at),
    Deadline.RESOLUTION: (Ticket.resolution_due, Ticket.resolved_at),
}


@dataclass(frozen=True, slots=True)
class WatchedTicket:
    """An open ticket with a deadline not yet met nor yet reported as breached."""

    id: int
    deadline: Deadline
    due: datetime
    received_at: datetime
    clock_starts: datetime | None
    policy: str
    plan: str | None
    priority: str
    severity: int | None
    region: str | None
    organization: str | None
    sender: str
    contact_status: str
    channel: str
    subject: str
    alerted: frozenset[str]  # thresholds already claimed for this deadline


def _pending(deadline: Deadline) -> ColumnElement[bool]:
    due, met = _COLUMNS[deadline]
    return and_(Ticket.status == "open", due.is_not(None), met.is_(None))


async def watched_tickets(
    session: AsyncSession,
    deadline: Deadline,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[WatchedTicket]:
    """One batch of open tickets whose `deadline` is pending and not yet breached, soonest
    first, after the keyset `after` (due, id). Walks the (status, due) index."""
    due, _ = _COLUMNS[deadline]
    breached = exists().where(
        SlaAlert.ticket_id == Ticket.id,
        SlaAlert.deadline == str(deadline),
        SlaAlert.threshold == BREACH,
    )
    conditions = [_pending(deadline), ~breached]
    if after is not None:
        conditions.append(or_(due > after[0], and_(due == after[0], Ticket.id > after[1])))
    query = (
        select(Ticket, Organization.name, Organization.region)
        .outerjoin(Organization, Ticket.organization_id == Organization.id)
        .where(*conditions)
        .order_by(due, Ticket.id)
        .limit(limit)
    )
    rows = (await session.execute(query)).all()
    claimed = await _claimed(session, deadline, [t.id for t, _, _ in rows])
    return [
        WatchedTicket(
            id=t.id,
            deadline=deadline,
            due=getattr(t, due.key),
            received_at=t.received_at,
            clock_starts=t.clock_starts,
            policy=t.policy,
            plan=t.plan,
            priority=t.priority,
            severity=t.severity,
            region=region,
            organization=org,
            sender=t.sender,
            contact_status=t.contact_status,
            channel=t.channel,
            subject=t.subject,
            alerted=frozenset(claimed.get(t.id, ())),
        )
        for t, org, region in rows
    ]


async def _claimed(
    session: AsyncSession, deadline: Deadline, ticket_ids: Sequence[int]
) -> dict[int, list[str]]:
    if not ticket_ids:
        return {}
    rows = await session.execute(
        select(SlaAlert.ticket_id, SlaAlert.threshold).where(
            SlaAlert.deadline == str(deadline), SlaAlert.ticket_id.in_(ticket_ids)
        )
    )
    found: dict[int, list[str]] = {}
    for ticket_id, threshold in rows:
        found.setdefault(ticket_id, []).append(threshold)
    return found


def _is_postgresql(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


async def lock_if_pending(
    session: AsyncSession, ticket_id: int, deadline: Deadline, due: datetime
) -> bool:
    """Lock the ticket if `deadline` is still pending and still `due`; False if it was met or
    moved meanwhile, or (PostgreSQL) if another node holds the ticket right now: that node
    does what is needed, or the next pass does."""
    due_column, _ = _COLUMNS[deadline]
    query = select(Ticket.id).where(Ticket.id == ticket_id, _pending(deadline), due_column == due)
    if _is_postgresql(session):
        query = query.with_for_update(skip_locked=True)
    return (await session.scalar(query)) is not None


async def claim_alert(
    session: AsyncSession, ticket_id: int, deadline: Deadline, threshold: str, now: datetime
) -> bool:
    """Record that this alert is sent; True only for the one caller that recorded it."""
    module = postgresql if _is_postgresql(session) else sqlite
    statement = (
        module.insert(SlaAlert)
        .values(ticket_id=ticket_id, deadline=str(deadline), threshold=threshold, at=now)
        .on_conflict_do_nothing()
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0) == 1)


async def add_event(
    session: AsyncSession, ticket_id: int, kind: str, details: dict[str, Any], now: datetime
) -> None:
    session.add(TicketEvent(ticket_id=ticket_id, at=now, actor=SYSTEM, kind=kind, details=details))
    await session.flush()


def _last_agent_event() -> Any:
    return (
        select(func.max(TicketEvent.at))
        .where(TicketEvent.ticket_id == Ticket.id, TicketEvent.actor != SYSTEM)
        .scalar_subquery()
    )


def _inactive(policies: Sequence[str], before: datetime) -> list[ColumnElement[bool]]:
    last_agent = _last_agent_event()
    return [
        Ticket.status == "on_hold",
        Ticket.policy.in_(list(policies)),
        or_(Ticket.on_hold_at.is_(None), Ticket.on_hold_at <= before),
        Ticket.last_message_at <= before,
        or_(last_agent.is_(None), last_agent <= before),
    ]


async def inactive_tickets(
    session: AsyncSession, policies: Sequence[str], before: datetime, limit: int
) -> list[int]:
    """Tickets of `policies` on hold, with no customer message, no hold and no agent action
    since `before`: the ones the inactivity rule closes."""
    if not policies:
        return []
    query = (
        select(Ticket.id)
        .where(*_inactive(policies, before))
        .order_by(Ticket.last_message_at, Ticket.id)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def close_if_inactive(
    session: AsyncSession, ticket_id: int, policies: Sequence[str], before: datetime, now: datetime
) -> bool:
    """Close the ticket if it is still inactive; True for the one caller that closed it.

    The conditional UPDATE re-checks under the row lock, so a customer reply or an agent
    action that committed meanwhile keeps it open, and two nodes never both close it.
    """
    result = await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, *_inactive(policies, before))
        .values(status="closed", closed_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def open_tickets_by_priority(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Ticket.priority, func.count(Ticket.id))
        .where(Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.priority)
    )
    return {priority: count for priority, count in rows.all()}


@dataclass(frozen=True)
class OpenTicketCounts:
    """Open tickets by priority, for /metrics (called at scrape time)."""

    sessions: async_sessionmaker[AsyncSession]

    async def __call__(self) -> dict[str, int]:
        async with self.sessions() as session:
            return await open_tickets_by_priority(session)
