"""What the desk's conversation reads and writes: a ticket's messages with their files and
their notices' delivery, the customer's latest message, and attachment bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Attachment, Blob, Message, Outbox, Ticket


@dataclass(frozen=True, slots=True)
class FileView:
    id: int
    name: str
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class MessageRow:
    id: int
    channel: str
    channel_message_id: str
    rfc_message_id: str | None
    direction: str  # in, out (an agent's reply), note, report (a delivery report)
    sender: str
    subject: str
    text: str
    received_at: datetime
    extra: dict[str, Any]
    files: tuple[FileView, ...]


@dataclass(frozen=True, slots=True)
class NoticeRow:
    id: int
    kind: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    status: str  # pending, sent, failed
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """A ticket as a reply needs it."""

    id: int
    channel: str
    sender: str
    sender_name: str
    reply_to: str
    subject: str
    status: str
    first_response_at: datetime | None


async def reply_target(session: AsyncSession, ticket_id: int) -> ReplyTarget | None:
    t = await session.get(Ticket, ticket_id)
    if t is None:
        return None
    return ReplyTarget(
        t.id, t.channel, t.sender, t.sender_name, t.reply_to, t.subject, t.status,
        t.first_response_at,
    )  # fmt: skip


def _rows(found: Sequence[Message], files: dict[int, list[FileView]]) -> list[MessageRow]:
    return [
        MessageRow(
            m.id,
            m.channel,
            m.channel_message_id,
            m.rfc_message_id,
            m.direction,
            m.sender,
            m.subject,
            m.text,
            m.received_at,
            dict(m.extra),
            tuple(files.get(m.id, ())),
        )
        for m in found
    ]


async def messages(
    session: AsyncSession, ticket_id: int, *, after: int | None = None
) -> list[MessageRow]:
    """The ticket's messages oldest first (only those with an id above `after`), with files."""
    query = select(Message).where(Message.ticket_id == ticket_id)
    if after is not None:
        query = query.where(Message.id > after)
    found = list(await session.scalars(query.order_by(Message.id)))
    files: dict[int, list[FileView]] = {}
    if found:
        rows = await session.execute(
            select(Attachment)
            .where(Attachment.message_id.in_([m.id for m in found]))
            .order_by(Attachment.id)
        )
        for (a,) in rows:
            files.setdefault(a.message_id, []).append(
                FileView(a.id, a.filename, a.size, a.content_type)
            )
    return _rows(found, files)


async def message_by_key(
    session: AsyncSession, ticket_id: int, channel_message_id: str
) -> int | None:
    """The id of the ticket's message stored under that key (an agent's reply), if any."""
    found = await session.scalar(
        select(Message.id).where(
            Message.ticket_id == ticket_id, Message.channel_message_id == channel_message_id
        )
    )
    return None if found is None else int(found)


async def notices(session: AsyncSession, ticket_id: int) -> list[NoticeRow]:
    rows = await session.scalars(
        select(Outbox).where(Outbox.ticket_id == ticket_id).order_by(Outbox.id)
    )
    return [
        NoticeRow(
            o.id,
            o.kind,
            o.channel,
            o.recipient,
            dict(o.payload),
            o.status,
            o.last_error,
            o.created_at,
            o.sent_at,
        )
        for o in rows
    ]


async def set_extra(session: AsyncSession, message_id: int, extra: dict[str, Any]) -> None:
    await session.execute(update(Message).where(Message.id == message_id).values(extra=extra))


async def file_of(
    session: AsyncSession, ticket_id: int, attachment_id: int
) -> tuple[str, str, bytes] | None:
    """(name, content type, bytes) of an attachment of one of the ticket's messages."""
    row = (
        await session.execute(
            select(Attachment.filename, Attachment.content_type, Blob.data)
            .join(Message, Attachment.message_id == Message.id)
            .join(Blob, Attachment.sha256 == Blob.sha256)
            .where(Attachment.id == attachment_id, Message.ticket_id == ticket_id)
        )
    ).first()
    return None if row is None else (row[0], row[1], bytes(row[2]))


async def files_by_id(
    session: AsyncSession, attachment_ids: Sequence[int]
) -> list[tuple[str, str, bytes]]:
    """(name, content type, bytes) of attachments, in the order of `attachment_ids`."""
    if not attachment_ids:
        return []
    rows = await session.execute(
        select(Attachment.id, Attachment.filename, Attachment.content_type, Blob.data)
        .join(Blob, Attachment.sha256 == Blob.sha256)
        .where(Attachment.id.in_(list(attachment_ids)))
    )
    found = {r[0]: (r[1], r[2], bytes(r[3])) for r in rows}
    return [found[i] for i in attachment_ids if i in found]


async def move_messages(session: AsyncSession, from_id: int, into_id: int) -> int:
    """Move a ticket's messages and notices to another ticket (a merge); how many messages."""
    moved = await session.execute(
        update(Message).where(Message.ticket_id == from_id).values(ticket_id=into_id)
    )
    await session.execute(
        update(Outbox).where(Outbox.ticket_id == from_id).values(ticket_id=into_id)
    )
    return int(getattr(moved, "rowcount", 0) or 0)


async def assignee_of(session: AsyncSession, ticket_id: int) -> str | None:
    found = await session.scalar(select(Ticket.assignee).where(Ticket.id == ticket_id))
    return None if found is None else str(found)


async def cancel_notices(
    session: AsyncSession, ticket_id: int, kinds: Sequence[str], reason: str
) -> int:
    """Pending notices of those kinds for the ticket are not sent after all; how many."""
    done = await session.execute(
        update(Outbox)
        .where(
            Outbox.ticket_id == ticket_id,
            Outbox.status == "pending",
            Outbox.kind.in_(list(kinds)),
        )
        .values(status="cancelled", last_error=reason)
    )
    return int(getattr(done, "rowcount", 0) or 0)
