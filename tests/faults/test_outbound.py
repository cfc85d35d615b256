"""Outbound failing: the acknowledgement relay refusing or down, Twilio and Telegram answering
errors. The real repliers talk to real local servers; the deliverer's clock is injected, so
the backoff is checked exactly and nobody waits for it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from fake_telegram import FakeTelegram
from fake_twilio import FakeTwilio
from harness import ACCOUNT, TOKEN
from pipelines import NOW, make_pipeline
from pydantic import SecretStr
from serving import Relay
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from channels.email.inbound import inbound_from_raw
from channels.email.smtp import SmtpReplier
from channels.telegram.channel import TelegramReplier
from channels.twilio.replier import TwilioReplier
from intake.cli.app import Storage
from intake.config import OutboundSmtpSettings, TelegramSettings, TwilioSettings
from intake.errors import PermanentChannelError, TransientChannelError
from intake.messages import Ack, ChannelKind
from intake.outbox.delivery import Deliverer, backoff
from storage import agents, outbox
from storage.models import Outbox

ONCALL = "oncall@vendor.example"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def rows(storage: Storage, kind: str | None = None) -> list[Outbox]:
    async with storage.sessions() as session:
        query = select(Outbox).order_by(Outbox.id)
        if kind is not None:
            query = query.where(Outbox.kind == kind)
        return list(await session.scalars(query))


async def ticket_with_ack(storage: Storage) -> int:
    """A ticket from a real intake, its acknowledgement queued for the relay."""
    mail = EmailMessage()
    mail["From"] = "Alice <alice@customer.example>"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = "The export fails"
    mail["Message-ID"] = "<out-1@customer.example>"
    mail.set_content("Since this morning the export shows error 500.")
    receipt = await make_pipeline(storage)(inbound_from_raw(mail.as_bytes(), received_at=NOW))
    assert [o.recipient for o in await rows(storage)] == ["alice@customer.example"]
    return receipt.ticket_id


def email_deliverer(storage: Storage, relay_port: int, clock: Clock) -> Deliverer:
    replier = SmtpReplier(OutboundSmtpSettings(port=relay_port), clock=clock, timeout=10)
    return Deliverer(
        storage.sessions, {"email": replier}, clock=clock, alert_to=[("email", ONCALL)]
    )


async def test_relay_451_then_550_fails_visibly_and_alerts_agents(
    storage: Storage, relay: Relay
) -> None:
    ticket_id = await ticket_with_ack(storage)
    clock = Clock()
    deliverer = email_deliverer(storage, relay.port, clock)
    relay.refuse = ["451 4.3.0 Greylisted, try later", "550 5.1.1 No such user"]

    assert await deliverer.run_once() == 1
    [ack] = await rows(storage)
    assert (ack.status, ack.attempts) == ("pending", 1) and ack.last_error is not None
    assert ack.last_error.startswith("451") and ack.next_attempt_at == NOW + backoff(1)
    assert await deliverer.run_once() == 0  # not before its time

    clock.now += backoff(1)
    assert await deliverer.run_once() == 1
    [ack] = await rows(storage, "ack")
    assert ack.status == "failed" and "550 5.1.1 No such user" in (ack.last_error or "")
    async with storage.sessions() as session:
        [event] = await agents.ticket_events(session, ticket_id)
    assert (event.actor, event.kind) == ("system", "notice_failed")
    assert event.details["recipient"] == "alice@customer.example"
    assert "550" in event.details["error"]

    assert await deliverer.run_once() == 1  # the agents' alert goes out at once
    [alert] = await rows(storage, "alert")
    assert (alert.recipient, alert.status) == (ONCALL, "sent")
    [(envelope, message)] = relay.received
    assert envelope.rcpt_tos == [ONCALL]
    assert str(message["Subject"]) == f"[SUP-{ticket_id:06d}] Acknowledgement not delivered"
    assert "alice@customer.example" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert relay.refused == ["451 4.3.0 Greylisted, try later", "550 5.1.1 No such user"]


async def test_relay_down_for_long_backs_off_capped_and_drops_nothing(
    storage: Storage, relay: Relay
) -> None:
    await ticket_with_ack(storage)
    clock = Clock()
    deliverer = email_deliverer(storage, relay.port, clock)
    await relay.stop()
    waits = []
    for _ in range(12):  # about nine hours of an absent relay
        assert await deliverer.run_once() == 1
        [ack] = await rows(storage)
        assert ack.status == "pending" and ack.last_error
        waits.append(ack.next_attempt_at - clock.now)
        clock.now = ack.next_attempt_at
    assert waits[:3] == [timedelta(seconds=5), timedelta(seconds=10), timedelta(seconds=20)]
    assert waits[-2:] == [timedelta(hours=1), timedelta(hours=1)]  # the cap
    assert all(a <= b for a, b in itertools.pairwise(waits))

    await relay.start()  # back on the same port
    assert await deliverer.run_once() == 1
    [ack] = await rows(storage)
    assert (ack.status, ack.attempts) == ("sent", 13)
    assert relay.recipients() == ["alice@customer.example"]


class RateLimitingTwilio(FakeTwilio):
    """The Twilio fake, adding Retry-After to its 429 answers."""

    retry_after = "120"

    async def create_message(self, request: Request) -> Response:
        response = await super().create_message(request)
        if response.status_code == 429:
            response.headers["Retry-After"] = self.retry_after
        return response


@pytest.fixture
async def twilio() -> AsyncIterator[RateLimitingTwilio]:
    fake = RateLimitingTwilio(ACCOUNT, TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


async def queue(storage: Storage, channel: str, recipient: str) -> None:
    async with storage.sessions.begin() as session:
        await outbox.enqueue(
            session, ticket_id=None, kind="ack", channel=channel, recipient=recipient,
            payload={"subject": "s", "text": "We have your request.", "reference": "SUP-000001"},
            now=NOW,
        )  # fmt: skip


async def test_twilio_500_then_429_with_retry_after(
    storage: Storage, twilio: RateLimitingTwilio
) -> None:
    await queue(storage, "sms", "+420601123456")
    settings = TwilioSettings(
        account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), api_base=twilio.base_url
    )
    clock = Clock()
    replier = TwilioReplier(settings, sms_from="+14155550100")
    deliverer = Deliverer(storage.sessions, {"sms": replier}, clock=clock)
    twilio.replies = [(500, "error_20500.json"), (429, "error_20429.json")]

    async with aclosing(replier):
        await deliverer.run_once()
        [ack] = await rows(storage)
        assert ack.status == "pending" and ack.next_attempt_at == NOW + backoff(1)
        clock.now = ack.next_attempt_at
        await deliverer.run_once()
        [ack] = await rows(storage)
        # Twilio said when: two minutes, more than the backoff's ten seconds.
        assert ack.status == "pending" and ack.next_attempt_at == clock.now + timedelta(seconds=120)
        clock.now += timedelta(seconds=119)
        assert await deliverer.run_once() == 0
        clock.now += timedelta(seconds=1)
        await deliverer.run_once()
    [ack] = await rows(storage)
    assert (ack.status, ack.attempts) == ("sent", 3)
    assert [s.form["To"] for s in twilio.sent()] == ["+420601123456"] * 3


class FlakyTelegram(FakeTelegram):
    """The Telegram fake, behind a proxy that answers 502 Bad Gateway `bad_gateways` times."""

    bad_gateways = 0

    async def _api(self, request: Request) -> Response:
        if request.path_params["method"] == "sendMessage" and self.bad_gateways:
            self.bad_gateways -= 1
            return HTMLResponse("<html><h1>502 Bad Gateway</h1></html>", status_code=502)
        return await super()._api(request)


async def test_telegram_502_then_flood_control_then_sent(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22's retry_after as a timedelta
    token = "7000000001:AAHfake-token_for-the-tests"
    fake = FlakyTelegram(token)
    await fake.start()
    replier = TelegramReplier(TelegramSettings(token=SecretStr(token), api_base=fake.api_base))
    try:
        await queue(storage, "telegram", "777000111")
        clock = Clock()
        deliverer = Deliverer(storage.sessions, {"telegram": replier}, clock=clock)
        fake.bad_gateways = 1
        fake.fail_next("sendMessage", "error_429")  # retry_after 3
        await deliverer.run_once()
        [ack] = await rows(storage)
        assert ack.status == "pending" and ack.next_attempt_at == NOW + backoff(1)
        clock.now = ack.next_attempt_at
        await deliverer.run_once()
        [ack] = await rows(storage)
        assert ack.status == "pending" and ack.next_attempt_at == clock.now + backoff(2)
        clock.now = ack.next_attempt_at
        await deliverer.run_once()
    finally:
        await replier.aclose()
        await fake.stop()
    [ack] = await rows(storage)
    assert (ack.status, ack.attempts) == ("sent", 3)
    assert [c["chat_id"] for c in fake.made("sendMessage")] == [777000111] * 2


def notice(n: int) -> Ack:
    return Ack(
        outbox_id=n,
        kind="ack",
        channel=ChannelKind.EMAIL,
        to=f"customer{n}@example.org",
        subject=f"[SUP-{n:06d}] Re: hi",
        text="We have your request.",
    )


async def test_notices_in_a_row_share_one_relay_connection(relay: Relay) -> None:
    replier = SmtpReplier(OutboundSmtpSettings(port=relay.port), clock=Clock(), timeout=10)
    for n in range(3):
        await replier.send(notice(n))
    assert relay.recipients() == [f"customer{n}@example.org" for n in range(3)]
    assert replier.connections == 1 and len(set(relay.peers)) == 1
    relay.refuse = ["550 5.1.1 No such user"]  # a refused recipient keeps the connection
    with pytest.raises(PermanentChannelError):
        await replier.send(notice(3))
    await replier.send(notice(4))
    assert replier.connections == 1 and relay.recipients()[-1] == "customer4@example.org"
    await replier.aclose()
    assert relay.quits == 1
    await replier.send(notice(5))  # a new connection after closing
    assert replier.connections == 2 and len(set(relay.peers)) == 2
    await replier.aclose()


async def test_a_connection_the_relay_hung_up_is_replaced(relay: Relay) -> None:
    replier = SmtpReplier(OutboundSmtpSettings(port=relay.port), clock=Clock(), timeout=10)
    await replier.send(notice(1))
    relay.hang_up()
    try:
        await replier.send(notice(2))
    except TransientChannelError:  # the hang-up was not seen before the send: retried later
        await replier.send(notice(2))
    assert relay.recipients() == ["customer1@example.org", "customer2@example.org"]
    assert replier.connections == 2
    await replier.aclose()


async def test_an_idle_connection_is_closed(relay: Relay) -> None:
    replier = SmtpReplier(
        OutboundSmtpSettings(port=relay.port), clock=Clock(), timeout=10, keep_open=0.01
    )
    await replier.send(notice(1))
    for _ in range(500):  # the close runs on the event loop a moment later
        if relay.quits:
            break
        await asyncio.sleep(0.01)
    assert relay.quits == 1 and not replier.connected
