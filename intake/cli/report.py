"""How `intake report sla` prints a report: JSON lines (CONTRACTS section 2), CSV for
spreadsheets, or a table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

from intake.desk.reports import Report

PRIORITY_COLUMNS = (
    ("organization", "organization"), ("plan", "plan"), ("priority", "priority"),
    ("requests", "requests"), ("responded", "responded"), ("response_met", "resp. met"),
    ("response_breached", "resp. breached"), ("average_response_hours", "resp. avg h"),
    ("resolved", "resolved"), ("resolution_met", "res. met"),
    ("resolution_breached", "res. breached"), ("average_resolution_hours", "res. avg h"),
    ("open_overdue", "open overdue"),
)  # fmt: skip
ORGANIZATION_COLUMNS = (
    ("organization", "organization"), ("policy", "policy"), ("plan", "plan"),
    ("quota", "quota"), ("quota_used", "used"), ("support_period_ends", "period ends"),
)  # fmt: skip


def json_rows(report: Report) -> Iterator[dict[str, Any]]:
    """Rows per organization and priority, then one per organization."""
    for row in report.priorities:
        yield row.as_json()
    for org in report.organizations:
        yield org.as_json()


def csv_text(report: Report) -> str:
    """One CSV: the JSON lines' keys as columns (priority rows leave the organization's
    columns empty, and the other way round)."""
    rows = list(json_rows(report))
    columns: dict[str, None] = {"kind": None}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> list[str]:
    cells = [[_cell(row[key]) for key, _ in columns] for row in rows]
    heads = [head for _, head in columns]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(heads)]

    def line(values: Sequence[str]) -> str:
        # Text columns to the left, figures to the right, as a spreadsheet shows them.
        return "  ".join(
            v.ljust(w) if i < 3 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return [line(heads), *(line(r) for r in cells)]


def text_lines(report: Report) -> list[str]:
    """The report as two tables for people: per priority, then per organization."""
    span = f"from {report.since:%Y-%m-%d %H:%M} until {report.until:%Y-%m-%d %H:%M} UTC"
    lines = [f"SLA report: requests received {span}; times in support hours", ""]
    priorities = [row.as_json() for row in report.priorities]
    if priorities:
        lines += table(priorities, PRIORITY_COLUMNS)
    else:
        lines.append("no requests in the period")
    organizations = [org.as_json() for org in report.organizations]
    if organizations:
        lines += ["", *table(organizations, ORGANIZATION_COLUMNS)]
    return lines
