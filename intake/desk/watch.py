"""The SLA watcher and the inactivity close: what happens to open tickets as time passes.

SLA alerts. For each open ticket (status `open`: not on hold, resolved or closed) whose first
response or resolution deadline is not met yet, the watcher alerts the notify addresses and
chats once when `warn_share` of the time to the deadline is used (a "75%" alert), and once
when the deadline passes ("breach", also recorded as a `sla_breach` ticket event). The share
is of *support time* on the deadline's own calendar (the one `compute_deadlines` ran it on),
from receipt to the deadline, so a 24-support-hour target warns after 18 support hours, not
after 75 % of a weekend; when the calendar cannot be found (a policy file gone) it falls back
to the wall-clock share of clock start -> due. A ticket first seen already past its deadline
gets the breach alert only. Once per ticket, deadline and threshold, across restarts and
nodes: see `storage.watch`. A deadline recomputed later (priority changed) keeps the alerts
already sent for that deadline.

Inactivity close (Circularo SaaS policy section 10, on-premise section 9: "we may close any
Support Request after 5 days, if we consider the issue resolved, you have not provided
requested information or the Support Request is otherwise inactive"). Read as a rule the
product applies by itself, it closes only tickets that wait for the customer: status
`on_hold` (an agent asked for information), of the listed policies, with no customer message,
no hold and no agent action in the last `inactivity_close_days` calendar days (the seeds say
"5 days", not support days). Open tickets are never closed automatically: there the silence is
ours. "Resolved" is an agent's decision and is left to agents. The ticket gets status
`closed`, `closed_at`, and a `closed_inactive` event by "system". A customer message reopens
an on-hold ticket (the pipeline), so it restarts the count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.errors import IntakeError
from intake.outbox import acks
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline import references
from intake.policy.calendar import Calendar, support_time
from intake.policy.files import load_policy
from intake.policy.model import basis_calendar, compute_deadlines
from storage import conversation, outbox, watch
from storage.watch import BREACH, Deadline, WatchedTicket

log = logging.getLogger(__name__)

DEADLINE_TEXT = {Deadline.FIRST_RESPONSE: "first response", Deadline.RESOLUTION: "resolution"}
CIRCULARO_POLICIES = ("circularo-saas", "circularo-onprem")
# Alerts carry no signed Message-ID or reply address, so their notifier needs no secret.
NO_SECRET = b""


def warn_label(warn_share: float) -> str:
    """The `sla_alerts.threshold` of the early warning: 0.75 -> "75%"."""
    return f"{warn_share * 100:g}%"


def elapsed_share(spent: timedelta, total: timedelta) -> float:
    """How much of the time to a deadline is used (1.0 and more: due or past)."""
    if total <= timedelta(0):
        return 1.0
    return max(0.0, spent / total)


def threshold_due(
    share: float, now: datetime, due: datetime, warn_share: float, alerted: frozenset[str]
) -> str | None:
    """The alert to send now, if any: the breach once due, else the warning once reached."""
    if now >= due:
        return None if BREACH in alerted else BREACH
    label = warn_label(warn_share)
    if share >= warn_share and label not in alerted:
        return label
    return None


def deadline_calendar(ticket: WatchedTicket) -> Calendar | None:
    """The calendar of the ticket's deadline, or None if it cannot be known any more."""
    if ticket.plan is None:
        return None
    try:
        policy = load_policy(ticket.policy)
        deadlines = compute_deadlines(
            policy, ticket.plan, ticket.priority, ticket.received_at, ticket.region
        )
        basis = (
            deadlines.response_basis
            if ticket.deadline is Deadline.FIRST_RESPONSE
            else deadlines.resolution_basis
        )
        return basis_calendar(policy, basis)
    except (IntakeError, KeyError, ValueError, OSError) as exc:
        log.warning("ticket %d: no calendar for its SLA (%s); using wall time", ticket.id, exc)
        return None


def share_used(ticket: WatchedTicket, now: datetime, cal: Calendar | None) -> float:
    """Support-time share on `cal` from receipt, or wall-clock share from clock start."""
    if cal is not None:
        return elapsed_share(
            support_time(cal, ticket.received_at, now),
            support_time(cal, ticket.received_at, ticket.due),
        )
    start = ticket.clock_starts or ticket.received_at
    return elapsed_share(now - start, ticket.due - start)


def _policy_zone(policy_ref: str) -> str:
    try:
        return load_policy(policy_ref).zone
    except (IntakeError, OSError, ValueError):
        return "UTC"


def render_sla_alert(
    templates: Environment, ticket: WatchedTicket, threshold: str, share: float
) -> acks.Rendered:
    reference = references.format_reference(ticket.id)
    breached = threshold == BREACH
    deadline_text = DEADLINE_TEXT[ticket.deadline]
    what = f"{deadline_text} deadline " + ("passed" if breached else f"{threshold} used")
    text = templates.get_template("sla_alert.txt.j2").render(
        reference=reference,
        what=what,
        breached=breached,
        deadline_text=deadline_text,
        percent=round(share * 100),
        due=acks.local_time(ticket.due, _policy_zone(ticket.policy)),
        organization=ticket.organization,
        sender=ticket.sender,
        contact_status=ticket.contact_status,
        channel=ticket.channel,
        priority=ticket.priority,
        severity=ticket.severity,
        subject=" ".join(ticket.subject.split())[:200],
    )
    subject = " ".join(f"[{reference}] SLA {what}: {ticket.subject}".split())
    return acks.Rendered(subject=subject[:250], text=text)


@dataclass(frozen=True, slots=True)
class WatchReport:
    """What one pass did."""

    alerts: int = 0
    breaches: int = 0
    closed: int = 0


@dataclass
class SlaWatcher:
    """Runs the SLA alerts and the inactivity close every `check_seconds`; safe on many nodes.

    `on_alert(deadline, threshold)` is called after each alert committed (metrics).
    `inactivity_close_days` 0 turns the inactivity close off.
    """

    sessions: async_sessionmaker[AsyncSession]
    options: NoticeOptions
    templates: Environment
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    warn_share: float = 0.75
    check_seconds: float = 60.0
    batch: int = 100
    inactivity_close_days: int = 5
    inactivity_policies: Sequence[str] = CIRCULARO_POLICIES
    on_alert: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        if not 0 < self.warn_share < 1:
            raise ValueError(f"warn_share {self.warn_share} is not between 0 and 1")

    async def run_once(self) -> WatchReport:
        now = self.clock()
        alerts, breaches = await self._sla_pass(now)
        closed = await self._close_inactive(now)
        return WatchReport(alerts, breaches, closed)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the database may be away; keep the loop alive
                log.exception("SLA watch pass failed")
            try:
                await asyncio.wait_for(stop.wait(), self.check_seconds)
            except TimeoutError:
                pass

    async def _sla_pass(self, now: datetime) -> tuple[int, int]:
        alerts = breaches = 0
        for deadline in Deadline:
            after: tuple[datetime, int] | None = None
            while True:
                async with self.sessions() as session:
                    batch = await watch.watched_tickets(
                        session, deadline, after=after, limit=self.batch
                    )
                for ticket in batch:
                    cal = deadline_calendar(ticket) if now < ticket.due else None
                    share = share_used(ticket, now, cal)
                    threshold = threshold_due(
                        share, now, ticket.due, self.warn_share, ticket.alerted
                    )
                    if threshold is not None and await self._alert(ticket, threshold, share, now):
                        alerts += 1
                        breaches += threshold == BREACH
                if len(batch) < self.batch:
                    break
                after = (batch[-1].due, batch[-1].id)
        return alerts, breaches

    async def _alert(
        self, ticket: WatchedTicket, threshold: str, share: float, now: datetime
    ) -> bool:
        """Claim and queue one alert in one transaction; False if it was not ours to send."""
        async with self.sessions.begin() as session:
            if not await watch.lock_if_pending(session, ticket.id, ticket.deadline, ticket.due):
                return False
            if not await watch.claim_alert(session, ticket.id, ticket.deadline, threshold, now):
                return False
            if threshold == BREACH:
                details = {"deadline": str(ticket.deadline), "due": ticket.due.isoformat()}
                await watch.add_event(session, ticket.id, "sla_breach", details, now)
            rendered = render_sla_alert(self.templates, ticket, threshold, share)
            await self._notifier(now).queue_alert(session, ticket.id, rendered)
            await self._alert_assignee(session, ticket.id, rendered, now)
        log.info("SLA %s %s alert for ticket %d", ticket.deadline, threshold, ticket.id)
        if self.on_alert is not None:
            self.on_alert(str(ticket.deadline), threshold)
        return True

    async def _alert_assignee(
        self, session: AsyncSession, ticket_id: int, rendered: acks.Rendered, now: datetime
    ) -> None:
        """The agent who has the ticket hears of its SLA warnings too, by mail."""
        assignee = await conversation.assignee_of(session, ticket_id)
        if assignee is None or assignee in self.options.notify_emails:
            return  # unassigned, or told already as a notify address
        payload = {"subject": rendered.subject, "text": rendered.text,
                   "reference": references.format_reference(ticket_id)}  # fmt: skip
        await outbox.enqueue(
            session, ticket_id=ticket_id, kind="alert", channel="email", recipient=assignee,
            payload=payload, now=now,
        )  # fmt: skip

    def _notifier(self, now: datetime) -> Notifier:
        """Queues alerts as of `now`, the time of the pass (suppressions, outbox times)."""
        return Notifier(self.options, NO_SECRET, self.templates, lambda: now)

    async def _close_inactive(self, now: datetime) -> int:
        if self.inactivity_close_days <= 0 or not self.inactivity_policies:
            return 0
        policies = list(self.inactivity_policies)
        before = now - timedelta(days=self.inactivity_close_days)
        closed = 0
        while True:
            async with self.sessions() as session:
                found = await watch.inactive_tickets(session, policies, before, self.batch)
            closed_now = 0
            for ticket_id in found:
                async with self.sessions.begin() as session:
                    if await watch.close_if_inactive(session, ticket_id, policies, before, now):
                        details = {"days": self.inactivity_close_days, "rule": "inactive on hold"}
                        await watch.add_event(session, ticket_id, "closed_inactive", details, now)
                        closed_now += 1
            closed += closed_now
            if len(found) < self.batch or closed_now == 0:
                return closed
