"""Reading the contacts file (CONTRACTS section 5): organizations and their contacts, CSV or TOML.

Pure apart from reading the file: text in, frozen records out. The first bad row is refused
with a one-line ContactsFileError naming the file and the line. Storing the records is the
importer's job, and so is checking a plan against a policy file given by path, or against the
configured default policy for an organization that names none.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intake.contacts.rows import (
    ContactRecord,
    ContactRole,
    Contacts,
    Draft,
    FieldError,
    OrganizationRecord,
    contact,
    org_fields,
    organization_name,
)
from intake.contacts.values import (
    check_region,
    normalize_email,
    normalize_phone,
    show,
    zone_country,
)
from intake.errors import ConfigError

__all__ = [
    "CSV_COLUMNS",
    "CSV_OPTIONAL_COLUMNS",
    "ContactRecord",
    "ContactRole",
    "ContactsFileError",
    "OrganizationRecord",
    "normalize_email",
    "normalize_phone",
    "parse_contacts_csv",
    "parse_contacts_toml",
    "read_contacts_file",
]

CSV_COLUMNS = (
    *("organization", "plan", "support_start", "domains"),
    *("name", "email", "phone", "telegram", "role"),
)
CSV_OPTIONAL_COLUMNS = ("policy", "region")
_ORG_KEYS = ("name", "plan", "support_start", "domains", "policy", "region", "contacts")
_CONTACT_KEYS = ("name", "email", "phone", "telegram", "role")

# Enough of TOML's layout to give each [[...]] table and key its line; tomllib gives none.
_TABLE_HEADER = re.compile(r"^\s*\[")
_ORG_HEADER = re.compile(r"^\s*\[\[\s*organizations\s*\]\]")
_CONTACT_HEADER = re.compile(r"^\s*\[\[\s*organizations\s*\.\s*contacts\s*\]\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")
_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class ContactsFileError(ConfigError):
    """One bad row or value of a contacts file: "FILE: line N: what is wrong"."""

    def __init__(self, source: str, line: int, problem: str, *, where: str | None = None) -> None:
        self.line = line  # 0 when the problem has no line (the whole file, or TOML unlocated)
        super().__init__(where or f"line {line}", problem, source=source)


@dataclass(frozen=True, slots=True)
class _Block:
    """Where a row or table is: its line, its keys' lines (TOML), a path when no line."""

    line: int
    keys: Mapping[str, int] = field(default_factory=dict)
    where: str | None = None


@contextmanager
def _located(source: str, block: _Block) -> Iterator[None]:
    """Give a ValueError raised inside the location it belongs to."""
    try:
        yield
    except ValueError as exc:
        key = exc.key if isinstance(exc, FieldError) else None
        line = block.keys.get(key, block.line) if key else block.line
        where = None if line else block.where
        raise ContactsFileError(source, line, str(exc), where=where) from None


def _default_region(region: str | None) -> str | None:
    try:
        return check_region(region) if region else None
    except ValueError as exc:  # the caller's setting, not the file's fault
        raise ConfigError("default_region", str(exc)) from None


def phone_region(draft: Draft, default_region: str | None) -> str | None:
    """Where a contact's phone is read without a country code: the organization's region
    (its time zone's country) when it has one, else the configured default region."""
    return zone_country(draft.get("region")) or default_region


def _records(
    source: str, drafts: Mapping[str, Draft], blocks: Mapping[str, _Block]
) -> tuple[OrganizationRecord, ...]:
    records: list[OrganizationRecord] = []
    for key, draft in drafts.items():
        with _located(source, blocks[key]):
            records.append(draft.record())
    return tuple(records)


def read_contacts_file(
    path: Path, *, default_region: str | None = None
) -> tuple[OrganizationRecord, ...]:
    """Read a .csv or .toml contacts file; the first bad row raises ContactsFileError."""
    source = str(path)
    parsers = {".csv": parse_contacts_csv, ".toml": parse_contacts_toml}
    parse = parsers.get(path.suffix.lower())
    if parse is None:
        problem = f"a contacts file is .csv or .toml, not {show(path.suffix or path.name)}"
        raise ContactsFileError(source, 0, problem, where="file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContactsFileError(source, 0, f"cannot read: {exc.strerror}", where="file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ContactsFileError(source, line, "not UTF-8 text (save it as UTF-8)") from None
    return parse(text, source, default_region=default_region)


def _csv_header(row: list[str]) -> tuple[str, ...]:
    names = tuple(cell.strip().lower() for cell in row)
    unknown = [name for name in names if name not in (*CSV_COLUMNS, *CSV_OPTIONAL_COLUMNS)]
    missing = [name for name in CSV_COLUMNS if name not in names]
    twice = sorted({name for name in names if names.count(name) > 1})
    problems = [
        f"{what}{'s' if len(found) > 1 else ''} {', '.join(map(show, found))}"
        for what, found in (("unknown column", unknown), ("missing column", missing))
        if found
    ] + [f"column {show(name)} appears twice" for name in twice]
    if problems:
        expected = ",".join(CSV_COLUMNS) + "[," + ",".join(CSV_OPTIONAL_COLUMNS) + "]"
        raise ValueError(f"header: {'; '.join(problems)} (expected {expected})")
    return names


def _csv_values(columns: tuple[str, ...], row: list[str]) -> dict[str, str]:
    extra = [cell for cell in row[len(columns) :] if cell.strip()]
    if extra:
        raise ValueError(f"the row has {len(row)} cells but the header names {len(columns)}")
    # A spreadsheet may drop a row's trailing empty cells; those are simply empty.
    return dict(zip(columns, row + [""] * (len(columns) - len(row)), strict=False))


def parse_contacts_csv(
    text: str, source: str, *, default_region: str | None = None
) -> tuple[OrganizationRecord, ...]:
    """One row per contact; rows naming the same organization add to it (CONTRACTS 5)."""
    region = _default_region(default_region)
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    columns: tuple[str, ...] | None = None
    drafts: dict[str, Draft] = {}
    blocks: dict[str, _Block] = {}
    seen = Contacts()
    next_line = 1
    try:
        for row in reader:
            # line_num counts physical lines read, so a row whose quoted cell holds
            # newlines is still placed on its first line.
            block, next_line = _Block(next_line), reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue  # blank lines, and spreadsheets' rows of bare commas
            with _located(source, block):
                if columns is None:
                    columns = _csv_header(row)
                    continue
                values = _csv_values(columns, row)
                name = organization_name(values, "organization")
                # Case-insensitive, like the TOML's uniqueness: "ACME" is Acme again.
                draft = drafts.setdefault(name.casefold(), Draft(name, block.line))
                blocks.setdefault(name.casefold(), block)
                draft.merge(org_fields(values), block.line)
                new = contact(values, block.line, phone_region(draft, region))
                if new:
                    seen.add(draft, new)
    except csv.Error as exc:
        raise ContactsFileError(source, next_line, f"not valid CSV: {exc}") from None
    if columns is None:
        raise ContactsFileError(source, 1, f"no header line (expected {','.join(CSV_COLUMNS)})")
    return _records(source, drafts, blocks)


def _toml_layout(text: str, tables: list[Any]) -> list[tuple[_Block, list[_Block]]]:
    """Each organization's block and its contacts' blocks, from the [[...]] header lines.

    When the headers do not match the data (inline tables, a header inside a multi-line
    string), every block falls back to line 0 and a path like "organization 2, contact 1".
    """
    found: list[tuple[_Block, list[_Block]]] = []
    keys: dict[str, int] | None = None  # the open block's key lines, filled as lines follow
    for number, line in enumerate(text.split("\n"), 1):
        is_org, is_contact = _ORG_HEADER.match(line), _CONTACT_HEADER.match(line)
        if is_org or (is_contact and found):
            keys = {}
            if is_org:
                found.append((_Block(number, keys), []))
            else:
                found[-1][1].append(_Block(number, keys))
        elif _TABLE_HEADER.match(line):
            keys = None
        elif keys is not None and (match := _KEY.match(line)):
            keys.setdefault(match[1], number)
    contacts = [t.get("contacts") if isinstance(t, dict) else None for t in tables]
    counts = [len(c) if isinstance(c, list) else 0 for c in contacts]
    if [len(blocks) for _, blocks in found] == counts:
        return found
    return [
        (
            _Block(0, where=f"organization {i}"),
            [_Block(0, where=f"organization {i}, contact {j}") for j in range(1, count + 1)],
        )
        for i, count in enumerate(counts, 1)
    ]


def _table(value: object, what: str, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a table, not {type(value).__name__}")
    for key in value:
        if key not in known:
            raise FieldError(key, f"unknown key {show(key)} in {what} (known: {', '.join(known)})")
    return value


def _toml_data(text: str, source: str) -> list[Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_WHERE.search(str(exc))
        line = int(where[1]) if where else text.count("\n") + 1
        problem = _TOML_WHERE.sub("", str(exc)) + (f" (column {where[2]})" if where else "")
        raise ContactsFileError(source, line, f"not valid TOML: {problem}") from None
    for key in data:
        if key != "organizations":
            problem = f"unknown key {show(key)} (expected [[organizations]])"
            raise ContactsFileError(source, 0, problem, where="top level")
    tables = data.get("organizations", [])
    if not isinstance(tables, list):
        problem = "organizations must be [[organizations]] tables"
        raise ContactsFileError(source, 0, problem, where="top level")
    return tables


def parse_contacts_toml(
    text: str, source: str, *, default_region: str | None = None
) -> tuple[OrganizationRecord, ...]:
    """[[organizations]] tables, each with [[organizations.contacts]] (CONTRACTS 5)."""
    region = _default_region(default_region)
    text = text.removeprefix("\ufeff")
    tables = _toml_data(text, source)
    drafts: dict[str, Draft] = {}
    blocks: dict[str, _Block] = {}
    seen = Contacts()
    for table, (block, contact_blocks) in zip(tables, _toml_layout(text, tables), strict=True):
        with _located(source, block):
            org = _table(table, "an organization", _ORG_KEYS)
            name = organization_name(org, "name")
            if name.casefold() in drafts:
                earlier = blocks[name.casefold()]
                at = f"line {earlier.line}" if earlier.line else earlier.where
                raise FieldError("name", f"organization {show(name)} is already at {at}")
            draft = drafts[name.casefold()] = Draft(name, block.line)
            blocks[name.casefold()] = block
            draft.merge(org_fields(org), block.line)
            contacts = org.get("contacts", [])
            if not isinstance(contacts, list):
                raise FieldError("contacts", "contacts must be [[organizations.contacts]] tables")
        for value, contact_block in zip(contacts, contact_blocks, strict=True):
            with _located(source, contact_block):
                values = _table(value, "a contact", _CONTACT_KEYS)
                new = contact(values, contact_block.line, phone_region(draft, region))
                if new is None:
                    raise ValueError("a contact needs an email, phone or telegram")
                seen.add(draft, new)
    return _records(source, drafts, blocks)
