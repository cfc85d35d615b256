"""Every SMTP refusal is one log line (reason, client, no message text) and a count in
/metrics' `intake_refusals_total{channel,reason}` (issue 18). Our SMTP server, a real client,
and a fake at our own `Intake` interface that refuses as the pipeline would."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import pytest

from channels.email.refusals import refusal_reason
from channels.email.smtp import SmtpChannel
from channels.web.metrics import Metrics
from intake.config import SmtpSettings
from intake.errors import InputRefusedError
from intake.messages import InboundMessage, Receipt
from intake.ratelimit import RateLimitedError

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
SECRET = "the customer's secret words"


class Refusing:
    """An `Intake` that refuses by subject: "limit" as rate-limited, anything else as bad."""

    async def __call__(self, message: InboundMessage) -> Receipt:
        if message.subject == "limit":
            raise RateLimitedError("too many from this sender", retry_after=60)
        raise InputRefusedError("the message cannot be read")


def mail(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = "alice@customer.example", "help@support.example.com"
    message["Subject"] = subject
    message.set_content(SECRET)
    return message


@pytest.fixture
async def counted() -> AsyncIterator[Metrics]:
    metrics = Metrics()
    undo = metrics.count_refusals()
    yield metrics
    undo()


def count(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "intake_refusals_total", {"channel": "email", "reason": reason}
    )
    return value or 0.0


async def test_each_refusal_is_one_line_and_one_count(
    counted: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    settings = SmtpSettings(port=0, domains=["support.example.com"], max_message_bytes=2048)
    channel = SmtpChannel(settings, clock=lambda: NOW, max_connections=1)
    await channel.start(Refusing())
    caplog.set_level(logging.INFO, logger="intake.refusals")
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port) as client:
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await client.send_message(mail("a"), recipients=["x@elsewhere.example"])
            for subject, code in (("bad", 554), ("limit", 450), ("big" * 1000, 552)):
                with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
                    await client.send_message(mail(subject))
                assert refused.value.code == code
            with pytest.raises(aiosmtplib.SMTPConnectResponseError) as busy:
                await aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port).connect()
            assert busy.value.code == 421
            assert (await client.execute_command(b"BOGUS")).code == 500
    finally:
        await channel.stop()
    reasons = ["relaying_denied", "bad_input", "rate_limited", "too_large", "busy", "bad_command"]
    assert {r: count(counted, r) for r in reasons} == dict.fromkeys(reasons, 1.0)
    lines = [r.getMessage() for r in caplog.records if r.name == "intake.refusals"]
    assert [line.split(": ", 1)[1].split(" ")[0] for line in lines] == [
        "relaying_denied", "bad_input", "rate_limited", "too_large", "busy", "bad_command"
    ]  # fmt: skip
    assert all(line.startswith("refused email from '127.0.0.1': ") for line in lines)
    assert not [line for line in lines if "secret" in line]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("250 2.0.0 OK", None),
        ("354 End data with <CR><LF>.<CR><LF>", None),
        ("550 5.7.1 Relaying denied", "relaying_denied"),
        ("552 Error: Too much mail data", "too_large"),
        ("452 4.5.3 Too many recipients", "too_many_recipients"),
        ("450 4.7.1 Too many messages", "rate_limited"),
        ("421 4.7.0 Too many connections", "too_many_connections"),
        ("421 4.3.2 Too busy", "busy"),
        ("421 4.4.2 Timeout", "closing"),
        ("451 4.3.0 Temporarily unable", "unavailable"),
        ("554 5.6.0 Message refused", "bad_input"),
        ("501 5.5.4 Syntax: MAIL FROM: <address>", "bad_command"),
        ("503 Error: need MAIL command", "bad_command"),
        ("530 5.7.0 Authentication required", "smtp_530"),
    ],
)
def test_reply_reasons(reply: str, reason: str | None) -> None:
    assert refusal_reason(reply) == reason
