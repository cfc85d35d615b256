"""`intake sla` as outside scripts call it: a real process, JSON out, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from intake.policy.files import PRESETS, load_policy

KEYS = ["policy", "plan", "priority", "received", "clock_starts", "first_response_due",
        "resolution_due"]  # fmt: skip


def intake(
    *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_console_script_is_installed() -> None:
    assert shutil.which("intake"), "the package installs an `intake` command"


def test_single_request() -> None:
    done = intake("sla", "--policy", "circularo-saas", "--plan", "standard", "--priority",
                  "normal", "--received", "2024-03-28T15:30+01:00")  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert list(answer) == KEYS
    assert answer["clock_starts"] == "2024-03-28T15:30:00+01:00"
    assert answer["first_response_due"] == "2024-04-05T15:30:00+02:00"
    assert answer["resolution_due"] == "2024-04-08T15:30:00+02:00"


def test_tz_sets_the_region_and_how_times_are_shown() -> None:
    done = intake("sla", "--policy", "scalr", "--plan", "standard", "--priority", "severity-2",
                  "--received", "2024-06-14T18:00:00", "--tz", "America/New_York")  # fmt: skip
    answer = json.loads(done.stdout)
    assert answer["received"] == "2024-06-14T18:00:00-04:00"  # naive: read in --tz
    assert answer["clock_starts"] == "2024-06-17T09:00:00-04:00"
    assert answer["first_response_due"] is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--policy", "gold"], "no preset named 'gold'"),
        (["--plan", "gold"], "has no plan 'gold'"),
        (["--priority", "critical"], "has no priority 'critical'"),
        (["--received", "last tuesday"], "is not an ISO 8601 time"),
        (["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--received", "9999-12-31T12:00:00+00:00"], "too near year 1 or 9999"),
        (["--received", "0001-01-01T00:00:00+05:00"], "too near year 1 or 9999"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], says: str) -> None:
    base = {"--policy": "circularo-saas", "--plan": "standard", "--priority": "normal",
            "--received": "2024-06-11T10:00+02:00"}  # fmt: skip
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    done = intake("sla", *[part for pair in base.items() for part in pair])
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and says in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_arguments_are_a_usage_error() -> None:
    done = intake("sla", "--policy", "scoro")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_batch_answers_in_order_and_goes_on_after_bad_lines() -> None:
    lines = [
        {"policy": "four-tier", "plan": "standard", "priority": "high",
         "received": "2024-06-12T18:00+01:00"},
        "this is not json",
        {"policy": "four-tier", "plan": "standard", "priority": "high"},
        ["a", "list"],
        {"policy": "scalr", "plan": "premium", "priority": "severity-1",
         "received": "2024-06-15T10:00:00Z", "tz": 5},
        {"policy": "scalr", "plan": "standard", "priority": "severity-1",
         "received": "2024-03-09T12:00-05:00", "tz": "America/New_York"},
    ]  # fmt: skip
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n"
    done = intake("sla", "--batch", stdin=stdin)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == 6
    assert out[0]["first_response_due"] == "2024-06-12T22:00:00+01:00"
    assert "not a JSON object" in out[1]["error"]
    assert "received" in out[2]["error"]
    assert out[3] == {"error": "not a JSON object"}
    assert out[4] == {"error": "tz must be a string"}
    assert out[5]["clock_starts"] == "2024-03-11T09:00:00-04:00"


def test_batch_default_policy_comes_from_config(tmp_path: Path) -> None:
    (tmp_path / "intake.toml").write_text('[policy]\nname = "scoro"\n', encoding="utf-8")
    line = json.dumps({"plan": "standard", "priority": "error",
                       "received": "2024-06-10T13:00+01:00"})  # fmt: skip
    done = intake("sla", "--batch", stdin=line + "\n", cwd=tmp_path)
    assert json.loads(done.stdout)["first_response_due"] == "2024-06-13T19:00:00+01:00"


def test_batch_covers_every_preset_plan_and_priority() -> None:
    requests = [
        {"policy": name, "plan": plan, "priority": priority,
         "received": "2024-12-23T14:00+01:00"}
        for name in PRESETS
        for plan in load_policy(name).plans
        for priority in load_policy(name).priorities.order
    ]  # fmt: skip
    done = intake("sla", "--batch", stdin="".join(json.dumps(r) + "\n" for r in requests))
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(out) == len(requests) == 33  # 3 + 6 + 8 + 4 + 12
    for request, answer in zip(requests, out, strict=True):
        assert "error" not in answer
        assert (answer["policy"], answer["plan"], answer["priority"]) == (
            request["policy"], request["plan"], request["priority"])  # fmt: skip


def test_response_capped_at_the_resolution_deadline() -> None:
    # circularo-saas Standard, Urgent: 48 h response against 4 days (32 support hours) to
    # resolve. A resolution is also a response: both are due Thursday 16:30, not Monday 24.
    done = intake("sla", "--policy", "circularo-saas", "--plan", "standard", "--priority",
                  "urgent", "--received", "2024-06-14T16:30+02:00")  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["first_response_due"] == answer["resolution_due"] == "2024-06-20T16:30:00+02:00"
