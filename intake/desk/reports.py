"""SLA reports: what each customer was promised and what they got. Pure: plain rows in,
figures out; no clock, no database, no policy files (the caller passes `now` and the
calendars each ticket's times are counted on).

A ticket's response time is the support time (CONTRACTS section 1) from its receipt to its
first response on the calendar its first-response target runs on; its resolution time the
same to its resolution on the resolution target's calendar. Averages are in those support
hours, as the seeds' "Target Response Time" is an average over a customer's requests.

A deadline is met when done at or before it, breached when done after it or still not done
once it has passed (at `now`); a ticket without that deadline (no target, or none owed:
over quota, support expired, unidentified) is neither. Rows whose priority has no target
report `null` met/breached, but their times all the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from intake.policy.calendar import Calendar, support_time
from storage.reports import ReportTicket
from storage.tickets import OPEN_STATUSES

ClockKey = tuple[str, str | None, str, str | None]  # policy, plan, priority, region
# Response time as a share of the ticket's own time to its deadline: upper bounds of the
# distribution's buckets (the last bucket is everything later).
SHARE_BOUNDS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
SHARE_LABELS = ("<= 25%", "25-50%", "50-75%", "75-100%", "100-150%", "150-200%", "> 200%")
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Clocks:
    """The calendars one (policy, plan, priority, region) counts its times on, and its
    targets in support hours (None: the policy gives none)."""

    response: Calendar
    resolution: Calendar
    response_target_hours: float | None
    resolution_target_hours: float | None


def clock_key(ticket: ReportTicket) -> ClockKey:
    return (ticket.policy, ticket.plan, ticket.priority, ticket.region)


@dataclass(frozen=True, slots=True)
class Measured:
    """One ticket's times in support hours and its verdicts (None: not decided)."""

    ticket: ReportTicket
    response_hours: float | None
    resolution_hours: float | None
    response_due_hours: float | None  # support time from receipt to its response deadline
    response_met: bool | None
    resolution_met: bool | None
    overdue: bool


def _hours(cal: Calendar, start: datetime, end: datetime | None) -> float | None:
    return None if end is None else support_time(cal, start, end) / _HOUR


def verdict(done_at: datetime | None, due: datetime | None, now: datetime) -> bool | None:
    """True: met; False: breached (late, or not done and past due); None: no verdict."""
    if due is None:
        return None
    if done_at is not None:
        return done_at <= due
    return False if due < now else None


def is_overdue(t: ReportTicket, now: datetime) -> bool:
    """Still open with a deadline passed and not met (as `tickets list --overdue` reads it)."""
    if t.status not in OPEN_STATUSES:
        return False
    late_response = t.first_response_at is None and _before(t.first_response_due, now)
    return late_response or (t.resolved_at is None and _before(t.resolution_due, now))


def _before(due: datetime | None, now: datetime) -> bool:
    return due is not None and due < now


def measure(t: ReportTicket, clocks: Clocks, now: datetime) -> Measured:
    response = _hours(clocks.response, t.received_at, t.first_response_at)
    # The time to the deadline serves only to place a response in the distribution.
    due = None if response is None else t.first_response_due
    return Measured(
        ticket=t,
        response_hours=response,
        resolution_hours=_hours(clocks.resolution, t.received_at, t.resolved_at),
        response_due_hours=_hours(clocks.response, t.received_at, due),
        response_met=verdict(t.first_response_at, t.first_response_due, now),
        resolution_met=verdict(t.resolved_at, t.resolution_due, now),
        overdue=is_overdue(t, now),
    )


@dataclass(frozen=True, slots=True)
class PriorityFigures:
    """One row per organization and priority (CONTRACTS section 2, `intake report sla`)."""

    organization: str | None
    policy: str
    plan: str | None
    priority: str
    requests: int
    responded: int
    response_met: int | None
    response_breached: int | None
    average_response_hours: float | None
    resolved: int
    resolution_met: int | None
    resolution_breached: int | None
    average_resolution_hours: float | None
    open_overdue: int
    response_target_hours: float | None
    resolution_target_hours: float | None

    def as_json(self) -> dict[str, Any]:
        return {"kind": "priority", **asdict(self)}


def _average(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _count(verdicts: Iterable[bool | None], wanted: bool, has_target: bool) -> int | None:
    return sum(1 for v in verdicts if v is wanted) if has_target else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def priority_row(key: ClockKey, organization: str | None, clocks: Clocks,
                 measured: Sequence[Measured]) -> PriorityFigures:  # fmt: skip
    response = [m.response_hours for m in measured if m.response_hours is not None]
    resolution = [m.resolution_hours for m in measured if m.resolution_hours is not None]
    with_response = clocks.response_target_hours is not None
    with_resolution = clocks.resolution_target_hours is not None
    return PriorityFigures(
        organization=organization,
        policy=key[0],
        plan=key[1],
        priority=key[2],
        requests=len(measured),
        responded=len(response),
        response_met=_count((m.response_met for m in measured), True, with_response),
        response_breached=_count((m.response_met for m in measured), False, with_response),
        average_response_hours=_average(response),
        resolved=len(resolution),
        resolution_met=_count((m.resolution_met for m in measured), True, with_resolution),
        resolution_breached=_count((m.resolution_met for m in measured), False, with_resolution),
        average_resolution_hours=_average(resolution),
        open_overdue=sum(1 for m in measured if m.overdue),
        response_target_hours=_round(clocks.response_target_hours),
        resolution_target_hours=_round(clocks.resolution_target_hours),
    )


def _row_key(m: Measured) -> tuple[str, str, str, str]:
    t = m.ticket
    return (t.organization or "", t.policy, t.plan or "", t.priority)


def priority_rows(
    tickets: Iterable[ReportTicket], clocks: Mapping[ClockKey, Clocks], now: datetime
) -> tuple[list[PriorityFigures], list[Measured]]:
    """The rows per organization and priority (sorted), and every ticket measured.

    Tickets of one organization in several regions share a row; each is counted on its own
    region's calendar.
    """
    measured = [measure(t, clocks[clock_key(t)], now) for t in tickets]
    groups: dict[tuple[str, str, str, str], list[Measured]] = defaultdict(list)
    for m in measured:
        groups[_row_key(m)].append(m)
    rows = []
    for key in sorted(groups):
        members = groups[key]
        first = members[0].ticket
        rows.append(priority_row(clock_key(first), first.organization,
                                 clocks[clock_key(first)], members))  # fmt: skip
    return rows, measured


@dataclass(frozen=True, slots=True)
class OrganizationFigures:
    """One row per organization: its quota and what it used in its current support period."""

    organization: str
    policy: str
    plan: str
    quota: int | None
    quota_used: int
    support_period_ends: date | None

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        ends = self.support_period_ends
        return {"kind": "organization", **row,
                "support_period_ends": ends.isoformat() if ends else None}  # fmt: skip


@dataclass(frozen=True, slots=True)
class WeekFigures:
    """Deadlines met out of those decided, for requests received in one week (from Monday)."""

    week: date
    response_met: int
    response_decided: int
    resolution_met: int
    resolution_decided: int

    @property
    def response_share(self) -> float | None:
        return self.response_met / self.response_decided if self.response_decided else None

    @property
    def resolution_share(self) -> float | None:
        return self.resolution_met / self.resolution_decided if self.resolution_decided else None


def week_of(moment: datetime) -> date:
    """The Monday (UTC) of the week holding `moment`."""
    day = moment.date()
    return day - timedelta(days=day.weekday())


def weekly_attainment(measured: Iterable[Measured]) -> dict[str, list[WeekFigures]]:
    """Per organization ("" for unidentified senders), per week with a decided deadline."""
    tally: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0] * 4))
    for m in measured:
        if m.response_met is None and m.resolution_met is None:
            continue
        counts = tally[m.ticket.organization or ""][week_of(m.ticket.received_at)]
        for offset, met in ((0, m.response_met), (2, m.resolution_met)):
            if met is not None:
                counts[offset] += met
                counts[offset + 1] += 1
    return {
        org: [WeekFigures(week, *weeks[week]) for week in sorted(weeks)]
        for org, weeks in sorted(tally.items())
    }


def share_bucket(share: float) -> int:
    for index, bound in enumerate(SHARE_BOUNDS):
        if share <= bound:
            return index
    return len(SHARE_BOUNDS)


def response_distribution(measured: Iterable[Measured]) -> dict[str, list[int]]:
    """Per organization, how many responses took what share of their own time to the
    deadline (buckets of SHARE_LABELS): 100% is the target."""
    found: dict[str, list[int]] = defaultdict(lambda: [0] * len(SHARE_LABELS))
    for m in measured:
        if m.response_hours is None or not m.response_due_hours:
            continue
        bucket = share_bucket(m.response_hours / m.response_due_hours)
        found[m.ticket.organization or ""][bucket] += 1
    return dict(sorted(found.items()))


@dataclass(frozen=True, slots=True)
class Report:
    """Everything `intake report sla`, /reports and the charts show, for one window."""

    since: datetime
    until: datetime
    now: datetime
    priorities: list[PriorityFigures]
    organizations: list[OrganizationFigures]
    weeks: dict[str, list[WeekFigures]]
    distribution: dict[str, list[int]]


def build_report(
    since: datetime,
    until: datetime,
    now: datetime,
    tickets: Iterable[ReportTicket],
    clocks: Mapping[ClockKey, Clocks],
    organizations: Sequence[OrganizationFigures],
) -> Report:
    rows, measured = priority_rows(tickets, clocks, now)
    return Report(
        since=since,
        until=until,
        now=now,
        priorities=rows,
        organizations=list(organizations),
        weeks=weekly_attainment(measured),
        distribution=response_distribution(measured),
    )
