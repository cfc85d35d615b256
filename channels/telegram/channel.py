"""The Telegram channel: long polling or a webhook on `/webhooks/telegram`, through PTB's `Bot`.

We drive `getUpdates` ourselves, not PTB's `Updater`, which confirms an update when it is
queued. An update is confirmed only after its ticket committed: in polling mode by asking
for `offset = update_id + 1` (Telegram keeps the offset, so nothing is stored here), in
webhook mode by answering 200. A crash in between makes Telegram deliver it again, and the
pipeline answers DUPLICATE (idempotent on `update:<update_id>`): a second receipt, never a
second ticket. `/start`, `/help`, `/status` and a shared contact card are answered here and
never become tickets. Only private chats are served: the bot also sits in the agents' alert
groups, and what is said there is not a customer's request.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import Update
from telegram.error import InvalidToken, RetryAfter, TelegramError

from channels.telegram.inbound import MAX_FILE_BYTES, shape_problem
from channels.telegram.updates import UpdateHandler, to_status
from channels.telegram.wire import TelegramReplier, make_bot, retry_seconds
from channels.telegram.wire import scrub as _scrub
from intake.config import TelegramSettings
from intake.errors import ConfigError
from intake.messages import Intake

__all__ = ["WEBHOOK_PATH", "TelegramChannel", "TelegramReplier", "to_status"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED = ["message"]
MAX_BODY_BYTES = 1024 * 1024  # an update is a few KiB; the Bot API caps texts at 4096
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # what setWebhook accepts as secret_token


class TelegramChannel:
    """One bot, in `settings.mode`: polling starts a task; webhook registers the URL at start
    and serves through `routes`, a routes factory for the web channel."""

    name = "telegram"

    def __init__(
        self,
        settings: TelegramSettings,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        public_url: str = "",
        poll_timeout: int = 30,
        max_file_bytes: int = MAX_FILE_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.public_url = public_url
        self.poll_timeout = poll_timeout
        self.max_file_bytes = max_file_bytes
        self.max_body_bytes = max_body_bytes
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.bot = make_bot(settings)
        self.handle = UpdateHandler(self.bot, sessions, clock, max_file_bytes=max_file_bytes)
        self.offset: int | None = None  # the next update_id to ask for; None: Telegram's own
        self._token = settings.token.get_secret_value()
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # an update is in hand: stop waits for it instead of cancelling
        self._stopping = False
        self._in_flight = 0  # webhook requests being handled
        self._drained = asyncio.Event()
        self._last_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, intake: Intake) -> None:
        self._stopping = False
        webhook = self.settings.mode == "webhook"
        if webhook:
            self._check_webhook_settings()
        try:
            await self.bot.initialize()  # getMe: proves the token and the api_base
        except InvalidToken:
            await self.bot.shutdown()
            raise ConfigError("telegram.token", "rejected by the Bot API") from None
        except TelegramError as exc:
            log.warning("Telegram unreachable at start, will retry: %s", self._scrub(exc))
        if webhook:
            if not await self._set_webhook():
                self._task = asyncio.create_task(self._register_webhook())
        else:
            self._task = asyncio.create_task(self._poll(intake))
        log.info("telegram channel started (%s)", self.settings.mode)

    async def stop(self) -> None:
        """Stop polling (the update in hand is finished), let webhook requests finish."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            if not self._busy:
                task.cancel()  # waiting on Telegram or backing off: nothing in hand
            await asyncio.wait({task})
            error = None if task.cancelled() else task.exception()
            if error is not None:
                log.error("Telegram task ended: %s", self._scrub(error))
        if self.settings.mode == "polling" and self.offset is not None:
            await self._confirm()
        while self._in_flight:
            self._drained.clear()
            await self._drained.wait()
        await self.bot.shutdown()

    def _check_webhook_settings(self) -> None:
        if not _SECRET.match(self.settings.secret_token.get_secret_value()):
            raise ConfigError(
                "telegram.secret_token", "webhook mode needs 1-256 of A-Z, a-z, 0-9, _ and -"
            )
        if not self.public_url:
            raise ConfigError("web.public_url", "webhook mode needs the public URL")

    async def _set_webhook(self) -> bool:
        url = self.public_url.rstrip("/") + WEBHOOK_PATH
        try:
            await self.bot.set_webhook(
                url,
                secret_token=self.settings.secret_token.get_secret_value(),
                allowed_updates=ALLOWED,
            )
        except TelegramError as exc:
            log.warning("setting the Telegram webhook failed: %s", self._scrub(exc))
            self._last_error = exc
            return False
        log.info("Telegram webhook set to %s", url)
        return True

    async def _register_webhook(self) -> None:
        """Keep trying until Telegram knows where to send updates."""
        failures = 1
        while not self._stopping:
            await asyncio.sleep(self._backoff(failures, self._last_error))
            if await self._set_webhook():
                return
            failures += 1

    # -- polling ---------------------------------------------------------------------------

    async def _poll(self, intake: Intake) -> None:
        failures = 0
        webhook_cleared = False
        while not self._stopping:
            try:
                if not webhook_cleared:  # getUpdates answers 409 while a webhook is set
                    await self.bot.delete_webhook()
                    webhook_cleared = True
                batch = await self._fetch()
            except TelegramError as exc:
                log.warning("Telegram getUpdates failed: %s", self._scrub(exc))
                failures += 1
                await asyncio.sleep(self._backoff(failures, exc))
                continue
            self._busy = True  # no await since the fetch returned: stop sees it in time
            try:
                done = await self._work(intake, batch)
            finally:
                self._busy = False
            if done:
                failures = 0
            elif not self._stopping:  # stop no longer cancels us: do not sleep through it
                failures += 1
                await asyncio.sleep(self._backoff(failures))

    async def _fetch(self) -> list[tuple[int, Update | None]]:
        """The next updates; (update_id, None) for one PTB cannot parse."""
        try:
            updates = await self.bot.get_updates(
                offset=self.offset, timeout=self.poll_timeout, allowed_updates=ALLOWED
            )
        except TelegramError:
            raise
        except Exception:  # PTB parses the whole batch at once; take it apart to find why
            log.warning("Telegram sent an update PTB cannot parse; reading them one by one")
            return await self._fetch_raw()
        return [(update.update_id, update) for update in updates]

    async def _fetch_raw(self) -> list[tuple[int, Update | None]]:
        # The same request without PTB's batch parsing. Parameters go in the query string,
        # which the Bot API reads as well (do_api_request refuses methods PTB has).
        query = urlencode(
            {"offset": self.offset or 0, "timeout": 0, "allowed_updates": json.dumps(ALLOWED)}
        )
        data = await self.bot.request.post(f"{self.bot.base_url}/getUpdates?{query}")
        batch: list[tuple[int, Update | None]] = []
        for item in data if isinstance(data, list) else []:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int):
                continue
            try:
                batch.append((update_id, Update.de_json(item, self.bot)))
            except Exception:  # one malformed update must not hold up the others
                batch.append((update_id, None))
        return batch

    async def _work(self, intake: Intake, batch: list[tuple[int, Update | None]]) -> bool:
        """Handle the batch in order, advancing the offset after each commit; False when an
        update must be read again later (nothing after it is handled)."""
        for update_id, update in batch:
            if self._stopping:
                return True
            if update is None:
                log.error("Telegram update %d is malformed; skipped", update_id)
            else:
                outcome = await self.handle(intake, update)
                if to_status(outcome) != 200:
                    return False
            self.offset = max(self.offset or 0, update_id + 1)
        return True

    async def _confirm(self) -> None:
        """Tell Telegram what is done (getUpdates with the offset confirms what is before it)."""
        try:
            await self.bot.get_updates(offset=self.offset, limit=1, timeout=0)
        except Exception as exc:  # not confirmed: they come again, as DUPLICATE receipts
            log.info("could not confirm Telegram updates at stop: %s", self._scrub(exc))

    def _backoff(self, failures: int, exc: BaseException | None = None) -> float:
        if isinstance(exc, RetryAfter):
            return retry_seconds(exc)
        return min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, failures - 1))

    # -- webhook ---------------------------------------------------------------------------

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        """The routes factory for the web channel: POST /webhooks/telegram."""

        async def webhook(request: Request) -> Response:
            return await self._webhook(intake, request)

        return [Route(WEBHOOK_PATH, webhook, methods=["POST"])]

    def _secret_ok(self, request: Request) -> bool:
        expected = self.settings.secret_token.get_secret_value().encode()
        given = request.headers.get(SECRET_HEADER, "").encode("latin-1")
        return bool(expected) and hmac.compare_digest(given, expected)

    async def _webhook(self, intake: Intake, request: Request) -> Response:
        if not self._secret_ok(request):
            log.warning("Telegram webhook with a missing or wrong secret token refused")
            return PlainTextResponse("forbidden\n", status_code=403)
        if self._stopping:
            return PlainTextResponse("stopping\n", status_code=503)
        self._in_flight += 1
        try:
            body = await _read_capped(request, self.max_body_bytes)
            if body is None:
                return PlainTextResponse("too large\n", status_code=413)
            try:
                data = _json_object(body)
                if problem := shape_problem(data):
                    raise ValueError(problem)
                update = Update.de_json(data, self.bot)
            except Exception:  # any shape PTB cannot read is the sender's fault
                return PlainTextResponse("malformed update\n", status_code=400)
            status = to_status(await self.handle(intake, update))
            return PlainTextResponse("ok\n" if status == 200 else "retry\n", status_code=status)
        finally:
            self._in_flight -= 1
            self._drained.set()

    def _scrub(self, exc: BaseException) -> str:
        return _scrub(exc, self._token)


def _json_object(body: bytes) -> dict[str, Any]:
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("an update is a JSON object")
    return data


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is (or declares itself) larger than `limit`."""
    declared = request.headers.get("content-length", "")
    if declared and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
