"""Mail Postmark's inbound webhook posts as JSON, to a URL carrying basic-auth credentials.

With "Include raw email content in JSON payload" on, `RawEmail` is the message as received and
goes to the pipeline as it is. Without it, a MIME message is rebuilt from the JSON (FromFull,
To, Cc, Subject, Date, TextBody, HtmlBody, Headers, Attachments) so that the same parser reads
it, including the headers that mark machine mail and thread replies. Postmark's `MessageID`
stands in for a missing Message-ID, so a redelivered post is still the same ticket.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Sequence
from email.errors import MessageError
from email.message import EmailMessage
from email.policy import default
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from channels.email.posts.bodies import Clock, check_basic_auth, deliver, read_body
from intake.config import PostmarkSettings
from intake.errors import InputRefusedError
from intake.messages import Intake

log = logging.getLogger(__name__)

POSTMARK_PATH = "/webhooks/mail/postmark"
MAX_HEADERS = 300
MAX_ATTACHMENTS = 100
# Set from their own JSON fields, or made by the MIME structure we build.
_OWN = {"from", "to", "cc", "bcc", "subject", "date", "content-type", "mime-version"}
_OWN |= {"content-transfer-encoding", "content-disposition"}
_NAME = re.compile(r"[!-9;-~]{1,76}")  # RFC 5322 field-name
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_TYPE = re.compile(r"([a-z0-9!#$&^_.+-]{1,64})/([a-z0-9!#$&^_.+-]{1,64})")


def _value(value: object, limit: int = 4000) -> str:
    """A JSON value fit for a header: a string without line breaks or controls, cut."""
    return _CONTROLS.sub(" ", value if isinstance(value, str) else "")[:limit].strip()


def _from(data: dict[str, Any]) -> str:
    full = data.get("FromFull")
    if isinstance(full, dict) and _value(full.get("Email")):
        email, name = _value(full.get("Email"), 320), _value(full.get("Name"), 200)
        if not name:
            return email
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{email}>'
    return _value(data.get("From"), 1000)


def _copy_headers(message: EmailMessage, data: dict[str, Any]) -> None:
    headers = data.get("Headers")
    for header in (headers if isinstance(headers, list) else [])[:MAX_HEADERS]:
        if not isinstance(header, dict):
            continue
        name, value = _value(header.get("Name"), 76), _value(header.get("Value"))
        if not _NAME.fullmatch(name) or name.lower() in _OWN:
            continue
        try:
            message[name] = value
        except (MessageError, ValueError, TypeError, IndexError):
            continue  # one header the parser cannot take does not cost the message


def _attach(message: EmailMessage, data: dict[str, Any]) -> None:
    attachments = data.get("Attachments")
    for item in (attachments if isinstance(attachments, list) else [])[:MAX_ATTACHMENTS]:
        if not isinstance(item, dict):
            continue
        try:
            content = base64.b64decode(_value(item.get("Content"), 10**9), validate=True)
        except (binascii.Error, ValueError):
            raise InputRefusedError("an attachment's Content is not base64") from None
        kind = _TYPE.fullmatch(_value(item.get("ContentType"), 200).lower())
        maintype, subtype = kind.groups() if kind else ("application", "octet-stream")
        name = _value(item.get("Name"), 255) or "attachment"
        if maintype == "text":  # add_attachment takes text as str; keep its bytes as they are
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)


def rebuild(data: dict[str, Any]) -> bytes:
    """A MIME message from Postmark's JSON fields (the payload without `RawEmail`)."""
    message = EmailMessage(policy=default)
    try:
        for field, header in (("To", "To"), ("Cc", "Cc"), ("Subject", "Subject"), ("Date", "Date")):
            if _value(data.get(field)):
                message[header] = _value(data.get(field))
        message["From"] = _from(data)
        _copy_headers(message, data)
        if "Message-ID" not in message and _value(data.get("MessageID"), 200):
            message["Message-ID"] = f"<{_value(data.get('MessageID'), 200)}@postmark.invalid>"
        text, html = _value_body(data, "TextBody"), _value_body(data, "HtmlBody")
        if html and text:
            message.set_content(text)
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html or text, subtype="html" if html else "plain")
        _attach(message, data)
        return message.as_bytes()
    except (MessageError, ValueError, TypeError, IndexError) as exc:
        raise InputRefusedError(f"cannot rebuild the message: {type(exc).__name__}") from None


def _value_body(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    return value.replace("\x00", "") if isinstance(value, str) else ""


def raw_message(data: dict[str, Any]) -> bytes:
    """The message a Postmark post carries: `RawEmail` when present, else rebuilt."""
    raw = data.get("RawEmail")
    if isinstance(raw, str) and raw.strip():
        return raw.encode("utf-8", "replace")  # a lone surrogate cannot be UTF-8
    return rebuild(data)


class PostmarkPosts:
    """POST /webhooks/mail/postmark."""

    def __init__(self, settings: PostmarkSettings, *, clock: Clock) -> None:
        self.user = settings.user
        self.password = settings.password.get_secret_value()
        self.max_bytes = settings.max_request_bytes
        self.clock = clock

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        async def post(request: Request) -> Response:
            return await self.post(request, intake)

        return [Route(POSTMARK_PATH, post, methods=["POST"])]

    async def post(self, request: Request, intake: Intake) -> Response:
        check_basic_auth(request, self.user, self.password, "Postmark")
        body = await read_body(request, self.max_bytes)
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise InputRefusedError("not a JSON object")
            raw = raw_message(data)
        except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError too
            log.warning("refused a Postmark post: not JSON")
            return PlainTextResponse("not JSON\n", 400)
        except InputRefusedError as exc:
            log.warning("refused a Postmark post: %s", exc.reason)
            return PlainTextResponse(f"{exc.reason}\n", 400)
        recipient = _value(data.get("OriginalRecipient"), 320).lower()
        return await deliver(
            intake,
            raw,
            clock=self.clock,
            provider="Postmark",
            recipients=(recipient,) if recipient else (),
        )
