"""The support policy as data, and the deadlines it gives a request. Pure: no I/O, no clock.

A policy is loaded from TOML by `intake.policy_file`; this module holds the frozen model and
`compute_deadlines`, which applies CONTRACTS section 1 to one (plan, priority, received).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from intake.calendar import (
    TWENTY_FOUR_SEVEN,
    Calendar,
    add_support_time,
    clock_starts,
)
from intake.errors import InputRefusedError
from intake.messages import ChannelKind


class TargetKind(StrEnum):
    SUPPORT_HOURS = "hours"
    DAYS = "days"
    CALENDAR_HOURS = "calendar_hours"


@dataclass(frozen=True, slots=True)
class Target:
    """A response or resolution target: N support hours, N support days, or N calendar hours."""

    kind: TargetKind
    amount: float

    def describe(self) -> str:
        unit = {
            TargetKind.SUPPORT_HOURS: "support hours",
            TargetKind.DAYS: "support days",
            TargetKind.CALENDAR_HOURS: "calendar hours",
        }[self.kind]
        return f"{self.amount:g} {unit}"


@dataclass(frozen=True, slots=True)
class PriorityTargets:
    """What one priority gets on one plan. `calendar` overrides the plan's calendars."""

    response: Target | None = None
    resolution: Target | None = None
    calendar: str | None = None
    on_call: bool = False


@dataclass(frozen=True)
class Plan:
    name: str
    response_calendar: str
    resolution_calendar: str
    channels: frozenset[ChannelKind]
    nominated_channels: frozenset[ChannelKind]
    designated_required: bool
    designated_limit: int | None
    quota: int | None
    targets: Mapping[str, PriorityTargets]


@dataclass(frozen=True)
class PriorityRules:
    """How a request's priority is chosen (the decision itself lives in the pipeline)."""

    order: tuple[str, ...]  # lowest first
    default: str
    by_channel: Mapping[ChannelKind, str]
    urgent: str | None  # what an urgent marker raises the priority to
    subject_prefixes: Mapping[str, str]  # "urgent" -> priority, for a leading "Urgent:"
    by_severity: Mapping[int, str]
    by_category: Mapping[str, str]

    def rank(self, priority: str) -> int:
        return self.order.index(priority)


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    source: str
    zone: str  # where its people are: the zone deadlines are shown in
    calendars: Mapping[str, Calendar]
    plans: Mapping[str, Plan]
    priorities: PriorityRules
    support_period_months: int | None
    unidentified_sla: bool
    regional_calendars: frozenset[str]  # calendars that follow the organization's region zone

    def plan(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            known = ", ".join(self.plans)
            raise InputRefusedError(
                f"policy {self.name!r} has no plan {name!r} (plans: {known})"
            ) from None

    def check_priority(self, name: str) -> None:
        if name not in self.priorities.order:
            known = ", ".join(self.priorities.order)
            raise InputRefusedError(
                f"policy {self.name!r} has no priority {name!r} (priorities: {known})"
            )


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The deadlines of one request, with how each was computed (for the decision record)."""

    clock_starts: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    on_call: bool
    explanation: tuple[str, ...]


def _calendar(policy: Policy, name: str, region: str | None) -> Calendar:
    cal = policy.calendars[name]
    if region and name in policy.regional_calendars and region != cal.zone:
        return _regional(cal, region)
    return cal


@cache
def _regional(cal: Calendar, zone: str) -> Calendar:
    # Memoized so each (calendar, zone) builds its year tables once.
    return replace(cal, zone=zone, _years={})


def _amount(target: Target, cal: Calendar) -> tuple[Calendar, timedelta]:
    if target.kind is TargetKind.CALENDAR_HOURS:
        return TWENTY_FOUR_SEVEN, timedelta(hours=target.amount)
    if target.kind is TargetKind.DAYS:
        day = cal.day_length()
        if day is None:  # the loader refuses this; kept as a clear error for hand-built models
            raise InputRefusedError("a days target needs a calendar whose days are equal")
        return cal, day * target.amount
    return cal, timedelta(hours=target.amount)


def _due(
    target: Target | None, cal: Calendar, cal_name: str, received: datetime, what: str
) -> tuple[datetime | None, str]:
    if target is None:
        return None, f"{what}: no target in the policy"
    run_on, amount = _amount(target, cal)
    where = "24x7" if run_on is TWENTY_FOUR_SEVEN else f"calendar {cal_name!r} ({run_on.zone})"
    hours = amount / timedelta(hours=1)
    return (
        add_support_time(run_on, received, amount),
        f"{what}: {target.describe()} = {hours:g} h on {where}",
    )


def compute_deadlines(
    policy: Policy, plan_name: str, priority: str, received: datetime, region: str | None = None
) -> Deadlines:
    """Clock start and deadlines for a request received at `received` (an aware datetime).

    `region` is the organization's IANA zone, used by calendars marked regional (Scalr's
    "business hours in regional market").
    """
    plan = policy.plan(plan_name)
    policy.check_priority(priority)
    targets = plan.targets[priority]
    response_name = targets.calendar or plan.response_calendar
    resolution_name = targets.calendar or plan.resolution_calendar
    response_cal = _calendar(policy, response_name, region)
    resolution_cal = _calendar(policy, resolution_name, region)
    start_cal = response_cal
    if targets.response is not None and targets.response.kind is TargetKind.CALENDAR_HOURS:
        start_cal = TWENTY_FOUR_SEVEN
    response, why_response = _due(
        targets.response, response_cal, response_name, received, "first response"
    )
    resolution, why_resolution = _due(
        targets.resolution, resolution_cal, resolution_name, received, "resolution"
    )
    return Deadlines(
        clock_starts=clock_starts(start_cal, received),
        first_response_due=response,
        resolution_due=resolution,
        on_call=targets.on_call,
        explanation=(
            f"{policy.name} plan {plan.name}, priority {priority}",
            why_response,
            why_resolution,
        ),
    )
