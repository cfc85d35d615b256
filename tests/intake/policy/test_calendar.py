"""The calendar arithmetic on small hand-built calendars (CONTRACTS section 1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from intake.policy.calendar import (
    TWENTY_FOUR_SEVEN,
    Calendar,
    Window,
    add_support_time,
    clock_starts,
    support_time,
)

H = timedelta(hours=1)


def weekly(zone: str, *spans: tuple[str, str], days: range = range(5), **extra: object) -> Calendar:
    def minutes(clock: str) -> int:
        hours, mins = clock.split(":")
        return int(hours) * 60 + int(mins)

    day = tuple(Window(minutes(a), minutes(b)) for a, b in spans)
    windows = tuple(day if d in days else () for d in range(7))
    return Calendar(zone=zone, windows=windows, **extra)  # type: ignore[arg-type]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


OFFICE = weekly("Europe/Prague", ("08:30", "16:30"))
LUNCH = weekly("Europe/Prague", ("09:00", "12:00"), ("13:00", "17:00"))


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("2024-06-11T10:00+02:00", "2024-06-11T10:00+02:00"),  # inside
        ("2024-06-11T08:30+02:00", "2024-06-11T08:30+02:00"),  # a window's start is inside
        ("2024-06-11T16:30+02:00", "2024-06-12T08:30+02:00"),  # its end is not
        ("2024-06-11T16:29:59.999999+02:00", "2024-06-11T16:29:59.999999+02:00"),
        ("2024-06-14T17:00+02:00", "2024-06-17T08:30+02:00"),  # Friday evening
        ("2024-12-31T20:00+01:00", "2025-01-01T08:30+01:00"),  # no holidays on this one
    ],
)
def test_clock_starts(received: str, expected: str) -> None:
    assert clock_starts(OFFICE, at(received)) == at(expected)


def test_clock_starts_in_lunch_break_waits_for_afternoon() -> None:
    assert clock_starts(LUNCH, at("2024-06-11T12:15+02:00")) == at("2024-06-11T13:00+02:00")


def test_lunch_break_is_not_support_time() -> None:
    # 11:00-12:00 (1 h) + 13:00-15:00 (2 h) = 3 h
    assert support_time(LUNCH, at("2024-06-11T11:00+02:00"), at("2024-06-11T15:00+02:00")) == 3 * H
    assert add_support_time(LUNCH, at("2024-06-11T11:00+02:00"), 1 * H) == at(
        "2024-06-11T12:00+02:00"
    )
    assert add_support_time(LUNCH, at("2024-06-11T11:00+02:00"), 1.5 * H) == at(
        "2024-06-11T13:30+02:00"
    )


def test_deadline_on_a_window_end_is_that_end() -> None:
    assert add_support_time(OFFICE, at("2024-06-11T08:30+02:00"), 8 * H) == at(
        "2024-06-11T16:30+02:00"
    )


def test_zero_target_is_the_instant_itself() -> None:
    moment = at("2024-06-15T03:00+02:00")
    assert add_support_time(OFFICE, moment, timedelta(0)) == moment


def test_support_time_is_zero_for_empty_or_reversed_ranges() -> None:
    a, b = at("2024-06-11T10:00+02:00"), at("2024-06-11T11:00+02:00")
    assert support_time(OFFICE, b, a) == timedelta(0)
    assert support_time(OFFICE, a, a) == timedelta(0)


def test_support_time_across_years() -> None:
    # 31 Dec 2024 (Tue) 15:30-16:30 = 1 h, 1 Jan 2025 (Wed, no holiday list) 8 h,
    # 2 Jan 08:30-09:30 = 1 h.
    got = support_time(OFFICE, at("2024-12-31T15:30+01:00"), at("2025-01-02T09:30+01:00"))
    assert got == 10 * H


def test_company_holiday_and_holiday_moved_by_decree() -> None:
    # 5 July 2024 is a Czech holiday (Friday). A decree moves it to Monday 8 July.
    moved = weekly(
        "Europe/Prague",
        ("08:30", "16:30"),
        holiday_country="CZ",
        extra_holidays=frozenset({date(2024, 7, 8)}),
        not_holidays=frozenset({date(2024, 7, 5)}),
    )
    assert moved.is_holiday(date(2024, 7, 8)) and not moved.is_holiday(date(2024, 7, 5))
    assert clock_starts(moved, at("2024-07-04T17:00+02:00")) == at("2024-07-05T08:30+02:00")
    # Fri 8 h, Mon closed, Tue 8 h: 16 h end on Tuesday's window end.
    assert add_support_time(moved, at("2024-07-05T08:30+02:00"), 16 * H) == at(
        "2024-07-09T16:30+02:00"
    )


def test_twenty_four_seven_counts_real_time_on_summer_time_days() -> None:
    spring_day = (at("2024-03-31T00:00+01:00"), at("2024-04-01T00:00+02:00"))
    autumn_day = (at("2024-10-27T00:00+02:00"), at("2024-10-28T00:00+01:00"))
    assert support_time(TWENTY_FOUR_SEVEN, *spring_day) == 23 * H
    assert support_time(TWENTY_FOUR_SEVEN, *autumn_day) == 25 * H
    # A calendar of full-day windows agrees with 24x7 on those days.
    all_day = weekly("Europe/Prague", ("00:00", "24:00"), days=range(7))
    assert support_time(all_day, *spring_day) == 23 * H
    assert support_time(all_day, *autumn_day) == 25 * H


def test_window_over_the_skipped_hour_is_an_hour_short() -> None:
    # 01:00-04:00 on 31 Mar 2024 in Prague: 02:00-03:00 never happens, so 2 h of support.
    night = weekly("Europe/Prague", ("01:00", "04:00"), days=range(7))
    day = (at("2024-03-31T00:00+01:00"), at("2024-04-01T00:00+02:00"))
    assert support_time(night, *day) == 2 * H


def test_window_boundary_inside_the_skipped_hour_starts_at_the_change() -> None:
    # 02:30 does not exist on 31 Mar 2024 in Prague; the clock jumps 02:00 -> 03:00 CEST.
    odd = weekly("Europe/Prague", ("02:30", "05:00"), days=range(7))
    assert clock_starts(odd, at("2024-03-31T00:00+01:00")) == at("2024-03-31T03:00+02:00")
    assert support_time(odd, at("2024-03-31T00:00+01:00"), at("2024-04-01T00:00+02:00")) == 2 * H


def test_window_over_the_repeated_hour_counts_it_twice() -> None:
    # 01:00-04:00 on 27 Oct 2024: 02:00-03:00 happens twice, so 4 h of support.
    night = weekly("Europe/Prague", ("01:00", "04:00"), days=range(7))
    day = (at("2024-10-27T00:00+02:00"), at("2024-10-28T00:00+01:00"))
    assert support_time(night, *day) == 4 * H
    # A window starting at the ambiguous 02:30 starts at its first occurrence (CEST) ...
    late = weekly("Europe/Prague", ("02:30", "05:00"), days=range(7))
    assert clock_starts(late, at("2024-10-27T00:00+02:00")) == at("2024-10-27T02:30+02:00")
    # ... and one ending there ends at its second (CET).
    early = weekly("Europe/Prague", ("00:00", "02:30"), days=range(7))
    assert support_time(early, *day) == timedelta(hours=3, minutes=30)


def test_long_targets_cross_years() -> None:
    # 2200 support hours at 8 h a day, 5 days a week = 275 working days = 55 weeks: the
    # Friday of the 55th week from Monday 1 Jan 2024 (no holiday list on this calendar).
    start = at("2024-01-01T08:30+01:00")
    due = add_support_time(OFFICE, start, 2200 * H)
    assert due == at("2025-01-17T16:30+01:00")
    assert support_time(OFFICE, start, due) == 2200 * H


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no offset"):
        clock_starts(OFFICE, datetime(2024, 6, 11, 10))


def test_calendar_without_windows_is_refused() -> None:
    empty = Calendar(zone="UTC")
    moment = datetime(2024, 6, 11, tzinfo=UTC)
    with pytest.raises(ValueError, match="no support windows"):
        add_support_time(empty, moment, H)
    with pytest.raises(ValueError, match="no support windows"):
        clock_starts(empty, moment)


def test_day_length() -> None:
    assert OFFICE.day_length() == 8 * H
    assert LUNCH.day_length() == 7 * H
    assert TWENTY_FOUR_SEVEN.day_length() == 24 * H
    uneven = Calendar(windows=((Window(0, 60),), (Window(0, 120),), (), (), (), (), ()))
    assert uneven.day_length() is None


def test_beyond_the_calendar_range_is_an_overflow() -> None:
    with pytest.raises(OverflowError, match="beyond the range"):
        add_support_time(OFFICE, at("9999-12-31T10:00+00:00"), 10 * H)
