"""Loading policy files: presets, a team's own file, and one-line refusals of bad ones."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from intake.errors import ConfigError
from intake.policy.files import PRESETS, load_policy, parse_policy, read_policy_file


def preset_data(name: str) -> dict[str, Any]:
    text = resources.files("intake.policy.presets").joinpath(f"{name}.toml").read_text("utf-8")
    return tomllib.loads(text)


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_policy(data, "team.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load(name: str) -> None:
    policy = load_policy(name)
    assert policy.name == name
    assert policy.source == f"preset {name}"


def test_every_preset_value_cites_its_seed() -> None:
    # Each preset's header names its seed file, so every value can be traced back.
    for name in PRESETS:
        text = resources.files("intake.policy.presets").joinpath(f"{name}.toml").read_text("utf-8")
        assert "(seed 00" in text.splitlines()[0]


def test_a_team_file_by_path(tmp_path: Path) -> None:
    data = preset_data("four-tier")
    text = resources.files("intake.policy.presets").joinpath("four-tier.toml").read_text("utf-8")
    own = tmp_path / "ours.toml"
    own.write_text(text.replace('name = "four-tier"', 'name = "ours"'), encoding="utf-8")
    policy = load_policy(str(own))
    assert policy.name == "ours" and policy.source == str(own)
    assert set(policy.plans) == set(data["plans"])


def mutate(path: str, value: Any, base: str = "circularo-saas") -> dict[str, Any]:
    data = preset_data(base)
    node = data
    *parents, last = path.split("/")
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "key", "problem"),
    [
        ("calendars/standard/zone", "Europe/Praha", "calendars.standard.zone", "unknown time zone"),
        ("calendars/standard/windows", [{"days": "mon-fri", "start": "16:30", "end": "08:30"}],
         "calendars.standard.windows.0", "ends (08:30) before it starts (16:30)"),
        ("calendars/standard/windows", [{"days": "mon-fri", "start": "8:30", "end": "16:30"}],
         "calendars.standard.windows.0", "not a time like"),
        ("calendars/standard/windows", [{"days": "mon-fry", "start": "08:30", "end": "16:30"}],
         "calendars.standard.windows.0", "not a day range"),
        ("calendars/standard/windows", [{"days": "fri-mon", "start": "08:30", "end": "16:30"}],
         "calendars.standard.windows.0", "runs backwards"),
        ("calendars/standard/windows", [{"days": "mon", "start": "08:00", "end": "12:00"},
                                        {"days": "mon", "start": "11:00", "end": "13:00"}],
         "calendars.standard", "windows overlap on mon"),
        ("calendars/standard/windows", [], "calendars.standard", "needs windows"),
        ("calendars/always/windows", [{"days": "mon", "start": "08:00", "end": "12:00"}],
         "calendars.always", "takes no windows"),
        ("calendars/standard/holidays", "XX", "calendars.standard.holidays", "no public holiday"),
        ("plans/standard/targets/normal/response", {"hours": -4},
         "plans.standard.targets.normal.response.hours", "greater than 0"),
        ("plans/standard/targets/normal/response", {"hours": 4, "days": 1},
         "plans.standard.targets.normal.response", "exactly one of"),
        ("plans/standard/targets/critical", {"response": {"hours": 1}},
         "plans.standard.targets.critical", "unknown priority"),
        ("plans/standard/targets/urgent", DELETE,
         "plans.standard.targets", "no entry for priority 'urgent'"),
        ("plans/standard/response_calendar", "gold",
         "plans.standard.response_calendar", "unknown calendar 'gold'"),
        ("plans/standard/targets/normal/calendar", "gold",
         "plans.standard.targets.normal.calendar", "unknown calendar 'gold'"),
        ("plans/standard/channels", ["fax"], "plans.standard.channels.0", "Input should be"),
        ("plans/standard/quota", 0, "plans.standard.quota", "greater than or equal to 1"),
        ("priorities/default", "critical", "priorities", "default names unknown priority"),
        ("priorities/order", ["normal", "normal"], "priorities", "names a priority twice"),
        ("colour", "blue", "colour", "Extra inputs are not permitted"),
        ("plans", {}, "plans", "at least 1 item"),
    ],
)  # fmt: skip
def test_bad_policy_refused_naming_key(path: str, value: Any, key: str, problem: str) -> None:
    message = refusal(mutate(path, value))
    assert message.startswith(f"team.toml: {key}: "), message
    assert problem in message


def test_days_target_needs_equal_days() -> None:
    data = mutate(
        "calendars/standard/windows",
        [
            {"days": "mon-thu", "start": "08:30", "end": "16:30"},
            {"days": "fri", "start": "08:30", "end": "12:00"},
        ],
    )
    message = refusal(data)
    assert "plans.standard.targets.normal.resolution.days" in message
    assert "support days are all equal" in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "x"\n[plans\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: \(syntax\): "):
        read_policy_file(broken)
    with pytest.raises(ConfigError, match=r"missing\.toml: policy: cannot read"):
        read_policy_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="no preset named 'gold'"):
        load_policy("gold")
