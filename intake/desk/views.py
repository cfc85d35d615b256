"""Tickets and messages as agents read them: one JSON shape for the CLI and the API, and the
entries of a ticket's timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from intake.pipeline import references
from storage import tickets
from storage.conversation import MessageRow, NoticeRow


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
        "received_at": iso_time(t.received_at),
        "first_response_due": iso_time(t.first_response_due),
        "resolution_due": iso_time(t.resolution_due),
        "flags": list(t.flags),
        "message_count": t.message_count,
        "first_response_at": iso_time(t.first_response_at),
        "resolved_at": iso_time(t.resolved_at),
        "assignee": t.assignee,
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


# The timeline's delivery states, from the outbox's.
DELIVERY = {"pending": "queued", "sent": "sent", "failed": "failed", "cancelled": "failed"}
NOTICE_KINDS = {"ack": "ack", "endorse": "alert", "alert": "alert"}


def message_entry(
    m: MessageRow, notices: dict[int, NoticeRow], zone: Any, *, machine: bool = False
) -> dict[str, Any]:
    """A message as a timeline entry; `machine`: the ticket is machine mail, not a request."""
    kind = str(m.extra.get("kind") or "")
    if m.direction == "report":
        kind = "machine"  # a delivery report about one of our notices
    elif kind not in ("reply", "note"):
        kind = "machine" if machine else "customer"
    delivery: tuple[str | None, str | None] = (None, None)
    if kind == "reply":
        notice = notices.get(int(m.extra.get("outbox_id") or 0))
        delivery = delivery_of(notice) if notice else ("queued", None)
    return {
        "id": m.id,
        "at": m.received_at.astimezone(zone).isoformat(),
        "direction": "in" if m.direction in ("in", "report") else "out",
        "kind": kind,
        "author": m.extra.get("author") if kind in ("reply", "note") else m.sender,
        "channel": m.channel,
        "subject": m.subject,
        "text": m.text,
        "delivery": delivery[0],
        "delivery_reason": delivery[1],
        "files": [
            {"id": f.id, "name": f.name, "size": f.size, "content_type": f.content_type}
            for f in m.files
        ],
    }


def delivery_of(notice: NoticeRow) -> tuple[str, str | None]:
    """(queued | sent | failed, the reason it failed)."""
    state = DELIVERY.get(notice.status, "queued")
    return state, (notice.last_error or notice.status) if state == "failed" else None


def notice_entry(n: NoticeRow, zone: Any) -> dict[str, Any]:
    return {
        "id": f"notice-{n.id}",
        "at": n.created_at.astimezone(zone).isoformat(),
        "direction": "out",
        "kind": NOTICE_KINDS.get(n.kind, "alert"),
        "author": "system",
        "channel": n.channel,
        "subject": str(n.payload.get("subject", "")),
        "text": str(n.payload.get("text", "")),
        "delivery": delivery_of(n)[0],
        "delivery_reason": delivery_of(n)[1],
        "files": [],
        "to": n.recipient,
    }


def event_text(kind: str, details: dict[str, Any]) -> str:
    reason = details.get("reason")
    text = kind.replace("_", " ")
    return f"{text}: {reason}" if reason else text
