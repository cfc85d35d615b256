"""What a new ticket sends, and to whom: acknowledgements, endorsement requests, agent alerts.

Everything here is written to the outbox inside the ticket's transaction; nothing is sent
from this module. It also decides when never to answer (machines, ourselves, too often).
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession

from classifier import Classification
from intake.messages import ChannelKind, InboundMessage
from intake.outbox import acks
from intake.outbox.handover import Handover
from intake.pipeline import references
from intake.pipeline.batch_reads import BatchReads
from intake.pipeline.decide import ContactStatus, Decision, Identity, add_months, is_callback
from intake.policy.model import Policy
from storage import endorsements, outbox, suppressions
from storage.contacts import ContactRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NoticeOptions:
    mailbox: str  # our address: acknowledgements come from it, replies go to it
    our_domains: frozenset[str] = frozenset()
    acks_per_sender_per_hour: int = 5
    # All acknowledgements to senders we cannot identify, together (0: none): a flood of
    # forged Froms cannot make us a reflector beyond this.
    unidentified_acks_per_hour: int = 30
    notify_emails: tuple[str, ...] = ()
    notify_telegram: tuple[int, ...] = ()

    @property
    def message_domain(self) -> str:
        return self.mailbox.rpartition("@")[2] or "localhost"


@dataclass(frozen=True)
class Notifier:
    options: NoticeOptions
    secret: bytes
    templates: Environment
    clock: Callable[[], datetime]
    # This process's deliverer, once attached: a batch's notices go to it as they commit.
    handover: Handover = field(default_factory=Handover, compare=False)
    # When this process queued its last acknowledgements to unidentified senders (see
    # `_unidentified_budget`).
    _unidentified_acks: deque[datetime] = field(
        default_factory=deque, init=False, repr=False, compare=False
    )

    async def new_ticket(
        self,
        session: AsyncSession,
        ticket_id: int,
        message: InboundMessage,
        identity: Identity,
        found: Classification,
        policy: Policy,
        decision: Decision,
        nominees: list[ContactRow],
    ) -> None:
        """Queue what a new ticket sends: `nominees` are asked to endorse it, if flagged."""
        reference = references.format_reference(ticket_id)
        rendered = self._render_ack(ticket_id, message, identity, found, policy, decision)
        why_not = await self.no_ack_reason(session, message, found, identity)
        if why_not is None:
            await self._enqueue(
                session,
                ticket_id=ticket_id,
                kind="ack",
                channel=str(message.ack_channel or message.channel),
                recipient=(message.reply_to or message.sender).lower(),
                payload=self._mail_payload(ticket_id, rendered, message),
                now=self.clock(),
            )
        else:
            log.info("no acknowledgement for %s: %s", reference, why_not)
        if nominees:
            await self._request_endorsement(session, ticket_id, message, identity)
        reasons = _alert_reasons(found, decision, policy)
        if reasons:
            deadlines = decision.deadlines
            await self.alert(
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
                    "first_line": first_line(message.text),
                    "first_response_due": acks.local_time(
                        deadlines.first_response_due if deadlines else None, policy.zone
                    ),
                },
                policy=policy,
            )

    async def no_ack_reason(
        self,
        session: AsyncSession,
        message: InboundMessage,
        found: Classification,
        identity: Identity | None = None,
    ) -> str | None:
        """Why this sender must not get an acknowledgement (never answer a machine, never be
        a reflector). Counts the acknowledgement against the budgets when there is none."""
        recipient = (message.reply_to or message.sender).lower()
        if found.auto_generated:
            return f"machine mail ({found.machine_kind})"
        if identity is not None and identity.sender_check.verdict == "fail":
            # The From is forged, or at least not the writer's: answering it reflects mail
            # to whoever the forger named.
            return "the sender failed authentication"
        if message.envelope_sender == "":
            return "null envelope sender"
        if ("." + recipient.rpartition("@")[2]).endswith(".invalid"):  # RFC 2606: no one
            return "no valid address to write to"
        if any(name.lower() == acks.LOOP_HEADER.lower() for name, _ in message.headers):
            return "our own loop header"
        if recipient == self.options.mailbox.lower() or (
            "@" in recipient and recipient.rpartition("@")[2] in self.options.our_domains
        ):
            return "our own address"
        if await self._is_suppressed(session, recipient):
            return "address suppressed after a hard bounce"
        since = self.clock() - timedelta(hours=1)
        reads = BatchReads.of(session)
        sent = reads.notices_to(recipient, since) if reads is not None else None
        if sent is None:
            sent = await outbox.notices_to(session, recipient, since)
        if sent >= self.options.acks_per_sender_per_hour:
            return "rate limit for this sender"
        by_mail = (message.ack_channel or message.channel) is ChannelKind.EMAIL
        if by_mail and identity is not None and identity.status == ContactStatus.UNIDENTIFIED:
            # A From (or a form's address) names anyone; a chat sender is who the network says.
            if not self._unidentified_budget():
                return "hourly budget of acknowledgements to unidentified senders used up"
        return None

    def _unidentified_budget(self) -> bool:
        """Take one acknowledgement to an unidentified sender from this hour's budget.

        Per process, in memory, as intake.ratelimit's limits are (several nodes send at most
        nodes x budget). A batch that rolls back has used its share: erring towards silence.
        """
        limit = self.options.unidentified_acks_per_hour
        now = self.clock()
        sent = self._unidentified_acks
        while sent and sent[0] <= now - timedelta(hours=1):
            sent.popleft()
        if len(sent) >= limit:
            return False
        sent.append(now)
        return True

    async def _is_suppressed(self, session: AsyncSession, address: str) -> bool:
        now = self.clock()
        reads = BatchReads.of(session)
        known = reads.is_suppressed(address, now) if reads is not None else None
        if known is None:
            return await suppressions.is_suppressed(session, address, now)
        return known

    async def _enqueue(
        self,
        session: AsyncSession,
        *,
        ticket_id: int,
        kind: str,
        channel: str,
        recipient: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        """Into the outbox; in a batch, all of its notices are written in one statement."""
        reads = BatchReads.of(session)
        if reads is None:
            await outbox.enqueue(
                session,
                ticket_id=ticket_id,
                kind=kind,
                channel=channel,
                recipient=recipient,
                payload=payload,
                now=now,
            )
            self.handover.ring_after_commit(session)
            return
        self.handover.mark(session)
        reads.enqueue(
            outbox.outbox_row(
                ticket_id=ticket_id,
                kind=kind,
                channel=channel,
                recipient=recipient,
                payload=payload,
                now=now,
            )
        )

    def _render_ack(
        self,
        ticket_id: int,
        message: InboundMessage,
        identity: Identity,
        found: Classification,
        policy: Policy,
        decision: Decision,
    ) -> acks.Rendered:
        support_end = None
        if policy.support_period_months and identity.support_start:
            end = add_months(identity.support_start, policy.support_period_months)
            support_end = end.isoformat()
        return acks.render_ack(
            self.templates,
            policy=policy,
            reference=references.format_reference(ticket_id),
            identity=identity,
            channel=message.channel,
            subject=message.subject,
            sender=message.sender,
            # The contacts file knows the name when the mail or chat does not give one.
            name=message.sender_name or identity.contact_name or "",
            found=found,
            decision=decision,
            support_end=support_end,
            by_mail=(message.ack_channel or message.channel) is ChannelKind.EMAIL,
            # Mail to someone we cannot identify may go to a forged address: it must not carry
            # the forger's words (a reflected spam subject) to them.
            quote=identity.status != ContactStatus.UNIDENTIFIED and not identity.unverified,
            callback=is_callback(message),
        )

    def _mail_payload(
        self, ticket_id: int, rendered: acks.Rendered, message: InboundMessage | None
    ) -> dict[str, Any]:
        thread = [r.strip("<>") for r in (message.references if message else ())]
        thread = list(dict.fromkeys(r for r in thread if r))
        own_id = message.rfc_message_id if message else None
        return {
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "reference": references.format_reference(ticket_id),
            "in_reply_to": own_id,
            "references": [*thread[-20:], *([own_id] if own_id else [])],
            "message_id": references.message_id(
                self.secret, ticket_id, uuid.uuid4().int >> 88, self.options.message_domain
            ),
            "reply_to": references.reply_address(self.secret, ticket_id, self.options.mailbox),
        }

    async def _request_endorsement(
        self, session: AsyncSession, ticket_id: int, message: InboundMessage, identity: Identity
    ) -> None:
        """Put the ticket on its organization's next endorsement digest (intake.outbox.
        endorsements), if the sender is one we may name to the nominated contact: one that
        passed authentication or is a contact of ours. What it wrote is quoted only when it
        passed: a known address proves nothing by itself."""
        check = identity.sender_check.verdict
        if identity.organization_id is None or identity.unverified:
            return
        if check != "pass" and identity.contact_id is None:
            log.info("no endorsement request for ticket %s: sender not authenticated", ticket_id)
            return
        await endorsements.add_request(
            session,
            organization_id=identity.organization_id,
            ticket_id=ticket_id,
            requester=identity.contact_name or message.sender,
            channel=str(message.channel),
            subject=" ".join(message.subject.split())[:200] if check == "pass" else "",
            now=self.clock(),
        )

    async def endorsement_digest(
        self,
        session: AsyncSession,
        organization: str,
        nominees: list[ContactRow],
        entries: list[endorsements.PendingEndorsement],
        *,
        more: int,
        period: timedelta,
    ) -> int:
        """Queue one digest of `entries` (and `more` not listed) to each nominee with an
        address that has not bounced; how many were queued."""
        if not entries:
            return 0
        listed = [
            {
                "reference": references.format_reference(e.ticket_id),
                "requester": e.requester,
                "channel_text": acks.CHANNEL_TEXT.get(e.channel, e.channel),
                "received": e.created_at.strftime("%Y-%m-%d %H:%M UTC"),
                "subject": e.subject,
            }
            for e in entries
        ]
        queued = 0
        for nominee in nominees:
            if nominee.email is None or await self._is_suppressed(session, nominee.email):
                continue
            rendered = acks.render_endorse_digest(
                self.templates, name=nominee.name, organization=organization, entries=listed,
                more=more, period_minutes=round(period.total_seconds() / 60),
            )  # fmt: skip
            single = entries[0].ticket_id if len(entries) + more == 1 else None
            if single is not None:  # a reply to it threads to its ticket, as before
                payload = self._mail_payload(single, rendered, None)
            else:
                payload = {"subject": rendered.subject, "text": rendered.text, "html": ""}
            await self._enqueue(
                session,
                ticket_id=entries[0].ticket_id,
                kind="endorse",
                channel="email",
                recipient=nominee.email,
                payload=payload,
                now=self.clock(),
            )
            queued += 1
        return queued

    async def alert(
        self,
        session: AsyncSession,
        ticket_id: int,
        reasons: list[str],
        context: dict[str, Any],
        policy: Policy | None = None,
    ) -> None:
        rendered = acks.render_alert(self.templates, reasons=reasons, policy=policy, **context)
        await self.queue_alert(session, ticket_id, rendered)

    async def queue_alert(
        self, session: AsyncSession, ticket_id: int, rendered: acks.Rendered
    ) -> None:
        """An agent alert (new ticket, raised priority, SLA) to every notify address and chat,
        but not by mail to an address that bounced hard."""
        payload = {
            "subject": rendered.subject,
            "text": rendered.text,
            "reference": references.format_reference(ticket_id),
        }
        targets = [("email", e) for e in self.options.notify_emails] + [
            ("telegram", str(chat)) for chat in self.options.notify_telegram
        ]
        for channel, recipient in targets:
            if channel == "email" and await self._is_suppressed(session, recipient):
                log.warning("alert for %s not mailed to %r: it bounced hard", ticket_id, recipient)
                continue
            await self._enqueue(
                session,
                ticket_id=ticket_id,
                kind="alert",
                channel=channel,
                recipient=recipient,
                payload=payload,
                now=self.clock(),
            )


def _alert_reasons(found: Classification, decision: Decision, policy: Policy) -> list[str]:
    reasons = []
    if decision.suggested is not None:
        # The text reads higher than the priority the customer's words set: agents decide.
        reasons.append(f"suggested {policy.priorities.display(decision.suggested)}")
    elif found.urgent:
        reasons.append("urgent")
    if decision.severity == 1:
        reasons.append("severity 1")
    if "on_call" in decision.flags:
        reasons.append("on call")
    return reasons


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""
