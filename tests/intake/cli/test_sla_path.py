"""The fast `intake sla` path prints exactly what the plain one printed, byte for byte.

`plain_answer` is the path as it was before it was made fast: `compute_deadlines` (the
pipeline's own API), each instant shown with `astimezone(zone).isoformat()`, and
`json.dumps`. Both run over a large seeded set of requests: every preset, plan and
priority, two years of instants with summer-time changes and holidays drawn often, offsets
and wall times (including the skipped and the repeated hour), regions, and bad lines.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from intake.cli.sla import answer_line, answer_lines, parse_received, parse_zone
from intake.errors import InputRefusedError, IntakeError
from intake.policy.files import PRESETS, load_policy
from intake.policy.model import compute_deadlines

ZONES = [None, None, None, "Europe/Prague", "Europe/London", "America/New_York",
         "Asia/Kolkata", "Australia/Sydney", "Asia/Dubai", "UTC", "Pacific/Chatham"]  # fmt: skip
OFFSETS = ["+00:00", "Z", "+01:00", "+02:00", "-05:00", "+05:30", "+12:45", "-09:30"]
# Local dates where support calendars change: summer time (EU, UK, US, Sydney) and holidays.
EDGES = ["2025-03-30", "2025-10-26", "2026-03-29", "2026-10-25", "2025-03-09", "2025-11-02",
         "2026-03-08", "2026-11-01", "2025-04-06", "2025-10-05", "2025-12-24", "2025-12-31",
         "2026-01-01", "2025-04-18", "2025-04-21", "2026-04-03", "2026-04-06", "2025-05-08",
         "2025-07-05", "2025-09-28", "2025-11-17", "2026-05-01", "2026-12-28"]  # fmt: skip


def plain_answer(line: str, default_policy: str) -> str:
    """One request line answered the plain way (the path before it was made fast)."""
    try:
        return json.dumps(_plain(line, default_policy), ensure_ascii=False)
    except IntakeError as exc:
        return json.dumps({"error": str(exc)}, ensure_ascii=False)


def _plain(line: str, default_policy: str) -> dict[str, Any]:
    try:
        request = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputRefusedError(f"not a JSON object: {exc.msg}") from None
    if not isinstance(request, dict):
        raise InputRefusedError("not a JSON object")
    request.setdefault("policy", default_policy)
    keys = ("policy", "plan", "priority", "received")
    missing = [key for key in keys if not isinstance(request.get(key), str)]
    if missing:
        raise InputRefusedError(f"missing or not a string: {', '.join(missing)}")
    tz = request.get("tz")
    if tz is not None and not isinstance(tz, str):
        raise InputRefusedError("tz must be a string")
    policy = load_policy(request["policy"])
    zone = parse_zone(tz or policy.zone)
    moment = parse_received(request["received"], zone)
    plan, priority = request["plan"], request["priority"]
    try:
        due = compute_deadlines(policy, plan, priority, moment, region=tz)
        shown = [
            None if value is None else value.astimezone(zone).isoformat()
            for value in (moment, due.clock_starts, due.first_response_due, due.resolution_due)
        ]
    except OverflowError:
        raise InputRefusedError(f"received {request['received']!r} is too near year 1 "
                                "or 9999") from None  # fmt: skip
    keys = ("received", "clock_starts", "first_response_due", "resolution_due")
    times = dict(zip(keys, shown, strict=True))
    return {"policy": policy.name, "plan": plan, "priority": priority, **times}


def _instant(rng: random.Random) -> datetime:
    """Mostly anywhere in 2025-2026, often within a day of a change of clock or a holiday."""
    if rng.random() < 0.5:
        start = datetime(2025, 1, 1, tzinfo=UTC)
        moment = start + timedelta(seconds=rng.randrange(2 * 365 * 86400))
    else:
        edge = datetime.fromisoformat(rng.choice(EDGES)).replace(tzinfo=UTC)
        moment = edge + timedelta(minutes=rng.randrange(-36 * 60, 36 * 60))
    if rng.random() < 0.1:
        moment += timedelta(microseconds=rng.randrange(1, 1_000_000))
    return moment


def _received(rng: random.Random, moment: datetime) -> str:
    """As an offset time, or as a wall time (read in the request's zone): on summer-time
    dates those include the skipped and the repeated hour."""
    if rng.random() < 0.3:
        return moment.replace(tzinfo=None).isoformat()
    offset = rng.choice(OFFSETS)
    text = moment.replace(tzinfo=None).isoformat(timespec=rng.choice(["minutes", "auto"]))
    return text + offset


def requests(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    kinds = [(name, plan, priority) for name in PRESETS
             for plan in load_policy(name).plans
             for priority in load_policy(name).priorities.order]  # fmt: skip
    lines = []
    for _ in range(count):
        name, plan, priority = rng.choice(kinds)
        request: dict[str, Any] = {"plan": plan, "priority": priority,
                                   "received": _received(rng, _instant(rng))}  # fmt: skip
        if name != "circularo-saas" or rng.random() < 0.5:
            request["policy"] = name  # else the default policy, circularo-saas
        tz = rng.choice(ZONES)
        if tz is not None:
            request["tz"] = tz
        lines.append(json.dumps(request))
    return lines


ODD_LINES = [
    "not json", "[1, 2]", "{}", '{"plan": "standard"}', "null",
    '{"policy": "gold", "plan": "standard", "priority": "normal", "received": "2025-01-02"}',
    '{"plan": "gold", "priority": "normal", "received": "2025-01-02T10:00"}',
    '{"plan": "standard", "priority": "critical", "received": "2025-01-02T10:00"}',
    '{"plan": "standard", "priority": "normal", "received": "last tuesday"}',
    '{"plan": "standard", "priority": "normal", "received": "2025-01-02", "tz": "Mars/Base"}',
    '{"plan": "standard", "priority": "normal", "received": "2025-01-02", "tz": 5}',
    '{"plan": "standard", "priority": "normal", "received": 20250102}',
    '{"plan": "gold", "priority": "normal", "received": "yesterday"}',
    '{"plan": "standard", "priority": "normal", "received": "9999-12-31T12:00+00:00"}',
    '{"plan": "standard", "priority": "normal", "received": "0001-01-01T00:00+05:00"}',
    '{"plan": "standard", "priority": "normal", "received": "0001-01-01T00:00:00"}',
    '{"plan": "premium", "priority": "urgent", "received": "9999-12-29T12:00Z", "tz": "UTC"}',
    '{"plan": "premium", "priority": "urgent", "received": "0001-01-01T12:00Z", "tz": "UTC"}',
    '{"plan": "standard", "priority": "normal", "received": " 2025-06-02T10:00 "}',
    '{"policy": "scalr", "plan": "standard", "priority": "severity-3", "received": "2025-06-02",'
    ' "tz": "Europe/Paris", "extra": [1]}',
    '{"plan": "standard", "priority": "normal", "received": "2025-06-02T10:00\\u00e9"}',
]  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_prints_what_the_plain_path_printed(seed: int) -> None:
    lines = requests(10_000, seed) + ODD_LINES
    fast = list(answer_lines([line + "\n" for line in lines], "circularo-saas"))
    assert len(fast) == len(lines)
    for line, got in zip(lines, fast, strict=True):
        assert got == plain_answer(line, "circularo-saas") + "\n", line


def test_the_set_reaches_every_kind_and_every_outcome() -> None:
    # The comparison above means something only if the requests reach every preset, plan and
    # priority, capped and null deadlines, and clocks that start later than received.
    answers = [json.loads(plain_answer(line, "circularo-saas")) for line in requests(10_000, 1)]
    assert not [a for a in answers if "error" in a]
    kinds = {(a["policy"], a["plan"], a["priority"]) for a in answers}
    assert len(kinds) == 33
    assert any(a["first_response_due"] is None for a in answers)
    assert any(a["first_response_due"] == a["resolution_due"] is not None for a in answers)
    assert any(a["clock_starts"] != a["received"] for a in answers)
    # A deadline across the change to summer time, and one inside the repeated hour.
    assert any(a["received"].endswith("+01:00") and str(a["resolution_due"]).endswith("+02:00")
               for a in answers)  # fmt: skip
    assert any(a["received"].startswith("2025-10-26T02:") for a in answers)
    refused = [line for line in ODD_LINES if '"error"' in plain_answer(line, "circularo-saas")]
    assert len(refused) == len(ODD_LINES) - 4


def test_a_deadline_beyond_year_9999_in_the_shown_zone_is_a_refusal() -> None:
    # Due 9999-12-31 16:00 UTC is already year 10000 in Tokyo; this used to be a traceback.
    line = json.dumps({"plan": "premium", "priority": "urgent",
                       "received": "9999-12-30T18:00+00:00", "tz": "Asia/Tokyo"})  # fmt: skip
    with pytest.raises(InputRefusedError, match="too near year 1 or 9999"):
        answer_line(line, "circularo-saas")


def test_intake_sla_starts_without_the_rest_of_the_product() -> None:
    # Scripts call `intake sla` once per request: it must not import the web, mail and
    # database stacks the other commands need (2 s of imports); `--help` still lists all.
    code = (
        "import sys\n"
        "from intake.cli.root import main\n"
        "main(['sla', '--policy', 'scoro', '--plan', 'standard', '--priority', 'error',"
        " '--received', '2025-06-10T13:00+01:00'], standalone_mode=False)\n"
        "heavy = [m for m in ('sqlalchemy', 'fastapi', 'aiosmtpd', 'intake.cli.main')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    first, last = done.stdout.splitlines()
    assert json.loads(first)["first_response_due"] == "2025-06-13T19:00:00+01:00"
    assert last == "[]"
    listed = subprocess.run([sys.executable, "-m", "intake.cli", "--help"], capture_output=True,
                            text=True, timeout=60, check=True)  # fmt: skip
    for command in ("sla", "serve", "tickets", "agents", "report", "classify", "policy"):
        assert f"  {command} " in listed.stdout
