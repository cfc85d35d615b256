"""What Twilio's messaging and voice webhooks share: the signed form and the words of TwiML.

Every request is checked with the twilio package's `RequestValidator` against the configured
public URL (behind a proxy `request.url` is wrong) before any field of it is read; the body is
only bounded and form-decoded first, because the signature covers the decoded fields.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from intake.contacts.values import normalize_phone
from intake.errors import InputRefusedError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # Twilio's own forms are a few kB; a 1600-char body fits easily
MAX_FIELDS = 200
MAX_TEXT = 20_000
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
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
