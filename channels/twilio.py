"""Twilio WhatsApp and SMS: the signed webhooks in, the REST API out (CONTRACTS section 4).

Every request is checked with the twilio package's `RequestValidator` against the configured
public URL (behind a proxy `request.url` is wrong) before any field of it is read; the body is
only bounded and form-decoded first, because the signature covers the decoded fields. The
call-back flow on the same checks lives in `channels.twilio_voice`.

Inbound messages are answered with an empty TwiML `<Response/>` once the ticket committed: the
acknowledgement goes out through the outbox and `TwilioReplier`, not as TwiML, so a message
Twilio redelivers never gets a second acknowledgement and a crash after commit loses none.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import mimetypes
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import httpx
import phonenumbers
from starlette.datastructures import ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from twilio.base import values
from twilio.base.exceptions import (
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from channels.web import take, to_status
from intake.config import TwilioSettings
from intake.contact_values import normalize_phone
from intake.errors import InputRefusedError, PermanentChannelError, TransientChannelError
from intake.messages import Ack, Attachment, ChannelKind, InboundMessage, Intake

log = logging.getLogger(__name__)

MESSAGING_PATH = "/webhooks/twilio/messaging"
STATUS_PATH = "/webhooks/twilio/messaging/status"
MAX_BODY_BYTES = 64 * 1024  # Twilio's own forms are a few kB; a 1600-char body fits easily
MAX_FIELDS = 200
MAX_MEDIA = 10  # Twilio attaches at most 10 media to one message
MAX_TEXT = 20_000
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_CONTENT_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,64}")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Clock = Callable[[], datetime]


def twiml(body: str = "", status: int = 200) -> Response:
    return Response(body or str(MessagingResponse()), status, media_type="text/xml")


def clean(value: str, limit: int = MAX_TEXT) -> str:
    """Sender text without NULs and control characters (keeps tab and line breaks), cut."""
    return _CONTROLS.sub("", value)[:limit]


@dataclass(frozen=True, slots=True)
class Form:
    """A verified Twilio request: its decoded fields, its query and its raw body."""

    fields: Mapping[str, str]
    query: Mapping[str, str]
    raw: bytes

    def get(self, name: str, limit: int = 1000) -> str:
        return clean(self.fields.get(name, ""), limit).strip()

    def sid(self, name: str) -> str:
        """A Twilio SID field (two letters and 32 hex digits), or InputRefusedError."""
        value = self.fields.get(name, "").strip()
        if not _SID.fullmatch(value):
            raise InputRefusedError(f"{name} missing or not a Twilio SID")
        return value


def phone_sender(raw: str, fallback: str) -> tuple[str, tuple[str, ...]]:
    """The sender in E.164 (a "whatsapp:" prefix dropped), or `fallback` and the problem."""
    try:
        return normalize_phone(raw), ()
    except ValueError:
        return fallback, (f"sender {clean(raw, 40)!r} is not a phone number",)


class SignedForms:
    """Reads a webhook's form, bounded, and refuses it (HTTPException) unless Twilio signed it."""

    def __init__(self, auth_token: str, public_url: str, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.validator = RequestValidator(auth_token)
        self.public_url = public_url.rstrip("/")
        self.max_bytes = max_bytes

    def url(self, path: str, query: str = "") -> str:
        """The public URL Twilio calls (and signs) for `path`."""
        return f"{self.public_url}{path}" + (f"?{query}" if query else "")

    async def read(self, request: Request, path: str) -> Form:
        body = await self._body(request)
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise HTTPException(400, "expected a form")
        try:
            pairs = parse_qsl(
                body.decode("ascii"),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=MAX_FIELDS,
            )
            query = request.scope.get("query_string", b"").decode("ascii")
        except ValueError:  # UnicodeDecodeError too: undecodable bytes or too many fields
            raise HTTPException(400, "malformed form") from None
        signature = request.headers.get("x-twilio-signature")
        if not signature or not self.validator.validate(
            self.url(path, query), ImmutableMultiDict(pairs), signature
        ):
            log.warning("refused %s: missing or wrong X-Twilio-Signature", path)
            raise HTTPException(403, "signature check failed")
        fields: dict[str, str] = {}
        for name, value in pairs:
            fields.setdefault(name, value)
        return Form(fields, dict(parse_qsl(query, keep_blank_values=True)), body)

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise HTTPException(413, "request too large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_bytes:
                raise HTTPException(413, "request too large")
        return bytes(body)


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
        from channels.twilio_voice import VoiceWebhooks

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
    """The routes factory `intake.serve.web_routes` adds when `[twilio] enabled`."""
    webhooks = TwilioWebhooks(
        settings, public_url, clock=clock, media_limit_bytes=media_limit_bytes, statuses=statuses
    )
    return webhooks.routes


# 5xx and these are retried: a rate limit, or our credentials being fixed. Every other 4xx
# (21211 invalid number, 21610 unsubscribed, ...) can never succeed as addressed.
_RETRY_STATUSES = {401, 403, 429}
_DUE = re.compile(
    r"We will respond(?:, and aim to resolve it,)? by (?P<due>[^.\n]+?)(?:, and aim|\.(?:\s|$))"
)
SMS_LIMIT = 160
WHATSAPP_LIMIT = 1600  # Twilio refuses longer bodies


def sms_text(ack: Ack) -> str:
    """The short form of an acknowledgement: the reference and when to expect a response."""
    if ack.kind != "ack" or not ack.reference:
        return _cut(" ".join(ack.text.split()), SMS_LIMIT)
    text = f"{ack.reference}: we have received your request."
    due = _DUE.search(" ".join(ack.text.split()))
    if due:
        text += f" We will respond by {due['due']}."
    return _cut(text, SMS_LIMIT)


def whatsapp_text(ack: Ack) -> str:
    return _cut(ack.text.strip(), WHATSAPP_LIMIT)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if "\n" in head[limit // 2 :]:
        head = head[: head.rindex("\n")]
    return head.rstrip() + "…"


class HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's AsyncTwilioHttpClient, sending the account's Basic credentials as a header.

    The twilio client wraps them in aiohttp's `BasicAuth`, which aiohttp 3.14 deprecates; the
    header on the wire is the same.
    """

    retry_after: float | None = None

    async def request(  # type: ignore[no-untyped-def]
        self, method: str, url: str, params=None, data=None, headers=None, auth=None, **options
    ):
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        response = await super().request(method, url, params, data, headers, None, **options)
        # twilio's exceptions drop the headers; a 429's Retry-After says when to come back.
        self.retry_after = retry_after_seconds(response.headers or {})
        return response


class TwilioReplier:
    """Sends notices on WhatsApp and SMS through Twilio's REST API (`[twilio] api_base`).

    Channel "voice" is answered by SMS to the caller when the number is a mobile one.
    `public_url` given, each message asks Twilio for status callbacks naming its outbox row.
    One HTTP session is kept, opened on first use, so notices that follow each other reuse
    its connection (in production a TLS connection to api.twilio.com) instead of a handshake
    each; aiohttp closes connections idle for 15 s, `aclose()` the session.
    """

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        whatsapp_from: str = "",
        sms_from: str = "",
        public_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.whatsapp_from = whatsapp_from.strip().removeprefix("whatsapp:")
        self.sms_from = sms_from.strip()
        self.status_url = f"{public_url.rstrip('/')}{STATUS_PATH}" if public_url else None
        self.timeout = timeout
        self._http: HeaderAuthHttpClient | None = None
        self._client: Client | None = None
        # One send at a time: the session's client keeps the last response's Retry-After.
        self._lock = asyncio.Lock()

    async def send(self, ack: Ack) -> None:
        to, from_, body = self.address(ack)
        callback = f"{self.status_url}?outbox={ack.outbox_id}" if self.status_url else None
        async with self._lock:
            if self._http is None or self._client is None:
                self._http = HeaderAuthHttpClient()  # its aiohttp session needs the loop
                self._client = self.client(self._http)
            http, client = self._http, self._client
            try:
                async with asyncio.timeout(self.timeout):
                    message = await client.messages.create_async(
                        to=to, from_=from_, body=body, status_callback=callback or values.unset
                    )
            except (TwilioRestException, TwilioServiceException) as exc:
                raise _channel_error(exc, http.retry_after) from None
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise TransientChannelError(f"Twilio unreachable: {type(exc).__name__}") from None
        log.info("notice %d sent by Twilio as %s", ack.outbox_id, message.sid)

    async def aclose(self) -> None:
        """Close the HTTP session; a later send opens a new one."""
        async with self._lock:
            http, self._http, self._client = self._http, None, None
            if http is not None:
                await http.close()

    def client(self, http: HeaderAuthHttpClient) -> Client:
        """A REST client whose API domain is `api_base` (the seam tests point at a fake)."""
        client = Client(
            self.settings.account_sid, self.settings.auth_token.get_secret_value(), http_client=http
        )
        # TWILIO_EDGE / TWILIO_REGION from the environment would rewrite the host.
        client.edge = client.region = None
        client.api.base_url = self.settings.api_base.rstrip("/")
        return client

    def address(self, ack: Ack) -> tuple[str, str, str]:
        """(To, From, Body) for this notice, or PermanentChannelError."""
        try:
            number = normalize_phone(ack.to)
        except ValueError:
            raise PermanentChannelError(f"{ack.to!r} is not a phone number") from None
        if ack.channel is ChannelKind.WHATSAPP:
            if not self.whatsapp_from:
                raise PermanentChannelError("no WhatsApp sender number configured")
            return f"whatsapp:{number}", f"whatsapp:{self.whatsapp_from}", whatsapp_text(ack)
        if ack.channel not in (ChannelKind.SMS, ChannelKind.VOICE):
            raise PermanentChannelError(f"Twilio does not carry channel {ack.channel}")
        if ack.channel is ChannelKind.VOICE and not can_take_sms(number):
            raise PermanentChannelError("not a mobile number")
        if not self.sms_from:
            raise PermanentChannelError("no SMS sender number configured")
        return number, self.sms_from, sms_text(ack)


def can_take_sms(number: str) -> bool:
    """Whether an E.164 number may take a text: mobile, or a plan that does not tell (US)."""
    kind = phonenumbers.number_type(phonenumbers.parse(number))
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.PAGER,
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds (RFC 9110 allows a date too; Twilio sends seconds, if at all)."""
    value = headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None


def _channel_error(
    exc: TwilioRestException | TwilioServiceException, retry_after: float | None = None
) -> Exception:
    status, code = int(exc.status or 0), exc.code
    reason = f"Twilio {status} error {code}"
    if status >= 500 or status in _RETRY_STATUSES:
        return TransientChannelError(reason, retry_after=retry_after)
    return PermanentChannelError(reason)  # 21211 invalid number, 21610 unsubscribed, ...
