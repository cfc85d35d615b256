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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.desk.agents import AgentIdentity
from intake.errors import InputRefusedError
from intake.messages import Attachment

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # all of a reply's files together


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


@dataclass
class NewerMessagesError(ConversationError):
    """Messages newer than the one the agent saw: read them first (timeline entries)."""

    newer: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        ConversationError.__init__(
            self, f"{len(self.newer)} newer message(s) on the ticket; read them first"
        )


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
    raise NotImplementedError


async def add_note(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    text: str,
    *,
    now: datetime,
) -> dict[str, Any]:
    """An internal note on the timeline, never sent; the stored timeline entry."""
    raise NotImplementedError


async def timeline(
    sessions: async_sessionmaker[AsyncSession], ticket_id: int, *, zone: str | None = None
) -> list[dict[str, Any]]:
    """Every message, acknowledgement, reply, note, alert and event of the ticket, oldest
    first. Each entry: id, at (in `zone`, else UTC), direction in|out, kind
    customer|ack|reply|note|alert|machine|event, author, text, delivery (queued|sent|failed,
    with `reason`) for outgoing ones, files [{id, name, size, content_type}]."""
    raise NotImplementedError


async def attachment(
    sessions: async_sessionmaker[AsyncSession], ticket_id: int, attachment_id: int
) -> tuple[str, str, bytes]:
    """(name, content type, bytes) of one attachment of the ticket's messages."""
    raise NotImplementedError
