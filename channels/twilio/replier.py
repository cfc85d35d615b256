"""Twilio's REST API out: notices on WhatsApp and SMS (and SMS to a caller's mobile)."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Mapping

import aiohttp
import phonenumbers
from twilio.base import values
from twilio.base.exceptions import (
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from channels.twilio.messaging import STATUS_PATH
from intake.config import TwilioSettings
from intake.contacts.values import normalize_phone
from intake.errors import PermanentChannelError, TransientChannelError
from intake.messages import Ack, ChannelKind

log = logging.getLogger(__name__)


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
                        to=to, from_=from_, status_callback=callback or values.unset,
                        **_content(ack, body),
                    )  # fmt: skip
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


def _content(ack: Ack, body: str) -> dict[str, str]:
    """The message's content: its text, or (an agent's WhatsApp reply outside the 24-hour
    window) the approved template, by Twilio's Content API, with its variables."""
    if ack.content_sid and ack.channel is ChannelKind.WHATSAPP:
        return {"content_sid": ack.content_sid, "content_variables": ack.content_variables}
    return {"body": body}


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
