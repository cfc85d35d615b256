"""What SLA reports read: the tickets received in one window, organizations, quota counts.

Each query is bounded by what it answers, never by the table: the window by
`ix_tickets_received_at`, an organization's period by `ix_tickets_organization_received`,
open overdue tickets by the `(status, due)` indexes. Rows are plain dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Organization, Ticket
from storage.tickets import OPEN_STATUSES

# Not requests: machine mail, and tickets merged into another (counted there).
NOT_REQUESTS = ("machine", "merged")


@dataclass(frozen=True, slots=True)
class ReportTicket:
    """One ticket as the report reads it: who, which promise, and what happened when."""

    organization: str | None
    region: str | None
    policy: str
    plan: str | None
    priority: str
    status: str
    received_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReportOrganization:
    id: int
    name: str
    plan: str
    policy: str | None
    support_start: date | None


async def tickets_received(
    session: AsyncSession, since: datetime, until: datetime, organization: str | None = None
) -> list[ReportTicket]:
    """Requests received in `[since, until)`, optionally of one organization (by name)."""
    columns = (
        Organization.name, Organization.region, Ticket.policy, Ticket.plan, Ticket.priority,
        Ticket.status, Ticket.received_at, Ticket.first_response_due, Ticket.resolution_due,
        Ticket.first_response_at, Ticket.resolved_at,
    )  # fmt: skip
    query = (
        select(*columns)
        .outerjoin(Organization, Ticket.organization_id == Organization.id)
        .where(
            Ticket.received_at >= since,
            Ticket.received_at < until,
            Ticket.status.not_in(NOT_REQUESTS),
        )
    )
    if organization is not None:
        query = query.where(Organization.name == organization)
    return [ReportTicket(*row) for row in (await session.execute(query)).all()]


async def organizations(session: AsyncSession, name: str | None = None) -> list[ReportOrganization]:
    query = select(
        Organization.id, Organization.name, Organization.plan, Organization.policy,
        Organization.support_start,
    ).order_by(Organization.name)  # fmt: skip
    if name is not None:
        query = query.where(Organization.name == name)
    return [ReportOrganization(*row) for row in (await session.execute(query)).all()]


async def tickets_in_period(
    session: AsyncSession, organization_id: int, begin: datetime, end: datetime
) -> int:
    """What the organization's quota counts: its tickets received in `[begin, end)`, as the
    pipeline counts them when it decides `over_quota`."""
    count = await session.scalar(
        select(func.count(Ticket.id)).where(
            Ticket.organization_id == organization_id,
            Ticket.received_at >= begin,
            Ticket.received_at < end,
        )
    )
    return count or 0


async def open_overdue_by_priority(session: AsyncSession, now: datetime) -> dict[str, int]:
    """Open (or on hold) tickets with a first response or resolution past due and not done."""
    rows = await session.execute(
        select(Ticket.priority, func.count(Ticket.id))
        .where(
            Ticket.status.in_(OPEN_STATUSES),
            or_(
                and_(Ticket.first_response_at.is_(None), Ticket.first_response_due < now),
                and_(Ticket.resolved_at.is_(None), Ticket.resolution_due < now),
            ),
        )
        .group_by(Ticket.priority)
    )
    return {priority: count for priority, count in rows.all()}
