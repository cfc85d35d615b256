"""The IMAP inbound channel: polls one mailbox folder and feeds each new message to the intake.

A message is confirmed on the wire (flagged \\Seen, or moved to `processed_folder`) only after
the pipeline's `Receipt`, that is after its transaction has committed. A crash in between is
harmless: the message is fetched again and comes back as a DUPLICATE receipt (Message-ID
idempotency), then it is confirmed. Where polling stands (UIDVALIDITY and the last UID done) is
kept in `mailbox_state`. The blocking imapclient calls live in `channels.email.imap_session`.

Several nodes may run the channel on one mailbox: only the holder of the mailbox's
`Leadership` (a PostgreSQL advisory lock, `storage.locks`) polls; the others wait and take over
when it dies or loses its database connection. Polling stops as soon as a check of the lock
fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.email.imap_session import (
    ImapCommandError,
    ImapConnectionError,
    ImapSession,
    map_imap_errors,
)
from channels.email.inbound import inbound_message
from channels.email.oauth2 import AccessTokens
from intake.config import ImapSettings
from intake.errors import ConfigError, InputRefusedError, IntakeError, TransientError, log_refusal
from intake.messages import Intake, Receipt, ReceiptStatus
from intake.pipeline.mailboxes import Leadership, MailboxPosition, MailboxPositions, SoleNode
from intake.ratelimit import RateLimitedError

__all__ = [
    "BackfillResult",
    "ImapChannel",
    "ImapCommandError",
    "ImapConnectionError",
    "backfill",
    "map_imap_errors",
]

log = logging.getLogger(__name__)

BATCH_SIZE = 20  # messages fetched per UID FETCH: bounds memory and the work redone on a drop
TIMEOUT_SECONDS = 60.0  # socket timeout for one IMAP command
LOCK_CHECK_SECONDS = 5.0  # how often the poller checks it still holds the mailbox's lock
LOCK_RETRY_SECONDS = 5.0  # how often a waiting node tries to take the lock


def mailbox_key(settings: ImapSettings) -> str:
    return f"{settings.user}@{settings.host}:{settings.port}/{settings.folder}"


def access_tokens(settings: ImapSettings) -> AccessTokens | None:
    """The token cache of an `auth = "oauth2"` mailbox; None for a password login."""
    return AccessTokens(settings, "imap") if settings.auth == "oauth2" else None


def _chunks(uids: Sequence[int], size: int) -> list[Sequence[int]]:
    return [uids[i : i + size] for i in range(0, len(uids), size)]


class ImapChannel:
    """Polls `settings.folder` (IDLE where the server has it) and reconnects when dropped.

    imapclient blocks on its socket, so every call on the `ImapSession` goes through
    `asyncio.to_thread`: the event loop keeps serving the other channels meanwhile.
    """

    name = "imap"

    def __init__(
        self,
        settings: ImapSettings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        use_idle: bool = True,
        batch_size: int = BATCH_SIZE,
        timeout: float = TIMEOUT_SECONDS,
        leadership: Leadership | None = None,
        lock_check: float = LOCK_CHECK_SECONDS,
        lock_retry: float = LOCK_RETRY_SECONDS,
    ) -> None:
        self.settings = settings
        self.mailbox = mailbox_key(settings)
        self._positions = MailboxPositions(sessions)
        self._clock = clock
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._use_idle = use_idle
        self._batch_size = batch_size
        self._timeout = timeout
        self._intake: Intake | None = None
        self._task: asyncio.Task[None] | None = None
        # Without one, this node is taken to be the only one (SQLite: one node by nature).
        self._leadership: Leadership = leadership or SoleNode(self.mailbox)
        self._lock_check = lock_check
        self._lock_retry = lock_retry
        self._stopping = asyncio.Event()
        self._leave = asyncio.Event()  # stopping, or the lock was lost: stop polling
        self._leave_thread = threading.Event()  # the same, for a blocking IDLE wait
        self._failures = 0
        self.polling = False  # this node holds the mailbox's lock and polls it now
        self._tokens = access_tokens(settings)  # kept across reconnects: the token cache
        # Why the last login failed, when an administrator must act (a refused password or
        # refresh token); None once logged in again. /healthz shows it.
        self.problem: str | None = None

    async def start(self, intake: Intake) -> None:
        """Connect and log in (raising what went wrong), then poll in a background task.

        Every node checks its settings this way at start, even one that will wait for the lock.
        """
        self._intake = intake
        self._stopping.clear()
        self._leave.clear()
        self._leave_thread.clear()
        session = await self._connect()
        self._task = asyncio.create_task(self._lead(session), name=f"imap {self.mailbox}")

    async def stop(self) -> None:
        """Stop polling, finish the message in hand, log out, give up the lock."""
        self._stopping.set()
        self._leave.set()
        self._leave_thread.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _connect(self) -> ImapSession:
        # imapclient (and the token endpoint's client) block: every call runs in a worker thread.
        try:
            session = await asyncio.to_thread(
                ImapSession.open, self.settings, timeout=self._timeout, tokens=self._tokens
            )
        except ConfigError as exc:
            self.problem = f"IMAP login failed: {exc}"
            raise
        self.problem = None
        return session

    # -- the background task -----------------------------------------------------------------

    async def _lead(self, session: ImapSession | None) -> None:
        """Wait for the mailbox's lock, poll while it is held; wait again if it is lost."""
        while not self._stopping.is_set():
            if not await self._leadership.acquire():
                if session is not None:
                    log.info("IMAP %s: another node polls it; waiting", self.mailbox)
                    await asyncio.to_thread(session.logout)
                    session = None
                await self._sleep(self._lock_retry, self._stopping)
                continue
            self._leave.clear()
            self._leave_thread.clear()
            if self._stopping.is_set():  # stop() came while the lock was being taken
                await self._leadership.release()
                break
            watch = asyncio.create_task(self._watch_lock(), name=f"imap lock {self.mailbox}")
            self.polling = True
            try:
                await self._run(session)
            finally:
                session = None  # _run logs out
                self.polling = False
                self._leave.set()
                await watch
                await self._leadership.release()
        if session is not None:
            await asyncio.to_thread(session.logout)

    async def _watch_lock(self) -> None:
        """Check the lock regularly; on a failed check, make the poller stop."""
        while not self._leave.is_set():
            await self._sleep(self._lock_check, self._leave)
            if self._leave.is_set():
                return
            if not await self._leadership.held():
                log.warning("IMAP %s: lost the mailbox's lock; polling stops", self.mailbox)
                self._leave.set()
                self._leave_thread.set()
                return

    async def _run(self, session: ImapSession | None) -> None:
        while not self._leave.is_set():
            try:
                if session is None:
                    session = await self._connect()
                    log.info("IMAP %s: reconnected", self.mailbox)
                await self._serve(session)
            except Exception as exc:
                # Dropped, refused or misconfigured: retry with backoff, never end the task.
                if session is not None:
                    await asyncio.to_thread(session.close)
                    session = None
                self._failures += 1
                delay = self._backoff()
                if isinstance(exc, ConfigError):
                    # Needs an administrator (a revoked refresh token, a changed password).
                    log.error("IMAP %s: %s; trying again in %.1fs", self.mailbox, exc, delay)
                elif isinstance(exc, IntakeError):
                    log.warning("IMAP %s: %s; reconnecting in %.1fs", self.mailbox, exc, delay)
                else:
                    log.exception("IMAP %s: failed; reconnecting in %.1fs", self.mailbox, delay)
                await self._sleep(delay, self._leave)
        if session is not None:
            await asyncio.to_thread(session.logout)

    async def _serve(self, session: ImapSession) -> None:
        """Passes over the folder, waiting for new mail in between, until stopped."""
        while not self._leave.is_set():
            try:
                handled = await self._pass(session)
            except (ImapConnectionError, ImapCommandError):
                raise
            except Exception as exc:
                # The intake failed (TransientError: the database is away). The message stays
                # unseen and is fetched again on the next pass.
                self._failures += 1
                delay = self._backoff()
                if isinstance(exc, TransientError):
                    log.warning("IMAP %s: intake: %s; retry in %.1fs", self.mailbox, exc, delay)
                else:
                    log.exception("IMAP %s: intake failed; retry in %.1fs", self.mailbox, delay)
                await self._sleep(delay, self._leave)
                continue
            self._failures = 0
            if not handled:
                # Only after a pass that found nothing: mail that came while the last batch was
                # being handled is taken now, not when IDLE next times out (Dovecot's IDLE
                # reports changes made after it started, not those made before).
                await self._wait_for_mail(session)

    def _backoff(self) -> float:
        exponent = min(self._failures - 1, 30)
        return float(min(self._backoff_cap, self._backoff_base * 2**exponent))

    async def _sleep(self, seconds: float, until: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), seconds)

    async def _wait_for_mail(self, session: ImapSession) -> None:
        if self._use_idle and session.has_idle:
            # Blocking wait on the socket, in a thread; it looks at the stop flag regularly.
            await asyncio.to_thread(session.idle, self.settings.idle_seconds, self._leave_thread)
        else:
            await self._sleep(self.settings.poll_seconds, self._leave)

    # -- one pass over the folder ------------------------------------------------------------

    async def _pass(self, session: ImapSession) -> int:
        """Take what is new in the folder; returns how many messages were handled."""
        position = await self._positions.get(self.mailbox)
        # Dovecot shows a selected folder's new mail only after a command that syncs it.
        await asyncio.to_thread(session.noop)
        handled = 0
        if position is None or position.uidvalidity != session.uidvalidity:
            caught_up = await self._catch_up(session, position)
            if caught_up is None:
                return 0
            last_uid, handled = caught_up
        else:
            last_uid = position.last_uid
        uids = await asyncio.to_thread(session.uids_after, last_uid)
        for batch in _chunks(uids, self._batch_size):
            raws = await asyncio.to_thread(session.fetch, batch)
            for uid in batch:
                if self._leave.is_set():
                    return handled
                await self._take(session, uid, raws.get(uid))
                await self._save(session.uidvalidity, uid)
                handled += 1
        return handled

    async def _catch_up(
        self, session: ImapSession, position: MailboxPosition | None
    ) -> tuple[int, int] | None:
        """First run: the unseen backlog. New UIDVALIDITY: the whole folder, again.

        Returns the new last UID and how many messages were handled; None when stopped half way
        (nothing saved: the catch-up starts over next time).
        """
        top = await asyncio.to_thread(session.highest_uid)
        if position is None:
            criteria = ["UNSEEN"]
            log.info("IMAP %s: first run; taking the unseen backlog", self.mailbox)
        else:
            criteria = ["ALL"]
            log.warning(
                "IMAP %s: UIDVALIDITY changed from %d to %d; re-reading the whole folder "
                "(messages already stored come back as duplicates)",
                self.mailbox,
                position.uidvalidity,
                session.uidvalidity,
            )
        uids = [u for u in await asyncio.to_thread(session.search, criteria) if u <= top]
        for batch in _chunks(uids, self._batch_size):
            raws = await asyncio.to_thread(session.fetch, batch)
            for uid in batch:
                if self._leave.is_set():
                    return None
                await self._take(session, uid, raws.get(uid))
        await self._save(session.uidvalidity, top)
        return top, len(uids)

    async def _take(self, session: ImapSession, uid: int, raw: bytes | None) -> None:
        """Feed one message to the intake; confirm it on the server only after its receipt."""
        if raw is None:
            log.info("IMAP %s: UID %d vanished before it was fetched", self.mailbox, uid)
            return
        if self._intake is None:
            raise RuntimeError("ImapChannel.start() sets the intake first")
        outcome = await _feed(self._intake, raw, self._clock)
        if outcome is None:
            await asyncio.to_thread(session.mark_refused, uid)
            return
        await asyncio.to_thread(session.confirm, uid)
        log.info("IMAP %s: UID %d %s %s", self.mailbox, uid, outcome.status, outcome.reference)

    async def _save(self, uidvalidity: int, last_uid: int) -> None:
        await self._positions.save(
            self.mailbox, uidvalidity=uidvalidity, last_uid=last_uid, at=self._clock()
        )


async def _feed(intake: Intake, raw: bytes, clock: Callable[[], datetime]) -> Receipt | None:
    """The receipt, or None when the pipeline refused the message for good (logged)."""
    with inbound_message(raw, received_at=clock(), recipients=()) as message:
        try:
            return await intake(message)
        except InputRefusedError as exc:
            log.warning("IMAP message %r refused: %r", message.channel_message_id, exc.reason)
            reason = "rate_limited" if isinstance(exc, RateLimitedError) else "bad_input"
            log_refusal("email", reason, message.sender, exc.reason)
            return None


# -- backfill after an outage -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillResult:
    seen: int = 0  # messages read from the folder
    accepted: int = 0  # new tickets and follow-ups stored now
    duplicates: int = 0  # stored before: skipped
    refused: int = 0


async def backfill(
    settings: ImapSettings,
    intake: Intake,
    since: date,
    clock: Callable[[], datetime],
) -> BackfillResult:
    """Feed every message in the folder dated `since` or later, seen or not, to the intake.

    Messages stored before come back DUPLICATE and are left alone; new ones are confirmed like
    the poller does. The poller's position (`mailbox_state`) is not changed.
    """
    # imapclient blocks on its socket: every call runs in a worker thread.
    tokens = access_tokens(settings)
    session = await asyncio.to_thread(
        ImapSession.open, settings, timeout=TIMEOUT_SECONDS, tokens=tokens
    )
    counts = {"seen": 0, "accepted": 0, "duplicates": 0, "refused": 0}
    try:
        uids = await asyncio.to_thread(session.uids_since, since)
        for batch in _chunks(uids, BATCH_SIZE):
            raws = await asyncio.to_thread(session.fetch, batch)
            for uid in batch:
                if uid not in raws:
                    continue
                counts["seen"] += 1
                receipt = await _feed(intake, raws[uid], clock)
                if receipt is None:
                    counts["refused"] += 1
                    await asyncio.to_thread(session.mark_refused, uid)
                elif receipt.status is ReceiptStatus.DUPLICATE:
                    counts["duplicates"] += 1
                else:
                    counts["accepted"] += 1
                    await asyncio.to_thread(session.confirm, uid)
    finally:
        await asyncio.to_thread(session.logout)
    return BackfillResult(**counts)
