"""The Telegram Bot API as we speak it: one `Bot` per use, pointed at `[telegram] api_base`
(the seam tests point at a local fake), the mapping of PTB's errors to ours, and the replier.

Everything we send is plain text (no `parse_mode`): acknowledgements quote what senders
wrote, and Markdown or HTML would let a sender's text shape our message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from telegram import Bot, LinkPreviewOptions, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.request import HTTPXRequest

from intake.config import TelegramSettings
from intake.errors import PermanentChannelError, TransientChannelError
from intake.messages import Ack

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Bot API limit on a message's text, in UTF-16 code units
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # no previews of links a sender wrote


def file_base_url(api_base: str) -> str:
    """Where files are downloaded: ".../bot" -> ".../file/bot" (the Bot API's layout)."""
    stem = api_base.rstrip("/")
    if stem.endswith("/bot"):
        return stem[: -len("/bot")] + "/file/bot"
    return stem + "/file/bot"


def make_bot(settings: TelegramSettings) -> Bot:
    """A PTB `Bot` on `settings.api_base`; the caller shuts it down (`async with bot`)."""
    token = settings.token.get_secret_value()
    return Bot(
        token,
        base_url=settings.api_base,
        base_file_url=file_base_url(settings.api_base),
        request=HTTPXRequest(connection_pool_size=16, read_timeout=30.0),
        # getUpdates holds its connection for the long-poll; PTB adds `timeout` to this.
        get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=10.0),
    )


def fit_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to Telegram's limit (counted in UTF-16 code units), marked when cut."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    cut = text.encode("utf-16-le")[: (limit - 1) * 2].decode("utf-16-le", "ignore")
    return cut + "\u2026"


def retry_seconds(exc: RetryAfter) -> float:
    """`RetryAfter.retry_after` in seconds: an int before PTB_TIMEDELTA, a timedelta after."""
    value: object = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) if isinstance(value, int | float) else 1.0


def scrub(exc: BaseException, token: str) -> str:
    """An exception's text for a log line: PTB names the token in some messages."""
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(token, "<token>") if token else text


@contextmanager
def sending_errors(token: str) -> Iterator[None]:
    """PTB's errors on a send, as our transient/permanent split."""
    try:
        yield
    except RetryAfter as exc:
        seconds = retry_seconds(exc)
        raise TransientChannelError(
            f"Telegram flood control: retry in {seconds:g} s", retry_after=seconds
        ) from None
    except Forbidden as exc:  # blocked by the user, kicked from the group
        raise PermanentChannelError(scrub(exc, token)) from None
    except BadRequest as exc:  # chat not found, bad chat id; a subclass of NetworkError
        raise PermanentChannelError(scrub(exc, token)) from None
    except ChatMigrated as exc:  # a group became a supergroup: the notice names the old id
        raise PermanentChannelError(f"chat moved to {exc.new_chat_id}") from None
    except InvalidToken:  # our configuration, not the recipient: keep the notice
        raise TransientChannelError("Telegram rejected the bot token") from None
    except TelegramError as exc:  # NetworkError, TimedOut, Conflict, 5xx
        raise TransientChannelError(scrub(exc, token)) from None


def chat_id_of(recipient: str) -> int:
    """The chat id an outbox recipient names ("123456", "-100123", or "tg-chat:123")."""
    text = recipient.strip().removeprefix("tg-chat:")
    try:
        return int(text)
    except ValueError:
        raise PermanentChannelError(f"not a Telegram chat id: {recipient!r}") from None


def reply_target(in_reply_to: str | None, chat_id: int) -> ReplyParameters | None:
    """Answer the user's own message when the ack names it ("telegram:<chat>:<message>")."""
    parts = (in_reply_to or "").split(":")
    if len(parts) != 3 or parts[0] != "telegram" or parts[1] != str(chat_id):
        return None
    if not parts[2].isdigit():
        return None
    return ReplyParameters(int(parts[2]), allow_sending_without_reply=True)


class TelegramReplier:
    """Sends acknowledgements and agent alerts (`Ack.to` is the chat id) as plain text.

    Holds one `Bot`, opened on first use; `aclose()` shuts it (and it reopens if used again).
    """

    def __init__(self, settings: TelegramSettings) -> None:
        self._token = settings.token.get_secret_value()
        self._bot = make_bot(settings)
        self._open = False

    async def send(self, ack: Ack) -> None:
        chat_id = chat_id_of(ack.to)
        text = fit_text(ack.text.strip() or ack.subject.strip() or ack.reference)
        with sending_errors(self._token):
            if not self._open:
                await self._bot.initialize()  # getMe: also proves the token
                self._open = True
            await self._bot.send_message(
                chat_id,
                text,
                reply_parameters=reply_target(ack.in_reply_to, chat_id),
                link_preview_options=NO_PREVIEW,
            )
        log.info("notice %d sent to Telegram chat %d", ack.outbox_id, chat_id)

    async def aclose(self) -> None:
        self._open = False
        await self._bot.shutdown()
