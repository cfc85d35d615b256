"""Support-hours calendar arithmetic, exactly as CONTRACTS section 1 defines it.

Pure functions of their arguments: no clock, no I/O. A `Calendar` is an IANA zone with weekly
wall-clock windows and excluded local dates, or 24x7. Support time is real elapsed time inside
the half-open windows, so summer-time days count what the wall clock really gave.

Cost does not grow with the length of a target: each calendar keeps, per local year, the
cumulative support time at the start of every day (built once, 366 small steps), so adding N
hours is a bisection over that table plus a walk through one day's windows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY = timedelta(days=1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_US_PER_MINUTE = 60_000_000
_US_PER_DAY = 86_400_000_000
MINUTES_PER_DAY = 1440


@dataclass(frozen=True, slots=True)
class Window:
    """One half-open window `[start, end)` in minutes after local midnight (end may be 1440)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Year:
    """Support microseconds at the local start of each day of one year (len = days + 1)."""

    first: date
    cum: tuple[int, ...]


@dataclass(frozen=True)
class Calendar:
    """When support runs: weekly windows in a zone minus holidays, or around the clock.

    `windows[0]` is Monday. Holidays are the `holidays` package's list for `holiday_country`,
    plus `extra_holidays` (a company day off), minus `not_holidays` (a holiday moved by decree).
    """

    zone: str = "UTC"
    windows: tuple[tuple[Window, ...], ...] = ((),) * 7
    holiday_country: str | None = None
    extra_holidays: frozenset[date] = frozenset()
    not_holidays: frozenset[date] = frozenset()
    always: bool = False
    # Memo of per-year tables; a cache, not state: results depend only on the fields above.
    _years: dict[int, _Year] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.zone)

    def is_holiday(self, day: date) -> bool:
        if day in self.extra_holidays:
            return True
        if day in self.not_holidays or self.holiday_country is None:
            return False
        return day in _country_holidays(self.holiday_country, day.year)

    def day_length(self) -> timedelta | None:
        """The nominal length of one support day (for "N days" targets); None if days differ."""
        if self.always:
            return timedelta(hours=24)
        lengths = {sum(w.end - w.start for w in day) for day in self.windows if day}
        if len(lengths) != 1:
            return None
        return timedelta(minutes=lengths.pop())


TWENTY_FOUR_SEVEN = Calendar(always=True)


@cache
def _zone(key: str) -> ZoneInfo:
    return ZoneInfo(key)


@cache
def _country_holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays_lib.country_holidays(country, years=year).keys())


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _wall_to_us(zone: ZoneInfo, day: date, minute: int, *, late: bool) -> int:
    """The instant the wall clock of `zone` shows `minute` on `day`, as epoch microseconds.

    An ambiguous wall time (the repeated hour in autumn) maps to its earlier instant for a
    window's start and its later one for a window's end (`late`), so a window covering the
    repeated hour counts it twice, as real elapsed time does. A wall time that never happens
    (the skipped hour in spring) maps to the transition itself: the first instant the clock
    shows a later time.
    """
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    early = naive.replace(tzinfo=zone, fold=0)
    late_dt = naive.replace(tzinfo=zone, fold=1)
    first, second = _to_us(early), _to_us(late_dt)
    if early.utcoffset() == late_dt.utcoffset():
        return first
    lo, hi = min(first, second), max(first, second)
    if _from_us(lo).astimezone(zone).replace(tzinfo=None) == naive:
        return hi if late else lo  # ambiguous: the wall time happens twice
    # Skipped wall time: bisect for the transition (offsets change on whole seconds).
    lo_s, hi_s = lo // 1_000_000, -(-hi // 1_000_000)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _from_us(mid * 1_000_000).astimezone(zone).replace(tzinfo=None) >= naive:
            hi_s = mid
        else:
            lo_s = mid
    return hi_s * 1_000_000


def _steady_offset(tz: ZoneInfo, day: date) -> int | None:
    """The zone's UTC offset in microseconds when it holds through the whole day, else None.

    A day whose two midnights are unambiguous and share one offset has no change in between
    (no zone changes its clock twice in one day), so its windows convert by plain arithmetic.
    """
    midnight = datetime(day.year, day.month, day.day)
    following = midnight + _DAY
    offset = tz.utcoffset(midnight)
    for moment in (midnight.replace(fold=1), following, following.replace(fold=1)):
        if tz.utcoffset(moment) != offset:
            return None
    assert offset is not None  # ZoneInfo always answers
    return offset // _US


def _day_intervals(cal: Calendar, day: date) -> list[tuple[int, int]]:
    """The day's support intervals as epoch microseconds, in order."""
    windows = cal.windows[day.weekday()]
    if not windows or cal.is_holiday(day):
        return []
    tz = cal.tz
    offset = _steady_offset(tz, day)
    if offset is not None:
        base = (day.toordinal() - _EPOCH_ORDINAL) * _US_PER_DAY - offset
        return [(base + w.start * _US_PER_MINUTE, base + w.end * _US_PER_MINUTE) for w in windows]
    spans = []
    for w in windows:
        start = _wall_to_us(tz, day, w.start, late=False)
        end = _wall_to_us(tz, day, w.end, late=True)
        if end > start:
            spans.append((start, end))
    return spans


def _year(cal: Calendar, year: int) -> _Year:
    table = cal._years.get(year)
    if table is None:
        if not MINYEAR < year < MAXYEAR:
            raise OverflowError(f"year {year} is beyond the range of support calendars")
        first = date(year, 1, 1)
        days = (date(year + 1, 1, 1) - first).days
        cum = [0]
        for offset in range(days):
            spans = _day_intervals(cal, first + timedelta(days=offset))
            cum.append(cum[-1] + sum(end - start for start, end in spans))
        table = cal._years[year] = _Year(first, tuple(cum))
    return table


def _local_day(cal: Calendar, us: int) -> date:
    return _from_us(us).astimezone(cal.tz).date()


def _before_in_day(cal: Calendar, day: date, us: int) -> int:
    """Support microseconds on `day` before the instant `us`."""
    return sum(max(0, min(end, us) - start) for start, end in _day_intervals(cal, day))


def _position(cal: Calendar, us: int) -> tuple[int, int]:
    """(local year, support microseconds from that year's local start to `us`)."""
    day = _local_day(cal, us)
    table = _year(cal, day.year)
    return day.year, table.cum[(day - table.first).days] + _before_in_day(cal, day, us)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no offset")


def support_time(cal: Calendar, start: datetime, end: datetime) -> timedelta:
    """Length of the overlap of `[start, end)` with the calendar's windows (0 if end <= start)."""
    _require_aware(start)
    _require_aware(end)
    if end <= start:
        return timedelta(0)
    if cal.always:
        return end - start
    year_a, pos_a = _position(cal, _to_us(start))
    year_b, pos_b = _position(cal, _to_us(end))
    total = pos_b - pos_a + sum(_year(cal, y).cum[-1] for y in range(year_a, year_b))
    return timedelta(microseconds=total)


def add_support_time(cal: Calendar, start: datetime, amount: timedelta) -> datetime:
    """The earliest instant `t` at which the support time in `[start, t)` reaches `amount`.

    When the last hour completes exactly at a window's end, that end is the answer.
    """
    _require_aware(start)
    if amount <= timedelta(0):
        return start.astimezone(UTC)
    if cal.always:
        return start.astimezone(UTC) + amount
    if not any(cal.windows):
        raise ValueError("calendar has no support windows")
    year, pos = _position(cal, _to_us(start))
    target = pos + amount // _US
    table = _year(cal, year)
    while target > table.cum[-1]:
        target -= table.cum[-1]
        year += 1
        table = _year(cal, year)
    index = bisect.bisect_left(table.cum, target) - 1
    need = target - table.cum[index]
    for span_start, span_end in _day_intervals(cal, table.first + timedelta(days=index)):
        if need <= span_end - span_start:
            return _from_us(span_start + need)
        need -= span_end - span_start
    raise AssertionError("unreachable: the table says this day holds the target")


def clock_starts(cal: Calendar, received: datetime) -> datetime:
    """The earliest instant at or after `received` that lies inside a window."""
    _require_aware(received)
    if cal.always:
        return received.astimezone(UTC)
    if not any(cal.windows):
        raise ValueError("calendar has no support windows")
    us = _to_us(received)
    day = _local_day(cal, us)
    for start, end in _day_intervals(cal, day):
        if end > us:
            return _from_us(max(start, us))
    year = day.year
    table = _year(cal, year)
    index = (day - table.first).days + 1
    while True:
        # The first later day whose cumulative support grows is the next day with a window.
        later = bisect.bisect_right(table.cum, table.cum[index])
        if later < len(table.cum):
            next_day = table.first + timedelta(days=later - 1)
            return _from_us(_day_intervals(cal, next_day)[0][0])
        year += 1
        table, index = _year(cal, year), 0
