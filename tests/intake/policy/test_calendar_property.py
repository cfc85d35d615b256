"""The calendar engine against a deliberately simple reference that steps through days.

The reference (`calendar_reference.py`) converts each day's windows with plain `astimezone`
and walks forward a day at a time; it is obviously right but slow. Window boundaries are
drawn from 04:00-24:00 so that none falls inside a summer-time change (those edges have
their own tests), where the plain conversion would have to choose an answer.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from calendar_reference import ref_add, ref_clock_starts, ref_support_time
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.policy.calendar import Calendar, Window, add_support_time, clock_starts, support_time

ZONES = ["Europe/Prague", "Europe/London", "Asia/Dubai", "America/New_York",
         "Australia/Sydney", "UTC"]  # fmt: skip


@st.composite
def day_windows(draw: st.DrawFn) -> tuple[Window, ...]:
    # Boundaries on half hours from 04:00 to 24:00; up to two windows (a lunch break).
    marks = sorted(draw(st.sets(st.integers(8, 48), max_size=4)))
    if len(marks) % 2:
        marks = marks[:-1]
    return tuple(Window(a * 30, b * 30) for a, b in zip(marks[::2], marks[1::2], strict=True))


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    # Weekdays share one pattern and weekends another, with one odd day: enough variety for
    # the arithmetic, cheap enough to draw many.
    weekday, weekend, odd = draw(day_windows()), draw(day_windows()), draw(day_windows())
    windows = [weekday] * 5 + [weekend] * 2
    windows[draw(st.integers(0, 6))] = odd
    if not any(windows):
        windows[0] = (Window(540, 1020),)
    extra = draw(st.frozensets(st.dates(date(2023, 1, 1), date(2030, 12, 31)), max_size=5))
    return Calendar(
        zone=draw(st.sampled_from(ZONES)),
        windows=tuple(windows),
        holiday_country=draw(st.sampled_from([None, "CZ", "GB"])),
        extra_holidays=extra,
    )


instants = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC)
)
amounts = st.integers(1, 300 * 60).map(lambda minutes: timedelta(minutes=minutes))
BATCH = 12  # instants checked per drawn calendar: 300 x 12 = 3,600 per test


@settings(max_examples=300, deadline=None)
@given(calendars(), st.lists(st.tuples(instants, amounts), min_size=BATCH, max_size=BATCH))
def test_add_support_time_matches_reference(
    cal: Calendar, cases: list[tuple[datetime, timedelta]]
) -> None:
    for start, amount in cases:
        due = add_support_time(cal, start, amount)
        assert due == ref_add(cal, start, amount)
        assert support_time(cal, start, due) == amount


@settings(max_examples=300, deadline=None)
@given(calendars(), st.lists(instants, min_size=BATCH, max_size=BATCH))
def test_clock_starts_matches_reference(cal: Calendar, starts: list[datetime]) -> None:
    for start in starts:
        assert clock_starts(cal, start) == ref_clock_starts(cal, start)


@settings(max_examples=300, deadline=None)
@given(
    calendars(),
    st.lists(st.tuples(instants, st.integers(0, 60 * 24 * 40)), min_size=BATCH, max_size=BATCH),
)
def test_support_time_matches_reference(cal: Calendar, cases: list[tuple[datetime, int]]) -> None:
    for start, minutes in cases:
        end = start + timedelta(minutes=minutes)
        assert support_time(cal, start, end) == ref_support_time(cal, start, end)
