"""`intake sla`: one deadline request in, one JSON-ready answer out (CONTRACTS section 2)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake.errors import InputRefusedError
from intake.policy.files import load_policy
from intake.policy.model import compute_deadlines

REQUEST_KEYS = ("policy", "plan", "priority", "received")


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputRefusedError(f"unknown time zone {name!r}") from None


def parse_received(text: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 instant; one without an offset is read as wall time in `zone`."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputRefusedError(f"received {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def answer(
    policy_ref: str, plan: str, priority: str, received: str, tz: str | None
) -> dict[str, Any]:
    """The deadlines of one request, as the JSON object `intake sla` prints."""
    policy = load_policy(policy_ref)
    zone = parse_zone(tz or policy.zone)
    moment = parse_received(received, zone)
    try:
        deadlines = compute_deadlines(policy, plan, priority, moment, region=tz)
        moment.astimezone(zone)
    except OverflowError:
        raise InputRefusedError(f"received {received!r} is too near year 1 or 9999") from None

    def show(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(zone).isoformat()

    return {
        "policy": policy.name,
        "plan": plan,
        "priority": priority,
        "received": show(moment),
        "clock_starts": show(deadlines.clock_starts),
        "first_response_due": show(deadlines.first_response_due),
        "resolution_due": show(deadlines.resolution_due),
    }


def answer_line(line: str, default_policy: str) -> dict[str, Any]:
    """One `--batch` line (a JSON object) -> its answer. Raises InputRefusedError if bad."""
    try:
        request = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputRefusedError(f"not a JSON object: {exc.msg}") from None
    if not isinstance(request, dict):
        raise InputRefusedError("not a JSON object")
    request.setdefault("policy", default_policy)
    missing = [key for key in REQUEST_KEYS if not isinstance(request.get(key), str)]
    if missing:
        raise InputRefusedError(f"missing or not a string: {', '.join(missing)}")
    tz = request.get("tz")
    if tz is not None and not isinstance(tz, str):
        raise InputRefusedError("tz must be a string")
    return answer(request["policy"], request["plan"], request["priority"], request["received"], tz)
