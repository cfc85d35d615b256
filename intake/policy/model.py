"""The support policy as data, and the deadlines it gives a request. Pure: no I/O, no clock.

A policy is loaded from TOML by `intake.policy.files`; this module holds the frozen model and
`compute_deadlines`, which applies CONTRACTS section 1 to one (plan, priority, received).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from intake.errors import InputRefusedError
from intake.messages import ChannelKind
from intake.policy.calendar import (
    TWENTY_FOUR_SEVEN,
    Calendar,
    add_support_us,
    clock_starts_us,
    from_us,
    require_aware,
    to_us,
)


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
    has_calendar: bool = True  # False: the file named none, so it runs on 24x7


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
    # Channels where the customer's words set the priority and the text's reading (urgent
    # word, severity, category) only suggests one; `category_sets` still set it there.
    suggest_on: frozenset[ChannelKind] = frozenset()
    category_sets: frozenset[str] = frozenset()
    names: Mapping[str, str] = field(default_factory=dict)  # "level-3" -> "Level 3 (Medium)"
    show_severity: bool = True  # False where the priority already is the severity, or none

    def rank(self, priority: str) -> int:
        return self.order.index(priority)

    def display(self, priority: str) -> str:
        """The priority as the policy's own text names it."""
        return self.names.get(priority, priority)


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
    # Memo of resolved (plan, priority, region) schedules; derived from the fields above.
    _schedules: dict[tuple[str, str, str | None], Schedule] = field(
        default_factory=dict, compare=False, repr=False
    )

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
class Basis:
    """How one deadline was computed: the target and the clock it ran on."""

    what: str  # "first response" or "resolution"
    target: Target | None
    calendar: str  # the calendar's name in the policy, or "24x7"
    zone: str

    def explain(self) -> str:
        if self.target is None:
            return f"{self.what}: no target in the policy"
        where = "24x7" if self.calendar == "24x7" else f"calendar {self.calendar!r} ({self.zone})"
        return f"{self.what}: {self.target.describe()} on {where}"


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The deadlines of one request, with how each was computed (for the decision record)."""

    clock_starts: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    on_call: bool
    rule: str  # "policy plan P, priority Q"
    response_basis: Basis
    resolution_basis: Basis
    # A resolution is also a response: the first response was due later than the resolution,
    # so it is due at the resolution deadline (CONTRACTS section 1).
    response_capped: bool = False

    @property
    def explanation(self) -> tuple[str, ...]:
        lines: tuple[str, ...] = (
            self.rule,
            self.response_basis.explain(),
            self.resolution_basis.explain(),
        )
        if self.response_capped:
            lines += ("first response capped at the resolution deadline",)
        return lines


def _calendar(policy: Policy, name: str, region: str | None) -> Calendar:
    cal = policy.calendars[name]
    if region and name in policy.regional_calendars and region != cal.zone:
        return _regional(cal, region)
    return cal


@cache
def _regional(cal: Calendar, zone: str) -> Calendar:
    # Memoized so each (calendar, zone) builds its year tables once.
    return replace(cal, zone=zone, _years={})


def basis_calendar(policy: Policy, basis: Basis) -> Calendar:
    """The calendar a deadline ran on, from how it was computed (its Basis)."""
    if basis.calendar == "24x7":
        return TWENTY_FOUR_SEVEN
    cal = policy.calendars[basis.calendar]
    return cal if cal.zone == basis.zone else _regional(cal, basis.zone)


def _amount(target: Target, cal: Calendar) -> tuple[Calendar, timedelta]:
    if target.kind is TargetKind.CALENDAR_HOURS:
        return TWENTY_FOUR_SEVEN, timedelta(hours=target.amount)
    if target.kind is TargetKind.DAYS:
        day = cal.day_length()
        if day is None:  # the loader refuses this; kept as a clear error for hand-built models
            raise InputRefusedError("a days target needs a calendar whose days are equal")
        return cal, day * target.amount
    return cal, timedelta(hours=target.amount)


# One deadline's clock and its target, in microseconds.
Leg = tuple[Calendar, int]


def _leg(
    target: Target | None, cal: Calendar, cal_name: str, what: str
) -> tuple[Leg | None, Basis]:
    """One deadline's clock and amount, resolved once per schedule."""
    if target is None:
        return None, Basis(what, None, cal_name, cal.zone)
    run_on, amount = _amount(target, cal)
    basis = Basis(what, target, "24x7" if run_on.always else cal_name, run_on.zone)
    return (run_on, amount // timedelta(microseconds=1)), basis


@dataclass(frozen=True, slots=True)
class Schedule:
    """Everything `compute_deadlines` needs for one (plan, priority, region), resolved."""

    rule: str
    on_call: bool
    start: Calendar
    response: Leg | None
    resolution: Leg | None
    response_basis: Basis
    resolution_basis: Basis

    def instants(self, received: int) -> tuple[int, int | None, int | None, bool]:
        """Clock start, first response due, resolution due and whether the response was
        capped, in epoch microseconds, for a request received at `received`."""
        response = resolution = None
        if self.response is not None:
            response = add_support_us(self.response[0], received, self.response[1])
        if self.resolution is not None:
            resolution = add_support_us(self.resolution[0], received, self.resolution[1])
        capped = response is not None and resolution is not None and resolution < response
        return (
            clock_starts_us(self.start, received),
            resolution if capped else response,
            resolution,
            capped,
        )


def schedule(policy: Policy, plan_name: str, priority: str, region: str | None) -> Schedule:
    """The resolved schedule of (plan, priority, region); InputRefusedError if unknown."""
    key = (plan_name, priority, region if policy.regional_calendars else None)
    found = policy._schedules.get(key)
    if found is not None:
        return found
    plan = policy.plan(plan_name)
    policy.check_priority(priority)
    targets = plan.targets[priority]
    response_name = targets.calendar or plan.response_calendar
    resolution_name = targets.calendar or plan.resolution_calendar
    response_cal = _calendar(policy, response_name, region)
    response, response_basis = _leg(targets.response, response_cal, response_name, "first response")
    resolution, resolution_basis = _leg(
        targets.resolution,
        _calendar(policy, resolution_name, region),
        resolution_name,
        "resolution",
    )
    # The clock starts on the first-response calendar (24x7 for a calendar-hours target).
    found = policy._schedules[key] = Schedule(
        rule=f"{policy.name} plan {plan.name}, priority {priority}",
        on_call=targets.on_call,
        start=response[0] if response else response_cal,
        response=response,
        resolution=resolution,
        response_basis=response_basis,
        resolution_basis=resolution_basis,
    )
    return found


def compute_deadlines(
    policy: Policy, plan_name: str, priority: str, received: datetime, region: str | None = None
) -> Deadlines:
    """Clock start and deadlines for a request received at `received` (an aware datetime).

    `region` is the organization's IANA zone, used by calendars marked regional (Scalr's
    "business hours in regional market").
    """
    plan = schedule(policy, plan_name, priority, region)
    require_aware(received)
    start, response, resolution, capped = plan.instants(to_us(received))
    return Deadlines(
        clock_starts=from_us(start),
        first_response_due=None if response is None else from_us(response),
        resolution_due=None if resolution is None else from_us(resolution),
        on_call=plan.on_call,
        rule=plan.rule,
        response_basis=plan.response_basis,
        resolution_basis=plan.resolution_basis,
        response_capped=capped,
    )
