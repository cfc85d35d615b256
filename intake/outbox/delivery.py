"""Delivering the outbox: claim due notices, hand each to its channel's Replier, record the end.

At-least-once across crashes, once in normal operation: a claimed row is leased, so no other
deliverer (in this process or another node) takes it, and no send starts on a lease about to run
out. The lease is short and the holder renews it every few seconds while its pass lasts (a
heartbeat), however long a send takes: when a node dies, another takes its notices over as soon
as the lease runs out, within half a minute, instead of waiting out a lease long enough for the
slowest send. A pass's outcomes are recorded in one transaction when the pass ends (at least
every `record_every` seconds): one commit per pass instead of one per notice, which on SQLite
would hold the one writer's lock (and an fsync) per acknowledgement; that commit runs while the
next pass sends. A crash in between sends those notices again.

The notices of this process's group commits are not claimed: they were written already leased
to this deliverer and handed over in memory as they committed (intake.outbox.handover), and
every batch handed over since the last pass goes out in the next one. Claims still come on the
bell (`wake`) and at least every `idle` seconds, for everything else that is due.

Transient failures retry with capped exponential backoff, for as long as it
takes; permanent ones are marked failed and kept for the agents to see: the ticket records the
failure, and an acknowledgement that can never arrive alerts the agents (the customer was told
nothing, so a person must reach them another way).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.errors import PermanentChannelError, TransientChannelError
from intake.messages import Ack, Attachment, ChannelKind, Replier
from intake.pipeline.references import format_reference
from storage import agents, conversation, outbox
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
        content_sid=str(payload.get("content_sid") or ""),
        content_variables=_json(payload.get("content_variables")),
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if value else ""


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt, recorded with the others of its pass."""

    item: OutboxItem
    result: Literal["sent", "retry", "failed", "released"]
    error: str = ""
    retry_after: float | None = None


@dataclass
class _Held:
    """The rows of one pass this deliverer still holds: `until` their lease's earliest end,
    `marks` the lease ends the rows carry (several when hand-overs are sent together)."""

    ids: set[int]
    until: datetime
    marks: frozenset[datetime]


@dataclass
class Deliverer:
    sessions: async_sessionmaker[AsyncSession]
    repliers: Mapping[str, Replier]
    # Short, and renewed every `renew_every` seconds while the pass lasts: a dead holder's
    # rows are free again within `lease`, a living one keeps them however slow a send is.
    lease: timedelta = timedelta(seconds=20)
    renew_every: float = 5.0
    batch: int = 20
    idle: float = 1.0  # seconds between polls when nothing is due
    # No send starts on a lease with less than this left (the renewals have failed, the
    # database is away): the send could outlive the lease, and another deliverer, having
    # claimed the row meanwhile, would send it too.
    send_margin: timedelta = timedelta(seconds=10)
    # Outcomes are recorded together (one commit per pass, not one per notice) but at least
    # this often, which bounds what a crash could send twice.
    record_every: float = 1.0
    # Notices sent at once: a send waits on the relay's answers several times, and under load
    # each wait is a turn of an event loop busy with intake (issue 19).
    parallel: int = 8
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Told (kind, channel, "sent" | "failed") after each final outcome committed (metrics).
    on_result: Callable[[str, str, str], None] | None = None
    # Where agents hear of an acknowledgement that failed for good: (channel, recipient).
    alert_to: Sequence[tuple[str, str]] = ()
    _bell: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    # Batches handed over by this process's group commits (intake.outbox.handover), already
    # leased to us until the datetime beside them: sent without a claim.
    _handed: deque[tuple[list[OutboxItem], datetime]] = field(
        default_factory=deque, init=False, repr=False
    )
    _claim_soon: bool = field(default=True, init=False, repr=False)  # `wake` rang
    _recording: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _claimed_at: float = field(default=float("-inf"), init=False, repr=False)  # monotonic
    # On stop, passes continue over what is due for at most this long (the acknowledgement of
    # a message confirmed just before the signal goes out now, not at the next start).
    grace: float = 10.0

    async def run_once(self) -> int:
        """Deliver what was handed over, else what is due now (claimed), and record the
        outcomes; returns how many notices were attempted."""
        attempted = await self._next_pass()
        await self._settle()
        return attempted

    async def _next_pass(self) -> int:
        """Send the next pass's notices; its outcomes are recorded in the background (see
        `_pass`). Claims come at least every `idle` seconds: a steady stream of hand-overs
        must not starve retries and other nodes' notices."""
        if self._handed and not self._claim_soon:
            if time.monotonic() - self._claimed_at < self.idle:
                # Every batch handed over meanwhile in one pass: one record for them all.
                handed = [self._handed.popleft() for _ in range(len(self._handed))]
                items = [item for batch, _ in handed for item in batch]
                return await self._pass(items, frozenset(until for _, until in handed))
        self._claim_soon = False
        self._claimed_at = time.monotonic()
        claimed = self.clock()
        async with self.sessions.begin() as session:
            items = await outbox.claim_due(session, claimed, self.lease, self.batch)
        return await self._pass(items, frozenset([claimed + self.lease]))

    async def _pass(self, items: list[OutboxItem], marks: frozenset[datetime]) -> int:
        """Send `items`, held with the lease ends `marks`, renewing them while the pass lasts."""
        if not items:
            return 0
        held = _Held({item.id for item in items}, min(marks), marks)
        heartbeat = asyncio.create_task(self._keep(held))
        try:
            outcomes = await self._deliver(items, held)
        except BaseException:
            await self._stop(heartbeat)
            raise
        try:
            await self._settle()  # one pass's record at a time
        except Exception:  # the database may be away: those rows are sent again (at least once)
            log.exception("recording a delivery pass's outcomes failed")
        # Recorded while the next pass sends: its notices need not wait for this commit
        # (on SQLite, for the one connection and an fsync). The lease is kept meanwhile.
        self._recording = asyncio.create_task(self._finish(outcomes, held, heartbeat))
        return len(items)

    async def _finish(
        self, outcomes: Sequence[Outcome], held: _Held, heartbeat: asyncio.Task[None]
    ) -> None:
        try:
            await self._record(outcomes, held)
        finally:
            await self._stop(heartbeat)

    @staticmethod
    async def _stop(heartbeat: asyncio.Task[None]) -> None:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat

    async def _settle(self) -> None:
        """Wait for the last pass's outcomes to be recorded (its error, if any, is raised)."""
        recording, self._recording = self._recording, None
        if recording is not None:
            await recording

    def take(self, items: list[OutboxItem], leased_until: datetime) -> None:
        """Notices just committed, leased to us until `leased_until`: send them next (called
        by intake.outbox.handover after a group commit)."""
        self._handed.append((items, leased_until))
        self._bell.set()

    async def _deliver(self, items: Sequence[OutboxItem], held: _Held) -> list[Outcome]:
        """Attempt `items`, `parallel` at a time; returns the outcomes not yet recorded
        (recorded at least every `record_every` seconds)."""
        outcomes: list[Outcome] = []
        recorded = time.monotonic()
        for start in range(0, len(items), self.parallel):
            sending = []
            for item in items[start : start + self.parallel]:
                if item.id not in held.ids:
                    log.warning("notice %d: lease lost to another deliverer; not sent here",
                                item.id)  # fmt: skip
                elif self.clock() >= held.until - self.send_margin:
                    outcomes.append(Outcome(item, "released"))  # claimed again, from the start
                else:
                    sending.append(item)
            outcomes.extend(await asyncio.gather(*(self._attempt(item) for item in sending)))
            if time.monotonic() - recorded >= self.record_every:
                await self._record(outcomes, held)
                outcomes, recorded = [], time.monotonic()
        return outcomes

    async def _keep(self, held: _Held) -> None:
        """The heartbeat: renew the lease on what this pass still holds, until cancelled."""
        while True:
            await asyncio.sleep(self.renew_every)
            until = self.clock() + self.lease
            try:
                async with self.sessions.begin() as session:
                    kept = await outbox.renew(session, sorted(held.ids), held.marks, until)
            except Exception:  # the database may be away: the margin stops new sends
                log.warning("outbox lease renewal failed", exc_info=True)
                continue
            held.ids &= kept
            held.until, held.marks = until, frozenset([until])

    def wake(self) -> None:
        """Ring the bell: due notices were just committed (an agent's reply, the careful way
        of a batch), so the next pass claims now instead of at the next poll."""
        self._claim_soon = True
        self._bell.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._bell.clear()  # a commit during the pass rings it again
            try:
                attempted = await self._next_pass()
            except Exception:  # the database may be away; keep the loop alive
                log.exception("outbox delivery pass failed")
                attempted = 0
            if attempted < self.batch and not self._handed:
                await self._pause(stop)
        await self.last_passes()

    async def _pause(self, stop: asyncio.Event) -> None:
        """Until the bell rings, `stop` is set or `idle` seconds pass (others queue notices
        too: agents' actions, the SLA watcher, other nodes)."""
        waits = {asyncio.ensure_future(self._bell.wait()), asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waits, timeout=self.idle, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def last_passes(self) -> None:
        """Deliver what is due now, within `grace` seconds; the rest waits for the next start.

        A send cut off by the grace period may have reached the relay before its outcome was
        recorded: it is sent again after the lease, as after a crash (at least once).
        """
        try:
            async with asyncio.timeout(self.grace):
                while await self.run_once() >= self.batch or self._handed:
                    pass  # a full batch: more may be due
        except TimeoutError:
            log.warning("stopping: the outbox was not emptied in %.0f s; the rest goes later",
                        self.grace)  # fmt: skip
        except Exception:  # the database may be away; what is due stays queued
            log.exception("outbox delivery's last pass failed")

    async def _attempt(self, item: OutboxItem) -> Outcome:
        replier = self.repliers.get(item.channel)
        if replier is None:
            # That channel is not configured here: waiting would not help, so say so.
            return Outcome(item, "failed", f"channel {item.channel} not enabled")
        try:
            await replier.send(await self._with_files(to_ack(item), item))
        except PermanentChannelError as exc:
            log.warning("notice %d to %r failed for good: %s", item.id, item.recipient, exc)
            return Outcome(item, "failed", str(exc))
        except TransientChannelError as exc:
            return Outcome(item, "retry", str(exc) or type(exc).__name__, exc.retry_after)
        except (OSError, TimeoutError) as exc:
            return Outcome(item, "retry", str(exc) or type(exc).__name__)
        return Outcome(item, "sent")

    async def _with_files(self, ack: Ack, item: OutboxItem) -> Ack:
        """An agent's reply carries its files by id: their bytes are read at sending time."""
        ids = [int(i) for i in item.payload.get("files") or ()]
        if not ids:
            return ack
        async with self.sessions() as session:
            found = await conversation.files_by_id(session, ids)
        files = tuple(Attachment(filename=n, content_type=t, data=d) for n, t, d in found)
        return dataclasses.replace(ack, files=files)

    async def _record(self, outcomes: Sequence[Outcome], held: _Held) -> None:
        """Write a pass's outcomes in one transaction, then report the final ones."""
        if not outcomes:
            return
        now = self.clock()
        retries = []
        for outcome in outcomes:
            item = outcome.item
            if outcome.result == "retry":
                log.info("notice %d to %r will be retried: %s", item.id, item.recipient,
                         outcome.error)  # fmt: skip
                wait = backoff(item.attempts)
                if outcome.retry_after is not None:  # the provider said how long
                    wait = max(wait, timedelta(seconds=outcome.retry_after))
                retries.append((item.id, now + wait, outcome.error))
        # One statement per kind of outcome (a pass is nearly all "sent").
        async with self.sessions.begin() as session:
            await outbox.mark_sent(session, self._ids(outcomes, "sent"), now)
            await outbox.mark_retry(session, retries)
            await outbox.release(session, self._ids(outcomes, "released"), held.marks)
            for outcome in outcomes:
                if outcome.result == "failed":
                    await self._fail(session, outcome.item, outcome.error, now)
        held.ids -= {outcome.item.id for outcome in outcomes}  # written: no longer leased
        for outcome in outcomes:
            if outcome.result in ("sent", "failed"):
                self._report(outcome.item, outcome.result)

    @staticmethod
    def _ids(outcomes: Sequence[Outcome], result: str) -> list[int]:
        return [outcome.item.id for outcome in outcomes if outcome.result == result]

    async def _fail(
        self, session: AsyncSession, item: OutboxItem, error: str, now: datetime
    ) -> None:
        await outbox.mark_failed(session, item.id, error)
        if item.ticket_id is None:
            return
        details = {"outbox_id": item.id, "notice": item.kind, "channel": item.channel,
                   "recipient": item.recipient, "error": error[:500]}  # fmt: skip
        await agents.insert_event(
            session, item.ticket_id, at=now, actor="system", kind="notice_failed",
            details=details,
        )  # fmt: skip
        if item.kind == "ack":  # not for a failed alert: that would only loop
            await self._alert(session, item, item.ticket_id, error, now)

    async def _alert(
        self, session: AsyncSession, item: OutboxItem, ticket_id: int, error: str, now: datetime
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
                recipient=recipient, payload=payload, now=now,
            )  # fmt: skip

    def _report(self, item: OutboxItem, result: str) -> None:
        if self.on_result is not None:
            self.on_result(item.kind, item.channel, result)
