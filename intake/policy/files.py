"""Reading a policy TOML file (a preset shipped in `intake/policy/presets/`, or a team's own file).

The file is validated completely here, and a bad one is refused with one line naming the
file, the key and what is wrong. Everything after loading works on the frozen model of
`intake.policy.model`.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from intake.errors import ConfigError
from intake.messages import ChannelKind
from intake.policy.calendar import TWENTY_FOUR_SEVEN, Calendar, Window
from intake.policy.model import (
    Plan,
    Policy,
    PriorityRules,
    PriorityTargets,
    Target,
    TargetKind,
)

PRESETS = ("scoro", "circularo-saas", "scalr", "four-tier", "circularo-onprem")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALWAYS = "24x7"  # the calendar of a plan that names none
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_days(spec: str) -> tuple[int, ...]:
    """ "mon-fri", "sat,sun", "mon-sun" or "daily" -> weekday numbers (Monday = 0)."""
    spec = spec.strip().lower()
    if spec == "daily":
        return tuple(range(7))
    days: list[int] = []
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(f"{spec!r} is not a day range like 'mon-fri' or 'sat,sun'")
        lo, hi = _DAYS.index(first), _DAYS.index(last or first)
        if hi < lo:
            raise ValueError(f"day range {part.strip()!r} runs backwards")
        days.extend(range(lo, hi + 1))
    return tuple(days)


def _minutes(clock: str) -> int:
    match = _CLOCK.match(clock)
    if not match or (match[1] == "24" and match[2] != "00"):
        raise ValueError(f"{clock!r} is not a time like '08:30' (00:00 to 24:00)")
    return int(match[1]) * 60 + int(match[2])


class WindowSpec(_Strict):
    days: str
    start: str
    end: str

    @model_validator(mode="after")
    def _check(self) -> Self:
        _parse_days(self.days)
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self


def _check_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {zone!r} (use an IANA name like 'Europe/Prague')"
        ) from None
    return zone


class CalendarSpec(_Strict):
    zone: str = "UTC"
    regional: bool = False  # the organization's region zone replaces `zone`
    always: bool = False  # 24x7
    windows: list[WindowSpec] = []
    holidays: str | None = None  # a country code of the `holidays` package
    extra_holidays: list[date] = []
    not_holidays: list[date] = []

    _zone = field_validator("zone")(_check_zone)

    @field_validator("holidays")
    @classmethod
    def _country(cls, country: str | None) -> str | None:
        if country is not None and country not in holidays_lib.list_supported_countries():
            raise ValueError(f"no public holiday list for country {country!r}")
        return country

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.always and self.windows:
            raise ValueError("a 24x7 calendar ('always = true') takes no windows")
        if not self.always and not self.windows:
            raise ValueError("a calendar needs windows, or 'always = true' for 24x7")
        by_day = _weekly(self.windows)
        for day, spans in enumerate(by_day):
            for before, after in itertools.pairwise(spans):
                if after.start < before.end:
                    raise ValueError(f"windows overlap on {_DAYS[day]}")
        return self

    def build(self) -> Calendar:
        return Calendar(
            zone=self.zone,
            windows=_weekly(self.windows),
            holiday_country=self.holidays,
            extra_holidays=frozenset(self.extra_holidays),
            not_holidays=frozenset(self.not_holidays),
            always=self.always,
        )


def _weekly(specs: list[WindowSpec]) -> tuple[tuple[Window, ...], ...]:
    week: list[list[Window]] = [[] for _ in range(7)]
    for spec in specs:
        for day in _parse_days(spec.days):
            week[day].append(Window(_minutes(spec.start), _minutes(spec.end)))
    return tuple(tuple(sorted(day, key=lambda w: w.start)) for day in week)


Amount = Annotated[float, Field(gt=0, le=100_000)]


class TargetSpec(_Strict):
    hours: Amount | None = None
    days: Amount | None = None
    calendar_hours: Amount | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        given = [k for k in ("hours", "days", "calendar_hours") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hours, days, calendar_hours")
        return self

    def build(self) -> Target:
        for kind in TargetKind:
            value = getattr(self, kind.value)
            if value is not None:
                return Target(kind, value)
        raise AssertionError("validated to hold one")


class PriorityTargetSpec(_Strict):
    response: TargetSpec | None = None
    resolution: TargetSpec | None = None
    calendar: str | None = None
    on_call: bool = False


class PlanSpec(_Strict):
    response_calendar: str | None = None  # none: 24x7, and `intake policy check` warns
    resolution_calendar: str | None = None
    channels: list[ChannelKind] = list(ChannelKind)
    nominated_channels: list[ChannelKind] = []
    designated_required: bool = False
    designated_limit: Annotated[int, Field(ge=1)] | None = None
    quota: Annotated[int, Field(ge=1)] | None = None
    targets: dict[str, PriorityTargetSpec]


class PrioritySpec(_Strict):
    order: Annotated[list[str], Field(min_length=1)]
    default: str
    by_channel: dict[ChannelKind, str] = {}
    urgent: str | None = None
    subject_prefixes: dict[str, str] = {}
    by_severity: dict[Annotated[int, Field(ge=1, le=4)], str] = {}
    by_category: dict[str, str] = {}
    suggest_on: list[ChannelKind] = []  # where the text's reading only suggests a priority
    category_sets: list[str] = []  # categories that set the priority there all the same
    names: dict[str, str] = {}  # how the policy's own text names each priority
    show_severity: bool = True  # the severity line in acknowledgements and alerts

    @model_validator(mode="after")
    def _known(self) -> Self:
        if len(set(self.order)) != len(self.order):
            raise ValueError("order names a priority twice")
        named = [("default", self.default)]
        if self.urgent is not None:
            named.append(("urgent", self.urgent))
        for table in ("by_channel", "subject_prefixes", "by_severity", "by_category"):
            named += [(f"{table}.{k}", v) for k, v in getattr(self, table).items()]
        for key, value in named:
            if value not in self.order:
                raise ValueError(f"{key} names unknown priority {value!r}")
        for key in self.names:
            if key not in self.order:
                raise ValueError(f"names.{key}: unknown priority {key!r}")
        return self


class PolicySpec(_Strict):
    name: str
    title: str = ""
    zone: str = "UTC"
    support_period_months: Annotated[int, Field(ge=1)] | None = None
    unidentified_sla: bool = True
    priorities: PrioritySpec
    calendars: Annotated[dict[str, CalendarSpec], Field(min_length=1)]
    plans: Annotated[dict[str, PlanSpec], Field(min_length=1)]

    _zone = field_validator("zone")(_check_zone)

    @model_validator(mode="after")
    def _references(self) -> Self:
        for plan_name, plan in self.plans.items():
            for key in ("response_calendar", "resolution_calendar"):
                value = getattr(plan, key)
                if value is not None and value not in self.calendars:
                    raise _LocatedError(f"plans.{plan_name}.{key}", f"unknown calendar {value!r}")
            for priority, targets in plan.targets.items():
                where = f"plans.{plan_name}.targets.{priority}"
                if priority not in self.priorities.order:
                    raise _LocatedError(where, "target for an unknown priority")
                self._check_targets(where, plan, targets)
            for priority in self.priorities.order:
                if priority not in plan.targets:
                    raise _LocatedError(
                        f"plans.{plan_name}.targets", f"no entry for priority {priority!r}"
                    )
        return self

    def _check_targets(self, where: str, plan: PlanSpec, targets: PriorityTargetSpec) -> None:
        if targets.calendar is not None and targets.calendar not in self.calendars:
            raise _LocatedError(f"{where}.calendar", f"unknown calendar {targets.calendar!r}")
        pairs = (
            ("response", plan.response_calendar),
            ("resolution", plan.resolution_calendar or plan.response_calendar),
        )
        for what, default_cal in pairs:
            target = getattr(targets, what)
            name = targets.calendar or default_cal
            if target is None or target.days is None or name is None:
                continue
            cal = self.calendars[name].build()
            if cal.day_length() is None:
                raise _LocatedError(
                    f"{where}.{what}.days",
                    "a target in days needs a calendar whose support days are all equal",
                )

    def build(self, source: str) -> Policy:
        calendars = {name: spec.build() for name, spec in self.calendars.items()}
        if any(plan.response_calendar is None for plan in self.plans.values()):
            calendars.setdefault(ALWAYS, TWENTY_FOUR_SEVEN)
        rules = self.priorities
        return Policy(
            name=self.name,
            title=self.title,
            source=source,
            zone=self.zone,
            calendars=calendars,
            plans={name: _plan(name, spec) for name, spec in self.plans.items()},
            priorities=PriorityRules(
                order=tuple(rules.order),
                default=rules.default,
                by_channel=dict(rules.by_channel),
                urgent=rules.urgent,
                subject_prefixes={k.lower(): v for k, v in rules.subject_prefixes.items()},
                by_severity=dict(rules.by_severity),
                by_category=dict(rules.by_category),
                suggest_on=frozenset(rules.suggest_on),
                category_sets=frozenset(rules.category_sets),
                names=dict(rules.names),
                show_severity=rules.show_severity,
            ),
            support_period_months=self.support_period_months,
            unidentified_sla=self.unidentified_sla,
            regional_calendars=frozenset(n for n, c in self.calendars.items() if c.regional),
        )


def _plan(name: str, spec: PlanSpec) -> Plan:
    response = spec.response_calendar or ALWAYS
    return Plan(
        name=name,
        response_calendar=response,
        resolution_calendar=spec.resolution_calendar or response,
        has_calendar=spec.response_calendar is not None,
        channels=frozenset(spec.channels),
        nominated_channels=frozenset(spec.nominated_channels),
        designated_required=spec.designated_required,
        designated_limit=spec.designated_limit,
        quota=spec.quota,
        targets={
            priority: PriorityTargets(
                response=t.response.build() if t.response else None,
                resolution=t.resolution.build() if t.resolution else None,
                calendar=t.calendar,
                on_call=t.on_call,
            )
            for priority, t in spec.targets.items()
        },
    )


class _LocatedError(ValueError):
    """A cross-reference error that knows its full key (pydantic would only say the root)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")


def _first_error(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    problem = error["msg"].removeprefix("Value error, ")
    located = re.match(r"^([\w.\-]+): (.*)$", problem)
    if located and "." in located[1] and key == "(top level)":
        return located[1], located[2]
    return key, problem


def parse_policy(data: dict[str, Any], source: str) -> Policy:
    """Validate a policy already read from TOML; raise ConfigError naming source and key."""
    try:
        return PolicySpec.model_validate(data).build(source)
    except ValidationError as exc:
        key, problem = _first_error(exc)
        raise ConfigError(key, problem, source=source) from None


def read_policy_file(path: Path) -> Policy:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("policy", f"cannot read: {exc.strerror}", source=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("(syntax)", str(exc), source=str(path)) from None
    return parse_policy(data, str(path))


@cache
def load_policy(name_or_path: str) -> Policy:
    """A preset by name, or a policy file by path. Cached: policies are immutable."""
    if name_or_path in PRESETS:
        preset = resources.files("intake.policy.presets").joinpath(f"{name_or_path}.toml")
        data = tomllib.loads(preset.read_text(encoding="utf-8"))
        return parse_policy(data, f"preset {name_or_path}")
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        known = ", ".join(PRESETS)
        raise ConfigError("policy", f"no preset named {name_or_path!r} (presets: {known})")
    return read_policy_file(path)
