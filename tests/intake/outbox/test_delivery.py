"""Outbox delivery: after a restart, with retries, once per notice even with two deliverers.

The replier here is a fake at our own `Replier` interface (the real ones, SMTP and the chat
APIs, have their own tests against real servers and local fakes of the clouds).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from reopenable import ReopenableStorage
from sqlalchemy import event, select

from intake.errors import PermanentChannelError, TransientChannelError
from intake.messages import Ack
from intake.outbox.delivery import Deliverer, backoff
from storage import db, outbox
from storage.models import Outbox

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


class Recorder:
    """Records what it was asked to send; fails as told first."""

    def __init__(self, failures: list[Exception] | None = None, pause: float = 0) -> None:
        self.sent: list[Ack] = []
        self.failures = failures or []
        self.pause = pause

    async def send(self, ack: Ack) -> None:
        if self.pause:
            await asyncio.sleep(self.pause)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(ack)


async def queue(storage: ReopenableStorage, count: int) -> None:
    async with storage.sessions.begin() as session:
        for n in range(count):
            await outbox.enqueue(
                session,
                ticket_id=None,
                kind="ack",
                channel="email",
                recipient=f"customer{n}@example.org",
                payload={"subject": f"[SUP-{n:06d}] Re: hi", "text": "hello",
                         "message_id": f"m{n}@support.example.com"},
                now=NOW,
            )  # fmt: skip


async def rows(storage: ReopenableStorage) -> list[Outbox]:
    async with storage.sessions() as session:
        return list(await session.scalars(select(Outbox).order_by(Outbox.id)))


async def test_queued_notices_are_sent_after_a_restart(storage: ReopenableStorage) -> None:
    await queue(storage, 3)
    await storage.engine.dispose()  # the process that queued them is gone
    engine = storage.reopen()
    try:
        replier = Recorder()
        deliverer = Deliverer(db.session_factory(engine), {"email": replier}, clock=lambda: NOW)
        assert await deliverer.run_once() == 3
        assert await deliverer.run_once() == 0  # nothing is sent twice
    finally:
        await engine.dispose()
    assert [a.to for a in replier.sent] == [f"customer{n}@example.org" for n in range(3)]
    assert replier.sent[0].subject == "[SUP-000000] Re: hi"
    assert replier.sent[0].message_id == "m0@support.example.com"
    assert {r.status for r in await rows(storage)} == {"sent"}


async def test_transient_failures_retry_with_backoff(storage: ReopenableStorage) -> None:
    await queue(storage, 1)
    clock = [NOW]
    replier = Recorder([TransientChannelError("451 try later"), OSError("refused")])
    deliverer = Deliverer(storage.sessions, {"email": replier}, clock=lambda: clock[0])
    assert await deliverer.run_once() == 1
    [row] = await rows(storage)
    assert row.status == "pending" and row.last_error == "451 try later"
    assert row.next_attempt_at == NOW + backoff(1)
    assert await deliverer.run_once() == 0  # not due yet
    clock[0] = NOW + backoff(1)
    assert await deliverer.run_once() == 1
    [row] = await rows(storage)
    assert row.next_attempt_at == clock[0] + backoff(2) and row.attempts == 2
    clock[0] += backoff(2)
    await deliverer.run_once()
    [row] = await rows(storage)
    assert row.status == "sent" and len(replier.sent) == 1


async def test_a_provider_s_retry_after_is_honoured(storage: ReopenableStorage) -> None:
    await queue(storage, 1)
    replier = Recorder([TransientChannelError("429 too many", retry_after=120)])
    await Deliverer(storage.sessions, {"email": replier}, clock=lambda: NOW).run_once()
    [row] = await rows(storage)
    assert row.next_attempt_at == NOW + timedelta(seconds=120)  # more than backoff(1)


async def test_permanent_failure_is_kept_as_failed(storage: ReopenableStorage) -> None:
    await queue(storage, 1)
    replier = Recorder([PermanentChannelError("550 no such user")])
    await Deliverer(storage.sessions, {"email": replier}, clock=lambda: NOW).run_once()
    [row] = await rows(storage)
    assert (row.status, row.last_error) == ("failed", "550 no such user")


async def test_two_deliverers_send_each_notice_once(storage: ReopenableStorage) -> None:
    await queue(storage, 30)
    replier = Recorder(pause=0.01)
    deliverers = [
        Deliverer(storage.sessions, {"email": replier}, batch=5, clock=lambda: NOW)
        for _ in range(2)
    ]

    async def drain(deliverer: Deliverer) -> None:
        while await deliverer.run_once():
            pass

    await asyncio.gather(*(drain(d) for d in deliverers))
    recipients = [a.to for a in replier.sent]
    assert len(recipients) == len(set(recipients)) == 30


async def test_a_lost_deliverer_s_lease_runs_out(storage: ReopenableStorage) -> None:
    await queue(storage, 1)
    async with storage.sessions.begin() as session:  # a deliverer claims, then dies
        await outbox.claim_due(session, NOW, timedelta(minutes=5), 10)
    replier = Recorder()
    early = Deliverer(
        storage.sessions, {"email": replier}, clock=lambda: NOW + timedelta(minutes=1)
    )
    assert await early.run_once() == 0
    late = Deliverer(storage.sessions, {"email": replier}, clock=lambda: NOW + timedelta(minutes=6))
    assert await late.run_once() == 1 and len(replier.sent) == 1


async def test_a_channel_without_a_replier_fails_visibly(storage: ReopenableStorage) -> None:
    await queue(storage, 1)
    await Deliverer(storage.sessions, {}, clock=lambda: NOW).run_once()
    [row] = await rows(storage)
    assert (row.status, row.last_error) == ("failed", "channel email not enabled")


def test_backoff_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff(40) == timedelta(hours=1)


class Commits:
    """Counts the transactions committed on an engine."""

    def __init__(self, storage: ReopenableStorage) -> None:
        self.count = 0
        self.engine = storage.engine.sync_engine
        event.listen(self.engine, "commit", self._committed)

    def _committed(self, _connection: object) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "commit", self._committed)


async def test_a_pass_records_its_outcomes_in_one_commit(storage: ReopenableStorage) -> None:
    await queue(storage, 6)
    replier = Recorder([TransientChannelError("451 later"), PermanentChannelError("550 gone")])
    commits = Commits(storage)
    try:
        deliverer = Deliverer(storage.sessions, {"email": replier}, clock=lambda: NOW)
        assert await deliverer.run_once() == 6
    finally:
        commits.close()
    assert commits.count == 2  # the claim, then every outcome together
    assert [r.status for r in await rows(storage)] == ["pending", "failed", *["sent"] * 4]
    assert len(replier.sent) == 4


async def test_outcomes_are_recorded_at_least_every_record_every(
    storage: ReopenableStorage,
) -> None:
    await queue(storage, 3)
    commits = Commits(storage)
    try:
        replier = Recorder()
        deliverer = Deliverer(
            storage.sessions, {"email": replier}, record_every=0, parallel=1, clock=lambda: NOW
        )
        assert await deliverer.run_once() == 3
    finally:
        commits.close()
    assert commits.count == 1 + 3  # each outcome as soon as it is known (one send at a time)
    assert {r.status for r in await rows(storage)} == {"sent"}


async def test_no_send_starts_on_a_lease_about_to_run_out(storage: ReopenableStorage) -> None:
    """Sends that take long (a slow relay) leave the rest of the pass for a new claim, so
    that no other deliverer can claim a row this one is still going to send."""
    await queue(storage, 3)
    clock = [NOW]

    class Slow(Recorder):
        async def send(self, ack: Ack) -> None:
            await super().send(ack)
            clock[0] += timedelta(minutes=2)

    replier = Slow()
    deliverer = Deliverer(
        storage.sessions,
        {"email": replier},
        lease=timedelta(minutes=5),
        send_margin=timedelta(minutes=1),
        clock=lambda: clock[0],
        parallel=1,  # one after the other, as to a relay that takes one at a time
    )
    assert await deliverer.run_once() == 3
    assert len(replier.sent) == 2  # the third would start with a minute of lease left
    third = (await rows(storage))[2]
    assert (third.status, third.attempts, third.leased_until) == ("pending", 0, None)
    assert await deliverer.run_once() == 1  # given back: due again at once
    assert [a.to for a in replier.sent] == [f"customer{n}@example.org" for n in range(3)]
    assert {r.status for r in await rows(storage)} == {"sent"}


class Holder:
    """A replier that takes the first notice in hand and keeps it until told to let go."""

    def __init__(self) -> None:
        self.in_hand = asyncio.Event()
        self.let_go = asyncio.Event()
        self.sent: list[Ack] = []

    async def send(self, ack: Ack) -> None:
        self.in_hand.set()
        await self.let_go.wait()
        self.sent.append(ack)


def real_time_deliverer(storage: ReopenableStorage, replier: object) -> Deliverer:
    # A one-second lease renewed five times a second: what 20 s and 5 s are in production.
    return Deliverer(
        storage.sessions, {"email": replier}, lease=timedelta(seconds=1), renew_every=0.2,
        send_margin=timedelta(seconds=0.5), record_every=0,
    )  # type: ignore[dict-item]  # fmt: skip


async def test_a_send_slower_than_the_lease_keeps_its_notices(storage: ReopenableStorage) -> None:
    """The holder's heartbeat renews the lease: another deliverer takes nothing meanwhile."""
    await queue(storage, 3)
    holder = Holder()
    first = real_time_deliverer(storage, holder)
    second_replier = Recorder()
    second = real_time_deliverer(storage, second_replier)
    running = asyncio.create_task(first.run_once())
    await holder.in_hand.wait()
    for _ in range(15):  # three leases' worth of polling by the other node
        assert await second.run_once() == 0
        await asyncio.sleep(0.2)
    holder.let_go.set()
    assert await running == 3
    assert [a.to for a in holder.sent] == [f"customer{n}@example.org" for n in range(3)]
    assert second_replier.sent == []
    assert {(r.status, r.attempts) for r in await rows(storage)} == {("sent", 1)}


async def test_a_dead_holders_notices_are_taken_over_when_its_lease_runs_out(
    storage: ReopenableStorage,
) -> None:
    """kill -9 mid-pass: no heartbeat, nothing recorded. The other deliverer sends every
    notice once the lease has run out; only the one in hand at the crash may go twice."""
    await queue(storage, 3)
    holder = Holder()
    dead = real_time_deliverer(storage, holder)
    survivor_replier = Recorder()
    survivor = real_time_deliverer(storage, survivor_replier)
    crashing = asyncio.create_task(dead.run_once())
    await holder.in_hand.wait()
    assert await survivor.run_once() == 0  # held while the holder lives
    crashing.cancel()  # the process is gone: its heartbeat with it
    with contextlib.suppress(asyncio.CancelledError):
        await crashing
    attempted = 0
    for _ in range(50):  # the lease is a second; poll as the deliverer's loop does
        attempted += await survivor.run_once()
        if attempted:
            break
        await asyncio.sleep(0.1)
    assert attempted == 3
    assert [a.to for a in survivor_replier.sent] == [f"customer{n}@example.org" for n in range(3)]
    assert {r.status for r in await rows(storage)} == {"sent"}


async def test_the_bell_starts_a_pass_at_once(storage: ReopenableStorage) -> None:
    """Rung after a commit, the deliverer sends what was queued without waiting for its next
    poll (an hour here, so without the bell this test would time out)."""
    replier = Recorder()
    deliverer = Deliverer(storage.sessions, {"email": replier}, idle=3600)
    stop = asyncio.Event()
    running = asyncio.create_task(deliverer.run(stop))
    try:
        await asyncio.sleep(0.2)  # its first pass found nothing; now it waits
        await queue(storage, 2)
        deliverer.wake()
        async with asyncio.timeout(30):
            while len(replier.sent) < 2:
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await running
    assert [a.to for a in replier.sent] == ["customer0@example.org", "customer1@example.org"]
