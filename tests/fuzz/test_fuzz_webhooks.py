"""Fuzzing the webhook parsers over real HTTP: Twilio messaging and voice forms (correctly
signed, so the fuzzed fields reach the parser), Telegram updates (recorded ones with their
values replaced, and arbitrary bodies), the call-back form and the agents' JSON API.

The property everywhere: the answer is a deliberate status (200, or a 4xx refusal, or 503
only for a transient cause), never a 500 or an exception logged as a bug, and every message
handed to the intake is within the bounds `check_chat` spells out.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import httpx
import pytest
from fuzzing import CONTROLS, DATA, LINE_BREAKERS, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from pipelines import make_pipeline
from pydantic import SecretStr
from telegram import Update
from twilio.request_validator import RequestValidator

from channels.desk.api import api_routes
from channels.telegram.channel import SECRET_HEADER, WEBHOOK_PATH, TelegramChannel
from channels.telegram.inbound import shape_problem
from channels.twilio.messaging import MESSAGING_PATH, STATUS_PATH, TwilioWebhooks
from channels.twilio.voice import RECORDED_PATH, TRANSCRIPTION_PATH, URGENCY_PATH, VOICE_PATH
from channels.web.app import WebChannel
from channels.web.callback import COOKIE, FIELDS, CallbackForm
from intake.cli.app import Storage
from intake.config import TelegramSettings, TwilioSettings, WebSettings
from intake.desk import agents
from intake.errors import InputRefusedError, TransientError
from intake.messages import ChannelKind, InboundMessage, Receipt, ReceiptStatus

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
PUBLIC = "https://support.example.com"
TOKEN = "twilio-auth-token"
TG_SECRET = "fuzz-secret"
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)

HOSTILE = (
    "", " ", "\x00", "\r\n", "<script>alert(1)</script>", "+420601123456", "whatsapp:+1",
    "whatsapp:", "SM" + "0" * 32, "CA" + "a" * 32, "-1", "99999999999999999999", "1e9", "NaN",
    "\ud7ff", "\u2028", "é" * 300, "x" * 5000, "https://api.twilio.com/x", "%00", "../../etc",
    "application/pdf", "image/png\r\nX: y", "completed", "1", "#", "true",
)  # fmt: skip
values = st.sampled_from(HOSTILE) | st.text(max_size=60)


class Recorder:
    """An Intake that keeps what it is handed, after checking it."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []

    async def __call__(self, message: InboundMessage) -> Receipt:
        check_chat(message)
        self.messages.append(message)
        return Receipt(ReceiptStatus.ACCEPTED, 1, "SUP-000001")


def check_chat(message: InboundMessage) -> None:
    """What the pipeline may rely on of a message from any chat or web channel."""
    assert message.sender and not CONTROLS.search(message.sender), message.sender
    assert 0 < len(message.channel_message_id) <= 998
    assert not CONTROLS.search(message.channel_message_id)
    assert len(message.sender_name) <= 200 and not CONTROLS.search(message.sender_name)
    assert not LINE_BREAKERS.search(message.subject) and len(message.subject) <= 998
    assert "\x00" not in message.text and "\x00" not in message.reply_to  # PostgreSQL refuses NUL
    assert len(message.text) <= 1_000_000
    for attachment in message.attachments:
        assert attachment.filename and not CONTROLS.search(attachment.filename)
        assert "/" not in attachment.filename


def no_bug_logged(caplog: pytest.LogCaptureFixture) -> None:
    bugs = [r for r in caplog.records if r.levelno >= logging.ERROR]
    caplog.clear()
    assert not bugs, [r.getMessage() for r in bugs]


# -- Twilio ---------------------------------------------------------------------------------

TWILIO_FIELDS = (
    "MessageSid", "From", "To", "Body", "NumMedia", "ProfileName", "WaId", "MediaUrl0",
    "MediaContentType0", "MessageStatus", "SmsStatus", "ErrorCode", "CallSid", "Digits",
    "RecordingUrl", "RecordingDuration", "RecordingSid", "TranscriptionText",
    "TranscriptionStatus", "TranscriptionSid", "CallerName",
)  # fmt: skip
TWILIO_PATHS = (
    MESSAGING_PATH, STATUS_PATH, VOICE_PATH, URGENCY_PATH, RECORDED_PATH, TRANSCRIPTION_PATH,
)  # fmt: skip


def recorded_form(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((DATA / "twilio" / f"{name}.json").read_text())
    return data


@st.composite
def twilio_forms(draw: st.DrawFn) -> dict[str, str]:
    recorded = ("whatsapp_inbound", "sms_inbound", "voice_recorded", "voice_transcription")
    base = recorded_form(draw(st.sampled_from(recorded)))
    for name in draw(st.lists(st.sampled_from(TWILIO_FIELDS) | st.text(max_size=8), max_size=6)):
        base[name] = draw(values)
    for name in draw(st.lists(st.sampled_from(sorted(base)), max_size=3)):
        base.pop(name, None)
    return base


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[httpx.AsyncClient, Recorder]]:
    settings = TwilioSettings(
        enabled=True,
        account_sid="AC" + "1" * 32,
        auth_token=SecretStr(TOKEN),
        api_base="http://127.0.0.1:9",  # media URLs fuzzed here never point at it
    )
    routes = TwilioWebhooks(settings, PUBLIC, clock=lambda: NOW).routes
    intake = Recorder()
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [routes])
    await web.start(intake)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            yield client, intake
    finally:
        await web.stop()


@fuzz_settings(120)
@given(form=twilio_forms(), path=st.sampled_from(TWILIO_PATHS), digit=st.sampled_from(
    ("", "1", "2", "x", "11", "\x00")))  # fmt: skip
async def test_twilio_signed_forms(
    twilio: tuple[httpx.AsyncClient, Recorder],
    caplog: pytest.LogCaptureFixture,
    form: dict[str, str],
    path: str,
    digit: str,
) -> None:
    client, intake = twilio
    query = urlencode({"digit": digit}) if digit else ""
    url = f"{PUBLIC}{path}" + (f"?{query}" if query else "")
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    before = len(intake.messages)
    answer = await client.post(
        f"{path}?{query}" if query else path, data=form, headers={"X-Twilio-Signature": signature}
    )
    assert answer.status_code in (200, 400), (answer.status_code, answer.text)
    if answer.status_code == 200:
        ElementTree.fromstring(answer.text)  # TwiML is well-formed XML whatever was sent
        assert "<script" not in answer.text
    else:
        assert len(intake.messages) == before
    no_bug_logged(caplog)


@fuzz_settings(60)
@given(
    body=st.binary(max_size=600) | st.text(max_size=300).map(str.encode),
    path=st.sampled_from(TWILIO_PATHS),
    kind=st.sampled_from(("application/x-www-form-urlencoded", "text/plain", "", "multipart/x")),
    signature=st.sampled_from(("", "bad", "AAAA")),
)
async def test_twilio_unsigned_or_malformed_bodies(
    twilio: tuple[httpx.AsyncClient, Recorder],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    path: str,
    kind: str,
    signature: str,
) -> None:
    client, intake = twilio
    headers = {"Content-Type": kind, "X-Twilio-Signature": signature}
    answer = await client.post(path, content=body, headers=headers)
    assert answer.status_code in (400, 403), answer.status_code
    assert intake.messages == []
    no_bug_logged(caplog)


# -- Telegram -------------------------------------------------------------------------------

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats() | values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)
RECORDED_UPDATES = ("update_text", "update_start", "update_contact", "update_group_text",
                    "update_photo", "update_document")  # fmt: skip


def recorded_update(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "telegram" / f"{name}.json").read_text())
    return data


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


@st.composite
def telegram_updates(draw: st.DrawFn) -> dict[str, Any]:
    """A recorded update with some values (or whole objects) replaced, keys dropped or added."""
    update = recorded_update(draw(st.sampled_from(RECORDED_UPDATES)))
    commands = ("/start", "/status SUP-000001", "/status", "/help@bot", "/x", "hello")
    update["message"]["text"] = draw(st.sampled_from(commands) | values)
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(update)
        path = draw(st.sampled_from(paths))
        parent: Any = update
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(("replace", "replace", "delete", "add")))
        if action == "replace":
            parent[path[-1]] = draw(JSON)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(("caption", "document", "photo", "contact", "from",
                                         "chat", "entities")))] = draw(JSON)  # fmt: skip
    return update


@pytest.fixture
async def telegram(
    storage: Storage,
) -> AsyncIterator[tuple[httpx.AsyncClient, TelegramChannel, Recorder]]:
    settings = TelegramSettings(
        enabled=True,
        token=SecretStr("123:fuzz"),
        mode="webhook",
        api_base="http://127.0.0.1:9/bot",  # nothing listens: replies fail as transient
        secret_token=SecretStr(TG_SECRET),
    )
    channel = TelegramChannel(settings, storage.sessions, lambda: NOW, max_body_bytes=64 * 1024)
    intake = Recorder()
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [channel.routes])
    await web.start(intake)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            yield client, channel, intake
    finally:
        await web.stop()
        await channel.bot.shutdown()


@SQLITE_ONLY
@fuzz_settings(120)
@given(update=telegram_updates())
async def test_telegram_updates_are_handled_or_refused(
    telegram: tuple[httpx.AsyncClient, TelegramChannel, Recorder],
    caplog: pytest.LogCaptureFixture,
    update: dict[str, Any],
) -> None:
    client, channel, intake = telegram
    parsed = None
    if shape_problem(update) is None:
        try:
            parsed = Update.de_json(update, channel.bot)
        except Exception:  # what PTB cannot read, the webhook refuses with 400
            parsed = None
    if parsed is not None:
        outcome = await channel.handle(intake, parsed)
        # Anything else is a bug that would make Telegram resend the update for hours.
        allowed = Receipt | InputRefusedError | TransientError
        assert outcome is None or isinstance(outcome, allowed), repr(outcome)
    answer = await client.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: TG_SECRET})
    assert answer.status_code in ((400,) if parsed is None else (200, 503)), answer.status_code
    no_bug_logged(caplog)


@SQLITE_ONLY
@fuzz_settings(60)
@given(
    body=st.binary(max_size=400) | JSON.map(lambda v: json.dumps(v).encode()),
    secret=st.sampled_from((TG_SECRET, "", "wrong", TG_SECRET + "x", "fuzz")),
)
async def test_telegram_webhook_bodies(
    telegram: tuple[httpx.AsyncClient, TelegramChannel, Recorder],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    secret: str,
) -> None:
    client, _, _ = telegram
    answer = await client.post(WEBHOOK_PATH, content=body, headers={SECRET_HEADER: secret})
    if secret != TG_SECRET:
        assert answer.status_code == 403
    else:
        assert answer.status_code in (200, 400, 503), answer.status_code
    no_bug_logged(caplog)


# -- the call-back form ---------------------------------------------------------------------


@pytest.fixture
async def callback() -> AsyncIterator[tuple[httpx.AsyncClient, Recorder]]:
    form = CallbackForm(b"k" * 32, clock=lambda: NOW, per_hour=10**6, secure_cookie=False,
                        default_region="CZ")  # fmt: skip
    intake = Recorder()
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [form.routes])
    await web.start(intake)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            yield client, intake
    finally:
        await web.stop()


@st.composite
def callback_forms(draw: st.DrawFn) -> dict[str, str]:
    good = {"name": "Ann", "organization": "Acme", "phone": "+420 601 123 456",
            "email": "ann@acme.example", "window_from": "09:00", "window_to": "11:00",
            "zone": "Europe/Prague", "description": "Export fails", "urgent": "yes"}  # fmt: skip
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4)):
        good[name] = draw(values)
    good["submission"] = draw(st.sampled_from(("0" * 32, "f" * 32, "", "x"))) or "a" * 32
    return good


@fuzz_settings(80)
@given(form=callback_forms())
async def test_callback_form_submissions(
    callback: tuple[httpx.AsyncClient, Recorder],
    caplog: pytest.LogCaptureFixture,
    form: dict[str, str],
) -> None:
    client, _ = callback
    page = await client.get("/callback")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = await client.post("/callback", data=form | {"csrf_token": token.group(1)})
    assert answer.status_code in (200, 400), answer.status_code
    assert "<script>alert" not in answer.text  # the form echoes fields, escaped
    assert client.cookies.get(COOKIE)
    no_bug_logged(caplog)


# -- the agents' API ------------------------------------------------------------------------


@pytest.fixture
async def api(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    token = await agents.add_agent(storage.sessions, "ann@vendor.example", "a long password",
                                   name="Ann", now=NOW)  # fmt: skip
    receipt = await make_pipeline(storage)(
        InboundMessage(
            channel=ChannelKind.EMAIL,
            channel_message_id="<t@x>",
            received_at=NOW,
            sender="alice@customer.example",
            subject="Export fails",
            text="Error 500.",
        )
    )
    assert receipt.reference == "SUP-000001"  # the ticket the fuzzed updates may change
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [api_routes(storage.sessions)])
    await web.start(Recorder())
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{web.port}", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            yield client
    finally:
        await web.stop()


@SQLITE_ONLY
@fuzz_settings(50)
@given(
    body=JSON
    | st.fixed_dictionaries({}, optional={"action": values, "priority": JSON, "severity": JSON}),
    reference=st.sampled_from(("SUP-000001", "SUP-1", "sup-000001", "%00", "x" * 300)),
    query=st.dictionaries(
        st.sampled_from(("open", "overdue", "channel", "limit", "offset", "priority", "x")),
        values,
        max_size=3,
    ),
)
async def test_agent_api_bodies_and_queries(
    api: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    body: Any,
    reference: str,
    query: dict[str, str],
) -> None:
    patched = await api.patch(f"/api/tickets/{reference}", content=json.dumps(body),
                              headers={"Content-Type": "application/json"})  # fmt: skip
    assert patched.status_code in (200, 400, 404, 409), (patched.status_code, patched.text)
    assert ("error" in patched.json()) == (patched.status_code != 200)
    listed = await api.get("/api/tickets", params=query)
    assert listed.status_code in (200, 400), (listed.status_code, listed.text)
    no_bug_logged(caplog)
