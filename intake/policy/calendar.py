"""Support-hours calendar arithmetic, exactly as CONTRACTS section 1 defines it.

Pure functions of their arguments: no clock, no I/O. A `Calendar` is an IANA zone with weekly
wall-clock windows and excluded local dates, or 24x7. Support time is real elapsed time inside
the half-open windows, so summer-time days count what the wall clock really gave.

Cost does not grow with the length of a target: each calendar keeps, per local year, its
support spans as flat sorted arrays of epoch microseconds with the running total of support
(built once, 366 small steps), so every question is a bisection over plain integers.
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
_US_PER_YEAR = 31_556_952_000_000  # the mean Gregorian year, 365.2425 days
MINUTES_PER_DAY = 1440


@dataclass(frozen=True, slots=True)
class Window:
    """One half-open window `[start, end)` in minutes after local midnight (end may be 1440)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Year:
    """One local year of a calendar, in epoch microseconds: the support spans
    `[starts[i], ends[i])` in order, and `done[i]`, the support from `begins` to `ends[i]`."""

    year: int
    begins: int  # local midnight starting 1 January
    until: int  # local midnight starting the next 1 January
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    done: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.done[-1] if self.done else 0


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


def to_us(moment: datetime) -> int:
    """An aware instant as epoch microseconds (exact; plain integer arithmetic)."""
    since = moment - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_us(us: int) -> datetime:
    """Epoch microseconds as an aware UTC datetime (OverflowError beyond years 1-9999)."""
    return _EPOCH + timedelta(0, 0, us)


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
    first, second = to_us(early), to_us(late_dt)
    if early.utcoffset() == late_dt.utcoffset():
        return first
    lo, hi = min(first, second), max(first, second)
    if from_us(lo).astimezone(zone).replace(tzinfo=None) == naive:
        return hi if late else lo  # ambiguous: the wall time happens twice
    # Skipped wall time: bisect for the transition (offsets change on whole seconds).
    lo_s, hi_s = lo // 1_000_000, -(-hi // 1_000_000)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if from_us(mid * 1_000_000).astimezone(zone).replace(tzinfo=None) >= naive:
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


def _compute_spans(cal: Calendar, day: date) -> tuple[tuple[int, int], ...]:
    """The day's support spans as epoch microseconds, in order (see `_year` for the cache)."""
    windows = cal.windows[day.weekday()]
    if not windows or cal.is_holiday(day):
        return ()
    tz = cal.tz
    offset = _steady_offset(tz, day)
    if offset is not None:
        base = (day.toordinal() - _EPOCH_ORDINAL) * _US_PER_DAY - offset
        return tuple(
            (base + w.start * _US_PER_MINUTE, base + w.end * _US_PER_MINUTE) for w in windows
        )
    spans = []
    for w in windows:
        start = _wall_to_us(tz, day, w.start, late=False)
        end = _wall_to_us(tz, day, w.end, late=True)
        if end > start:
            spans.append((start, end))
    return tuple(spans)


def _year(cal: Calendar, year: int) -> _Year:
    table = cal._years.get(year)
    if table is None:
        if not MINYEAR < year < MAXYEAR:
            raise OverflowError(f"year {year} is beyond the range of support calendars")
        first, following = date(year, 1, 1), date(year + 1, 1, 1)
        starts: list[int] = []
        ends: list[int] = []
        done: list[int] = []
        for offset in range((following - first).days):
            for start, end in _compute_spans(cal, first + timedelta(days=offset)):
                done.append((done[-1] if done else 0) + end - start)
                starts.append(start)
                ends.append(end)
        begins = _wall_to_us(cal.tz, first, 0, late=False)
        until = _wall_to_us(cal.tz, following, 0, late=False)
        table = _Year(year, begins, until, tuple(starts), tuple(ends), tuple(done))
        cal._years[year] = table
    return table


def _table_at(cal: Calendar, us: int) -> _Year:
    """The table of the local year holding the instant `us`."""
    year = 1970 + us // _US_PER_YEAR  # within days of the truth; OverflowError beyond 1-9999
    table = _year(cal, year)
    if us < table.begins:
        return _year(cal, year - 1)
    if us >= table.until:
        return _year(cal, year + 1)
    return table


def _support_before(table: _Year, us: int) -> int:
    """Support from the start of the table's year to the instant `us` inside that year."""
    i = bisect.bisect_right(table.starts, us) - 1
    if i < 0:
        return 0
    return table.done[i] - max(0, table.ends[i] - us)


def require_aware(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no offset")


def support_time(cal: Calendar, start: datetime, end: datetime) -> timedelta:
    """Length of the overlap of `[start, end)` with the calendar's windows (0 if end <= start)."""
    require_aware(start)
    require_aware(end)
    if end <= start:
        return timedelta(0)
    if cal.always:
        return end - start
    first_us, last_us = to_us(start), to_us(end)
    first, last = _table_at(cal, first_us), _table_at(cal, last_us)
    between = sum(_year(cal, y).total for y in range(first.year, last.year))
    total = between + _support_before(last, last_us) - _support_before(first, first_us)
    return timedelta(microseconds=total)


def add_support_time(cal: Calendar, start: datetime, amount: timedelta) -> datetime:
    """The earliest instant `t` at which the support time in `[start, t)` reaches `amount`.

    When the last hour completes exactly at a window's end, that end is the answer.
    """
    require_aware(start)
    if amount <= timedelta(0):
        return start.astimezone(UTC)
    if cal.always:
        return start.astimezone(UTC) + amount
    return from_us(add_support_us(cal, to_us(start), amount // _US))


def add_support_us(cal: Calendar, start: int, amount: int) -> int:
    """`add_support_time` on epoch microseconds (`amount` too)."""
    if amount <= 0:
        return start
    if cal.always:
        return start + amount
    table = _table_at(cal, start)
    target = _support_before(table, start) + amount
    while target > table.total:
        _require_windows(cal)  # else no year ever reaches the target
        target -= table.total
        table = _year(cal, table.year + 1)
    # The first span whose running total reaches the target holds the deadline.
    i = bisect.bisect_left(table.done, target)
    return table.ends[i] - (table.done[i] - target)


def clock_starts(cal: Calendar, received: datetime) -> datetime:
    """The earliest instant at or after `received` that lies inside a window."""
    require_aware(received)
    if cal.always:
        return received.astimezone(UTC)
    return from_us(clock_starts_us(cal, to_us(received)))


def clock_starts_us(cal: Calendar, received: int) -> int:
    """`clock_starts` on epoch microseconds."""
    if cal.always:
        return received
    table = _table_at(cal, received)
    i = bisect.bisect_right(table.ends, received)  # the first span that ends after `received`
    while i == len(table.ends):
        _require_windows(cal)
        table, i = _year(cal, table.year + 1), 0
    return max(table.starts[i], received)


def _require_windows(cal: Calendar) -> None:
    if not any(cal.windows):
        raise ValueError("calendar has no support windows")
