"""Mail SendGrid's Inbound Parse posts with "POST the raw, full MIME message" on: a
multipart/form-data body whose `email` field is the message, to a URL carrying basic-auth
credentials (`https://user:password@host/webhooks/mail/sendgrid`, as SendGrid advises).

Inbound Parse can also sign its posts (a Parse webhook security policy with `signature`
enabled): ECDSA P-256 with SHA-256 over the timestamp followed by the raw body, sent base64 in
`X-Twilio-Email-Event-Webhook-Signature` with `X-Twilio-Email-Event-Webhook-Timestamp`, the
scheme of SendGrid's signed Event Webhook. With `public_key` set every post must carry a good
signature; with user and password set, the credentials too. The signature covers the body, so
a replayed post can only bring the same message again: the same ticket.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from channels.email.posts.bodies import (
    Clock,
    check_basic_auth,
    deliver,
    form_fields,
    read_body,
    text_field,
)
from intake.config import SendgridSettings
from intake.errors import ConfigError
from intake.messages import Intake

log = logging.getLogger(__name__)

SENDGRID_PATH = "/webhooks/mail/sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER as its API shows it, or PEM."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise ConfigError("sendgrid.public_key", "not an ECDSA public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("sendgrid.public_key", "not an ECDSA public key")
    return key


def check_signature(
    key: ec.EllipticCurvePublicKey, signature: str, timestamp: str, body: bytes
) -> None:
    """403 unless `signature` is SendGrid's ECDSA signature of timestamp + body."""
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        log.warning("refused a SendGrid post: missing or wrong signature")
        raise HTTPException(403, "signature check failed") from None


def envelope_of(fields: dict[str, bytes]) -> tuple[str | None, tuple[str, ...]]:
    """The SMTP envelope SendGrid reports (`envelope`: {"from": ..., "to": [...]})."""
    try:
        envelope = json.loads(text_field(fields, "envelope", 20_000) or "{}")
    except ValueError:
        return None, ()
    if not isinstance(envelope, dict):
        return None, ()
    sender = envelope.get("from")
    to = envelope.get("to")
    recipients = tuple(r.lower() for r in to if isinstance(r, str)) if isinstance(to, list) else ()
    return (sender if isinstance(sender, str) else None), recipients


class SendgridPosts:
    """POST /webhooks/mail/sendgrid."""

    def __init__(self, settings: SendgridSettings, *, clock: Clock) -> None:
        self.user = settings.user
        self.password = settings.password.get_secret_value()
        self.max_bytes = settings.max_request_bytes
        self.clock = clock
        self.key = load_public_key(settings.public_key) if settings.public_key else None

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        async def post(request: Request) -> Response:
            return await self.post(request, intake)

        return [Route(SENDGRID_PATH, post, methods=["POST"])]

    async def post(self, request: Request, intake: Intake) -> Response:
        if self.user or self.password:
            check_basic_auth(request, self.user, self.password, "SendGrid")
        body = await read_body(request, self.max_bytes)
        if self.key is not None:
            headers = request.headers
            signature, timestamp = headers.get(SIGNATURE_HEADER, ""), headers.get(TIMESTAMP_HEADER)
            check_signature(self.key, signature, timestamp or "", body)
        fields = form_fields(request.headers.get("content-type", ""), body)
        sender, recipients = envelope_of(fields)
        return await deliver(
            intake,
            fields.get("email", b""),
            clock=self.clock,
            provider="SendGrid",
            envelope_sender=sender,
            recipients=recipients,
        )
