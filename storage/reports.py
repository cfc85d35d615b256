"""What SLA reports read: the tickets received in one window, organizations, quota counts.

Each query is bounded by what it answers, never by the table: the window by
`ix_tickets_received_at`, an organization's period by `ix_tickets_organization_received`,
open overdue tickets by the `(status, due)` indexes. Rows are plain dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Organization, Ticket
from storage.tickets import OPEN_STATUSES

# Not requests: machine mail, and tickets merged into another (counted there).
NOT_REQUESTS = ("machine", "merged")
IDS_PER_QUERY = 500  # well under every driver's limit on bound parameters


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


def window_query(
    since: datetime, until: datetime, organization: str | None = None
) -> Select[*tuple[Any, ...]]:
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
    return query


async def tickets_received(
    session: AsyncSession, since: datetime, until: datetime, organization: str | None = None
) -> list[ReportTicket]:
    # On the connection: plain rows, without the ORM's per-row loading (tens of thousands).
    connection = await session.connection()
    rows = await connection.execute(window_query(since, until, organization))
    return [ReportTicket(*row) for row in rows.all()]


async def organizations(session: AsyncSession, name: str | None = None) -> list[ReportOrganization]:
    query = select(
        Organization.id, Organization.name, Organization.plan, Organization.policy,
        Organization.support_start,
    ).order_by(Organization.name)  # fmt: skip
    if name is not None:
        query = query.where(Organization.name == name)
    return [ReportOrganization(*row) for row in (await session.execute(query)).all()]


async def tickets_in_periods(
    session: AsyncSession, periods: Mapping[tuple[datetime, datetime], Sequence[int]]
) -> dict[int, int]:
    """What quotas count: each organization's tickets received in its period `[begin, end)`
    (as the pipeline counts them for `over_quota`), by organization id; one query per
    distinct period (organizations that started on the same day share theirs)."""
    found: dict[int, int] = {}
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        # After five runs PostgreSQL may keep a generic plan of a prepared statement, blind to
        # how much of the table a period holds; measured 20 times slower at a million tickets.
        await connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    for (begin, end), ids in periods.items():
        for start in range(0, len(ids), IDS_PER_QUERY):
            rows = await session.execute(
                select(Ticket.organization_id, func.count(Ticket.id))
                .where(
                    Ticket.organization_id.in_(ids[start : start + IDS_PER_QUERY]),
                    Ticket.received_at >= begin,
                    Ticket.received_at < end,
                )
                .group_by(Ticket.organization_id)
            )
            found.update({org: count for org, count in rows.all() if org is not None})
    return found


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
