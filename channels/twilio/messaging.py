"""Twilio WhatsApp and SMS: the signed webhooks in, the REST API out (CONTRACTS section 4).

Every request is checked with the twilio package's `RequestValidator` against the configured
public URL (behind a proxy `request.url` is wrong) before any field of it is read; the body is
only bounded and form-decoded first, because the signature covers the decoded fields. The
call-back flow on the same checks lives in `channels.twilio.voice`.

Inbound messages are answered with an empty TwiML `<Response/>` once the ticket committed: the
acknowledgement goes out through the outbox and `TwilioReplier`, not as TwiML, so a message
Twilio redelivers never gets a second acknowledgement and a crash after commit loses none.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from channels.twilio.forms import (
    MAX_BODY_BYTES,
    Clock,
    Form,
    SignedForms,
    clean,
    phone_sender,
    twiml,
)
from channels.web.app import take, to_status
from intake.config import TwilioSettings
from intake.errors import InputRefusedError
from intake.messages import Attachment, ChannelKind, InboundMessage, Intake

log = logging.getLogger(__name__)

MESSAGING_PATH = "/webhooks/twilio/messaging"
STATUS_PATH = "/webhooks/twilio/messaging/status"
MAX_MEDIA = 10  # Twilio attaches at most 10 media to one message
_CONTENT_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,64}")


class StatusRecorder(Protocol):
    """Keeps a delivery status callback (see `storage.twilio_status.OutboxStatuses`)."""

    async def __call__(
        self,
        *,
        outbox_id: int | None,
        message_sid: str,
        status: str,
        error_code: str,
        at: datetime,
    ) -> None: ...


async def log_status(
    *, outbox_id: int | None, message_sid: str, status: str, error_code: str, at: datetime
) -> None:
    """The default recorder: a log line."""
    log.info("twilio %s for notice %s: %s %s", message_sid, outbox_id, status, error_code)


class MediaFetcher:
    """Downloads a message's media with the account's credentials, each up to a size limit."""

    def __init__(self, settings: TwilioSettings, limit: int, timeout: float = 10.0) -> None:
        self.auth = (settings.account_sid, settings.auth_token.get_secret_value())
        self.origin = urlsplit(settings.api_base)[:2]
        self.limit = limit
        self.timeout = timeout

    async def fetch(self, form: Form, sid: str) -> tuple[list[Attachment], list[str]]:
        try:
            count = int(form.get("NumMedia") or "0")
        except ValueError:
            raise InputRefusedError("NumMedia is not a number") from None
        attachments: list[Attachment] = []
        problems = [f"{count - MAX_MEDIA} media over the limit of {MAX_MEDIA}"] * (
            count > MAX_MEDIA
        )
        if count <= 0:
            return attachments, problems
        # Credentials go only to Twilio's API origin; httpx drops them on a redirect elsewhere
        # (Twilio answers with a redirect to its media store).
        async with httpx.AsyncClient(
            auth=self.auth, follow_redirects=True, max_redirects=3, timeout=self.timeout
        ) as client:
            for index in range(min(count, MAX_MEDIA)):
                url = form.get(f"MediaUrl{index}", 2000)
                kind = form.get(f"MediaContentType{index}", 200).lower()
                kind = kind if _CONTENT_TYPE.fullmatch(kind) else "application/octet-stream"
                if urlsplit(url)[:2] != self.origin:
                    problems.append(f"media {index} not fetched: not a Twilio API URL")
                    continue
                data, problem = await self._get(client, url, index)
                if problem:
                    problems.append(problem)
                    continue
                name = f"{sid}-{index}{mimetypes.guess_extension(kind) or '.bin'}"
                attachments.append(Attachment(filename=name, content_type=kind, data=data))
        return attachments, problems

    async def _get(self, client: httpx.AsyncClient, url: str, index: int) -> tuple[bytes, str]:
        too_big = f"media {index} not stored: larger than {self.limit} bytes"
        try:
            async with client.stream("GET", url) as response:
                if response.status_code != 200:
                    return b"", f"media {index} not fetched: HTTP {response.status_code}"
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.limit:
                    return b"", too_big
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self.limit:
                        return b"", too_big
                return bytes(data), ""
        except httpx.HTTPError as exc:
            log.warning("media %d of a Twilio message not fetched: %s", index, type(exc).__name__)
            return b"", f"media {index} not fetched: {type(exc).__name__}"


class TwilioWebhooks:
    """The routes under /webhooks/twilio/: messaging, delivery statuses and the call flow."""

    def __init__(
        self,
        settings: TwilioSettings,
        public_url: str,
        *,
        clock: Clock,
        media_limit_bytes: int = 5 * 1024 * 1024,
        statuses: StatusRecorder = log_status,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.settings = settings
        self.forms = SignedForms(settings.auth_token.get_secret_value(), public_url, max_body_bytes)
        self.clock = clock
        self.media = MediaFetcher(settings, media_limit_bytes)
        self.statuses = statuses

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        # Imported here: the call flow builds on this module's SignedForms and helpers.
        from channels.twilio.voice import VoiceWebhooks

        async def messaging(request: Request) -> Response:
            return await self.messaging(request, intake)

        voice = VoiceWebhooks(self.forms, self.clock)
        return [
            Route(MESSAGING_PATH, messaging, methods=["POST"]),
            Route(STATUS_PATH, self.status, methods=["POST"]),
            *voice.routes(intake),
        ]

    async def messaging(self, request: Request, intake: Intake) -> Response:
        form = await self.forms.read(request, MESSAGING_PATH)
        if "MessageStatus" in form.fields and "Body" not in form.fields:
            return await self._record_status(form)  # a status callback sent to this URL
        try:
            message = await self.inbound(form)
        except InputRefusedError as exc:
            log.warning("refused a Twilio message: %s", exc.reason)
            return PlainTextResponse(f"{exc.reason}\n", 400)
        outcome = await take(intake, lambda: message)
        status = to_status(outcome)
        if status != 200:
            return PlainTextResponse("not accepted, try again later\n", status)
        return twiml()

    async def inbound(self, form: Form) -> InboundMessage:
        """The message a verified messaging webhook carries, its media downloaded."""
        sid = form.sid("MessageSid")
        raw_from = form.get("From", 200)
        if not raw_from:
            raise InputRefusedError("From missing")
        whatsapp = raw_from.lower().startswith("whatsapp:")
        sender, problems = phone_sender(raw_from, raw_from.lower())
        attachments, media_problems = await self.media.fetch(form, sid)
        profile = form.get("ProfileName", 200)
        return InboundMessage(
            channel=ChannelKind.WHATSAPP if whatsapp else ChannelKind.SMS,
            channel_message_id=sid,
            received_at=self.clock(),
            sender=sender,
            sender_name=profile,
            text=clean(form.fields.get("Body", "")),
            attachments=tuple(attachments),
            problems=(*problems, *media_problems),
            raw=form.raw,
            extra={
                "profile_name": profile,
                "wa_id": form.get("WaId", 40),
                "to": form.get("To", 200),
                "num_media": form.get("NumMedia", 10),
            },
        )

    async def status(self, request: Request) -> Response:
        return await self._record_status(await self.forms.read(request, STATUS_PATH))

    async def _record_status(self, form: Form) -> Response:
        try:
            sid = form.sid("MessageSid")
        except InputRefusedError as exc:
            return PlainTextResponse(f"{exc.reason}\n", 400)
        status = form.get("MessageStatus", 40) or form.get("SmsStatus", 40)
        outbox = form.query.get("outbox", "")
        try:
            await self.statuses(
                outbox_id=int(outbox) if outbox.isdigit() else None,
                message_sid=sid,
                status=status.lower(),
                error_code=form.get("ErrorCode", 20),
                at=self.clock(),
            )
        except Exception as exc:  # the database is away: Twilio may try again
            log.warning("status callback for %s not recorded: %s", sid, type(exc).__name__)
            return PlainTextResponse("not recorded, try again later\n", 503)
        return twiml()


def twilio_routes(
    settings: TwilioSettings,
    public_url: str,
    *,
    clock: Clock,
    media_limit_bytes: int = 5 * 1024 * 1024,
    statuses: StatusRecorder = log_status,
) -> Callable[[Intake], Sequence[BaseRoute]]:
    """The routes factory `intake.cli.serve.web_routes` adds when `[twilio] enabled`."""
    webhooks = TwilioWebhooks(
        settings, public_url, clock=clock, media_limit_bytes=media_limit_bytes, statuses=statuses
    )
    return webhooks.routes
