"""Delivering the outbox: claim due notices, hand each to its channel's Replier, record the end.

At-least-once across crashes, once in normal operation: a claimed row is leased, so no other
deliverer (in this process or another node) takes it; it is marked sent right after the
channel accepted it. Transient failures retry with capped exponential backoff, for as long
as it takes; permanent ones are marked failed and kept for the agents to see: the ticket
records the failure, and an acknowledgement that can never arrive alerts the agents (the
customer was told nothing, so a person must reach them another way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.errors import PermanentChannelError, TransientChannelError
from intake.messages import Ack, ChannelKind, Replier
from intake.references import format_reference
from storage import agents, outbox
from storage.outbox import OutboxItem

log = logging.getLogger(__name__)


def backoff(attempts: int, base: float = 5.0, cap: float = 3600.0) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def to_ack(item: OutboxItem) -> Ack:
    payload = item.payload
    return Ack(
        outbox_id=item.id,
        kind=item.kind,
        channel=ChannelKind(item.channel),
        to=item.recipient,
        subject=str(payload.get("subject", "")),
        text=str(payload.get("text", "")),
        html=str(payload.get("html", "")),
        reference=str(payload.get("reference", "")),
        in_reply_to=payload.get("in_reply_to"),
        references=tuple(payload.get("references") or ()),
        message_id=payload.get("message_id"),
        reply_to=payload.get("reply_to"),
    )


@dataclass
class Deliverer:
    sessions: async_sessionmaker[AsyncSession]
    repliers: Mapping[str, Replier]
    lease: timedelta = timedelta(minutes=5)
    batch: int = 20
    idle: float = 1.0  # seconds between polls when nothing is due
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Told (kind, channel, "sent" | "failed") after each final outcome committed (metrics).
    on_result: Callable[[str, str, str], None] | None = None
    # Where agents hear of an acknowledgement that failed for good: (channel, recipient).
    alert_to: Sequence[tuple[str, str]] = ()

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many notices were attempted."""
        async with self.sessions.begin() as session:
            items = await outbox.claim_due(session, self.clock(), self.lease, self.batch)
        for item in items:
            await self._deliver(item)
        return len(items)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                attempted = await self.run_once()
            except Exception:  # the database may be away; keep the loop alive
                log.exception("outbox delivery pass failed")
                attempted = 0
            if attempted < self.batch:
                try:
                    await asyncio.wait_for(stop.wait(), self.idle)
                except TimeoutError:
                    pass

    async def _deliver(self, item: OutboxItem) -> None:
        replier = self.repliers.get(item.channel)
        if replier is None:
            # That channel is not configured here: waiting would not help, so say so.
            await self._fail(item, f"channel {item.channel} not enabled")
            return
        try:
            await replier.send(to_ack(item))
        except PermanentChannelError as exc:
            log.warning("notice %d to %r failed for good: %s", item.id, item.recipient, exc)
            await self._fail(item, str(exc))
            return
        except TransientChannelError as exc:
            await self._retry(item, str(exc) or type(exc).__name__, exc.retry_after)
            return
        except (OSError, TimeoutError) as exc:
            await self._retry(item, str(exc) or type(exc).__name__)
            return
        async with self.sessions.begin() as session:
            await outbox.mark_sent(session, item.id, self.clock())
        self._report(item, "sent")

    async def _fail(self, item: OutboxItem, error: str) -> None:
        now = self.clock()
        async with self.sessions.begin() as session:
            await outbox.mark_failed(session, item.id, error)
            if item.ticket_id is not None:
                details = {"outbox_id": item.id, "notice": item.kind, "channel": item.channel,
                           "recipient": item.recipient, "error": error[:500]}  # fmt: skip
                await agents.insert_event(
                    session, item.ticket_id, at=now, actor="system", kind="notice_failed",
                    details=details,
                )  # fmt: skip
                if item.kind == "ack":  # not for a failed alert: that would only loop
                    await self._alert(session, item, item.ticket_id, error)
        self._report(item, "failed")

    async def _alert(
        self, session: AsyncSession, item: OutboxItem, ticket_id: int, error: str
    ) -> None:
        reference = str(item.payload.get("reference") or format_reference(ticket_id))
        payload = {
            "subject": f"[{reference}] Acknowledgement not delivered",
            "text": (
                f"The acknowledgement of {reference} to {item.recipient} ({item.channel}) "
                f"could not be delivered: {error[:500]}\n"
                "The customer has not been told that their request arrived; please reach "
                "them another way.\n"
            ),
            "reference": reference,
        }
        for channel, recipient in self.alert_to:
            await outbox.enqueue(
                session, ticket_id=ticket_id, kind="alert", channel=channel,
                recipient=recipient, payload=payload, now=self.clock(),
            )  # fmt: skip

    def _report(self, item: OutboxItem, result: str) -> None:
        if self.on_result is not None:
            self.on_result(item.kind, item.channel, result)

    async def _retry(self, item: OutboxItem, error: str, retry_after: float | None = None) -> None:
        log.info("notice %d to %r will be retried: %s", item.id, item.recipient, error)
        wait = backoff(item.attempts)
        if retry_after is not None:  # the provider said how long (Telegram's RetryAfter)
            wait = max(wait, timedelta(seconds=retry_after))
        async with self.sessions.begin() as session:
            await outbox.mark_retry(session, item.id, self.clock() + wait, error)
