"""Gathering an SLA report: the window's tickets and the organizations from storage, the
calendars from the policies, then `intake.desk.reports` adds them up. Also the gauges
/metrics shows (open overdue, quota used), cached briefly so scrapes stay cheap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.desk.actions import storage_errors
from intake.desk.reports import (
    ClockKey,
    Clocks,
    OrganizationFigures,
    Report,
    build_report,
    clock_key,
)
from intake.errors import InputRefusedError, IntakeError
from intake.pipeline.decide import support_period
from intake.policy.calendar import TWENTY_FOUR_SEVEN, Calendar
from intake.policy.files import load_policy
from intake.policy.model import Basis, TargetKind, basis_calendar, compute_deadlines
from storage import reports as repo

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
# Wall time when a ticket's policy can no longer be read (a policy file gone): said in the log.
WALL_CLOCKS = Clocks(TWENTY_FOUR_SEVEN, TWENTY_FOUR_SEVEN, None, None)


def window(since: date | None, until: date | None, now: datetime) -> tuple[datetime, datetime]:
    """`[since 00:00 UTC, the day after until 00:00 UTC)`; by default the 30 days to `now`."""
    end = _midnight(until + timedelta(days=1)) if until else now
    start = _midnight(since) if since else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise InputRefusedError(f"the period is empty: {start.date()} is not before {end.date()}")
    return start, end


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _target_hours(basis: Basis, cal: Calendar) -> float | None:
    target = basis.target
    if target is None:
        return None
    if target.kind is TargetKind.DAYS:
        day = cal.day_length()
        return None if day is None else target.amount * day / timedelta(hours=1)
    return target.amount


def clocks_for(key: ClockKey, received: datetime) -> Clocks:
    """The calendars and targets of one (policy, plan, priority, region), from its policy."""
    policy_ref, plan, priority, region = key
    try:
        policy = load_policy(policy_ref)
        plan_name = plan or next(iter(policy.plans))
        due = compute_deadlines(policy, plan_name, priority, received, region)
        response = basis_calendar(policy, due.response_basis)
        resolution = basis_calendar(policy, due.resolution_basis)
    except (IntakeError, KeyError, ValueError, OSError) as exc:
        log.warning("report: no calendar for %r (%s); counting wall time", key, exc)
        return WALL_CLOCKS
    response_hours = _target_hours(due.response_basis, response)
    resolution_hours = _target_hours(due.resolution_basis, resolution)
    if response_hours and resolution_hours and response == resolution:
        # A resolution is also a response (CONTRACTS section 1): the response target is capped.
        response_hours = min(response_hours, resolution_hours)
    return Clocks(response, resolution, response_hours, resolution_hours)


def clocks_of(tickets: Iterable[repo.ReportTicket]) -> dict[ClockKey, Clocks]:
    found: dict[ClockKey, Clocks] = {}
    for t in tickets:
        key = clock_key(t)
        if key not in found:
            found[key] = clocks_for(key, t.received_at)
    return found


@dataclass(frozen=True, slots=True)
class _Quota:
    organization: repo.ReportOrganization
    policy: str
    quota: int | None
    period: tuple[datetime, datetime]
    ends: date | None


def _quota_of(org: repo.ReportOrganization, default_policy: str, today: date) -> _Quota | None:
    policy_ref = org.policy or default_policy
    try:
        policy = load_policy(policy_ref)
    except (IntakeError, OSError) as exc:
        log.warning("report: policy %r of %r not readable (%s)", policy_ref, org.name, exc)
        return None
    plan = policy.plans.get(org.plan)
    months = policy.support_period_months or 12  # the period the pipeline counts quotas in
    begin, end = support_period(org.support_start, months, today)
    ends = end if org.support_start is not None else None
    quota = plan.quota if plan is not None else None
    return _Quota(org, policy.name, quota, (_midnight(begin), _midnight(end)), ends)


async def organization_rows(
    session: AsyncSession,
    default_policy: str,
    now: datetime,
    name: str | None = None,
    *,
    only_quotas: bool = False,
) -> list[OrganizationFigures]:
    """Each organization's quota and its use in the support period holding `now`
    (`only_quotas`: only organizations whose plan has a quota)."""
    orgs = await repo.organizations(session, name)
    quotas = {org.id: _quota_of(org, default_policy, now.date()) for org in orgs}
    periods: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
    for org_id, found in quotas.items():
        if found is not None and (found.quota is not None or not only_quotas):
            periods[found.period].append(org_id)
    used = await repo.tickets_in_periods(session, periods)
    rows = []
    for org in orgs:
        q = quotas[org.id]
        if q is None:
            if not only_quotas:  # a policy file gone: its quota cannot be known
                rows.append(OrganizationFigures(org.name, org.policy or default_policy,
                                                org.plan, None, 0, None))  # fmt: skip
        elif q.quota is not None or not only_quotas:
            rows.append(OrganizationFigures(org.name, q.policy, org.plan, q.quota,
                                            used.get(org.id, 0), q.ends))  # fmt: skip
    return rows


async def sla_report(
    sessions: async_sessionmaker[AsyncSession],
    *,
    default_policy: str,
    now: datetime,
    since: date | None = None,
    until: date | None = None,
    organization: str | None = None,
) -> Report:
    """The report for requests received in the period (default: the 30 days to `now`)."""
    start, end = window(since, until, now)
    async with storage_errors(), sessions() as session:
        organizations = await organization_rows(session, default_policy, now, organization)
        if organization is not None and not organizations:
            raise InputRefusedError(f"no organization named {organization!r}")
        tickets = await repo.tickets_received(session, start, end, organization)
    clocks = clocks_of(tickets)
    # Tens of thousands of tickets take a while to add up: off the event loop, so a page
    # asking for a report does not hold up intake in the same process.
    return await asyncio.to_thread(build_report, start, end, now, tickets, clocks, organizations)


@dataclass(frozen=True, slots=True)
class Gauges:
    open_overdue: dict[str, int]  # by priority
    quotas: dict[str, tuple[int, int]]  # organization -> (quota, used), those with a quota


@dataclass
class ReportGauges:
    """/metrics' report gauges, read at scrape time and kept `ttl` seconds: a dashboard
    scraping every few seconds does not recount every organization's period each time."""

    sessions: async_sessionmaker[AsyncSession]
    default_policy: str
    clock: Callable[[], datetime]
    ttl: float = 30.0
    monotonic: Callable[[], float] = time.monotonic
    _kept: tuple[float, Gauges] | None = field(default=None, repr=False)

    async def __call__(self) -> Gauges:
        if self._kept is not None and self.monotonic() - self._kept[0] < self.ttl:
            return self._kept[1]
        now = self.clock()
        async with storage_errors(), self.sessions() as session:
            overdue = await repo.open_overdue_by_priority(session, now)
            organizations = await organization_rows(
                session, self.default_policy, now, only_quotas=True
            )
        quotas = {o.organization: (o.quota or 0, o.quota_used) for o in organizations}
        gauges = Gauges(overdue, quotas)
        self._kept = (self.monotonic(), gauges)
        return gauges


async def organization_names(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Every organization's name, for the reports page's choice."""
    async with storage_errors(), sessions() as session:
        return [org.name for org in await repo.organizations(session)]
