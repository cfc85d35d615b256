"""A deliberately simple reference for the calendar arithmetic: it steps through days.

Obviously right and slow. The property tests check the engine against it, and `bench/sla.py`
measures the engine's speed as a ratio against it. Valid for windows whose boundaries do not
fall inside a summer-time change (there the plain conversion below would have to pick an
answer; the engine's own tests cover those edges).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from intake.policy.calendar import Calendar

DAY = timedelta(days=1)


def _ref_spans(cal: Calendar, day: date) -> list[tuple[datetime, datetime]]:
    if cal.is_holiday(day):
        return []
    midnight = datetime.combine(day, time())
    return [
        (
            (midnight + timedelta(minutes=w.start)).replace(tzinfo=cal.tz).astimezone(UTC),
            (midnight + timedelta(minutes=w.end)).replace(tzinfo=cal.tz).astimezone(UTC),
        )
        for w in cal.windows[day.weekday()]
    ]


def _first_day(cal: Calendar, moment: datetime) -> date:
    return moment.astimezone(cal.tz).date() - DAY


def ref_add(cal: Calendar, start: datetime, amount: timedelta) -> datetime:
    day, left = _first_day(cal, start), amount
    while True:
        for a, b in _ref_spans(cal, day):
            a = max(a, start)
            if b <= a:
                continue
            if b - a >= left:
                return a + left
            left -= b - a
        day += DAY


def ref_clock_starts(cal: Calendar, start: datetime) -> datetime:
    day = _first_day(cal, start)
    while True:
        for a, b in _ref_spans(cal, day):
            if b > start:
                return max(a, start)
        day += DAY


def ref_support_time(cal: Calendar, start: datetime, end: datetime) -> timedelta:
    total, day = timedelta(0), _first_day(cal, start)
    while day <= end.astimezone(cal.tz).date():
        for a, b in _ref_spans(cal, day):
            total += max(timedelta(0), min(b, end) - max(a, start))
        day += DAY
    return total
