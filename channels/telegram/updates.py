"""One Telegram update, handled: a customer's message goes to the intake; `/start`, `/help`,
`/status` and a shared contact card are answered here and never become tickets.

Only private chats are served: the bot also sits in the agents' alert groups, and what is
said there is not a customer's request. Bots are never answered (two bots must not loop).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Message, ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError

from channels.telegram import replies as replies
from channels.telegram.inbound import Command, command_of, to_inbound
from channels.telegram.wire import NO_PREVIEW, fit_text
from intake.contacts.chats import ChatAccounts
from intake.contacts.values import normalize_phone
from intake.errors import InputRefusedError, TransientError, log_refusal
from intake.messages import Intake, Receipt
from intake.pipeline.references import format_reference, parse_reference
from intake.ratelimit import RateLimitedError

log = logging.getLogger(__name__)

Outcome = Receipt | None | InputRefusedError | TransientError | Exception


def to_status(outcome: Outcome) -> int:
    """The one mapping from handling an update to the webhook's HTTP status.

    None (a command, a contact card, an update not for us) and a refusal confirm with 200:
    a refused update can never be accepted, and Telegram would only send it again for hours.
    """
    if outcome is None or isinstance(outcome, Receipt | InputRefusedError):
        return 200
    return 503  # TransientError or a failure of ours: Telegram retries


class UpdateHandler:
    """Turns each update into an outcome to confirm it by (see `to_status`)."""

    def __init__(
        self,
        bot: Bot,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        *,
        max_file_bytes: int,
    ) -> None:
        self.bot = bot
        self.accounts = ChatAccounts(sessions)
        self.clock = clock
        self.max_file_bytes = max_file_bytes

    async def __call__(self, intake: Intake, update: Update) -> Outcome:
        """Whatever the update is, the outcome to confirm it by; never raises."""
        message = update.message
        user = message.from_user if message else None
        chat = message.chat if message else None
        if message is None or user is None or user.is_bot or chat is None:
            return None  # not a customer writing to the bot: confirmed, and dropped
        if chat.type != ChatType.PRIVATE:
            return None
        if not all(_is_id(n) for n in (update.update_id, user.id, chat.id, message.message_id)):
            # PTB's de_json checks no types: these ids become keys and addresses.
            return InputRefusedError("an update whose ids are not integers")
        try:
            command = command_of(message)
            if command is not None:
                await self._command(message, command, user.id)
                return None
            if message.contact is not None:
                await self._contact(message, user.id)
                return None
            inbound = await to_inbound(
                update,
                message,
                self.bot,
                received_at=self.clock(),
                max_file_bytes=self.max_file_bytes,
            )
            if not (inbound.text.strip() or inbound.attachments or inbound.problems):
                await self._say(message, replies.UNSUPPORTED)
                return None
            return await intake(inbound)
        except (InputRefusedError, TransientError) as exc:
            log.info("Telegram update %d not taken: %s", update.update_id, exc)
            if isinstance(exc, InputRefusedError):
                reason = "rate_limited" if isinstance(exc, RateLimitedError) else "bad_input"
                log_refusal("telegram", reason, f"tg:{user.id}", exc.reason)
            if isinstance(exc, RateLimitedError) and exc.tell:  # one polite reply per window
                with contextlib.suppress(TransientError):  # the refusal stands either way
                    await self._say(message, replies.TOO_MANY)
            return exc
        except (SQLAlchemyError, OSError) as exc:
            # The type only: a database error's text carries the statement's parameters.
            log.warning(
                "Telegram update %d: storage unavailable: %s", update.update_id, type(exc).__name__
            )
            return TransientError("storage unavailable")
        except Exception as exc:  # a bug must not stop the bot: read it again later
            log.exception("Telegram update %d failed", update.update_id)
            return exc

    async def _command(self, message: Message, command: Command, user_id: int) -> None:
        if command.name == "status":
            await self._say(message, await self._status_text(command.argument, user_id))
            return
        keyboard = ReplyKeyboardMarkup(
            [[replies.share_phone_button()]], resize_keyboard=True, one_time_keyboard=True
        )
        await self._say(message, replies.WELCOME, keyboard)

    async def _status_text(self, argument: str, user_id: int) -> str:
        ticket_id = parse_reference(argument)
        if ticket_id is None:
            return replies.STATUS_USAGE
        found = await self.accounts.ticket_status(ticket_id, f"tg:{user_id}")
        if found is None:  # someone else's ticket reads exactly like a missing one
            return replies.no_such_ticket(format_reference(ticket_id))
        return replies.status(found)

    async def _contact(self, message: Message, user_id: int) -> None:
        contact = message.contact
        if contact is None or contact.user_id != user_id:
            await self._say(message, replies.NOT_YOUR_CONTACT)
            return
        try:
            phone = normalize_phone(_international(contact.phone_number))
        except ValueError:
            await self._say(message, replies.NOT_MATCHED, ReplyKeyboardRemove())
            return
        link = await self.accounts.link(phone, str(user_id))
        log.info("Telegram user %d shared their phone: %s", user_id, link.result)
        await self._say(message, replies.linked(link), ReplyKeyboardRemove())

    async def _say(
        self,
        message: Message,
        text: str,
        markup: ReplyKeyboardMarkup | ReplyKeyboardRemove | None = None,
    ) -> None:
        """Answer in the chat. A user who blocked the bot is no reason to read it again."""
        try:
            await self.bot.send_message(
                message.chat.id,
                fit_text(text),
                reply_markup=markup,
                link_preview_options=NO_PREVIEW,
            )
        except (Forbidden, BadRequest) as exc:
            log.info("Telegram reply to chat %d not delivered: %s", message.chat.id, exc)
        except TelegramError as exc:
            raise TransientError(f"Telegram reply failed: {type(exc).__name__}") from exc


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _international(number: str) -> str:
    # Telegram sends the contact's number as digits without "+", in international form.
    text = number.strip()
    return "+" + text if text.isdigit() else text
