"""Tickets and messages as agents read them: one JSON shape for the CLI and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from intake.pipeline import references
from storage import tickets


def iso_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def ticket_json(t: tickets.TicketSummary) -> dict[str, Any]:
    """One ticket as `intake tickets list --json` prints it (CONTRACTS section 2)."""
    return {
        "id": t.id,
        "reference": references.format_reference(t.id),
        "channel": t.channel,
        "sender": t.sender,
        "subject": t.subject,
        "organization": t.organization,
        "contact_status": t.contact_status,
        "plan": t.plan,
        "priority": t.priority,
        "severity": t.severity,
        "category": t.category,
        "status": t.status,
        # CONTRACTS section 2 additions; null until the desk records assignments.
        "assignee": getattr(t, "assignee", None),
        "received_at": iso_time(t.received_at),
        "first_response_due": iso_time(t.first_response_due),
        "resolution_due": iso_time(t.resolution_due),
        "flags": list(t.flags),
        "message_count": t.message_count,
        "first_response_at": iso_time(t.first_response_at),
        "resolved_at": iso_time(t.resolved_at),
    }


def message_json(m: tickets.MessageView) -> dict[str, Any]:
    """One message of a ticket as `intake tickets show --json` prints it (and the API)."""
    return {
        "channel": m.channel,
        "direction": m.direction,
        "sender": m.sender,
        "subject": m.subject,
        "text": m.text,
        "received_at": iso_time(m.received_at),
        "attachments": list(m.attachments),
        "problems": list(m.problems),
        "extra": m.extra,
    }
