"""Rate limits every channel shares: a sliding-window limiter, a failure backoff (logins), an
`Intake` that refuses a sender over their limit, and an ASGI guard per client address.

Per process, in memory. The limits protect this node's CPU and database from one noisy
sender, so a per-node budget is what matters; with several nodes a sender gets at most
nodes x limit, which is still bounded. Sharing counters through the database would add a
write per message to the hot path for no protection the per-node limit does not give.
A leaf like `intake.messages`: channels may import it.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from intake.errors import InputRefusedError
from intake.messages import ChannelKind, InboundMessage, Intake, Receipt

Clock = Callable[[], float]
# Keys are sender-controlled; past this many the idle ones are forgotten (memory stays bounded).
MAX_KEYS = 100_000


class RateLimitedError(InputRefusedError):
    """Too many requests from one sender or address. Not stored; the sender may try again
    after `retry_after` seconds. `tell` is True for the first refusal in a window only, so a
    chat channel answers a flood with one polite reply at most."""

    def __init__(self, reason: str, *, retry_after: float, tell: bool = True) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.tell = tell

    @property
    def retry_seconds(self) -> int:
        """`retry_after` as a Retry-After header's whole seconds (at least 1)."""
        return max(1, math.ceil(self.retry_after))


class RateLimiter:
    """At most `limit` events per `window` seconds for each key (in this process's memory)."""

    def __init__(self, limit: int, window: float, clock: Clock = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._told: dict[str, float] = {}

    @classmethod
    def optional(cls, limit: int, window: float) -> RateLimiter | None:
        """A limiter, or None for a configured limit of 0 (no limit)."""
        return cls(limit, window) if limit > 0 else None

    def retry_after(self, key: str) -> float | None:
        """None when the event may happen now (it is counted); else seconds to wait."""
        now = self.clock()
        if len(self._events) > MAX_KEYS:
            self._forget(now)
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return events[0] + self.window - now
        events.append(now)
        return None

    def first_refusal(self, key: str) -> bool:
        """True once per window for a refused key: whether to tell the sender."""
        now = self.clock()
        told = self._told.get(key)
        if told is not None and now - told < self.window:
            return False
        self._told[key] = now
        return True

    def _forget(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]
        self._told = {k: t for k, t in self._told.items() if now - t < self.window}


class FailureBackoff:
    """Exponential lockout after repeated failures for one key (an account, a client).

    The first `free` failures cost nothing; each one after locks the key for `base` seconds,
    doubling up to `cap`. A success clears the key. A key quiet for `forget` seconds (default
    `cap`) after its lock ends is forgotten.
    """

    def __init__(
        self,
        free: int = 5,
        base: float = 1.0,
        cap: float = 900.0,
        clock: Clock = time.monotonic,
        forget: float | None = None,
    ) -> None:
        self.free, self.base, self.cap, self.clock = free, base, cap, clock
        self.forget = cap if forget is None else forget
        self._state: dict[str, tuple[int, float]] = {}  # key -> (failures, locked until)

    def wait(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None when it may now."""
        state = self._state.get(key)
        if state is None:
            return None
        now = self.clock()
        if now >= state[1] + self.forget:
            del self._state[key]  # quiet long enough: start over
            return None
        return state[1] - now if now < state[1] else None

    def failed(self, key: str) -> None:
        now = self.clock()
        if len(self._state) > MAX_KEYS:
            self._state = {k: s for k, s in self._state.items() if now < s[1] + self.forget}
        failures = self._state.get(key, (0, now))[0] + 1
        over = failures - self.free
        delay = min(self.cap, self.base * 2.0 ** (over - 1)) if over > 0 else 0.0
        self._state[key] = (failures, now + delay)

    def succeeded(self, key: str) -> None:
        self._state.pop(key, None)


class LoginBackoff:
    """Failed logins slow guessing without locking the real agent out.

    - Per (account, client address) and per client address: the first `free` failures cost
      nothing, then the pair (or the client, guessing many accounts) waits, doubling up to
      `cap`. Only the guesser's own address is held back this long.
    - Per account, from every address together: past `account_free` failures (remembered for
      `account_memory` seconds) each failure holds the account back for a delay doubling up to
      `account_cap`, short by design, so guessing from many addresses is slowed while the
      real agent waits at most that long; and not at all from an address that has logged in
      to the account before (its usual address), where only the per-pair delay applies.
    """

    USUAL_PER_ACCOUNT = 10  # the addresses remembered as an account's usual ones

    def __init__(
        self,
        free: int = 5,
        cap: float = 900.0,
        *,
        account_free: int = 20,
        account_cap: float = 60.0,
        account_memory: float = 3600.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock

        def now() -> float:  # reads `self.clock` on each call, so tests can replace it
            return self.clock()

        self.pairs = FailureBackoff(free, cap=cap, clock=now)
        self.clients = FailureBackoff(free, cap=cap, clock=now)
        self.accounts = FailureBackoff(account_free, cap=account_cap, clock=now,
                                       forget=account_memory)  # fmt: skip
        # Only accounts that logged in are keys here: bounded by the number of agents.
        self._usual: dict[str, dict[str, None]] = {}

    def wait(self, account: str, client: str) -> float | None:
        """Seconds until `client` may try `account` again, or None when it may now."""
        waits = [self.pairs.wait(_pair(account, client)), self.clients.wait(client)]
        if client not in self._usual.get(account, {}):
            waits.append(self.accounts.wait(account))
        return max((w for w in waits if w), default=None)

    def failed(self, account: str, client: str) -> None:
        self.pairs.failed(_pair(account, client))
        self.clients.failed(client)
        self.accounts.failed(account)

    def succeeded(self, account: str, client: str) -> None:
        """The pair and the client start over, and `client` becomes a usual address of the
        account. The account's own count stays: guessing elsewhere goes on being slowed."""
        self.pairs.succeeded(_pair(account, client))
        self.clients.succeeded(client)
        usual = self._usual.setdefault(account, {})
        usual.pop(client, None)
        usual[client] = None  # the most recent last
        while len(usual) > self.USUAL_PER_ACCOUNT:
            del usual[next(iter(usual))]


def _pair(account: str, client: str) -> str:
    return f"{account}\n{client}"  # no account name or address holds a newline


class LimitedIntake:
    """An `Intake` that refuses a sender's messages beyond `limit` per `window` seconds.

    Keyed by the normalized sender (address, E.164 number, "tg:<id>"), on every channel but
    mail read from a mailbox (IMAP: no envelope sender): we read that at our own pace, and
    refusing it would leave it nowhere to go.
    """

    def __init__(self, intake: Intake, limiter: RateLimiter) -> None:
        self.intake = intake
        self.limiter = limiter

    async def __call__(self, message: InboundMessage) -> Receipt:
        if message.channel is ChannelKind.EMAIL and message.envelope_sender is None:
            return await self.intake(message)
        wait = self.limiter.retry_after(message.sender)
        if wait is not None:
            raise RateLimitedError(
                "too many messages from this sender; please try again later",
                retry_after=wait,
                tell=self.limiter.first_refusal(message.sender),
            )
        return await self.intake(message)


def limited(intake: Intake, per_hour: int) -> Intake:
    """`intake` with at most `per_hour` messages per sender (0: no limit)."""
    return LimitedIntake(intake, RateLimiter(per_hour, 3600)) if per_hour > 0 else intake


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class ClientLimit:
    """ASGI middleware: at most the limiter's rate of HTTP requests per client address,
    except on `exempt` path prefixes (the Twilio and Telegram webhooks come from a few cloud
    addresses shared by every customer, and are limited per sender instead). Over the limit:
    429 with Retry-After."""

    def __init__(self, app: Asgi, limiter: RateLimiter, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.limiter.retry_after(str(client[0]) if client else "unknown")
        if wait is None:
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": b"Too many requests; try later.\n"})
