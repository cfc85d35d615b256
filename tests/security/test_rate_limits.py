"""Rate limits per sender and per client address on every channel, each refused the channel's
way: SMTP 450 (per sender) and 421 (per client), HTTP 429 with Retry-After, Telegram no ticket
and one polite reply at most. Over real sockets with the real pipeline."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import httpx
import pytest
from fake_telegram import FakeTelegram
from forgery import mail
from pipelines import make_pipeline
from pydantic import SecretStr
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from channels.email.smtp import SmtpChannel
from channels.telegram import replies as telegram_replies
from channels.telegram.channel import TelegramChannel
from channels.twilio.messaging import twilio_routes
from channels.web.app import WebChannel
from channels.web.callback import CallbackForm
from intake import ratelimit
from intake.cli.app import Storage
from intake.config import SmtpSettings, TelegramSettings, TwilioSettings, WebSettings
from intake.messages import ChannelKind, InboundMessage, Intake, Receipt, ReceiptStatus
from intake.ratelimit import LimitedIntake, RateLimitedError, RateLimiter, limited
from storage.models import Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def count_tickets(storage: Storage) -> int:
    async with storage.sessions() as session:
        return await session.scalar(select(func.count(Ticket.id))) or 0


# -- the limiter ---------------------------------------------------------------------------


def test_the_window_slides_and_a_refused_sender_is_told_once_per_window() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 60, clock=clock)
    assert limiter.retry_after("a") is None and limiter.retry_after("a") is None
    assert limiter.retry_after("a") == 60
    assert limiter.retry_after("b") is None  # per key
    assert limiter.first_refusal("a") and not limiter.first_refusal("a")
    clock.now = 60.5
    assert limiter.retry_after("a") is None  # the first event left the window
    assert limiter.first_refusal("a")  # a new window: tell again
    assert RateLimiter.optional(0, 60) is None and RateLimiter.optional(1, 60) is not None


def test_memory_stays_bounded_however_many_senders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_KEYS", 100)
    clock = Clock()
    limiter = RateLimiter(1, 10, clock=clock)
    for n in range(1000):
        clock.now = n  # each key's single event leaves the window 10 s later
        limiter.retry_after(f"sender{n}")
        limiter.first_refusal(f"sender{n}")
    assert len(limiter._events) <= 102 and len(limiter._told) <= 102


async def test_limited_intake_refuses_beyond_the_limit_per_sender() -> None:
    taken: list[str] = []

    async def intake(message: InboundMessage) -> Receipt:
        taken.append(message.channel_message_id)
        return Receipt(ReceiptStatus.ACCEPTED, 1, "SUP-000001")

    guarded = LimitedIntake(intake, RateLimiter(2, 3600))

    def message(n: int, sender: str = "tg:1") -> InboundMessage:
        return InboundMessage(channel=ChannelKind.TELEGRAM, channel_message_id=str(n),
                              received_at=NOW, sender=sender, text="hi")  # fmt: skip

    await guarded(message(1))
    await guarded(message(2))
    with pytest.raises(RateLimitedError) as first:
        await guarded(message(3))
    with pytest.raises(RateLimitedError) as second:
        await guarded(message(4))
    assert first.value.tell and not second.value.tell
    assert first.value.retry_seconds == 3600
    await guarded(message(5, sender="tg:2"))
    # Mail read from a mailbox (no envelope sender) is never refused: it would be lost.
    for n in (6, 7, 8):
        await guarded(
            InboundMessage(
                channel=ChannelKind.EMAIL, channel_message_id=str(n), received_at=NOW, sender="tg:1"
            )
        )
    with pytest.raises(RateLimitedError):  # the same sender by SMTP is
        await guarded(
            InboundMessage(
                channel=ChannelKind.EMAIL,
                channel_message_id="9",
                received_at=NOW,
                sender="tg:1",
                envelope_sender="",
            )
        )
    assert taken == ["1", "2", "5", "6", "7", "8"]
    assert limited(intake, 0) is intake


# -- SMTP ----------------------------------------------------------------------------------


@pytest.fixture
async def smtp(storage: Storage) -> AsyncIterator[SmtpChannel]:
    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: NOW,
        client_limiter=RateLimiter(4, 60),
    )
    await channel.start(limited(make_pipeline(storage, notify_emails=()), 2))
    yield channel
    await channel.stop()


async def test_smtp_refuses_a_flooding_sender_with_450_and_stores_nothing_more(
    storage: Storage, smtp: SmtpChannel
) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port) as client:
        for n in range(2):
            _, reply = await client.send_message(mail("flood@customer.example", f"n{n}"))
            assert reply.startswith("2.0.0 OK")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.send_message(mail("flood@customer.example", "n3"))
        assert refused.value.code == 450 and "Too many messages" in refused.value.message
        # The same connection still serves other senders.
        _, reply = await client.send_message(mail("calm@customer.example"))
        assert reply.startswith("2.0.0 OK")
    assert await count_tickets(storage) == 3


@SQLITE_ONLY
async def test_smtp_refuses_a_client_opening_too_many_connections_with_421(
    smtp: SmtpChannel,
) -> None:
    banners = []
    for _ in range(6):  # the fixture allows 4 a minute per client address
        reader, writer = await asyncio.open_connection("127.0.0.1", smtp.port)
        banners.append((await reader.readline()).decode())
        writer.close()
        await writer.wait_closed()
    assert [b[:3] for b in banners] == ["220"] * 4 + ["421"] * 2
    assert "Too many connections from your address" in banners[-1]


# -- HTTP ----------------------------------------------------------------------------------


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def test_web_requests_per_client_get_429_with_retry_after_except_webhooks(
    storage: Storage,
) -> None:
    form = CallbackForm(b"f" * 32, clock=lambda: NOW, per_hour=100, secure_cookie=False)

    def hooks(_: Intake) -> list[Route]:
        return [Route("/webhooks/telegram", _ok, methods=["GET"])]

    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [form.routes, hooks],
                     client_limiter=RateLimiter(3, 60))  # fmt: skip
    await web.start(make_pipeline(storage))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            pages = [await client.get("/callback") for _ in range(4)]
            assert [p.status_code for p in pages] == [200, 200, 200, 429]
            assert 0 < int(pages[-1].headers["retry-after"]) <= 60
            for path in ("/webhooks/telegram", "/healthz"):  # shared cloud addresses, probes
                assert (await client.get(path)).status_code == 200
    finally:
        await web.stop()


@SQLITE_ONLY
async def test_the_call_back_form_refuses_a_flooding_phone_with_429(storage: Storage) -> None:
    form = CallbackForm(b"f" * 32, clock=lambda: NOW, per_hour=100, secure_cookie=False)
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [form.routes])
    await web.start(limited(make_pipeline(storage, notify_emails=()), 1))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            answers = []
            for n in range(2):
                page = (await client.get("/callback")).text
                data = {name: re.findall(rf'name="{name}" value="([^"]*)"', page)[0]
                        for name in ("csrf_token", "submission")}  # fmt: skip
                data |= {"name": "Al", "phone": "+420 601 123 456", "description": f"d{n}",
                         "zone": "Europe/Prague"}  # fmt: skip
                answers.append(await client.post("/callback", data=data))
    finally:
        await web.stop()
    assert [a.status_code for a in answers] == [200, 429]
    assert int(answers[1].headers["retry-after"]) > 0 and "try again" in answers[1].text
    assert await count_tickets(storage) == 1


TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"


@SQLITE_ONLY
async def test_twilio_messages_beyond_the_limit_get_429_and_no_ticket(storage: Storage) -> None:
    settings = TwilioSettings(
        enabled=True, account_sid="AC" + "1" * 32, auth_token=SecretStr(TWILIO_TOKEN),
        api_base="http://127.0.0.1:9",
    )  # fmt: skip
    routes = twilio_routes(settings, "https://support.example.com", clock=lambda: NOW)
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [routes])
    await web.start(limited(make_pipeline(storage, notify_emails=()), 1))
    statuses = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            for n in range(3):
                fields = {
                    "MessageSid": f"SM{n:032d}", "From": "+420601123456", "To": "+14155550100",
                    "Body": f"message {n}", "NumMedia": "0",
                }  # fmt: skip
                url = "https://support.example.com/webhooks/twilio/messaging"
                signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, fields)
                answer = await client.post("/webhooks/twilio/messaging", data=fields,
                                           headers={"X-Twilio-Signature": signature})  # fmt: skip
                statuses.append(answer.status_code)
    finally:
        await web.stop()
    assert statuses == [200, 429, 429]
    assert await count_tickets(storage) == 1


# -- Telegram ------------------------------------------------------------------------------

TG_TOKEN = "7000000001:AAHfake-token_for-the-tests"


def tg_update(update_id: int, text: str, user: int = 777000111) -> dict[str, Any]:
    chat = {"id": user, "type": "private", "first_name": "Bob"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id, "date": 1773136800, "chat": chat, "text": text,
            "from": {"id": user, "is_bot": False, "first_name": "Bob"},
        },
    }  # fmt: skip


@SQLITE_ONLY
async def test_telegram_flood_makes_no_ticket_and_one_polite_reply(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    fake = FakeTelegram(TG_TOKEN)
    await fake.start()
    settings = TelegramSettings(enabled=True, token=SecretStr(TG_TOKEN), api_base=fake.api_base,
                                secret_token=SecretStr("s3cret"))  # fmt: skip
    channel = TelegramChannel(settings, storage.sessions, lambda: NOW, poll_timeout=1,
                              backoff_base=0.05, backoff_cap=0.2)  # fmt: skip
    await channel.start(limited(make_pipeline(storage, notify_emails=()), 1))
    try:
        updates = [tg_update(900000001 + n, f"help {n}") for n in range(4)]
        fake.push(*updates)
        await fake.wait_for(lambda: (channel.offset or 0) > updates[-1]["update_id"])
    finally:
        await channel.stop()
        await fake.stop()
    assert await count_tickets(storage) == 1  # the rest confirmed, not stored, not retried
    polite = [m for m in fake.made("sendMessage") if m["text"] == telegram_replies.TOO_MANY]
    assert len(polite) == 1
