"""`intake policy check` as a team runs it on its own policy file: a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from serving import ServeProcess, free_port, wait_until

from intake.policy.files import PRESETS


def check(target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", "policy", "check", target],
        capture_output=True,
        text=True,
        timeout=60,
    )


INVERTED = """
name = "ours"
[priorities]
order = ["low", "normal", "urgent"]
default = "normal"
[calendars.office]
zone = "Europe/Prague"
windows = [{ days = "mon-fri", start = "09:00", end = "17:00" }]
[plans.basic]
response_calendar = "office"
[plans.basic.targets]
low = { response = { hours = 16 } }
normal = { response = { hours = 8 }, resolution = { days = 5 } }
urgent = { response = { hours = 12 }, resolution = { hours = 4 } }
[plans.nights]
[plans.nights.targets]
low = {}
normal = {}
urgent = {}
"""


def test_a_team_policy_with_inversions_warns_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "ours.toml"
    path.write_text(INVERTED, encoding="utf-8")
    done = check(str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        f"{path}: plans.basic.targets.urgent: response (12 support hours) is later than "
        "resolution (4 support hours); the first response is due at the resolution deadline",
        f"{path}: plans.basic.targets.urgent: response (12 support hours) is slower than "
        "normal's (8 support hours)",
        f"{path}: plans.nights: no calendar, so its targets run on 24x7",
    ]


def test_the_saas_standard_inversion_is_named() -> None:
    done = check("circularo-saas")
    assert done.returncode == 0
    assert "plans.standard.targets.urgent: response (48 support hours) is later than " in (
        done.stdout
    )
    assert "slower than normal's (32 support hours)" in done.stdout
    assert "plans.plus" not in done.stdout and "plans.premium" not in done.stdout


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "circularo-saas"])
def test_the_other_presets_are_consistent(preset: str) -> None:
    done = check(preset)
    assert (done.returncode, done.stdout) == (0, "")


@pytest.mark.parametrize("target", ["no-such-preset", "missing.toml", "broken.toml"])
def test_a_policy_that_cannot_be_loaded_exits_2(tmp_path: Path, target: str) -> None:
    (tmp_path / "broken.toml").write_text("name = [", encoding="utf-8")
    path = str(tmp_path / target) if target.endswith(".toml") else target
    done = check(path)
    assert done.returncode == 2
    assert done.stderr.startswith("intake: ") and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr


async def test_serve_logs_the_same_warnings_at_start(tmp_path: Path) -> None:
    path = tmp_path / "ours.toml"
    path.write_text(INVERTED, encoding="utf-8")
    (tmp_path / "intake.toml").write_text(
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path / "intake.db"}"
[policy]
name = "{path}"
[smtp]
host = "127.0.0.1"
port = {free_port()}
[web]
enabled = false
""",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serve = ServeProcess("intake serve", tmp_path, env, ["--config", "intake.toml"])
    serve.start()
    try:
        await wait_until(lambda: "serving; policy" in serve.output(), "intake serve to start")
    finally:
        assert serve.stop() == 0
    logged = [
        line.partition(f"policy {path}: ")[2]
        for line in serve.output().splitlines()
        if "WARNING" in line and f"policy {path}: " in line
    ]
    printed = [line.partition(f"{path}: ")[2] for line in check(str(path)).stdout.splitlines()]
    assert len(printed) == 3 and logged == printed
