"""The intake pipeline: identify -> thread -> classify -> decide -> store -> queue notices.

One transaction per inbound message. The `Receipt` is returned only after it has committed,
and adapters confirm on their wire only then. A message seen before (same channel and
channel message id) returns the existing ticket and queues nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import Environment
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classifier import Classification, RuleSet, classify
from intake import acks, references
from intake.decide import ContactStatus, Decision, Identity, add_months, decide, support_period
from intake.errors import TransientError
from intake.messages import ChannelKind, InboundMessage, Receipt, ReceiptStatus
from intake.policy import Policy, compute_deadlines
from intake.policy_file import load_policy
from storage import contacts, outbox, tickets
from storage.contacts import Match

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    default_policy: str
    mailbox: str  # our address: acknowledgements come from it, replies go to it
    our_domains: frozenset[str] = frozenset()
    follow_up_window: timedelta = timedelta(hours=24)
    acks_per_sender_per_hour: int = 5
    notify_emails: tuple[str, ...] = ()
    notify_telegram: tuple[int, ...] = ()

    @property
    def message_domain(self) -> str:
        return self.mailbox.rpartition("@")[2] or "localhost"


@dataclass
class Pipeline:
    """The `Intake` every channel adapter calls."""

    sessions: async_sessionmaker[AsyncSession]
    rules: RuleSet
    options: PipelineOptions
    secret: bytes
    templates: Environment = field(default_factory=acks.environment)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def __call__(self, message: InboundMessage) -> Receipt:
        try:
            async with self.sessions.begin() as session:
                return await self._intake(session, message)
        except IntegrityError:
            # Two deliveries of one message raced; the other one committed first.
            async with self.sessions.begin() as session:
                found = await tickets.ticket_of_message(
                    session, str(message.channel), message.channel_message_id
                )
            if found is None:
                raise
            return Receipt(ReceiptStatus.DUPLICATE, found, references.format_reference(found))
        except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
            raise TransientError(f"storage unavailable: {type(exc).__name__}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise TransientError("storage connection lost") from exc
            raise

    async def _intake(self, session: AsyncSession, message: InboundMessage) -> Receipt:
        channel = str(message.channel)
        seen = await tickets.ticket_of_message(session, channel, message.channel_message_id)
        if seen is not None:
            return Receipt(ReceiptStatus.DUPLICATE, seen, references.format_reference(seen))
        identity = await identify(session, message)
        found = classify(
            message.subject,
            message.text,
            message.headers,
            self.rules,
            channel=channel,
            envelope_sender=message.envelope_sender,
        )
        thread = await self._thread(session, message, identity)
        if thread is not None:
            await self._follow_up(session, thread, message, found)
            return Receipt(
                ReceiptStatus.FOLLOW_UP, thread.id, references.format_reference(thread.id)
            )
        ticket_id = await self._open(session, message, identity, found)
        return Receipt(ReceiptStatus.ACCEPTED, ticket_id, references.format_reference(ticket_id))

    async def _thread(
        self, session: AsyncSession, message: InboundMessage, identity: Identity
    ) -> tickets.TicketState | None:
        """The existing ticket this message continues, if any (hijack-resistant)."""
        hints = (*message.thread_hints, message.subject)
        for ticket_id in references.verified_tickets(self.secret, hints):
            ticket = await tickets.get_ticket(session, ticket_id)
            if ticket is not None:
                return ticket
        for ticket_id in references.references_in(message.subject):
            ticket = await tickets.get_ticket(session, ticket_id)
            if ticket is not None and _same_party(ticket, message, identity):
                return ticket
        if message.channel is ChannelKind.EMAIL:
            ids = [h.strip("<>") for h in message.thread_hints if "@" in h]
            return await tickets.ticket_by_message_ids(session, ids)
        since = message.received_at - self.options.follow_up_window
        return await tickets.open_ticket_of_sender(
            session, message.sender, channel_of(message), since
        )

    async def _follow_up(
        self,
        session: AsyncSession,
        ticket: tickets.TicketState,
        message: InboundMessage,
        found: Classification,
    ) -> None:
        await tickets.insert_message(session, ticket.id, message)
        changes: dict[str, Any] = {"last_message_at": message.received_at}
        if ticket.status != "open":
            changes["status"] = "open"  # the customer answered: back in the queue
        policy = load_policy(ticket.policy)
        raised = _raised_priority(policy, ticket, found)
        if raised is not None and ticket.plan is not None:
            deadlines = compute_deadlines(policy, ticket.plan, raised, ticket.received_at)
            decision = dict(ticket.decision)
            decision["raised"] = [
                *decision.get("raised", []),
                {
                    "from": ticket.priority,
                    "to": raised,
                    "rule": "urgent marker in a follow-up",
                    "message": message.channel_message_id,
                    "at": message.received_at.isoformat(),
                },
            ]
            decision["deadlines"] = list(deadlines.explanation)
            changes.update(
                priority=raised,
                urgent=True,
                first_response_due=deadlines.first_response_due,
                resolution_due=deadlines.resolution_due,
                decision=decision,
            )
        await tickets.update_ticket(session, ticket.id, **changes)
        if raised is not None:
            await self._alert(
                session,
                ticket.id,
                ["raised to " + raised],
                {
                    "reference": references.format_reference(ticket.id),
                    "organization": None,
                    "sender": message.sender,
                    "contact_status": "",
                    "channel": str(message.channel),
                    "priority": raised,
                    "severity": None,
                    "subject": message.subject,
                    "first_line": _first_line(message.text),
                    "first_response_due": None,
                },
            )

    async def _open(
        self,
        session: AsyncSession,
        message: InboundMessage,
        identity: Identity,
        found: Classification,
    ) -> int:
        policy_ref = identity.policy or self.options.default_policy
        policy = load_policy(policy_ref)
        used = await _tickets_in_period(session, policy, identity, message.received_at)
        decision = decide(
            policy, identity, message.channel, found, message.received_at, tickets_in_period=used
        )
        deadlines = decision.deadlines
        ticket_id = await tickets.insert_ticket(
            session,
            organization_id=identity.organization_id,
            contact_id=identity.contact_id,
            channel=channel_of(message),
            sender=message.sender,
            sender_name=message.sender_name[:200],
            reply_to=message.reply_to or message.sender,
            subject=message.subject[:998],
            status="open",
            contact_status=identity.status,
            policy=policy_ref,
            plan=decision.plan,
            priority=decision.priority,
            severity=decision.severity,
            category=str(found.category),
            urgent=found.urgent,
            flags=list(decision.flags)
            + (["unparseable"] if "unparseable" in message.problems else []),
            received_at=message.received_at,
            clock_starts=deadlines.clock_starts if deadlines else None,
            first_response_due=deadlines.first_response_due if deadlines else None,
            resolution_due=deadlines.resolution_due if deadlines else None,
            last_message_at=message.received_at,
            decision=decision.record,
        )
        await tickets.insert_message(session, ticket_id, message)
        await self._notify(session, ticket_id, message, identity, found, policy, decision)
        return ticket_id

    async def _notify(
        self,
        session: AsyncSession,
        ticket_id: int,
        message: InboundMessage,
        identity: Identity,
        found: Classification,
        policy: Policy,
        decision: Decision,
    ) -> None:
        reference = references.format_reference(ticket_id)
        why_not = await self._no_ack_reason(session, message, found)
        if why_not is None:
            await self._ack(session, ticket_id, message, identity, found, policy, decision)
        else:
            log.info("no acknowledgement for %s: %s", reference, why_not)
        if "not_nominated" in decision.flags and identity.organization_id is not None:
            await self._endorse(
                session, ticket_id, message, identity.organization_id, identity.organization or ""
            )
        reasons = _alert_reasons(found, decision)
        if reasons:
            deadlines = decision.deadlines
            await self._alert(
                session,
                ticket_id,
                reasons,
                {
                    "reference": reference,
                    "organization": identity.organization,
                    "sender": message.sender,
                    "contact_status": identity.status,
                    "channel": str(message.channel),
                    "priority": decision.priority,
                    "severity": decision.severity,
                    "subject": message.subject,
                    "first_line": _first_line(message.text),
                    "first_response_due": acks.local_time(
                        deadlines.first_response_due if deadlines else None, policy.zone
                    ),
                },
            )

    async def _no_ack_reason(
        self, session: AsyncSession, message: InboundMessage, found: Classification
    ) -> str | None:
        """Why this sender must not get an acknowledgement (never answer a machine)."""
        recipient = (message.reply_to or message.sender).lower()
        if found.auto_generated:
            return f"machine mail ({found.machine_kind})"
        if message.envelope_sender == "":
            return "null envelope sender"
        if any(name.lower() == acks.LOOP_HEADER.lower() for name, _ in message.headers):
            return "our own loop header"
        if recipient == self.options.mailbox.lower() or (
            "@" in recipient and recipient.rpartition("@")[2] in self.options.our_domains
        ):
            return "our own address"
        since = self.clock() - timedelta(hours=1)
        if (
            await outbox.notices_to(session, recipient, since)
            >= self.options.acks_per_sender_per_hour
        ):
            return "rate limit for this sender"
        return None

    async def _ack(
        self,
        session: AsyncSession,
        ticket_id: int,
        message: InboundMessage,
        identity: Identity,
        found: Classification,
        policy: Policy,
        decision: Decision,
    ) -> None:
        reference = references.format_reference(ticket_id)
        support_end = None
        if policy.support_period_months and identity.support_start:
            support_end = add_months(
                identity.support_start, policy.support_period_months
            ).isoformat()
        rendered = acks.render_ack(
            self.templates,
            policy=policy,
            reference=reference,
            identity=identity,
            channel=message.channel,
            subject=message.subject,
            sender=message.sender,
            name=message.sender_name,
            found=found,
            decision=decision,
            support_end=support_end,
        )
        payload = self._mail_payload(ticket_id, rendered, message)
        await outbox.enqueue(
            session,
            ticket_id=ticket_id,
            kind="ack",
            channel=str(message.channel),
            recipient=(message.reply_to or message.sender).lower(),
            payload=payload,
            now=self.clock(),
        )

    def _mail_payload(
        self, ticket_id: int, rendered: acks.Rendered, message: InboundMessage | None
    ) -> dict[str, Any]:
        thread = [h.strip("<>") for h in (message.thread_hints if message else ()) if "@" in h]
        own_id = message.rfc_message_id if message else None
        return {
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "reference": references.format_reference(ticket_id),
            "in_reply_to": own_id,
            "references": [*thread[-20:], *([own_id] if own_id else [])],
            "message_id": references.message_id(
                self.secret, ticket_id, uuid.uuid4().int >> 80, self.options.message_domain
            ),
            "reply_to": references.reply_address(self.secret, ticket_id, self.options.mailbox),
        }

    async def _endorse(
        self,
        session: AsyncSession,
        ticket_id: int,
        message: InboundMessage,
        organization_id: int,
        organization: str,
    ) -> None:
        for nominee in await contacts.nominated_contacts(session, organization_id):
            if nominee.email is None:
                continue
            rendered = acks.render_endorse(
                self.templates,
                reference=references.format_reference(ticket_id),
                subject=message.subject,
                nominee=nominee.name,
                requester=message.sender_name or message.sender,
                organization=organization,
                channel=message.channel,
            )
            await outbox.enqueue(
                session,
                ticket_id=ticket_id,
                kind="endorse",
                channel="email",
                recipient=nominee.email,
                payload=self._mail_payload(ticket_id, rendered, None),
                now=self.clock(),
            )

    async def _alert(
        self, session: AsyncSession, ticket_id: int, reasons: list[str], context: dict[str, Any]
    ) -> None:
        rendered = acks.render_alert(self.templates, reasons=reasons, **context)
        payload = {
            "subject": rendered.subject,
            "text": rendered.text,
            "reference": context["reference"],
        }
        targets = [("email", e) for e in self.options.notify_emails] + [
            ("telegram", str(chat)) for chat in self.options.notify_telegram
        ]
        for channel, recipient in targets:
            await outbox.enqueue(
                session,
                ticket_id=ticket_id,
                kind="alert",
                channel=channel,
                recipient=recipient,
                payload=payload,
                now=self.clock(),
            )


def channel_of(message: InboundMessage) -> str:
    return str(message.channel)


def _same_party(ticket: tickets.TicketState, message: InboundMessage, identity: Identity) -> bool:
    """May this sender add to that ticket by naming its reference? Only its own people."""
    if ticket.sender == message.sender:
        return True
    return ticket.organization_id is not None and ticket.organization_id == identity.organization_id


def _raised_priority(
    policy: Policy, ticket: tickets.TicketState, found: Classification
) -> str | None:
    """The priority an urgent follow-up raises the ticket to, if it is higher."""
    target = policy.priorities.urgent
    if found.subject_priority and found.subject_priority in policy.priorities.subject_prefixes:
        target = policy.priorities.subject_prefixes[found.subject_priority]
    elif not found.urgent:
        return None
    if target is None or ticket.priority not in policy.priorities.order:
        return None
    if policy.priorities.rank(target) > policy.priorities.rank(ticket.priority):
        return target
    return None


def _alert_reasons(found: Classification, decision: Decision) -> list[str]:
    reasons = []
    if found.urgent:
        reasons.append("urgent")
    if decision.severity == 1:
        reasons.append("severity 1")
    if "on_call" in decision.flags:
        reasons.append("on call")
    return reasons


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


async def _tickets_in_period(
    session: AsyncSession, policy: Policy, identity: Identity, received: datetime
) -> int:
    plan = policy.plans.get(identity.plan) if identity.plan else None
    if identity.organization_id is None or plan is None or plan.quota is None:
        return 0
    begin, end = support_period(
        identity.support_start, policy.support_period_months or 12, received.date()
    )
    as_utc = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in (begin, end)]
    return await tickets.count_organization_tickets(session, identity.organization_id, *as_utc)


async def identify(session: AsyncSession, message: InboundMessage) -> Identity:
    """Match the sender to a contact, or to an organization by its mail domain."""
    match = await _match(session, message)
    if match is None:
        return Identity(ContactStatus.UNIDENTIFIED)
    org, contact = match.organization, match.contact
    status = ContactStatus.KNOWN
    if contact is not None and contact.role in (ContactStatus.NOMINATED, ContactStatus.DESIGNATED):
        status = contact.role
    return Identity(
        status=status,
        organization_id=org.id,
        organization=org.name,
        plan=org.plan,
        policy=org.policy,
        region=org.region,
        support_start=org.support_start,
        contact_id=contact.id if contact else None,
        contact_name=contact.name if contact else None,
        matched_by=match.matched_by,
    )


async def _match(session: AsyncSession, message: InboundMessage) -> Match | None:
    sender = message.sender
    if sender.startswith("tg:"):
        candidates = [("telegram", sender[3:])]
        username = message.extra.get("telegram_username")
        if isinstance(username, str) and username:
            candidates.append(("telegram", username.lower().lstrip("@")))
    elif sender.startswith("+"):
        candidates = [("phone", sender)]
    else:
        candidates = [("email", sender.lower())]
    for key in ("email", "phone"):  # facts a form or a shared contact card added
        value = message.extra.get(key)
        if isinstance(value, str) and value:
            candidates.append((key, value.lower() if key == "email" else value))
    for column, value in candidates:
        match = await contacts.match_sender(session, column, value)
        if match is not None:
            return match
    for column, value in candidates:
        if column == "email" and "@" in value:
            match = await contacts.match_domain(session, value.rpartition("@")[2])
            if match is not None:
                return match
    return None
