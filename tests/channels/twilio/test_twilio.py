"""Twilio WhatsApp, SMS and call-back requests: real HTTP to the running web channel, a real
pipeline on SQLite and PostgreSQL, and a fake Twilio REST API recording what we send.

Every signature here is computed by the twilio package's own RequestValidator.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fake_twilio import FakeTwilio, load
from pipelines import make_pipeline
from pydantic import SecretStr
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from channels.twilio.messaging import twilio_routes
from channels.twilio.replier import TwilioReplier, sms_text
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import TwilioSettings, WebSettings
from intake.contacts.values import normalize_phone
from intake.errors import PermanentChannelError, TransientChannelError, TransientError
from intake.messages import Ack, ChannelKind, InboundMessage
from intake.outbox.delivery import Deliverer
from intake.pipeline.pipeline import Pipeline
from storage import contacts
from storage.models import Attachment, Message, Outbox, Ticket
from storage.twilio_status import OutboxStatuses

ACCOUNT = "AC11111111111111111111111111111111"
TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://support.example.com/desk"  # a path prefix, as behind a proxy
WHATSAPP_FROM = "+14155238886"
SMS_FROM = "+14155550100"
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday, inside every window
MESSAGING = "/webhooks/twilio/messaging"
STATUS = "/webhooks/twilio/messaging/status"
VOICE = "/webhooks/twilio/voice"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def sign(url: str, fields: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, fields))


async def post(
    client: httpx.AsyncClient,
    target: str,
    fields: dict[str, str],
    *,
    signed_as: str | None = None,
    token: str = TOKEN,
    signature: str | None = None,
) -> httpx.Response:
    """POST `fields` to `target` (path and query), signed for PUBLIC + target unless told."""
    if signature is None:
        signature = sign(signed_as or PUBLIC + target, fields, token)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    return await client.post(target, data=fields, headers=headers)


def without(fields: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in fields.items() if key != name}


def local(url: str) -> str:
    """The path and query of one of our public callback URLs."""
    assert url.startswith(PUBLIC)
    parts = urlsplit(url[len(PUBLIC) :])
    return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass
class Desk:
    storage: Storage
    client: httpx.AsyncClient
    fake: FakeTwilio
    settings: TwilioSettings
    repliers: list[TwilioReplier] = field(default_factory=list)  # closed by the fixture

    def replier(self, **options: Any) -> TwilioReplier:
        replier = TwilioReplier(
            self.settings,
            whatsapp_from=WHATSAPP_FROM,
            sms_from=SMS_FROM,
            public_url=PUBLIC,
            **options,
        )
        self.repliers.append(replier)
        return replier

    def deliverer(self, at: datetime = NOW) -> Deliverer:
        replier = self.replier()
        repliers = {"whatsapp": replier, "sms": replier, "voice": replier}
        return Deliverer(self.storage.sessions, repliers, clock=lambda: at)

    async def tickets(self) -> list[Ticket]:
        async with self.storage.sessions() as session:
            return list(await session.scalars(select(Ticket).order_by(Ticket.id)))

    async def messages(self) -> list[Message]:
        async with self.storage.sessions() as session:
            return list(await session.scalars(select(Message).order_by(Message.id)))

    async def outbox(self, kind: str = "ack") -> list[Outbox]:
        async with self.storage.sessions() as session:
            query = select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id)
            return list(await session.scalars(query))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    server = FakeTwilio(ACCOUNT, TOKEN)
    await server.start()
    yield server
    await server.stop()


async def seed(storage: Storage) -> None:
    orgs = [
        ("Acme", "plus", [("Bob", "+420 601 123 456"), ("Dana", "+420 221 234 567")]),
        ("Hooli", "standard", [("Hank", "+420 602 000 111")]),
    ]
    async with storage.sessions.begin() as session:
        for name, plan, people in orgs:
            org_id, _ = await contacts.upsert_organization(
                session,
                name=name,
                plan=plan,
                policy=None,
                support_start=None,
                region=None,
                domains=(f"{name.lower()}.example",),
            )
            for person, phone in people:
                await contacts.upsert_contact(
                    session, org_id, name=person, email=None, phone=normalize_phone(phone),
                    telegram=None,
                    role="user",
                )  # fmt: skip


def pipeline(storage: Storage) -> Pipeline:
    return make_pipeline(storage, clock=lambda: NOW, our_domains=frozenset())


@pytest.fixture
async def desk(storage: Storage, fake: FakeTwilio) -> AsyncIterator[Desk]:
    await seed(storage)
    settings = TwilioSettings(
        enabled=True, account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), api_base=fake.base_url
    )
    routes = twilio_routes(
        settings,
        PUBLIC,
        clock=lambda: NOW,
        media_limit_bytes=1000,
        statuses=OutboxStatuses(storage.sessions),
    )
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [routes])
    await web.start(pipeline(storage))
    desk: Desk | None = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            desk = Desk(storage, client, fake, settings)
            yield desk
    finally:
        for replier in desk.repliers if desk else []:
            await replier.aclose()
        await web.stop()


async def test_signed_whatsapp_message_is_one_ticket_however_often_sent(desk: Desk) -> None:
    fields = load("whatsapp_inbound.json")
    first = await post(desk.client, MESSAGING, fields)
    assert (first.status_code, first.text) == (200, EMPTY_TWIML)
    assert first.headers["content-type"].startswith("text/xml")
    again = await post(desk.client, MESSAGING, fields)  # Twilio's retry, or a replay
    assert (again.status_code, again.text) == (200, EMPTY_TWIML)
    [ticket] = await desk.tickets()
    assert (ticket.channel, ticket.sender, ticket.sender_name) == (
        "whatsapp",
        "+420601123456",
        "Bob Builder",
    )
    assert (ticket.contact_status, ticket.plan, ticket.flags) == ("known", "plus", [])
    [message] = await desk.messages()
    assert message.channel_message_id == fields["MessageSid"]
    assert message.text == fields["Body"]
    [ack] = await desk.outbox()
    assert (ack.channel, ack.recipient) == ("whatsapp", "+420601123456")


async def test_unsigned_or_wrongly_signed_requests_are_403_and_store_nothing(desk: Desk) -> None:
    fields = load("whatsapp_inbound.json")
    tampered = fields | {"Body": "Something else"}
    attempts = [
        await post(desk.client, MESSAGING, fields, signature=""),  # no header at all
        await post(desk.client, MESSAGING, fields, signature="bm90IGEgc2lnbmF0dXJl"),
        await post(desk.client, MESSAGING, fields, signed_as="https://other.example" + MESSAGING),
        await post(desk.client, MESSAGING, fields, signed_as=f"{PUBLIC}/webhooks/twilio/voice"),
        await post(desk.client, MESSAGING, fields, token="f" * 32),  # another account's token
        await desk.client.post(
            MESSAGING,
            data=tampered,
            headers={"X-Twilio-Signature": sign(PUBLIC + MESSAGING, fields)},
        ),
    ]
    assert [r.status_code for r in attempts] == [403] * len(attempts)
    assert await desk.tickets() == [] and await desk.messages() == []


async def test_sms_from_an_unknown_number_says_urgent_in_words(desk: Desk) -> None:
    response = await post(desk.client, MESSAGING, load("sms_inbound.json"))
    assert response.status_code == 200
    [ticket] = await desk.tickets()
    assert (ticket.channel, ticket.sender, ticket.contact_status) == (
        "sms",
        "+420777000111",
        "unidentified",
    )
    assert ticket.urgent  # "Urgent please": the word, on chat (Circularo SaaS 9)


async def test_a_plan_without_whatsapp_still_gets_a_flagged_ticket(desk: Desk) -> None:
    fields = load("whatsapp_inbound.json") | {
        "From": "whatsapp:+420602000111",
        "WaId": "420602000111",
        "MessageSid": "SM" + "2" * 32,
    }
    assert (await post(desk.client, MESSAGING, fields)).status_code == 200
    [ticket] = await desk.tickets()
    assert (ticket.plan, ticket.flags) == ("standard", ["channel_not_entitled"])
    [ack] = await desk.outbox()
    assert "plan includes support through: the web help desk" in ack.payload["text"]


async def test_media_fetched_with_the_account_credentials_and_oversize_flagged(
    desk: Desk,
) -> None:
    fields = load("whatsapp_inbound_media.json")
    for key in ("MediaUrl0", "MediaUrl1"):
        fields[key] = fields[key].replace("https://api.twilio.com", desk.fake.base_url)
    jpeg = b"\xff\xd8\xff\xe0" + b"j" * 500
    desk.fake.media["ME" + "0" * 32] = (jpeg, "image/jpeg")
    desk.fake.media["ME" + "1" * 32] = (b"%PDF-1.7" + b"p" * 5000, "application/pdf")
    assert (await post(desk.client, MESSAGING, fields)).status_code == 200
    [message] = await desk.messages()
    assert message.problems == ["media 1 not stored: larger than 1000 bytes"]
    async with desk.storage.sessions() as session:
        [attachment] = await session.scalars(select(Attachment))
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        f"{fields['MessageSid']}-0.jpg",
        "image/jpeg",
        len(jpeg),
    )
    at_twilio = [r for r in desk.fake.received if "/Media/" in r.path]
    assert [r.basic_auth for r in at_twilio] == [(ACCOUNT, TOKEN)] * 2
    in_store = [r for r in desk.fake.received if r.path.startswith("/media-store/")]
    assert in_store and all("authorization" not in r.headers for r in in_store)


async def test_ack_goes_out_through_twilio_and_its_status_is_recorded(desk: Desk) -> None:
    fields = load("whatsapp_inbound.json")
    assert (await post(desk.client, MESSAGING, fields)).status_code == 200
    assert await desk.deliverer().run_once() == 1
    [sent] = desk.fake.sent()
    [ack] = await desk.outbox()
    assert sent.basic_auth == (ACCOUNT, TOKEN)
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    assert sent.form == {
        "To": "whatsapp:+420601123456",
        "From": f"whatsapp:{WHATSAPP_FROM}",
        "Body": ack.payload["text"].strip(),
        "StatusCallback": f"{PUBLIC}{STATUS}?outbox={ack.id}",
    }
    assert ack.status == "sent"
    sid = "SM" + "0" * 31 + "1"  # the fake's first message SID
    callback = local(sent.form["StatusCallback"])
    delivered = load("message_status_delivered.json") | {"MessageSid": sid, "SmsSid": sid}
    response = await post(desk.client, callback, delivered)
    assert (response.status_code, response.text) == (200, EMPTY_TWIML)
    [ack] = await desk.outbox()
    assert ack.status == "sent"
    assert (ack.payload["twilio"]["sid"], ack.payload["twilio"]["status"]) == (sid, "delivered")
    failed = load("message_status_undelivered.json") | {"MessageSid": sid, "SmsSid": sid}
    assert (await post(desk.client, callback, failed)).status_code == 200
    [ack] = await desk.outbox()
    assert (ack.status, ack.last_error) == ("failed", "twilio undelivered error 30003")
    assert [h["status"] for h in ack.payload["twilio"]["history"]] == ["delivered", "undelivered"]
    forged = await post(desk.client, callback, failed, signature="AAAA")
    assert forged.status_code == 403


async def test_sms_ack_retried_on_503_and_failed_for_good_on_21211(desk: Desk) -> None:
    assert (await post(desk.client, MESSAGING, load("sms_inbound.json"))).status_code == 200
    desk.fake.replies = [(503, "error_20500.json")]
    await desk.deliverer().run_once()
    [ack] = await desk.outbox()
    assert (ack.status, ack.attempts, ack.last_error) == ("pending", 1, "Twilio 503 error 20500")
    await desk.deliverer(NOW + timedelta(minutes=1)).run_once()
    [ack] = await desk.outbox()
    assert ack.status == "sent"
    retried = desk.fake.sent()[-1].form
    assert (retried["To"], retried["From"]) == ("+420777000111", SMS_FROM)
    assert retried["Body"].startswith("SUP-") and len(retried["Body"]) <= 160

    other = load("sms_inbound.json") | {"From": "+420777000222", "MessageSid": "SM" + "3" * 32}
    assert (await post(desk.client, MESSAGING, other)).status_code == 200
    desk.fake.replies = [(400, "error_21211.json")]
    await desk.deliverer(NOW + timedelta(minutes=2)).run_once()
    [_, ack] = await desk.outbox()
    assert (ack.status, ack.last_error) == ("failed", "Twilio 400 error 21211")


def _verbs(xml: str) -> ET.Element:
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    return root


async def _call(desk: Desk, digit: str, caller: str = "+420601123456") -> ET.Element:
    """Walk a call through the TwiML up to the recording; returns the <Record> verb."""
    incoming = load("voice_incoming.json") | {"From": caller, "Caller": caller}
    answer = await post(desk.client, VOICE, incoming)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
    say, gather, redirect = _verbs(answer.text)
    assert say.tag == "Say" and "support" in (say.text or "")
    assert (gather.tag, gather.get("numDigits"), gather.get("method")) == ("Gather", "1", "POST")
    assert gather.get("action") == f"{PUBLIC}{VOICE}/urgency"
    assert "press 1" in (gather.findtext("Say") or "")
    assert (redirect.tag, redirect.text) == ("Redirect", f"{PUBLIC}{VOICE}/urgency")
    gathered = load("voice_gather.json") | {"Digits": digit, "From": caller, "Caller": caller}
    prompt = await post(desk.client, local(gather.get("action", "")), gathered)
    assert prompt.status_code == 200
    say, record, _ = _verbs(prompt.text)
    assert say.tag == "Say" and record.tag == "Record"
    assert (record.get("maxLength"), record.get("transcribe")) == ("120", "true")
    assert record.get("action") == f"{PUBLIC}{VOICE}/recorded?digit={digit}"
    assert record.get("transcribeCallback") == f"{PUBLIC}{VOICE}/transcription?digit={digit}"
    return record


async def test_urgent_call_back_request_and_its_transcription(desk: Desk) -> None:
    record = await _call(desk, "1")
    recorded = load("voice_recorded.json")
    done = await post(desk.client, local(record.get("action", "")), recorded)
    assert done.status_code == 200
    assert [verb.tag for verb in _verbs(done.text)] == ["Say", "Hangup"]
    [ticket] = await desk.tickets()
    assert (ticket.channel, ticket.sender, ticket.plan) == ("voice", "+420601123456", "plus")
    assert (ticket.urgent, ticket.priority) == (True, "urgent")
    [message] = await desk.messages()
    assert message.channel_message_id == recorded["CallSid"]
    assert recorded["RecordingUrl"] in message.text and "Urgent" in message.text

    transcription = load("voice_transcription.json")
    heard = await post(desk.client, local(record.get("transcribeCallback", "")), transcription)
    assert (heard.status_code, heard.text) == (200, EMPTY_TWIML)
    assert len(await desk.tickets()) == 1
    [_, follow_up] = await desk.messages()
    assert follow_up.ticket_id == ticket.id
    assert follow_up.channel_message_id == f"{recorded['CallSid']}:transcription"
    assert "invoices cannot be exported" in follow_up.text

    assert await desk.deliverer().run_once() >= 1  # the ack, by SMS to the caller's mobile
    [sms] = desk.fake.sent()
    assert (sms.form["To"], sms.form["From"]) == ("+420601123456", SMS_FROM)
    assert sms.form["Body"].startswith(f"SUP-{ticket.id:06d}: we have received your request.")


async def test_an_urgent_word_in_the_transcription_raises_the_priority(desk: Desk) -> None:
    record = await _call(desk, "2")
    recorded = await post(desk.client, local(record.get("action", "")), load("voice_recorded.json"))
    assert recorded.status_code == 200
    [ticket] = await desk.tickets()
    assert (ticket.urgent, ticket.priority) == (False, "normal")
    transcription = load("voice_transcription.json")
    heard = await post(desk.client, local(record.get("transcribeCallback", "")), transcription)
    assert heard.status_code == 200
    [ticket] = await desk.tickets()
    assert ticket.priority == "urgent"
    assert ticket.decision["raised"][0]["message"].endswith(":transcription")


async def test_a_fixed_line_caller_gets_no_sms(desk: Desk) -> None:
    record = await _call(desk, "2", caller="+420221234567")
    fields = load("voice_recorded.json") | {"From": "+420221234567", "Caller": "+420221234567"}
    assert (await post(desk.client, local(record.get("action", "")), fields)).status_code == 200
    await desk.deliverer().run_once()
    [ack] = await desk.outbox()
    assert (ack.channel, ack.status, ack.last_error) == ("voice", "failed", "not a mobile number")
    assert desk.fake.sent() == []


async def test_replayed_and_misdirected_call_steps(desk: Desk) -> None:
    record = await _call(desk, "1")
    target = local(record.get("action", ""))
    fields = load("voice_recorded.json")
    for _ in range(3):  # a replay is indistinguishable from Twilio's retry: idempotent
        assert (await post(desk.client, target, fields)).status_code == 200
    assert len(await desk.tickets()) == 1
    # A request signed for one step, sent to another, or with the digit changed in the URL.
    signed_for_urgency = sign(f"{PUBLIC}{VOICE}/urgency", fields)
    moved = await post(desk.client, target, fields, signature=signed_for_urgency)
    forged_digit = await post(
        desk.client, f"{VOICE}/recorded?digit=1", fields | {"CallSid": "CA" + "9" * 32},
        signed_as=f"{PUBLIC}{VOICE}/recorded?digit=2",
    )  # fmt: skip
    assert (moved.status_code, forged_digit.status_code) == (403, 403)
    assert len(await desk.tickets()) == 1


async def test_hostile_requests_are_refused_without_a_traceback(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    form = {"content-type": "application/x-www-form-urlencoded"}
    valid = load("whatsapp_inbound.json")
    big = valid | {"Body": "x" * 70_000}
    responses = {
        "oversized": await post(desk.client, MESSAGING, big),
        "bad utf-8": await desk.client.post(MESSAGING, content=b"Body=%FF%FE&From=x", headers=form),
        "raw bytes": await desk.client.post(MESSAGING, content=b"Body=\xc3\x28", headers=form),
        "json": await desk.client.post(MESSAGING, json=valid),
        "many fields": await post(desk.client, MESSAGING, {f"F{i}": "1" for i in range(300)}),
        "no sid": await post(desk.client, MESSAGING, without(valid, "MessageSid")),
        "no from": await post(desk.client, MESSAGING, without(valid, "From")),
        "bad count": await post(desk.client, MESSAGING, valid | {"NumMedia": "lots"}),
        "call without sid": await post(desk.client, VOICE, {"From": "+420601123456"}),
        "recording without sid": await post(desk.client, f"{VOICE}/recorded", {"From": "+1"}),
        "status without sid": await post(desk.client, STATUS, {"MessageStatus": "sent"}),
        "get": await desk.client.get(MESSAGING),
    }  # fmt: skip
    assert {name: r.status_code for name, r in responses.items()} == {
        "oversized": 413,
        "bad utf-8": 400,
        "raw bytes": 400,
        "json": 400,
        "many fields": 400,
        "no sid": 400,
        "no from": 400,
        "bad count": 400,
        "call without sid": 400,
        "recording without sid": 400,
        "status without sid": 400,
        "get": 405,
    }
    assert await desk.tickets() == []
    nul = valid | {"Body": "line\x00one\x07 and two", "ProfileName": "Eve\x00\x1b[31m"}
    assert (await post(desk.client, MESSAGING, nul)).status_code == 200
    [message] = await desk.messages()
    [ticket] = await desk.tickets()
    assert (message.text, ticket.sender_name) == ("lineone and two", "Eve[31m")
    assert not [r for r in caplog.records if r.exc_info]


async def _refuse(message: InboundMessage) -> Any:
    raise TransientError("storage unavailable: OperationalError")


async def test_storage_away_is_503_so_twilio_tries_again(fake: FakeTwilio) -> None:
    settings = TwilioSettings(enabled=True, account_sid=ACCOUNT, auth_token=SecretStr(TOKEN))

    async def broken(**report: Any) -> None:
        raise OSError("database gone")

    routes = twilio_routes(settings, PUBLIC, clock=lambda: NOW, statuses=broken)
    web = WebChannel(WebSettings(port=0), [routes])
    await web.start(_refuse)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            message = await post(client, MESSAGING, load("whatsapp_inbound.json"))
            status = await post(client, STATUS, load("message_status_delivered.json"))
            call = await post(client, f"{VOICE}/recorded?digit=1", load("voice_recorded.json"))
    finally:
        await web.stop()
    assert [r.status_code for r in (message, status, call)] == [503, 503, 503]


def _ack(channel: ChannelKind, to: str, text: str = "Hello,\nwe have it.") -> Ack:
    return Ack(
        outbox_id=7, kind="ack", channel=channel, to=to, subject="", text=text,
        reference="SUP-000007",
    )  # fmt: skip


async def test_replier_seam_reaches_the_fake_and_maps_errors(fake: FakeTwilio) -> None:
    settings = TwilioSettings(
        account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), api_base=fake.base_url
    )
    replier = TwilioReplier(settings, whatsapp_from=f"whatsapp:{WHATSAPP_FROM}", sms_from=SMS_FROM)
    async with aclosing(replier):
        await replier.send(_ack(ChannelKind.WHATSAPP, "+420601123456", "x" * 2000))
        [sent] = fake.sent()
        assert sent.form["To"] == "whatsapp:+420601123456" and "StatusCallback" not in sent.form
        assert len(sent.form["Body"]) == 1600 and sent.form["Body"].endswith("…")
        for status, name, error in [
            (429, "error_20429.json", TransientChannelError),
            (500, "error_20500.json", TransientChannelError),
            (400, "error_21211.json", PermanentChannelError),
        ]:
            fake.replies = [(status, name)]
            with pytest.raises(error):
                await replier.send(_ack(ChannelKind.SMS, "+420601123456"))
        with pytest.raises(PermanentChannelError, match="not a mobile number"):
            await replier.send(_ack(ChannelKind.VOICE, "+442071234567"))
        with pytest.raises(PermanentChannelError, match="not a phone number"):
            await replier.send(_ack(ChannelKind.VOICE, "caller:CA" + "0" * 32))
        await replier.send(_ack(ChannelKind.SMS, "+420601123457"))  # after errors: still works
    assert fake.sent()[-1].form["To"] == "+420601123457"
    gone = TwilioReplier(
        settings.model_copy(update={"api_base": "http://127.0.0.1:9"}), sms_from=SMS_FROM
    )
    async with aclosing(gone):
        with pytest.raises(TransientChannelError, match="unreachable"):
            await gone.send(_ack(ChannelKind.SMS, "+420601123456"))
    wrong_token = settings.model_copy(update={"auth_token": SecretStr("nope")})
    async with aclosing(TwilioReplier(wrong_token, sms_from=SMS_FROM)) as wrong:
        with pytest.raises(TransientChannelError, match="401"):  # fixable: retried, not dropped
            await wrong.send(_ack(ChannelKind.SMS, "+420601123456"))


async def test_notices_in_a_row_share_one_connection(fake: FakeTwilio) -> None:
    settings = TwilioSettings(
        account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), api_base=fake.base_url
    )
    async with aclosing(TwilioReplier(settings, sms_from=SMS_FROM)) as replier:
        for n in range(3):
            await replier.send(_ack(ChannelKind.SMS, f"+42060112345{n}"))
        await replier.aclose()
        await replier.send(_ack(ChannelKind.SMS, "+420601123459"))  # a new session
    peers = [sent.peer for sent in fake.sent()]
    assert len(peers) == 4 and len(set(peers[:3])) == 1 and peers[3] != peers[0]


def test_sms_text_is_the_reference_and_the_response_time() -> None:
    text = (
        "Hello,\n\nwe have received your request and opened ticket SUP-000042.\n"
        "We will respond by Thursday 12 March 2026, 11:00 CET, and aim to resolve it by\n"
        "Friday 13 March 2026, 11:00 CET.\n"
    )
    ack = _ack(ChannelKind.SMS, "+420601123456", text)
    assert sms_text(ack) == (
        "SUP-000007: we have received your request. "
        "We will respond by Thursday 12 March 2026, 11:00 CET."
    )
    assert sms_text(_ack(ChannelKind.SMS, "+1", "No deadline here.")) == (
        "SUP-000007: we have received your request."
    )
