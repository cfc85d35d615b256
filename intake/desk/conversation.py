"""The conversation on a ticket: agents' replies and notes, and the one timeline.

A reply is stored as an outgoing message of the ticket and queued in the outbox (kind
"reply") in the same transaction, so it is delivered like an acknowledgement (retries,
delivery state) on the ticket's channel: by mail threaded to the customer's latest message
and carrying our tokened reply address, by Twilio, or by the bot. A note is stored the same
way but never queued. Nothing is sent twice: each reply has an idempotency key, unique among
the messages, and a reply composed before a newer customer message or another agent's reply
is refused with those messages (`NewerMessagesError`), never sent blindly.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.desk.actions import TicketNotFoundError, storage_errors
from intake.desk.agents import AgentIdentity
from intake.desk.views import event_text, message_entry, notice_entry
from intake.errors import InputRefusedError
from intake.messages import Attachment, ChannelKind, InboundMessage
from intake.pipeline import references
from storage import agents as agent_repo
from storage import conversation as repo
from storage import outbox, tickets
from storage.conversation import MessageRow, ReplyTarget

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # all of a reply's files together
MAX_TEXT = 50_000  # characters of a reply or note
MAX_FILES = 10
WHATSAPP_WINDOW = timedelta(hours=24)  # Meta's customer-service window


@dataclass(frozen=True, slots=True)
class ReplyOptions:
    """What replies need from the configuration: our address, the threading secret, ..."""

    mailbox: str  # `[outbound.smtp] from`: replies come from it, answers come back to it
    secret: bytes  # the threading secret (tokened Message-ID and reply address)
    whatsapp_template_sid: str = ""  # `[twilio] whatsapp_template_sid`: outside the 24 h
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES  # `[desk] max_attachment_bytes`


class ConversationError(InputRefusedError):
    """A reply that cannot go now; the API answers 409 with the reason."""


class WindowClosedError(ConversationError):
    """WhatsApp's 24-hour customer-service window is closed and no template is configured."""


class NewerMessagesError(ConversationError):
    """Messages newer than the one the agent saw: read them first (timeline entries)."""

    def __init__(self, newer: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(newer)} newer message(s) on the ticket; read them first")
        self.newer = newer


class AttachmentNotFoundError(InputRefusedError):
    """No such attachment on that ticket."""


async def reply(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    text: str,
    *,
    now: datetime,
    options: ReplyOptions,
    files: Sequence[Attachment] = (),
    after: int | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """Queue an agent's public answer on the ticket's channel; the stored timeline entry.

    `after` is the id of the newest timeline message the agent saw: a newer customer message
    or another agent's reply raises `NewerMessagesError`. `key` (or, without one, `after` and
    the text) makes the call idempotent: the same reply again returns the stored one.
    The first public reply records the ticket's first response (time and agent).
    """
    text = _checked_text(text)
    files = _checked_files(files, options.max_attachment_bytes)
    unique = _reply_key(ticket_id, agent, text, after, key)
    async with storage_errors(), sessions.begin() as session:
        # Locked: two agents' replies to one ticket are serialized here, so the second one
        # sees the first among the newer messages (FOR UPDATE; SQLite's one writer).
        ticket = await agent_repo.ticket_for_update(session, ticket_id)
        target = await repo.reply_target(session, ticket_id)
        if ticket is None or target is None:
            raise TicketNotFoundError(ticket_id)
        done = await repo.message_by_key(session, ticket_id, unique)
        if done is not None:  # the same reply again (a retried request): not sent twice
            return await _entry(session, ticket_id, done)
        if target.status == "merged":
            raise ConversationError(f"{references.format_reference(ticket_id)} was merged")
        stored = await repo.messages(session, ticket_id)
        if after is not None:
            newer = [m for m in stored if m.id > after and m.direction in ("in", "out")]
            if newer:
                raise NewerMessagesError([message_entry(m, {}, UTC) for m in newer])
        channel, recipient = route(target)
        template = _window(channel, stored, now, options)
        payload = _payload(target, stored, text, options, template)
        message_id = await tickets.insert_message(
            session, ticket_id,
            InboundMessage(
                channel=ChannelKind(channel), channel_message_id=unique, received_at=now,
                sender=agent.email, sender_name=agent.name, subject=payload["subject"],
                text=text, attachments=tuple(files), rfc_message_id=payload.get("message_id"),
            ),
            direction="out",
        )  # fmt: skip
        added = await repo.messages(session, ticket_id, after=message_id - 1)
        payload["files"] = [f.id for f in added[0].files] if added else []
        payload["author"] = agent.email
        outbox_id = await outbox.enqueue(
            session, ticket_id=ticket_id, kind="reply", channel=channel, recipient=recipient,
            payload=payload, now=now,
        )  # fmt: skip
        extra = {"kind": "reply", "author": agent.email, "author_name": agent.name,
                 "to": recipient, "outbox_id": outbox_id, "template": bool(template)}  # fmt: skip
        await repo.set_extra(session, message_id, extra)
        if ticket.first_response_at is None:
            await tickets.update_ticket(session, ticket_id, first_response_at=now)
            await agent_repo.insert_event(
                session, ticket_id, at=now, actor=agent.email, kind="first_response",
                details={"status": ticket.status, "by": "reply", "message": message_id},
            )  # fmt: skip
        return await _entry(session, ticket_id, message_id)


def _checked_text(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise InputRefusedError("the text is empty")
    if len(text) > MAX_TEXT:
        raise InputRefusedError(f"the text is longer than {MAX_TEXT} characters")
    return text


def _checked_files(files: Sequence[Attachment], limit: int) -> list[Attachment]:
    if len(files) > MAX_FILES:
        raise InputRefusedError(f"at most {MAX_FILES} files to a reply")
    total = sum(len(f.data) for f in files)
    if total > limit:
        raise InputRefusedError(f"the files are {total} bytes, over the limit of {limit}")
    checked = []
    for f in files:
        # A name is shown and sent: no path, no control characters, a sane length.
        name = "".join(c for c in f.filename.replace("\\", "/").rpartition("/")[2] if c >= " ")
        kind = f.content_type.strip().lower()
        if "/" not in kind or any(c in kind for c in "\r\n;"):
            kind = "application/octet-stream"
        checked.append(Attachment(filename=name[:200] or "file", content_type=kind, data=f.data))
    return checked


def _reply_key(
    ticket_id: int, agent: AgentIdentity, text: str, after: int | None, key: str | None
) -> str:
    """The reply's idempotency key, unique among messages: the client's, or what it saw and
    wrote (the same agent sending the same text on the same view is the same reply)."""
    basis = f"key\0{key}" if key else f"after\0{after}\0{agent.email}\0{text}"
    digest = hashlib.sha256(f"{ticket_id}\0{basis}".encode()).hexdigest()[:40]
    return f"desk-reply:{ticket_id}:{digest}"


def route(target: ReplyTarget) -> tuple[str, str]:
    """(channel, recipient) a reply to the ticket goes by: its own channel, or for a
    call-back or web-form request the email or phone it gave."""
    if target.channel == ChannelKind.WEB:
        return ("email" if "@" in target.reply_to else "sms"), target.reply_to
    return target.channel, target.reply_to or target.sender


def _window(channel: str, stored: list[MessageRow], now: datetime, options: ReplyOptions) -> str:
    """The WhatsApp template to send instead, outside the 24-hour window; "" inside it."""
    if channel != ChannelKind.WHATSAPP:
        return ""
    last = max(
        (m.received_at for m in stored if m.direction == "in" and m.channel == channel),
        default=None,
    )
    if last is not None and now - last < WHATSAPP_WINDOW:
        return ""
    if options.whatsapp_template_sid:
        return options.whatsapp_template_sid
    raise WindowClosedError(
        "WhatsApp allows free-form replies only within 24 hours of the customer's last "
        "message, and no template ([twilio] whatsapp_template_sid) is configured"
    )


def _payload(
    target: ReplyTarget,
    stored: list[MessageRow],
    text: str,
    options: ReplyOptions,
    template: str,
) -> dict[str, Any]:
    reference = references.format_reference(target.id)
    subject = target.subject.strip() or "Your request"
    if reference.lower() not in subject.lower():
        subject = f"{subject} [{reference}]"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    payload: dict[str, Any] = {"subject": subject[:900], "text": text, "reference": reference}
    customer = [m for m in stored if m.direction == "in" and m.rfc_message_id]
    thread = [m.rfc_message_id.strip("<>") for m in stored if m.rfc_message_id]
    if customer:
        payload["in_reply_to"] = (customer[-1].rfc_message_id or "").strip("<>")
    payload["references"] = list(dict.fromkeys(thread))[-20:]
    domain = options.mailbox.rpartition("@")[2] or "localhost"
    payload["message_id"] = references.message_id(
        options.secret, target.id, uuid.uuid4().int >> 64, domain
    )
    payload["reply_to"] = references.reply_address(options.secret, target.id, options.mailbox)
    if template:
        payload["content_sid"] = template
        payload["content_variables"] = {"1": target.sender_name or "there", "2": reference}
    return payload


async def add_note(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    text: str,
    *,
    now: datetime,
) -> dict[str, Any]:
    """An internal note on the timeline, never sent; the stored timeline entry."""
    text = _checked_text(text)
    async with storage_errors(), sessions.begin() as session:
        target = await repo.reply_target(session, ticket_id)
        if target is None:
            raise TicketNotFoundError(ticket_id)
        message_id = await tickets.insert_message(
            session, ticket_id,
            InboundMessage(
                channel=ChannelKind(target.channel),
                channel_message_id=f"desk-note:{ticket_id}:{uuid.uuid4().hex}",
                received_at=now, sender=agent.email, sender_name=agent.name, text=text,
                extra={"kind": "note", "author": agent.email, "author_name": agent.name},
            ),
            direction="note",  # never "out": nothing delivers it, and nothing counts it sent
        )  # fmt: skip
        return await _entry(session, ticket_id, message_id)


async def _entry(session: AsyncSession, ticket_id: int, message_id: int) -> dict[str, Any]:
    found = await repo.messages(session, ticket_id, after=message_id - 1)
    notices = {n.id: n for n in await repo.notices(session, ticket_id)}
    return message_entry(found[0], notices, UTC)


def _zone(zone: str | None) -> ZoneInfo | Any:
    if not zone:
        return UTC
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputRefusedError(f"unknown time zone {zone!r}") from None


async def timeline(
    sessions: async_sessionmaker[AsyncSession], ticket_id: int, *, zone: str | None = None
) -> list[dict[str, Any]]:
    """Every message, acknowledgement, reply, note, alert and event of the ticket, oldest
    first. Each entry: id, at (in `zone`, else UTC), direction in|out, kind
    customer|ack|reply|note|alert|machine|event, author, text, delivery (queued|sent|failed,
    with `reason`) for outgoing ones, files [{id, name, size, content_type}]. Messages have
    their integer id (what `reply(after=...)` takes); notices and events a string one."""
    where = _zone(zone)
    async with storage_errors(), sessions() as session:
        target = await repo.reply_target(session, ticket_id)
        if target is None:
            raise TicketNotFoundError(ticket_id)
        stored = await repo.messages(session, ticket_id)
        notices = await repo.notices(session, ticket_id)
        events = await agent_repo.ticket_events(session, ticket_id)
    by_id = {n.id: n for n in notices}
    machine = target.status == "machine"
    # At the same instant: what came in, then what it made us send, then what agents did.
    entries = [
        (m.received_at, 0 if m.direction in ("in", "report") else 2, entry)
        for m, entry in ((m, message_entry(m, by_id, where, machine=machine)) for m in stored)
    ]
    entries += [(n.created_at, 1, notice_entry(n, where)) for n in notices if n.kind != "reply"]
    entries += [
        (e.at, 3, {
            "id": f"event-{i}", "at": e.at.astimezone(where).isoformat(), "direction": "out",
            "kind": "event", "author": e.actor, "channel": None, "subject": e.kind,
            "text": event_text(e.kind, e.details), "delivery": None,
            "delivery_reason": None, "files": [],
            "details": e.details,
        })
        for i, e in enumerate(events, 1)
    ]  # fmt: skip
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry for _, _, entry in entries]


async def attachment(
    sessions: async_sessionmaker[AsyncSession], ticket_id: int, attachment_id: int
) -> tuple[str, str, bytes]:
    """(name, content type, bytes) of one attachment of the ticket's messages."""
    async with storage_errors(), sessions() as session:
        found = await repo.file_of(session, ticket_id, attachment_id)
    if found is None:
        raise AttachmentNotFoundError(f"no attachment {attachment_id} on that ticket")
    return found
