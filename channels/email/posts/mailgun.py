"""Mail a Mailgun route forwards with its MIME (`forward("https://.../webhooks/mail/mailgun")`
posting `body-mime`), checked by Mailgun's webhook signature.

The signature is HMAC-SHA256 of `timestamp + token` under the account's HTTP webhook signing
key, hex. It does not cover the body, so besides a fresh timestamp (five minutes either way)
a token is good only once, or again with the very same message: Mailgun's own retry.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from channels.email.posts.bodies import Clock, deliver, form_fields, read_body, text_field
from intake.config import MailgunSettings
from intake.messages import Intake

log = logging.getLogger(__name__)

MAILGUN_PATH = "/webhooks/mail/mailgun"
# Mailgun posts the raw MIME only to a forward() URL ending in "mime": this one does.
MAILGUN_MIME_PATH = "/webhooks/mail/mailgun/mime"
MAX_SKEW_SECONDS = 300
MAX_TOKEN = 128


class TokenLedger(Protocol):
    """Remembers each signed post's token with the digest of its message (see
    `storage.webhook_tokens.SeenTokens`). Returns True when the token is new or was first seen
    with this same digest; raises when storage is away."""

    async def __call__(self, *, provider: str, token: str, digest: str, at: datetime) -> bool: ...


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook signature: HMAC-SHA256(signing key, timestamp + token), hex."""
    message = (timestamp + token).encode()
    return hmac.new(signing_key.encode(), message, hashlib.sha256).hexdigest()


class MailgunPosts:
    """POST /webhooks/mail/mailgun."""

    def __init__(self, settings: MailgunSettings, *, clock: Clock, tokens: TokenLedger) -> None:
        self.key = settings.signing_key.get_secret_value()
        self.max_bytes = settings.max_request_bytes
        self.clock = clock
        self.tokens = tokens

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        async def post(request: Request) -> Response:
            return await self.post(request, intake)

        return [
            Route(MAILGUN_PATH, post, methods=["POST"]),
            Route(MAILGUN_MIME_PATH, post, methods=["POST"]),
        ]

    def verify(self, timestamp: str, token: str, signature: str) -> None:
        """403 unless Mailgun signed this timestamp and token, recently."""
        expected = mailgun_signature(self.key, timestamp, token)
        signed = hmac.compare_digest(expected, signature)
        if not (signed and timestamp.isdigit() and token and len(token) <= MAX_TOKEN):
            log.warning("refused a Mailgun post: missing or wrong signature")
            raise HTTPException(403, "signature check failed")
        skew = abs(self.clock().timestamp() - int(timestamp))
        if skew > MAX_SKEW_SECONDS:
            log.warning("refused a Mailgun post: timestamp %d s off", int(skew))
            raise HTTPException(403, "stale timestamp")

    async def post(self, request: Request, intake: Intake) -> Response:
        body = await read_body(request, self.max_bytes)
        fields = form_fields(request.headers.get("content-type", ""), body)
        token = text_field(fields, "token", 1000)
        self.verify(text_field(fields, "timestamp", 20), token, text_field(fields, "signature"))
        if "body-mime" not in fields:
            log.warning("refused a Mailgun post: no body-mime (the forward URL must end in mime)")
            return PlainTextResponse("no body-mime: forward to a URL ending in mime\n", 400)
        raw = fields["body-mime"]
        digest = hashlib.sha256(raw).hexdigest()
        try:
            fresh = await self.tokens(
                provider="mailgun", token=token, digest=digest, at=self.clock()
            )
        except Exception as exc:  # storage is away: Mailgun retries what is not 2xx
            log.warning("Mailgun post not taken: token ledger %s", type(exc).__name__)
            return PlainTextResponse("not accepted, try again later\n", 503)
        if not fresh:
            log.warning("refused a Mailgun post: its token came before with another message")
            return PlainTextResponse("token already used\n", 403)
        recipients = text_field(fields, "recipient", 5000).split(",")
        return await deliver(
            intake,
            raw,
            clock=self.clock,
            provider="Mailgun",
            # Present and empty: the null sender <> of a bounce, which must stay visible.
            envelope_sender=text_field(fields, "sender", 998) if "sender" in fields else None,
            recipients=tuple(r.strip().lower() for r in recipients if r.strip()),
        )
