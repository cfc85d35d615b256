"""The intake pipeline: identify -> thread -> classify -> decide -> store -> queue notices.

Messages that arrive together share one transaction (intake.pipeline.group_commit, with the batch's
reads made up front by intake.pipeline.batch_reads). The `Receipt` is returned only after it has
committed, and adapters confirm on their wire only then. A message seen before (same channel and
channel message id) returns the existing ticket and queues nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classifier import Classification, MachineKind, RuleSet, classify
from intake.errors import TransientError
from intake.messages import ChannelKind, InboundMessage, Receipt, ReceiptStatus
from intake.outbox.acks import local_time
from intake.outbox.bounces import delivery_reports
from intake.outbox.notices import Notifier, first_line
from intake.pipeline import references
from intake.pipeline.batch_reads import BatchReads, read_batch
from intake.pipeline.decide import (
    Identity,
    as_machine,
    decide,
    is_callback,
    machine_kind,
    raised_deadlines,
    raised_priority,
    spam_record,
    support_period,
    verified_identity,
)
from intake.pipeline.group_commit import Finish, GroupCommit
from intake.pipeline.identify import candidates, identify, mail_domains
from intake.policy.files import load_policy
from intake.policy.model import Policy
from intake.spam.checker import SpamChecker, screened
from storage import contacts, suppressions, tickets

log = logging.getLogger(__name__)


# Channels where a sender's next message within the window continues the conversation.
CONVERSATION_CHANNELS = frozenset(
    {ChannelKind.WHATSAPP, ChannelKind.SMS, ChannelKind.TELEGRAM, ChannelKind.VOICE}
)


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    default_policy: str
    follow_up_window: timedelta = timedelta(hours=24)
    suppress_after_bounce: timedelta = timedelta(days=30)
    require_authentication: bool = False  # an email with no verdict counts as unverified


@dataclass(frozen=True)
class Pipeline:
    """The `Intake` every channel adapter calls."""

    sessions: async_sessionmaker[AsyncSession]
    rules: RuleSet
    options: PipelineOptions
    notifier: Notifier
    spam: SpamChecker | None = None  # asked before the transaction, never inside it
    group: GroupCommit = field(init=False, repr=False, compare=False)
    # New tickets' ids, handed out before their rows are written with the batch's others.
    ticket_ids: tickets.TicketIds = field(
        default_factory=tickets.TicketIds, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Messages that arrive together share one commit (see intake.pipeline.group_commit).
        group = GroupCommit(self.sessions, self._work, prepare=self._prepare)
        object.__setattr__(self, "group", group)

    async def __call__(self, message: InboundMessage) -> Receipt:
        message = await screened(message, self.spam)
        try:
            return await self.group.submit(message)
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

    async def _prepare(self, session: AsyncSession, batch: Sequence[InboundMessage]) -> Finish:
        """Read what the whole batch needs in a few queries (see intake.pipeline.batch_reads)."""
        senders = [key for message in batch for key in candidates(message)]
        recipients = [(m.reply_to or m.sender).lower() for m in batch]
        reads = await read_batch(
            session,
            message_keys=[(str(m.channel), m.channel_message_id) for m in batch],
            sender_keys=senders,
            domains=mail_domains(senders),
            rfc_ids=[
                h.strip("<>")
                for m in batch
                if m.channel is ChannelKind.EMAIL
                for h in m.thread_hints
                if "@" in h
            ],
            addresses=[*recipients, *self.notifier.options.notify_emails],
            recipients=recipients,
            since=self.notifier.clock() - timedelta(hours=1),
            ids=self.ticket_ids,
        )
        return reads.finish

    async def _work(self, session: AsyncSession, message: InboundMessage) -> Receipt:
        receipt = await self._intake(session, message)
        reads = BatchReads.of(session)
        if reads is not None:
            reads.stored(message, receipt)
        return receipt

    async def _intake(self, session: AsyncSession, message: InboundMessage) -> Receipt:
        channel = str(message.channel)
        reads = BatchReads.of(session)
        if reads is not None:
            seen = reads.seen.get((channel, message.channel_message_id))
        else:
            seen = await tickets.ticket_of_message(session, channel, message.channel_message_id)
        if seen is not None:
            return Receipt(ReceiptStatus.DUPLICATE, seen, references.format_reference(seen))
        identity = verified_identity(
            await identify(session, message),
            message.authenticity,
            channel=message.channel,
            require=self.options.require_authentication,
        )
        found = classify(
            message.subject,
            message.text,
            message.headers,
            self.rules,
            channel=channel,
            envelope_sender=message.envelope_sender,
        )
        if found.machine_kind is MachineKind.BOUNCE:
            report = await self._bounce(session, message)
            if report is not None:
                return report
        machine = machine_kind(found, message.spam)
        if machine is not None or message.spam is not None:
            # Kept on the stored message, so an agent sees why it asked for nothing.
            extra = {"machine": machine} if machine else {}
            if message.spam is not None:
                extra["spam"] = message.spam.verdict
            message = replace(message, extra={**message.extra, **extra})
        thread = await _unmerged(session, await self._thread(session, message, identity))
        if thread is not None:
            if machine is not None:
                # Machine mail answering a ticket of ours joins it and changes nothing else.
                await _store_message(session, thread.id, message)
            else:
                await self._follow_up(session, thread, message, found)
            return Receipt(
                ReceiptStatus.FOLLOW_UP, thread.id, references.format_reference(thread.id)
            )
        ticket_id = await self._open(session, message, identity, found, machine)
        return Receipt(ReceiptStatus.ACCEPTED, ticket_id, references.format_reference(ticket_id))

    async def _thread(
        self, session: AsyncSession, message: InboundMessage, identity: Identity
    ) -> tickets.TicketState | None:
        """The existing ticket this message continues, if any (hijack-resistant)."""
        hints = (*message.thread_hints, message.subject)
        for ticket_id in references.verified_tickets(self.notifier.secret, hints):
            ticket = await tickets.get_ticket(session, ticket_id)
            if ticket is not None:
                return ticket
        for ticket_id in references.references_in(message.subject):
            ticket = await tickets.get_ticket(session, ticket_id)
            if ticket is not None and _same_party(ticket, message, identity):
                return ticket
        if message.channel is ChannelKind.EMAIL:
            ids = [h.strip("<>") for h in message.thread_hints if "@" in h]
            reads = BatchReads.of(session)
            if reads is None:
                return await tickets.ticket_by_message_ids(session, ids)
            newest = reads.newest_ticket(ids)
            return None if newest is None else await tickets.get_ticket(session, newest)
        if message.channel not in CONVERSATION_CHANNELS:
            return None  # each web form submission is a request of its own
        since = message.received_at - self.options.follow_up_window
        return await tickets.open_ticket_of_sender(
            session, message.sender, channel_of(message), since
        )

    async def _bounce(self, session: AsyncSession, message: InboundMessage) -> Receipt | None:
        """A delivery report about one of our notices: kept on its ticket, never a ticket.

        Our envelope sender carries the ticket's token, so the report names it in its
        recipient (SMTP) or its To: header (IMAP).
        """
        places = (*message.thread_hints, *(value for _, value in message.headers), message.text)
        found = references.verified_tickets(self.notifier.secret, places)
        ticket = await tickets.get_ticket(session, found[0]) if found else None
        if ticket is None:
            return None
        await _store_message(session, ticket.id, message, direction="report")
        reports = delivery_reports(message.text)
        now = self.notifier.clock()
        for delivery in reports:
            if delivery.hard and "@" in delivery.recipient:
                await suppressions.suppress(
                    session,
                    delivery.recipient,
                    f"{delivery.status} {delivery.action} {delivery.diagnostic}".strip(),
                    until=now + self.options.suppress_after_bounce,
                    now=now,
                )
                reads = BatchReads.of(session)
                if reads is not None:
                    reads.forget_suppression(delivery.recipient)
        decision = dict(ticket.decision)
        decision["bounces"] = [
            *decision.get("bounces", []),
            *(
                {
                    "recipient": d.recipient,
                    "status": d.status,
                    "action": d.action,
                    "at": message.received_at.isoformat(),
                }
                for d in reports
            ),
        ]
        await tickets.update_ticket(session, ticket.id, decision=decision)
        return Receipt(ReceiptStatus.REPORT, ticket.id, references.format_reference(ticket.id))

    async def _follow_up(
        self,
        session: AsyncSession,
        ticket: tickets.TicketState,
        message: InboundMessage,
        found: Classification,
    ) -> None:
        await _store_message(session, ticket.id, message)
        changes: dict[str, Any] = {"last_message_at": message.received_at}
        if ticket.status not in ("open", "machine"):  # machine mail waits for an agent
            # The customer answered: back in the queue, no longer waiting for them.
            changes.update(status="open", on_hold_at=None)
        policy = load_policy(ticket.policy)
        # Machine mail has no deadlines to raise until an agent makes it a request.
        raised = (
            None
            if ticket.status == "machine"
            else raised_priority(policy, ticket.priority, message.channel, found)
        )
        deadlines, flags = None, list(ticket.decision.get("flags", []))
        if raised is not None and ticket.plan is not None:
            deadlines, added = raised_deadlines(
                policy, ticket.plan, raised, ticket.received_at, ticket.decision
            )
            decision = dict(ticket.decision)
            decision["flags"] = flags = [*flags, *added]
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
            if deadlines is not None:
                decision["deadlines"] = list(deadlines.explanation)
            changes.update(
                priority=raised,
                urgent=True,
                first_response_due=deadlines.first_response_due if deadlines else None,
                resolution_due=deadlines.resolution_due if deadlines else None,
                decision=decision,
            )
            if added:
                await tickets.add_flags(session, ticket.id, added)
        await tickets.update_ticket(session, ticket.id, **changes)
        if raised is not None:
            # The same alert a ticket opened at this priority brings.
            contact = ticket.decision.get("contact", {})
            await self.notifier.alert(
                session,
                ticket.id,
                ["raised to " + policy.priorities.display(raised)]
                + (["on call"] if "on_call" in flags else []),
                {
                    "reference": references.format_reference(ticket.id),
                    "organization": contact.get("organization"),
                    "sender": message.sender,
                    "contact_status": contact.get("status", ""),
                    "channel": str(message.channel),
                    "priority": raised,
                    "severity": ticket.decision.get("severity"),
                    "subject": message.subject,
                    "first_line": first_line(message.text),
                    "first_response_due": local_time(
                        deadlines.first_response_due if deadlines else None, policy.zone
                    ),
                },
                policy=policy,
            )

    async def _open(
        self,
        session: AsyncSession,
        message: InboundMessage,
        identity: Identity,
        found: Classification,
        machine: str | None = None,
    ) -> int:
        policy_ref = identity.policy or self.options.default_policy
        policy = load_policy(policy_ref)
        used = await _tickets_in_period(session, policy, identity, message.received_at)
        decision = decide(
            policy,
            identity,
            message.channel,
            found,
            message.received_at,
            tickets_in_period=used,
            callback=is_callback(message),
        )
        if machine is not None:
            decision = as_machine(decision, machine)
        decision.record.update(spam_record(message.spam))
        deadlines = decision.deadlines
        nominees = []
        if (
            machine is None
            and "not_nominated" in decision.flags
            and identity.organization_id is not None
        ):
            # The ticket names who may endorse it; the sender is only told that someone must.
            nominees = await contacts.nominated_contacts(session, identity.organization_id)
            decision.record["nominated"] = [
                {"name": n.name, "email": n.email, "phone": n.phone} for n in nominees
            ]
        row = dict(
            organization_id=identity.organization_id,
            contact_id=identity.contact_id,
            channel=channel_of(message),
            sender=message.sender,
            sender_name=message.sender_name[:200],
            reply_to=message.reply_to or message.sender,
            subject=message.subject[:998],
            status="open" if machine is None else "machine",
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
        reads = BatchReads.of(session)
        if reads is not None:
            ticket_id = await reads.insert_ticket(session, row)
        else:
            ticket_id = await tickets.insert_ticket(session, **row)
        await _store_message(session, ticket_id, message)
        if machine is not None:
            # No acknowledgement, no endorsement request, no agent alert: nothing was asked.
            log.info("machine mail (%s) kept as ticket %s", machine, ticket_id)
            return ticket_id
        await self.notifier.new_ticket(
            session, ticket_id, message, identity, found, policy, decision, nominees
        )
        return ticket_id


async def _unmerged(
    session: AsyncSession, ticket: tickets.TicketState | None
) -> tickets.TicketState | None:
    """A merged ticket's follow-up joins the ticket it was merged into (the desk's merge)."""
    for _ in range(10):  # merges chain at most this far; a longer chain stops where it is
        into = ticket.decision.get("merged_into") if ticket is not None else None
        if ticket is None or ticket.status != "merged" or not isinstance(into, int):
            return ticket
        found = await tickets.get_ticket(session, into)
        if found is None:
            return ticket
        ticket = found
    return ticket


async def _store_message(
    session: AsyncSession, ticket_id: int, message: InboundMessage, direction: str = "in"
) -> None:
    reads = BatchReads.of(session)
    if reads is None or message.attachments or message.raw_spooled is not None:
        await tickets.insert_message(session, ticket_id, message, direction)
    else:  # written with the rest of the batch in one statement
        reads.insert_message(tickets.message_values(ticket_id, message, direction))


def channel_of(message: InboundMessage) -> str:
    return str(message.channel)


def _same_party(ticket: tickets.TicketState, message: InboundMessage, identity: Identity) -> bool:
    """May this sender add to that ticket by naming its reference? Only its own people."""
    if ticket.sender == message.sender:
        return True
    return ticket.organization_id is not None and ticket.organization_id == identity.organization_id


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
