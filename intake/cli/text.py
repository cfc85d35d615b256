"""How the CLI shows a ticket to a person (`intake tickets show` without `--json`).

Plain text, one field a line, then the messages in order; `--json` stays the shape scripts read.
Sender-controlled text is printed as it is (a terminal, not a page) but its control
characters are shown escaped, so a subject cannot move the cursor or clear the screen.
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")
_FIELDS = (
    ("status", "status"),
    ("priority", "priority"),
    ("severity", "severity"),
    ("organization", "organization"),
    ("plan", "plan"),
    ("contact", "contact_status"),
    ("channel", "channel"),
    ("sender", "sender"),
    ("assignee", "assignee"),
    ("received", "received_at"),
    ("first response due", "first_response_due"),
    ("resolution due", "resolution_due"),
    ("first response at", "first_response_at"),
)


def printable(value: object) -> str:
    """`value` as text with terminal control characters escaped (newlines and tabs kept)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))


def ticket_text(shown: dict[str, Any]) -> str:
    """A ticket from `admin.show_ticket` as lines a person reads."""
    lines = [f"{shown['reference']}  {printable(shown['subject'])}"]
    for label, key in _FIELDS:
        value = shown.get(key)
        lines.append(f"  {label + ':':<20}{'-' if value is None else printable(value)}")
    lines.append(f"  {'flags:':<20}{', '.join(shown.get('flags') or []) or '-'}")
    suggested = (shown.get("decision") or {}).get("suggested_priority")
    if suggested:
        lines.append(f"  {'suggested priority:':<20}{suggested}")
    for number, message in enumerate(shown.get("messages") or [], 1):
        lines.extend(_message_lines(number, message))
    return "\n".join(lines)


def _message_lines(number: int, message: dict[str, Any]) -> list[str]:
    arrow = "from" if message.get("direction", "in") == "in" else "to"
    head = (
        f"--- {number}. {message.get('received_at') or ''} {message.get('channel')} "
        f"{arrow} {printable(message.get('sender') or '')}"
    )
    lines = ["", head]
    if message.get("subject"):
        lines.append(f"Subject: {printable(message['subject'])}")
    if message.get("attachments"):
        lines.append("Attachments: " + ", ".join(printable(a) for a in message["attachments"]))
    lines.append("")
    lines.extend(printable(message.get("text") or "").rstrip("\n").split("\n"))
    return lines
