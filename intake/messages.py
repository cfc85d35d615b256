"""The value types that cross package lines. A leaf: imports nothing of ours.

Adapters build an `InboundMessage` from a wire event and await the pipeline's `Receipt`
before confirming on the wire; the pipeline hands back `Ack`s for the outbound side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class ChannelKind(StrEnum):
    """Where a request came in; also the channel its acknowledgement goes back on."""

    EMAIL = "email"
    WHATSAPP = "whatsapp"
    SMS = "sms"
    TELEGRAM = "telegram"
    VOICE = "voice"
    WEB = "web"


class Spooled(Protocol):
    """Bytes kept in a file instead of memory (a large mail, its attachments), read back in
    chunks so that storing them never holds them whole."""

    @property
    def size(self) -> int: ...

    @property
    def sha256(self) -> str: ...  # hex digest of the bytes

    def chunks(self) -> Iterator[bytes]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes  # b"" when `spooled` holds the bytes
    spooled: Spooled | None = None

    @property
    def size(self) -> int:
        return self.spooled.size if self.spooled is not None else len(self.data)


@dataclass(frozen=True, slots=True)
class Authenticity:
    """Whether the sender's From domain was authenticated (DMARC, DKIM, SPF), and the evidence.

    `verdict` is "pass", "fail" or "none" (nothing known); see `intake.pipeline.authenticity`.
    """

    verdict: str = "none"
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SpamVerdict:
    """What a spam engine said of one message (`intake.spam`).

    `verdict` is "spam" (over the threshold), "ham", or "unavailable" (the engine was away,
    slow or confused: intake goes on without it and the decision record says so).
    """

    verdict: str
    engine: str
    score: float | None = None
    threshold: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """One request as it came off a wire, normalized; `raw` keeps the original bytes."""

    channel: ChannelKind
    channel_message_id: str  # Message-ID / MessageSid / update_id: the idempotency key
    received_at: datetime  # aware UTC, from an injected clock
    sender: str  # addr-spec lower-cased / E.164 / "tg:<user_id>"
    sender_name: str = ""
    reply_to: str = ""  # where the acknowledgement goes, when not `sender` (Reply-To)
    ack_channel: ChannelKind | None = None  # how it goes, when not `channel` (web form: email)
    subject: str = ""
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    references: tuple[str, ...] = ()  # In-Reply-To and References: the thread's Message-IDs
    thread_hints: tuple[str, ...] = ()  # those and the recipient addresses (tokened replies)
    rfc_message_id: str | None = None  # the email's own Message-ID (for later threading)
    headers: tuple[tuple[str, str], ...] = ()  # what the classifier's machine-mail rules read
    envelope_sender: str | None = None  # SMTP MAIL FROM; "" is the null sender <>
    problems: tuple[str, ...] = ()  # parse problems worth flagging ("unparseable", ...)
    # Of the From domain: the email channels set it; "none" elsewhere.
    authenticity: Authenticity = field(default_factory=Authenticity)
    raw: bytes = b""
    raw_spooled: Spooled | None = None  # a large mail's raw bytes, kept in a file (`raw` empty)
    extra: dict[str, Any] = field(default_factory=dict)  # channel facts kept on the ticket
    spam: SpamVerdict | None = None  # set before the pipeline when a spam engine is configured

    def raw_bytes(self) -> bytes:
        """The raw bytes, a spooled mail's read whole from its file: for the checks that need
        them all at once (DKIM, a spam engine), which are off by default."""
        if self.raw_spooled is None:
            return self.raw
        return b"".join(self.raw_spooled.chunks())


class ReceiptStatus(StrEnum):
    ACCEPTED = "accepted"  # a new ticket
    FOLLOW_UP = "follow_up"  # added to an existing ticket
    DUPLICATE = "duplicate"  # seen before: nothing new stored or sent
    REPORT = "report"  # a delivery report about one of our notices, kept on its ticket


@dataclass(frozen=True, slots=True)
class Receipt:
    """The pipeline's answer, given only after the transaction has committed."""

    status: ReceiptStatus
    ticket_id: int
    reference: str


class Intake(Protocol):
    """What every adapter calls, and awaits, before it confirms receipt on its wire.

    Raises `InputRefusedError` for input that can never be accepted and `TransientError` when
    the sender should try again later (the database is away).
    """

    async def __call__(self, message: InboundMessage) -> Receipt: ...


class Channel(Protocol):
    """The inbound side of one wire (SMTP, IMAP, the web app, Telegram polling)."""

    name: str

    async def start(self, intake: Intake) -> None:
        """Bind or connect; return once serving. Raise if that is impossible."""

    async def stop(self) -> None:
        """Stop accepting, finish what was accepted (its receipts), and close."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """One outbound notice (acknowledgement, endorsement request, agent alert, an agent's
    reply) to deliver."""

    outbox_id: int
    kind: str  # "ack", "endorse", "alert", "reply"
    channel: ChannelKind
    to: str
    subject: str
    text: str
    html: str = ""
    reference: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    message_id: str | None = None  # ours, carrying the threading token
    reply_to: str | None = None  # our plus-address carrying the token
    # An agent's reply (kind "reply"): its files, and for WhatsApp outside the 24-hour window
    # the approved template sent instead (Twilio Content API: ContentSid, ContentVariables).
    files: tuple[Attachment, ...] = ()
    content_sid: str = ""
    content_variables: str = ""  # JSON object, e.g. {"1": "Jo", "2": "SUP-000123"}


class Replier(Protocol):
    """The outbound side of one channel kind.

    `send` raises `TransientChannelError` to be retried later and `PermanentChannelError`
    when the notice can never be delivered as addressed.
    """

    async def send(self, ack: Ack) -> None: ...
