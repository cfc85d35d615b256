"""A Telegram `Message` as an `InboundMessage`, its files downloaded through the Bot API with a
size limit; and the bot's own commands, which never become tickets.

Everything in an update is sender-controlled: file names are reduced to a plain base name,
MIME types to a plain type/subtype, and nothing here is ever formatted as Markdown or HTML.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import Bot, Message, Update
from telegram.error import BadRequest, InvalidToken, TelegramError

from intake.errors import TransientError
from intake.messages import Attachment, ChannelKind, InboundMessage

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20 * 1024 * 1024  # what the Bot API lets a bot download at all
COMMANDS = frozenset({"start", "help", "status"})
_MIME = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,127}$")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
# What a sender's text keeps: tab and line breaks, no other controls (PostgreSQL refuses NUL).
_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# The types of the update fields we read. PTB's `de_json` checks none, so a webhook body with
# `"first_name": false` or `"chat": null` would otherwise fail later, as a bug of ours (503, and
# Telegram resends it for hours). Required keys are marked with "!".
_FILE = {"file_id!": str, "file_unique_id!": str, "file_name": str, "mime_type": str,
         "file_size": int}  # fmt: skip
_SHAPE: dict[str, Any] = {
    "update_id!": int,
    "message": {
        "message_id!": int,
        "date!": int,
        "chat!": {
            "id!": int,
            "type!": str,
            "first_name": str,
            "last_name": str,
            "username": str,
            "title": str,
        },
        "from": {
            "id!": int,
            "is_bot!": bool,
            "first_name!": str,
            "last_name": str,
            "username": str,
            "language_code": str,
        },
        "text": str,
        "caption": str,
        "contact": {"phone_number!": str, "first_name!": str, "last_name": str, "user_id": int},
        "photo": [_FILE | {"width!": int, "height!": int}],
        "document": _FILE,
        "video": _FILE,
        "audio": _FILE,
        "voice": _FILE,
    },
}


def shape_problem(data: object, shape: Any = None, where: str = "update") -> str | None:
    """What is wrong with the types of a webhook's update, or None."""
    shape = _SHAPE if shape is None else shape
    if isinstance(shape, list):
        if not isinstance(data, list):
            return f"{where} is not a list"
        return next((p for item in data if (p := shape_problem(item, shape[0], where))), None)
    if isinstance(shape, dict):
        if not isinstance(data, dict):
            return f"{where} is not an object"
        for key, inner in shape.items():
            name = key.rstrip("!")
            if name not in data:
                if key.endswith("!"):
                    return f"{where}.{name} is missing"
                continue
            if problem := shape_problem(data[name], inner, f"{where}.{name}"):
                return problem
        return None
    wrong_bool = shape is int and isinstance(data, bool)
    return (
        None if isinstance(data, shape) and not wrong_bool else f"{where} is not {shape.__name__}"
    )


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # one of COMMANDS
    argument: str


def command_of(message: Message) -> Command | None:
    """The bot command the message is ("/status SUP-000123", "/start@our_bot"), if any.

    Only our own commands: any other text starting with "/" is an ordinary request.
    """
    text = message.text if isinstance(message.text, str) else ""  # de_json checks no types
    parts = text.split(maxsplit=1)
    if not parts or not parts[0].startswith("/"):
        return None
    name = parts[0][1:].partition("@")[0].lower()
    if name not in COMMANDS:
        return None
    return Command(name, parts[1].strip() if len(parts) > 1 else "")


@dataclass(frozen=True, slots=True)
class FileRef:
    file_id: str
    filename: str
    content_type: str
    size: int | None  # as the update declares it


def safe_filename(name: str | None, fallback: str) -> str:
    """A base name without path parts or control characters, at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE_NAME.sub("", base).strip().lstrip(".")
    return base[:200] or fallback


def _mime(value: str | None, fallback: str) -> str:
    text = (value or "").strip().lower()
    return text if _MIME.match(text) else fallback


def files_of(message: Message) -> list[FileRef]:
    """The files a message carries: the largest size of a photo, documents and media."""
    refs: list[FileRef] = []
    if message.photo:
        photo = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        refs.append(
            FileRef(
                photo.file_id, f"photo_{photo.file_unique_id}.jpg", "image/jpeg", photo.file_size
            )
        )
    if message.document:
        doc = message.document
        refs.append(
            FileRef(
                doc.file_id,
                safe_filename(doc.file_name, f"document_{doc.file_unique_id}"),
                _mime(doc.mime_type, "application/octet-stream"),
                doc.file_size,
            )
        )
    for media, stem, kind in (
        (message.video, "video", "video/mp4"),
        (message.audio, "audio", "audio/mpeg"),
        (message.voice, "voice", "audio/ogg"),
    ):
        if media is not None:
            fallback = f"{stem}_{media.file_unique_id}"
            name = getattr(media, "file_name", None)
            refs.append(
                FileRef(
                    media.file_id,
                    safe_filename(name, fallback),
                    _mime(media.mime_type, kind),
                    media.file_size,
                )
            )
    return refs


async def download(bot: Bot, ref: FileRef, limit: int) -> Attachment | str:
    """The file as an attachment, or the problem to record when it cannot be stored.

    Raises TransientError when the Bot API is unreachable: the update is then not confirmed,
    and the whole message is read again later.
    """
    if ref.size is not None and ref.size > limit:
        return f"attachment-too-large:{ref.filename}"
    try:
        file = await bot.get_file(ref.file_id)
        if file.file_size is not None and file.file_size > limit:
            return f"attachment-too-large:{ref.filename}"
        if not file.file_path:
            return f"attachment-unavailable:{ref.filename}"
        data = bytes(await file.download_as_bytearray())
    except (BadRequest, InvalidToken) as exc:
        # getFile answers 400 "file is too big" over 20 MB; the file server 404s a lost file.
        log.warning("Telegram file %r unavailable: %s", ref.filename, type(exc).__name__)
        return f"attachment-unavailable:{ref.filename}"
    except TelegramError as exc:
        raise TransientError(f"Telegram file download failed: {type(exc).__name__}") from exc
    if len(data) > limit:
        return f"attachment-too-large:{ref.filename}"
    return Attachment(filename=ref.filename, content_type=ref.content_type, data=data)


def _text_of(message: Message) -> str:
    text = message.text or message.caption or ""
    return text if isinstance(text, str) else ""  # de_json checks no types


async def to_inbound(
    update: Update, message: Message, bot: Bot, *, received_at: datetime, max_file_bytes: int
) -> InboundMessage:
    """The request a message makes, keyed by `update_id` (Telegram redelivers by it).

    `reply_to` is the chat id, where the acknowledgement goes; `rfc_message_id` names the
    message in its chat ("telegram:<chat>:<message>") so the acknowledgement can answer it.
    """
    user = message.from_user
    if user is None:
        raise ValueError("a message without a sender")  # callers pass only users' messages
    attachments: list[Attachment] = []
    problems: list[str] = []
    for ref in files_of(message):
        got = await download(bot, ref, max_file_bytes)
        if isinstance(got, str):
            problems.append(got)
        else:
            attachments.append(got)
    extra: dict[str, object] = {"chat_id": message.chat.id}
    if user.username:
        extra["telegram_username"] = _UNSAFE_NAME.sub("", str(user.username))[:64]
    return InboundMessage(
        channel=ChannelKind.TELEGRAM,
        channel_message_id=f"update:{update.update_id}",
        received_at=received_at,
        sender=f"tg:{user.id}",
        sender_name=" ".join(_UNSAFE_NAME.sub(" ", user.full_name).split())[:200],
        reply_to=str(message.chat.id),
        text=_TEXT_CONTROLS.sub("", _text_of(message)),
        attachments=tuple(attachments),
        rfc_message_id=f"telegram:{message.chat.id}:{message.message_id}",
        problems=tuple(problems),
        raw=json.dumps(update.to_dict(), ensure_ascii=False).encode(),
        extra=extra,
    )
