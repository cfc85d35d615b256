"""Hostile text in the replies on chat channels: Telegram and Twilio get it as plain data.

A subject or text with CR/LF, NUL, markup or Markdown goes to Telegram's sendMessage as the
`text` parameter with no `parse_mode` (so nothing a sender wrote can shape our message), and
to Twilio's Messages API as the form field `Body`. Checked on what the local fakes of the two
APIs (tests/channels/fake_*.py) received.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))  # the API fakes
from fake_telegram import FakeTelegram
from fake_twilio import FakeTwilio

from channels.telegram.wire import TelegramReplier
from channels.twilio.replier import TwilioReplier
from intake.config import TelegramSettings, TwilioSettings
from intake.messages import Ack, ChannelKind

HOSTILE = "*bold* _x_ [link](http://evil.example) <b>b</b> <script>alert(1)</script>\r\nBcc: x"
TOKEN = "123456:fuzz-token"
ACCOUNT, AUTH = "AC" + "1" * 32, "twilio-token"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # PTB 22 warns otherwise (an error here)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio(ACCOUNT, AUTH)
    await server.start()
    yield server
    await server.stop()


def ack(channel: ChannelKind, to: str) -> Ack:
    return Ack(
        outbox_id=1,
        kind="ack",
        channel=channel,
        to=to,
        subject=HOSTILE,
        text=f"Re: {HOSTILE}\nWe have your request.",
        reference="SUP-000001",
    )


async def test_telegram_reply_is_plain_text(telegram: FakeTelegram) -> None:
    settings = TelegramSettings(token=SecretStr(TOKEN), api_base=telegram.api_base)
    replier = TelegramReplier(settings)
    try:
        await replier.send(ack(ChannelKind.TELEGRAM, "777000111"))
    finally:
        await replier.aclose()
    [sent] = telegram.made("sendMessage")
    assert sent["text"] == f"Re: {HOSTILE}\nWe have your request."
    assert "parse_mode" not in sent and "entities" not in sent


async def test_twilio_reply_is_the_body_field_only(twilio: FakeTwilio) -> None:
    settings = TwilioSettings(
        account_sid=ACCOUNT, auth_token=SecretStr(AUTH), api_base=twilio.base_url
    )
    async with aclosing(TwilioReplier(settings, whatsapp_from="+14155238886")) as replier:
        await replier.send(ack(ChannelKind.WHATSAPP, "+420601123456"))
    [sent] = twilio.sent()
    assert sent.form["Body"] == f"Re: {HOSTILE}\nWe have your request."
    assert sent.form["To"] == "whatsapp:+420601123456"
    assert set(sent.form) <= {"To", "From", "Body", "StatusCallback"}
