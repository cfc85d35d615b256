"""Deadlines of the five presets, each case worked out by hand from the seeds.

Read a row as: policy, plan, priority, received -> clock start, first response, resolution.
The comment above each row is the arithmetic, so a reader can check it against the seed.
2024 calendar facts used: CZ holidays Fri 29 Mar + Mon 1 Apr (Easter), Fri 5 Jul, Mon 28 Oct,
Tue-Thu 24-26 Dec, Wed 1 Jan 2025; summer time starts Sun 31 Mar (EU) and Sun 10 Mar (US),
ends Sun 27 Oct (EU).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from intake.messages import ChannelKind
from intake.policy.files import PRESETS, load_policy
from intake.policy.model import compute_deadlines

CASES: list[tuple[str, str, str, str, str | None, str | None, str | None, str | None]] = [
    # policy, plan, priority, received, region, clock_starts, first_response_due, resolution_due
    # --- circularo-saas standard: Prague Mon-Fri 08:30-16:30 minus CZ holidays, 8 h a day.
    # Inside hours: Tue 6.5 h, Wed 14.5, Thu 22.5, Fri 30.5, Mon +1.5 -> 10:00 (32 h);
    # Mon 38.5, Tue +1.5 -> 10:00 (5 days = 40 h).
    ("circularo-saas", "standard", "normal", "2024-06-11T10:00+02:00", None,
     "2024-06-11T10:00+02:00", "2024-06-17T10:00+02:00", "2024-06-18T10:00+02:00"),
    # At night: clock starts Wed 08:30; 4 full days end exactly at Mon's 16:30 window end.
    ("circularo-saas", "standard", "normal", "2024-06-11T22:00+02:00", None,
     "2024-06-12T08:30+02:00", "2024-06-17T16:30+02:00", "2024-06-18T16:30+02:00"),
    # Exactly at a window's end (half-open: outside). Urgent 48 h = 6 days, 4 days = 32 h;
    # a resolution is also a response, so the response is capped at Thu 16:30 (not Mon 24).
    ("circularo-saas", "standard", "urgent", "2024-06-14T16:30+02:00", None,
     "2024-06-17T08:30+02:00", "2024-06-20T16:30+02:00", "2024-06-20T16:30+02:00"),
    # Sunday: 4 days from Monday -> Thu 16:30; 5 days -> Fri 16:30.
    ("circularo-saas", "standard", "normal", "2024-06-16T09:00+02:00", None,
     "2024-06-17T08:30+02:00", "2024-06-20T16:30+02:00", "2024-06-21T16:30+02:00"),
    # Easter and spring summer time: Thu 1 h, Good Friday and Easter Monday closed,
    # Tue 9, Wed 17, Thu 25, Fri +7 -> 15:30 CEST; Fri full 33, Mon +7 -> 15:30.
    ("circularo-saas", "standard", "normal", "2024-03-28T15:30+01:00", None,
     "2024-03-28T15:30+01:00", "2024-04-05T15:30+02:00", "2024-04-08T15:30+02:00"),
    # 5 July (Friday) closed: Thu 4.5, Mon 12.5, Tue 20.5, Wed 28.5, Thu 36.5, Fri 44.5,
    # Mon +3.5 -> 12:00 (48 h); 32 h: ... Wed 28.5, Thu +3.5 -> 12:00; the response is capped
    # at that resolution deadline.
    ("circularo-saas", "standard", "urgent", "2024-07-04T12:00+02:00", None,
     "2024-07-04T12:00+02:00", "2024-07-11T12:00+02:00", "2024-07-11T12:00+02:00"),
    # 2026: 5 July is a Sunday and 6 July (Jan Hus Day) a Monday, closed: Fri 3 Jul 14:30 CEST
    # gives 2 h, Tue 7 Jul 10, Wed 18, Thu 26, Fri +6 -> 14:30 (32 h); 40 h: Fri full 34, Mon
    # 13 Jul +6 -> 14:30.
    ("circularo-saas", "standard", "normal", "2026-07-03T14:30+02:00", None,
     "2026-07-03T14:30+02:00", "2026-07-10T14:30+02:00", "2026-07-13T14:30+02:00"),
    # Christmas and New Year: Mon 2.5, 24-26 Dec closed, Fri 10.5, Mon 18.5, Tue 26.5,
    # 1 Jan closed, Thu +5.5 -> 14:00 (32 h); Thu full 34.5, Fri +5.5 -> 14:00 (40 h).
    ("circularo-saas", "standard", "normal", "2024-12-23T14:00+01:00", None,
     "2024-12-23T14:00+01:00", "2025-01-02T14:00+01:00", "2025-01-03T14:00+01:00"),
    # Autumn summer time and 28 Oct: Fri 4.5, Mon 28 closed, Tue 12.5, Wed 20.5, Thu 28.5,
    # Fri +3.5 -> 12:00 CET; Fri full 36.5, Mon +3.5 -> 12:00.
    ("circularo-saas", "standard", "normal", "2024-10-25T12:00+02:00", None,
     "2024-10-25T12:00+02:00", "2024-11-01T12:00+01:00", "2024-11-04T12:00+01:00"),
    # --- circularo-saas plus: Prague every day 08:00-20:00, no holidays, 12 h a day.
    # Spring change: Sat 1 h, Sun (CEST) 13, Easter Monday open: +11 -> 19:00 (24 h);
    # 3 days = 36 h: Mon full 25, Tue +11 -> 19:00.
    ("circularo-saas", "plus", "normal", "2024-03-30T19:00+01:00", None,
     "2024-03-30T19:00+01:00", "2024-04-01T19:00+02:00", "2024-04-02T19:00+02:00"),
    # At night on Christmas Eve: 24 h = 2 full days (25, 26 Dec), 2 days = 24 h too.
    ("circularo-saas", "plus", "urgent", "2024-12-24T22:00+01:00", None,
     "2024-12-25T08:00+01:00", "2024-12-26T20:00+01:00", "2024-12-26T20:00+01:00"),
    # Year end: 31 Dec 2 h, 1 Jan 14, 2 Jan +10 -> 18:00; 36 h: 2 Jan full 26, 3 Jan +10.
    ("circularo-saas", "plus", "normal", "2024-12-31T18:00+01:00", None,
     "2024-12-31T18:00+01:00", "2025-01-02T18:00+01:00", "2025-01-03T18:00+01:00"),
    # --- circularo-saas premium: 24x7, real elapsed time.
    # Spring: 22:00Z + 8 h = 06:00Z = 08:00 CEST; + 48 h = 1 Apr 22:00Z = 2 Apr 00:00 CEST.
    ("circularo-saas", "premium", "normal", "2024-03-30T23:00+01:00", None,
     "2024-03-30T23:00+01:00", "2024-03-31T08:00+02:00", "2024-04-02T00:00+02:00"),
    # Autumn: 20:00Z + 4 h = 00:00Z, still CEST (02:00); + 24 h = 27 Oct 20:00Z = 21:00 CET.
    ("circularo-saas", "premium", "urgent", "2024-10-26T22:00+02:00", None,
     "2024-10-26T22:00+02:00", "2024-10-27T02:00+02:00", "2024-10-27T21:00+01:00"),
    # --- circularo-onprem standard: response on Dubai Mon-Fri 08:00-17:00 minus CZ holidays.
    # Wed 7 h, Thu 16, Fri 25, Mon +7 -> 15:00 Dubai; no resolution target.
    ("circularo-onprem", "standard", "level-3", "2024-12-18T10:00+04:00", None,
     "2024-12-18T10:00+04:00", "2024-12-23T15:00+04:00", None),
    # Thu 7, Fri 16, Mon 25, 24-26 Dec closed (Czech Non-Support Days even in Dubai),
    # Fri 27 +7 -> 15:00 Dubai.
    ("circularo-onprem", "standard", "level-1", "2024-12-19T10:00+04:00", None,
     "2024-12-19T10:00+04:00", "2024-12-27T15:00+04:00", None),
    # 5 July closed: Thu 1, Mon 10, Tue 19, Wed 28, Thu +4 -> 12:00 Dubai.
    ("circularo-onprem", "standard", "level-4", "2024-07-04T16:00+04:00", None,
     "2024-07-04T16:00+04:00", "2024-07-11T12:00+04:00", None),
    # --- circularo-onprem plus: response Dubai daily 08-20, resolution Prague daily 08-20.
    # Sat 17:00Z is 21:00 Dubai (closed): response clock starts Sun 08:00 Dubai, + 6 h;
    # resolution: Sat 18-20 Prague 2 h, Sun (CEST) + 6 -> 14:00.
    ("circularo-onprem", "plus", "level-1", "2024-03-30T18:00+01:00", None,
     "2024-03-31T08:00+04:00", "2024-03-31T14:00+04:00", "2024-03-31T14:00+02:00"),
    # Level 4, 48/64 h: Dubai Sun..Wed 4 x 12 -> Wed 20:00; Prague Sat 2, Sun 14, Mon 26,
    # Tue 38, Wed 50, Thu 62, Fri +2 -> 10:00.
    ("circularo-onprem", "plus", "level-4", "2024-03-30T18:00+01:00", None,
     "2024-03-31T08:00+04:00", "2024-04-03T20:00+04:00", "2024-04-05T10:00+02:00"),
    # --- circularo-onprem premium: 24x7. 01:30 CEST on the autumn change is 23:30Z;
    # + 8 h = 07:30Z = 08:30 CET; + 16 h = 15:30Z = 16:30 CET.
    ("circularo-onprem", "premium", "level-2", "2024-10-27T01:30+02:00", None,
     "2024-10-27T01:30+02:00", "2024-10-27T08:30+01:00", "2024-10-27T16:30+01:00"),
    # --- four-tier: London Mon-Fri 08:00-22:00 (14 h a day), response only.
    # Urgent is 1 calendar hour on a 24x7 clock: 00:30Z + 1 h = 01:30Z = 02:30 BST.
    ("four-tier", "standard", "urgent", "2024-03-31T00:30+00:00", None,
     "2024-03-31T00:30+00:00", "2024-03-31T02:30+01:00", None),
    # Medium 8 h: Fri (Good Friday is no holiday here) 18-22 = 4 h, Mon (BST) +4 -> 12:00.
    ("four-tier", "standard", "medium", "2024-03-29T18:00+00:00", None,
     "2024-03-29T18:00+00:00", "2024-04-01T12:00+01:00", None),
    # High 4 h received at 22:00 (window end, outside): Tue 08:00 + 4 h.
    ("four-tier", "standard", "high", "2024-06-10T22:00+01:00", None,
     "2024-06-11T08:00+01:00", "2024-06-11T12:00+01:00", None),
    # High 4 h landing exactly on the window's end: 18:00 + 4 h = 22:00 that evening.
    ("four-tier", "standard", "high", "2024-06-12T18:00+01:00", None,
     "2024-06-12T18:00+01:00", "2024-06-12T22:00+01:00", None),
    # Low 24 h over the autumn change: Fri 2 h, Mon (GMT) 16, Tue +8 -> 16:00 GMT.
    ("four-tier", "standard", "low", "2024-10-25T20:00+01:00", None,
     "2024-10-25T20:00+01:00", "2024-10-29T16:00+00:00", None),
    # --- scoro: Normal Business Hours London Mon-Fri 05:00-19:00 (14 h a day).
    # Error 48 h over Christmas (no holidays in the seed): Fri 2, Mon 16, Tue 30, Wed 44,
    # Thu +4 -> 09:00.
    ("scoro", "standard", "error", "2024-12-20T17:00+00:00", None,
     "2024-12-20T17:00+00:00", "2024-12-26T09:00+00:00", None),
    # Saturday before the spring change: Mon 05:00 BST; Mon 14, Tue 28, Wed 42, Thu +6.
    ("scoro", "standard", "error", "2024-03-30T12:00+00:00", None,
     "2024-04-01T05:00+01:00", "2024-04-04T11:00+01:00", None),
    # Lands exactly on a window's end: Mon 6, Tue 20, Wed 34, Thu 48 at 19:00.
    ("scoro", "standard", "error", "2024-06-10T13:00+01:00", None,
     "2024-06-10T13:00+01:00", "2024-06-13T19:00+01:00", None),
    # Availability issues are handled 24/7 with no number: the clock starts at once.
    ("scoro", "standard", "availability", "2024-03-30T12:00+00:00", None,
     "2024-03-30T12:00+00:00", None, None),
    # Other requests carry no target (3.2); the clock still starts in business hours.
    ("scoro", "standard", "request", "2024-03-30T12:00+00:00", None,
     "2024-04-01T05:00+01:00", None, None),
    # --- scalr: Mon-Fri 09:00-18:00 in the organization's region (UTC by default), no
    # numbers in the seed.
    ("scalr", "standard", "severity-2", "2024-06-15T10:00+00:00", None,
     "2024-06-17T09:00+00:00", None, None),
    ("scalr", "standard", "severity-2", "2024-06-14T17:30-04:00", "America/New_York",
     "2024-06-14T17:30-04:00", None, None),
    # New York changes to summer time on 10 Mar: Monday's 09:00 is EDT.
    ("scalr", "standard", "severity-1", "2024-03-09T12:00-05:00", "America/New_York",
     "2024-03-11T09:00-04:00", None, None),
    # Premium: severity 1 runs 24x7, the rest on business hours.
    ("scalr", "premium", "severity-1", "2024-06-15T10:00+00:00", None,
     "2024-06-15T10:00+00:00", None, None),
    ("scalr", "premium", "severity-3", "2024-06-15T10:00+00:00", None,
     "2024-06-17T09:00+00:00", None, None),
]  # fmt: skip


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("policy", "plan", "priority", "received", "region", "starts", "response", "resolution"),
    CASES,
)
def test_hand_checked_deadline(
    policy: str,
    plan: str,
    priority: str,
    received: str,
    region: str | None,
    starts: str,
    response: str | None,
    resolution: str | None,
) -> None:
    got = compute_deadlines(
        load_policy(policy), plan, priority, datetime.fromisoformat(received), region=region
    )
    assert (got.clock_starts, got.first_response_due, got.resolution_due) == (
        _at(starts),
        _at(response),
        _at(resolution),
    )


def test_every_preset_plan_and_priority_is_covered() -> None:
    covered = {(row[0], row[1]) for row in CASES}
    for name in PRESETS:
        policy = load_policy(name)
        assert {(name, plan) for plan in policy.plans} <= covered


@pytest.mark.parametrize("name", PRESETS)
def test_every_combination_answers(name: str) -> None:
    policy = load_policy(name)
    received = datetime.fromisoformat("2024-12-24T09:00+01:00")
    for plan in policy.plans:
        for priority in policy.priorities.order:
            got = compute_deadlines(policy, plan, priority, received)
            assert got.clock_starts >= received
            for due in (got.first_response_due, got.resolution_due):
                assert due is None or due > got.clock_starts
            assert got.explanation[0].startswith(f"{name} plan {plan}")


def test_targets_the_seeds_do_not_give_are_null() -> None:
    # CONTRACTS 1: "A target the seed does not give is null: no invented numbers."
    scalr = load_policy("scalr")
    for plan in scalr.plans.values():
        for targets in plan.targets.values():
            assert targets.response is None and targets.resolution is None
    for targets in load_policy("four-tier").plans["standard"].targets.values():
        assert targets.resolution is None


def test_non_deadline_rules_of_the_seeds() -> None:
    saas = load_policy("circularo-saas")
    assert {str(c) for c in saas.plans["standard"].channels} == {"web"}
    assert {str(c) for c in saas.plans["plus"].nominated_channels} == {"email"}
    onprem = load_policy("circularo-onprem")
    assert [onprem.plans[p].quota for p in ("standard", "plus", "premium")] == [25, 100, 500]
    assert onprem.support_period_months == 12
    assert onprem.priorities.by_channel[ChannelKind.EMAIL] == "level-3"
    scalr = load_policy("scalr")
    assert [scalr.plans[p].designated_limit for p in ("standard", "premium")] == [2, 8]
    assert load_policy("scoro").unidentified_sla is False
    four = load_policy("four-tier")
    assert four.priorities.by_channel[ChannelKind.EMAIL] == "medium"
    assert four.priorities.subject_prefixes["urgent"] == "urgent"
    assert four.priorities.by_category["feature_request"] == "low"
