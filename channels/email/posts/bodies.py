"""What the email APIs' posts share: a bounded body, form fields as bytes, basic auth, and the
one way a raw message goes into the pipeline and its outcome back out as an HTTP status.

Nothing here parses mail: the raw MIME goes to `channels.email.inbound.inbound_message`, the
path SMTP and IMAP take, so a message is the same ticket whichever way it came.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from channels.email.inbound import inbound_message
from channels.web.app import take, to_status
from intake.errors import InputRefusedError
from intake.messages import InboundMessage, Intake

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_FIELDS = 200  # the providers send a few dozen fields at most


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it is longer than `max_bytes`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, "request too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(413, "request too large")
    return bytes(body)


def form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data or urlencoded body, each value as its raw bytes
    (a raw message keeps its 8-bit bytes); the first of a repeated name wins. 400 if broken."""
    kind, params = parse_options_header(content_type)
    if kind == b"application/x-www-form-urlencoded":
        return _urlencoded(body)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise HTTPException(415, "expected multipart/form-data or a urlencoded form")
    return _multipart(boundary, body)


def _urlencoded(body: bytes) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    pairs = [pair for pair in body.split(b"&") if pair]
    if len(pairs) > MAX_FIELDS:
        raise HTTPException(400, "too many fields")
    for pair in pairs:
        name, _, value = pair.partition(b"=")
        key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        fields.setdefault(key, unquote_to_bytes(value.replace(b"+", b" ")))
    return fields


def _multipart(boundary: bytes, body: bytes) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    parts: list[tuple[bytes, bytearray]] = []
    header: list[bytearray] = [bytearray(), bytearray()]
    disposition = bytearray()

    def on_part_begin() -> None:
        disposition.clear()
        parts.append((b"", bytearray()))
        if len(parts) > MAX_FIELDS:
            raise HTTPException(400, "too many fields")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def on_header_end() -> None:
        if bytes(header[0]).lower() == b"content-disposition":
            disposition[:] = header[1]
        header[0].clear()
        header[1].clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(bytes(disposition))
        parts[-1] = (options.get(b"name", b""), parts[-1][1])

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError:
        raise HTTPException(400, "malformed multipart body") from None
    for name, data in parts:
        fields.setdefault(name.decode("utf-8", "replace"), bytes(data))
    return fields


def text_field(fields: dict[str, bytes], name: str, limit: int = 1000) -> str:
    """A short ASCII-ish field (a timestamp, a token), decoded leniently and cut."""
    return fields.get(name, b"")[:limit].decode("utf-8", "replace").strip()


def check_basic_auth(request: Request, user: str, password: str, provider: str) -> None:
    """403 unless the request carries exactly these credentials (compared in constant time).

    The providers take them in the webhook URL (`https://user:password@host/...`) and send them
    as an `Authorization: Basic` header."""
    given = request.headers.get("authorization", "")
    scheme, _, encoded = given.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    expected = f"{user}:{password}".encode()
    # Both comparisons always run, so the time taken does not tell which part was wrong.
    ok = hmac.compare_digest(decoded, expected)
    if not (scheme.lower() == "basic" and ok):
        log.warning("refused a %s post: missing or wrong credentials", provider)
        raise HTTPException(403, "credentials check failed", {"WWW-Authenticate": "Basic"})


async def deliver(
    intake: Intake,
    raw: bytes,
    *,
    clock: Clock,
    provider: str,
    envelope_sender: str | None = None,
    recipients: tuple[str, ...] = (),
) -> Response:
    """Feed a verified raw message to the pipeline; 200 only once its ticket committed."""
    if not raw.strip():
        log.warning("refused a %s post: no message in it", provider)
        return PlainTextResponse("no message\n", 400)

    with ExitStack() as spool:  # a large message's temporary file, until it is stored

        def build() -> InboundMessage:
            parsed = inbound_message(
                raw, received_at=clock(), envelope_sender=envelope_sender, recipients=recipients
            )
            return spool.enter_context(parsed)

        outcome = await take(intake, build)
    status = to_status(outcome)
    if isinstance(outcome, InputRefusedError):
        log.warning("refused a %s message: %s", provider, outcome.reason)
        return PlainTextResponse(f"{outcome.reason}\n", status)
    if status != 200:
        return PlainTextResponse("not accepted, try again later\n", status)
    return PlainTextResponse("ok\n")
