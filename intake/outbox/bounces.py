"""Reading delivery status reports (RFC 3464) that come back for our own notices. Pure.

The parser renders the report's machine-readable part as "Field: value" lines; each
per-recipient block starts with Final-Recipient (or Original-Recipient).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELD = re.compile(r"^\s*([A-Za-z-]+)\s*:\s*(.*?)\s*$")
_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}$")


@dataclass(frozen=True, slots=True)
class Delivery:
    recipient: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # e.g. "5.1.1"
    diagnostic: str

    @property
    def hard(self) -> bool:
        """A permanent failure: the address will not start working by itself."""
        if _STATUS.match(self.status):
            return self.status.startswith("5")
        return self.action == "failed"


def _address(value: str) -> str:
    # "rfc822; someone@example.org" -> "someone@example.org"
    return value.partition(";")[2].strip().strip("<>").lower() if ";" in value else value.lower()


def delivery_reports(text: str) -> list[Delivery]:
    """Every per-recipient block of the report, in order."""
    found: list[Delivery] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        match = _FIELD.match(line)
        if not match:
            continue
        name, value = match[1].lower(), match[2]
        if name == "final-recipient" or (name == "original-recipient" and current is None):
            if current is not None and "recipient" in current:
                found.append(_delivery(current))
            current = {"recipient": _address(value)}
        elif current is not None and name in ("action", "status", "diagnostic-code"):
            current.setdefault(name, value)
    if current is not None and "recipient" in current:
        found.append(_delivery(current))
    return found


def _delivery(fields: dict[str, str]) -> Delivery:
    return Delivery(
        recipient=fields["recipient"],
        action=fields.get("action", "").lower(),
        status=fields.get("status", "").split()[0] if fields.get("status") else "",
        diagnostic=fields.get("diagnostic-code", "")[:500],
    )
