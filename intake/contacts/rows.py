"""The contacts file's records, and how one row or table becomes them (for `contacts_file`).

Format-independent: the CSV and TOML readers both hand each row or table over as a mapping
of key to raw value, and this module converts, merges and cross-checks it. Errors are
ValueErrors without a location; `FieldError` also names the key, so the reader can point at
the key's own line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from intake.contacts.values import (
    check_zone,
    normalize_domain,
    normalize_email,
    normalize_phone,
    normalize_telegram,
    show,
)
from intake.policy.files import PRESETS, load_policy

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

T = TypeVar("T")


class ContactRole(StrEnum):
    NOMINATED = "nominated"
    DESIGNATED = "designated"
    USER = "user"


@dataclass(frozen=True, slots=True)
class ContactRecord:
    name: str  # may be empty: an address alone identifies a sender
    email: str | None  # lower-cased addr-spec, domain in IDNA form
    phone: str | None  # E.164
    telegram: str | None  # numeric user id, or username without "@", lower-cased
    role: ContactRole
    line: int  # CSV: physical line; TOML: its [[organizations.contacts]] header, 0 if unknown


@dataclass(frozen=True, slots=True)
class OrganizationRecord:
    name: str
    plan: str
    support_start: date | None
    domains: tuple[str, ...]  # lower-case ASCII (IDNA), no leading "@"
    policy: str | None  # preset name or policy file path; overrides [policy] name
    region: str | None  # IANA time zone
    contacts: tuple[ContactRecord, ...]
    line: int  # CSV: its first row; TOML: its [[organizations]] header, 0 if unknown


class FieldError(ValueError):
    """A bad value that knows its key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(problem)


_WANTED: dict[type, str] = {str: "text", int: "a number", date: "a date", list: "a list"}


def _kind(value: object) -> str:
    kinds = {bool: "true/false", int: "a number", float: "a number", list: "a list"}
    return kinds.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


def _value(
    values: Mapping[str, object],
    key: str,
    convert: Callable[[Any], T],
    accepts: tuple[type, ...] = (str,),
) -> T | None:
    """values[key] converted; None when absent or empty; a bad one raises FieldError(key)."""
    raw = values.get(key)
    if isinstance(raw, str):
        raw = raw.strip()
        # Names end up in templates and mail headers, where a line break can inject text.
        if _CONTROL.search(raw):
            raise FieldError(key, f"{key} {show(raw)} holds a line break or control character")
    if raw is None or raw == "" or raw == []:
        return None
    if isinstance(raw, bool) or not isinstance(raw, accepts):
        wanted = " or ".join(_WANTED.get(kind, kind.__name__) for kind in accepts)
        raise FieldError(key, f"{key} must be {wanted}, not {_kind(raw)}")
    try:
        return convert(raw)
    except ValueError as exc:
        raise FieldError(key, str(exc)) from None


def _text(raw: str) -> str:
    return raw


def organization_name(values: Mapping[str, object], key: str) -> str:
    """The organization's name under `key` ("organization" in CSV, "name" in TOML)."""
    name = _value(values, key, _text)
    if not name:
        raise FieldError(key, "the organization has no name")
    return name


def _support_start(raw: str | date) -> date:
    if isinstance(raw, datetime):  # a TOML date-time is a date subclass, with a time
        raise ValueError(f"support_start {raw.isoformat()!r} must be a date without a time")
    if isinstance(raw, date):
        return raw
    # fromisoformat alone would also take "20240301" and week dates; the contract says days.
    if not _ISO_DATE.match(raw):
        raise ValueError(f"support_start {show(raw)} is not a date like '2024-03-01'")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"support_start {show(raw)} is not a real date") from None


def _domains(raw: str | list[object]) -> tuple[str, ...]:
    items = raw.split() if isinstance(raw, str) else raw
    domains: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"domains must be a list of text, not of {_kind(item)}")
        domain = _domain(item, listed=not isinstance(raw, str))
        if domain not in domains:
            domains.append(domain)
    return tuple(domains)


def _domain(item: str, *, listed: bool) -> str:
    try:
        return normalize_domain(item)
    except ValueError as exc:
        if not any(mark in item for mark in ",;"):
            raise
        hint = (
            'domains is a list: ["a.example", "b.example"]'
            if listed
            else "domains are separated by spaces, not commas: 'a.example b.example'"
        )
        raise ValueError(f"{exc} ({hint})") from None


def _policy(raw: str) -> str:
    # Preset names are lower-case; a spreadsheet's "Scalr" means the preset, not a file.
    return raw.lower() if raw.lower() in PRESETS else raw


def _role(raw: str) -> ContactRole:
    try:
        return ContactRole(raw.lower())
    except ValueError:
        choices = ", ".join(ContactRole)
        raise ValueError(f"role {show(raw)} is not one of {choices}") from None


def org_fields(values: Mapping[str, object]) -> dict[str, object]:
    """The organization's own fields that are given (non-empty), normalized."""
    given = {
        "plan": _value(values, "plan", _text),
        "support_start": _value(values, "support_start", _support_start, (str, date)),
        "domains": _value(values, "domains", _domains, (str, list)),
        "policy": _value(values, "policy", _policy),
        "region": _value(values, "region", check_zone),
    }
    return {key: value for key, value in given.items() if value is not None}


def contact(
    values: Mapping[str, object], line: int, default_region: str | None
) -> ContactRecord | None:
    """The contact a row or table describes; None when it names nobody (organization only)."""
    name = _value(values, "name", _text) or ""
    email = _value(values, "email", normalize_email)
    phone = _value(values, "phone", lambda raw: normalize_phone(raw, default_region))
    telegram = _value(values, "telegram", normalize_telegram, (str, int))
    role = _value(values, "role", _role)
    if email or phone or telegram:
        return ContactRecord(name, email, phone, telegram, role or ContactRole.USER, line)
    if name:
        raise FieldError("name", f"contact {show(name)} needs an email, phone or telegram")
    if role:
        raise FieldError("role", "role is given but the row names no contact")
    return None


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return show(" ".join(value))
    return show(value.isoformat() if isinstance(value, date) else value)


def _same(key: str, earlier: object, value: object) -> bool:
    if key == "domains" and isinstance(earlier, tuple) and isinstance(value, tuple):
        return set(earlier) == set(value)  # the same domains in another order agree
    return earlier == value


@dataclass(slots=True)
class Draft:
    """An organization while its rows are read: each CSV row may add to it."""

    name: str
    line: int
    given: dict[str, tuple[object, int]] = field(default_factory=dict)  # key: value, its line
    contacts: list[ContactRecord] = field(default_factory=list)

    def get(self, key: str) -> Any:
        return self.given[key][0] if key in self.given else None

    def merge(self, given: Mapping[str, object], line: int) -> None:
        """Take the fields a row gives; one that differs from an earlier row's is an error."""
        for key, value in given.items():
            earlier, earlier_line = self.given.setdefault(key, (value, line))
            if not _same(key, earlier, value):
                raise FieldError(
                    key,
                    f"{key} {_shown(value)} differs from {_shown(earlier)} given for "
                    f"{show(self.name)} on line {earlier_line}",
                )
        plan, policy = self.get("plan"), self.get("policy")
        if plan and policy in PRESETS and plan not in load_policy(policy).plans:
            plans = ", ".join(load_policy(policy).plans)
            raise FieldError("plan", f"plan {show(plan)} is not a plan of {policy} ({plans})")

    def record(self) -> OrganizationRecord:
        if not self.get("plan"):
            raise FieldError("plan", f"organization {show(self.name)} has no plan")
        return OrganizationRecord(
            name=self.name,
            plan=self.get("plan"),
            support_start=self.get("support_start"),
            domains=self.get("domains") or (),
            policy=self.get("policy"),
            region=self.get("region"),
            contacts=tuple(self.contacts),
            line=self.line,
        )


class Contacts:
    """Every email, phone and Telegram seen in one file, to refuse a contact given twice."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], tuple[tuple[object, ...], int]] = {}

    def add(self, draft: Draft, new: ContactRecord) -> None:
        identity = (draft.name.casefold(), new.name, new.email, new.phone, new.telegram, new.role)
        given = {"email": new.email, "phone": new.phone, "telegram": new.telegram}
        keys = [(key, value) for key, value in given.items() if value]
        for key, value in keys:
            earlier = self._seen.get((key, value))
            if earlier and earlier[0] == identity:
                return  # the same contact repeated: importing it twice changes nothing
            if earlier:
                at = f"on line {earlier[1]}" if earlier[1] else "earlier in the file"
                problem = f"{key} {show(value)} is already {at}, with other details"
                raise FieldError(key, problem)
        for key_value in keys:
            self._seen[key_value] = (identity, new.line)
        draft.contacts.append(new)
