"""Mail Amazon SES receives, published by a receipt rule's SNS action and posted by SNS to
/webhooks/mail/ses.

Every post's SNS signature is checked (`channels.email.posts.sns`) before anything else of it
is read, and only the configured topics count: a `SubscriptionConfirmation` of one of them is
confirmed by a GET of its SubscribeURL, a `Notification` of type "Received" gives its
`content` (the raw message, Base64 or UTF-8 as the action says) to the pipeline. SNS redelivers
until it sees a 2xx; the Message-ID makes that the same ticket. SES sends mail over 150 KB to
SNS without content: such a notice is refused with 400 and logged (use an S3 action there).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from channels.email.posts.bodies import Clock, deliver, read_body
from channels.email.posts.sns import Fetcher, FetchError, SnsRefusedError, SnsVerifier
from intake.config import SesSettings
from intake.errors import InputRefusedError
from intake.messages import Intake

log = logging.getLogger(__name__)

SES_PATH = "/webhooks/mail/ses"


def _text(value: object, limit: int = 998) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def received_mail(
    notification: dict[str, Any], encoding: str
) -> tuple[bytes, str | None, tuple[str, ...]]:
    """The raw message, envelope sender and recipients of an SES "Received" notification."""
    content = notification.get("content")
    if not isinstance(content, str):
        raise InputRefusedError("no content: SES sends mail over 150 KB without it")
    receipt = _object(notification.get("receipt"))
    action = _object(receipt.get("action"))
    # The action says "BASE64" or "UTF8"; the configured encoding stands in when it does not.
    said = _text(action.get("encoding"), 10).lower().replace("-", "")
    encoding = said if said in ("base64", "utf8") else encoding
    if encoding == "base64":
        try:
            raw = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise InputRefusedError("content is not base64") from None
    else:
        raw = content.encode("utf-8", "replace")  # a lone surrogate cannot be UTF-8
    mail = _object(notification.get("mail"))
    recipients = receipt.get("recipients")
    listed = recipients if isinstance(recipients, list) else []
    source = mail.get("source")  # "": the null sender of a bounce; absent: not known
    sender = source[:998] if isinstance(source, str) else None
    return raw, sender, tuple(_text(r, 320).lower() for r in listed if r)


class SesPosts:
    """POST /webhooks/mail/ses."""

    def __init__(self, settings: SesSettings, *, clock: Clock, fetch: Fetcher) -> None:
        self.topics = frozenset(settings.topic_arns)
        self.encoding = settings.encoding
        self.max_bytes = settings.max_request_bytes
        self.clock = clock
        self.fetch = fetch
        self.verifier = SnsVerifier(fetch, settings.cert_host_pattern, clock)

    def routes(self, intake: Intake) -> Sequence[BaseRoute]:
        async def post(request: Request) -> Response:
            return await self.post(request, intake)

        return [Route(SES_PATH, post, methods=["POST"])]

    async def post(self, request: Request, intake: Intake) -> Response:
        # SNS posts JSON as text/plain: the body is read whatever the content type says.
        body = await read_body(request, self.max_bytes)
        try:
            posted = json.loads(body)
            if not isinstance(posted, dict):
                raise ValueError("not an SNS message")
            # The signed fields are strings; others (MessageAttributes) are not needed here.
            message = {k: v for k, v in posted.items() if isinstance(v, str)}
            await self.verifier.verify(message)
            if message["TopicArn"] not in self.topics:
                raise SnsRefusedError("not a configured topic")
        except (ValueError, RecursionError, SnsRefusedError) as exc:
            log.warning("refused an SNS post: %s", exc)
            return PlainTextResponse("not a signed SNS message for us\n", 403)
        except FetchError as exc:
            log.warning("SNS post not checked: signing certificate not fetched: %s", exc)
            return PlainTextResponse("try again later\n", 503)
        if message["Type"] == "SubscriptionConfirmation":
            return await self.confirm(message)
        if message["Type"] == "UnsubscribeConfirmation":
            log.warning("SNS topic %r unsubscribed this endpoint", message["TopicArn"])
            return PlainTextResponse("ok\n")
        return await self.notification(message, intake)

    async def confirm(self, message: dict[str, str]) -> Response:
        try:
            self.verifier.check_url(message["SubscribeURL"], "SubscribeURL")
            await self.fetch(message["SubscribeURL"])
        except SnsRefusedError as exc:
            log.warning("refused an SNS subscription: %s", exc)
            return PlainTextResponse("not confirmed\n", 403)
        except FetchError as exc:
            log.warning("SNS subscription not confirmed: %s", exc)
            return PlainTextResponse("not confirmed, try again later\n", 503)
        log.info("confirmed the SNS subscription to %r", message["TopicArn"])
        return PlainTextResponse("confirmed\n")

    async def notification(self, message: dict[str, str], intake: Intake) -> Response:
        try:
            notification = json.loads(message["Message"])
        except (ValueError, RecursionError):
            notification = None
        if not isinstance(notification, dict):
            log.warning("refused an SNS notification: its Message is not JSON")
            return PlainTextResponse("not an SES notification\n", 400)
        kind = notification.get("notificationType")
        if kind != "Received":
            # Sending events (Bounce, Complaint, Delivery) published to the same topic.
            log.info("SNS notification of type %r ignored", _text(kind, 40))
            return PlainTextResponse("ok\n")
        try:
            raw, sender, recipients = received_mail(notification, self.encoding)
        except InputRefusedError as exc:
            mail = notification.get("mail")
            mail_id = _text(mail.get("messageId"), 100) if isinstance(mail, dict) else ""
            log.error("SES mail %r not taken: %s", mail_id, exc.reason)
            return PlainTextResponse(f"{exc.reason}\n", 400)
        return await deliver(
            intake,
            raw,
            clock=self.clock,
            provider="SES",
            envelope_sender=sender,
            recipients=recipients,
        )
