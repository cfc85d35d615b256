"""The database schema: SQLAlchemy 2 typed models. Alembic migrations are generated from these.

Times are stored in UTC (`TZDateTime` refuses naive values and gives back aware ones on every
dialect). Relationships are `lazy="raise"`: repositories say what they load.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Ids are BIGINT on PostgreSQL; SQLite needs INTEGER for its rowid alias to autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class TZDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC. SQLite keeps no offset, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: TZDateTime(),
        date: Date(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    plan: Mapped[str] = mapped_column(String(64))
    policy: Mapped[str | None] = mapped_column(String(500))
    support_start: Mapped[date | None]
    region: Mapped[str | None] = mapped_column(String(64))
    domains: Mapped[list[Domain]] = relationship(back_populates="organization", lazy="raise")
    contacts: Mapped[list[Contact]] = relationship(back_populates="organization", lazy="raise")


class Domain(Base):
    __tablename__ = "domains"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    organization: Mapped[Organization] = relationship(back_populates="domains", lazy="raise")


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True)
    telegram: Mapped[str | None] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    organization: Mapped[Organization] = relationship(back_populates="contacts", lazy="raise")


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_open_response", "status", "first_response_due"),
        Index("ix_tickets_open_resolution", "status", "resolution_due"),
        Index("ix_tickets_sender_channel", "sender", "channel", "status"),
        Index("ix_tickets_organization_received", "organization_id", "received_at"),
        # SLA reports read one window of received tickets, whatever the organization.
        Index("ix_tickets_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL")
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    sender: Mapped[str] = mapped_column(String(320))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    reply_to: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    status: Mapped[str] = mapped_column(String(16), default="open")
    contact_status: Mapped[str] = mapped_column(String(16))
    policy: Mapped[str] = mapped_column(String(500))
    plan: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(64))
    severity: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(32))
    urgent: Mapped[bool]
    flags: Mapped[list[str]]
    received_at: Mapped[datetime]
    clock_starts: Mapped[datetime | None]
    first_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    on_hold_at: Mapped[datetime | None]  # waiting for the customer since
    closed_at: Mapped[datetime | None]
    last_message_at: Mapped[datetime]
    decision: Mapped[dict[str, Any]]
    # The agent (email) who has the ticket; SLA warnings go to them too. None: unassigned.
    assignee: Mapped[str | None] = mapped_column(String(320), index=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("channel", "channel_message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    channel_message_id: Mapped[str] = mapped_column(String(998))
    rfc_message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # "in" or "out"
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    text: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    # A large mail's raw bytes are in `blobs` under this digest (`raw` is then empty): SQLite
    # writes a blob in place only as a record's last column, and `raw` is not this one's.
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    problems: Mapped[list[str]]
    # Channel facts: a call-back number and window, a recording URL, a Telegram chat id.
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=sql_text("'{}'"))
    received_at: Mapped[datetime]


class Blob(Base):
    """Attachment bytes, content-addressed: kept out of the attachment rows, stored once."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)


class Outbox(Base):
    """Acknowledgements and alerts, written in the ticket's transaction, sent afterwards."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # The per-sender acknowledgement limit counts a recipient's recent notices.
        Index("ix_outbox_recipient_created", "recipient", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # ack, endorse, alert
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Setting(Base):
    """Values every node must share, such as the threading secret made on first start."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MailboxState(Base):
    """Where IMAP polling of one mailbox folder stands (RFC 3501 UIDVALIDITY and last UID)."""

    __tablename__ = "mailbox_state"

    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)  # user@host:port/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class Suppression(Base):
    """Addresses no automatic mail goes to until `until` (they bounced hard)."""

    __tablename__ = "suppressions"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime]
    created_at: Mapped[datetime]


class Agent(Base):
    """A person who answers tickets: logs in to the queue page, calls the API."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    # Set by `intake agents deactivate`: no login, no token, no session from then on.
    deactivated_at: Mapped[datetime | None]

    # IANA zone the page shows times in; null: the browser's own zone.
    time_zone: Mapped[str | None] = mapped_column(String(64))


class AgentSession(Base):
    """A logged-in page session, stored only as the hash of its cookie; logging out, or the
    agent's deactivation, deletes it, so the cookie stops working at once."""

    __tablename__ = "agent_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ApiToken(Base):
    """A bearer token for /api/, stored only as its hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class TicketEvent(Base):
    """What happened to a ticket after intake, by whom: responses, changes, holds, closing."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))  # an agent's email, or "system"
    kind: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]]


class SlaAlert(Base):
    """One SLA alert sent: at most one per ticket, deadline and threshold, across restarts and
    nodes (the primary key is the guard)."""

    __tablename__ = "sla_alerts"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    deadline: Mapped[str] = mapped_column(String(32), primary_key=True)  # first_response, ...
    threshold: Mapped[str] = mapped_column(String(16), primary_key=True)  # "75%", "breach"
    at: Mapped[datetime]


class WebhookToken(Base):
    """A signed post's token and the digest of the message it came with: a token seen again
    is good only with the same message (Mailgun's signature does not cover the body)."""

    __tablename__ = "webhook_tokens"

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    token: Mapped[str] = mapped_column(String(128), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the message, hex
    seen_at: Mapped[datetime] = mapped_column(index=True)


class EndorsementRequest(Base):
    """A request its organization's nominated contact is asked to endorse, in the next digest
    (one per organization and period: their inbox is not flooded). `digest_at` is when a
    digest covered it; null while it waits."""

    __tablename__ = "endorsement_requests"
    __table_args__ = (Index("ix_endorsement_requests_pending", "organization_id", "digest_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    requester: Mapped[str] = mapped_column(String(320))  # our contact's name, or the address
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)  # "" when the sender is not authenticated
    created_at: Mapped[datetime]
    digest_at: Mapped[datetime | None]
