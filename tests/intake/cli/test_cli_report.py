"""`intake report sla` as a real command over a database of tickets with known times."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from reopenable import ReopenableStorage
from sla_history import HISTORY, PRIORITY_ROWS, seed_history

from intake.pipeline.decide import support_period

SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
WINDOW = ("--since", "2026-03-01", "--until", "2026-04-30")


def intake(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", "report", "sla", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env=os.environ | {"INTAKE_DATABASE_URL": url},
    )  # fmt: skip


@SQLITE_ONLY
async def test_json_lines_and_the_table(storage: ReopenableStorage, tmp_path: Path) -> None:
    await seed_history(storage)
    done = intake(storage.url, tmp_path, *WINDOW, "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    # Every deadline of the window has passed by now, so the figures are those of 30 April.
    assert [r for r in rows if r["kind"] == "priority"] == [
        {"kind": "priority", **row} for row in PRIORITY_ROWS
    ]
    kinds = [r["kind"] for r in rows]
    assert kinds == sorted(kinds, key=lambda k: k != "priority")  # priorities, then organizations
    organizations = {r["organization"]: r for r in rows if r["kind"] == "organization"}
    assert list(organizations) == ["Acme", "Fourco", "Globex", "Initech"]
    today = datetime.now(UTC).date()
    begin, end = support_period(date(2025, 6, 1), 12, today)
    initech = [received.date() for sender, _, received, _, _ in HISTORY if "initech" in sender]
    used = sum(1 for day in initech if begin <= day < end)
    assert organizations["Initech"] == {
        "kind": "organization", "organization": "Initech", "policy": "circularo-onprem",
        "plan": "plus", "quota": 100, "quota_used": used, "support_period_ends": end.isoformat(),
    }  # fmt: skip
    assert organizations["Acme"]["quota"] is None

    table = intake(storage.url, tmp_path, *WINDOW)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(
        "SLA report: requests received from 2026-03-01 00:00 until 2026-05-01 00:00 UTC"
    )
    assert lines[2].split()[:4] == ["organization", "plan", "priority", "requests"]
    assert lines[3].split() == ["Acme", "standard", "normal", "3", "3", "3", "0", "1.50", "2",
                                "2", "1", "14.00", "1"]  # fmt: skip
    assert any(line.split()[:5] == ["Fourco", "standard", "high", "1", "1"] for line in lines)

    sheet = list(
        csv.DictReader(io.StringIO(intake(storage.url, tmp_path, *WINDOW, "--csv").stdout))
    )
    assert [r["kind"] for r in sheet] == kinds
    assert sheet[0]["average_resolution_hours"] == "14.0" and sheet[0]["quota"] == ""
    assert sheet[-1]["quota"] == "100" and sheet[-1]["requests"] == ""

    one = intake(storage.url, tmp_path, *WINDOW, "--organization", "Fourco", "--json")
    assert [json.loads(line)["organization"] for line in one.stdout.splitlines()] == [
        "Fourco", "Fourco"
    ]  # fmt: skip


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--organization", "Nobody"), "intake: no organization named 'Nobody'"),
        (("--since", "2026-05-01", "--until", "2026-04-01"), "intake: the period is empty"),
        (("--since", "May 1st"), "Invalid value for '--since'"),
    ],
)
async def test_bad_input_is_one_line(
    storage: ReopenableStorage, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    done = intake(storage.url, tmp_path, *args)
    assert done.returncode == 2 and done.stdout == ""
    assert says in done.stderr and "Traceback" not in done.stderr
