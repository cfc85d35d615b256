"""Inconsistencies in a policy that loads: what `intake policy check` prints and `intake serve`
logs at start. Pure: no I/O.

A team writing its own policy file learns here, before a customer does, about a response
target later than its resolution target (the response is then capped at the resolution
deadline), a higher priority slower than a lower one in the same plan, and a plan without a
calendar (its targets run on 24x7).

Targets are compared in support hours on the calendar each runs on (N days = N times the
calendar's day; calendar hours as they are): exact on one calendar, a fair reading across two.
"""

from __future__ import annotations

import itertools

from intake.policy.model import Plan, Policy, Target, TargetKind


def _hours(policy: Policy, target: Target | None, calendar: str) -> float | None:
    if target is None:
        return None
    if target.kind is TargetKind.DAYS:
        day = policy.calendars[calendar].day_length()
        return None if day is None else target.amount * day.total_seconds() / 3600
    return target.amount


def target_hours(policy: Policy, plan: Plan, priority: str) -> tuple[float | None, float | None]:
    """A priority's (response, resolution) targets in support hours; None where none."""
    targets = plan.targets[priority]
    return (
        _hours(policy, targets.response, targets.calendar or plan.response_calendar),
        _hours(policy, targets.resolution, targets.calendar or plan.resolution_calendar),
    )


def _plan_inconsistencies(policy: Policy, plan: Plan) -> list[str]:
    found = []
    if not plan.has_calendar:
        found.append(f"plans.{plan.name}: no calendar, so its targets run on 24x7")
    spans: dict[str, tuple[float | None, float | None]] = {}
    for priority in policy.priorities.order:
        spans[priority] = response, resolution = target_hours(policy, plan, priority)
        if response is not None and resolution is not None and response > resolution:
            found.append(
                f"plans.{plan.name}.targets.{priority}: response ({response:g} support hours) "
                f"is later than resolution ({resolution:g} support hours); the first response "
                "is due at the resolution deadline"
            )
    # order is lowest first: every later priority should be at least as fast
    for lower, higher in itertools.combinations(policy.priorities.order, 2):
        for index, what in enumerate(("response", "resolution")):
            slow, fast = spans[higher][index], spans[lower][index]
            if slow is not None and fast is not None and slow > fast:
                found.append(
                    f"plans.{plan.name}.targets.{higher}: {what} ({slow:g} support hours) is "
                    f"slower than {lower}'s ({fast:g} support hours)"
                )
    return found


def inconsistencies(policy: Policy) -> list[str]:
    """One line per inconsistency, in the policy's order of plans and priorities."""
    return [line for plan in policy.plans.values() for line in _plan_inconsistencies(policy, plan)]
