"""Mail SendGrid's Inbound Parse posts with "POST the raw, full MIME message" on: a
multipart/form-data body whose `email` field is the message, to a URL carrying basic-auth
credentials (`https://user:password@host/webhooks/mail/sendgrid`, as SendGrid advises).

SendGrid's signed Event Webhook (ECDSA over timestamp + body) covers delivery events, not
Inbound Parse posts, so the credentials in the URL are what authenticates these.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

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
from intake.messages import Intake

log = logging.getLogger(__name__)

SENDGRID_PATH = "/webhooks/mail/sendgrid"


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

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        async def post(request: Request) -> Response:
            return await self.post(request, intake)

        return [Route(SENDGRID_PATH, post, methods=["POST"])]

    async def post(self, request: Request, intake: Intake) -> Response:
        check_basic_auth(request, self.user, self.password, "SendGrid")
        body = await read_body(request, self.max_bytes)
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
