"""`intake sla`: one deadline request in, one JSON line out (CONTRACTS section 2).

Scripts call this per request and in batches, so the path from a request to its printed line
is kept short: the engine answers in epoch microseconds (`Schedule.instants`), and only the
four printed instants become datetimes, in the zone they are shown in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake.errors import InputRefusedError, IntakeError
from intake.policy.calendar import to_us
from intake.policy.files import load_policy
from intake.policy.model import schedule

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


def answer(policy_ref: str, plan: str, priority: str, received: str, tz: str | None) -> str:
    """The deadlines of one request, as the JSON object `intake sla` prints (no newline)."""
    policy = load_policy(policy_ref)
    zone = parse_zone(tz or policy.zone)
    moment = parse_received(received, zone)
    plan_schedule = schedule(policy, plan, priority, tz)
    try:
        shown = moment.astimezone(zone).isoformat()
        us = to_us(moment)
        start, response, resolution, _ = plan_schedule.instants(us)
        # The received instant shows as itself unless it is a wall time given in `zone`
        # (astimezone leaves those as written, even one the clock skips in spring).
        same = start == us and moment.tzinfo is not zone
        start_text = f'"{shown}"' if same else _local(start, zone)
        response_text = _local(response, zone)
        resolution_text = response_text if resolution == response else _local(resolution, zone)
    except OverflowError:
        raise InputRefusedError(f"received {received!r} is too near year 1 or 9999") from None
    # The instants' ISO 8601 text needs no JSON escaping; the names do, once per request kind.
    return (
        f'{_head(policy.name, plan, priority)}, "received": "{shown}", '
        f'"clock_starts": {start_text}, "first_response_due": {response_text}, '
        f'"resolution_due": {resolution_text}}}'
    )


_SECONDS = range(to_us(datetime.min.replace(tzinfo=UTC)) // 1_000_000,
                 to_us(datetime.max.replace(tzinfo=UTC)) // 1_000_000 + 1)  # fmt: skip


def _local(us: int | None, zone: ZoneInfo) -> str:
    """An instant as a JSON string of its ISO 8601 time in `zone`, or JSON null. The same
    text as `from_us(us).astimezone(zone).isoformat()`, a third faster."""
    if us is None:
        return "null"
    seconds, micro = divmod(us, 1_000_000)
    if seconds not in _SECONDS:
        raise OverflowError("instant beyond years 1-9999")
    local = datetime.fromtimestamp(seconds, zone)  # OverflowError past 9999 in local time
    return f'"{(local.replace(microsecond=micro) if micro else local).isoformat()}"'


@cache
def _head(policy: str, plan: str, priority: str) -> str:
    """The answer's JSON up to its times (without the closing brace)."""
    names = {"policy": policy, "plan": plan, "priority": priority}
    return json.dumps(names, ensure_ascii=False)[:-1]


def answer_line(line: str, default_policy: str) -> str:
    """One `--batch` line (a JSON object) -> its answer. Raises InputRefusedError if bad."""
    try:
        request = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputRefusedError(f"not a JSON object: {exc.msg}") from None
    if not isinstance(request, dict):
        raise InputRefusedError("not a JSON object")
    policy = request.get("policy", default_policy)
    plan, priority, received = request.get("plan"), request.get("priority"), request.get("received")
    if not (
        isinstance(policy, str)
        and isinstance(plan, str)
        and isinstance(priority, str)
        and isinstance(received, str)
    ):
        given = (policy, plan, priority, received)
        missing = [key for key, value in zip(REQUEST_KEYS, given, strict=True)
                   if not isinstance(value, str)]  # fmt: skip
        raise InputRefusedError(f"missing or not a string: {', '.join(missing)}")
    tz = request.get("tz")
    if tz is not None and not isinstance(tz, str):
        raise InputRefusedError("tz must be a string")
    return answer(policy, plan, priority, received, tz)


def answer_lines(lines: Iterable[str], default_policy: str) -> Iterator[str]:
    """`intake sla --batch`: one answer or `{"error": ...}` per request line, in order, each
    ending in a newline. Blank lines are no requests."""
    for line in lines:
        if not line.strip():
            continue
        try:
            yield answer_line(line, default_policy) + "\n"
        except IntakeError as exc:
            yield json.dumps({"error": str(exc)}, ensure_ascii=False) + "\n"
