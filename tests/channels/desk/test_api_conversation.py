"""The agents' desk through the API over real HTTP (issue 15): replies reach a real SMTP
relay threaded to the customer's mail, and the customer's answer, sent to our SMTP channel,
joins the ticket; WhatsApp, SMS and Telegram replies reach the local fakes in their wire
formats; WhatsApp's 24-hour window; two agents at once; notes, the timeline, attachments,
assignment and the assignee's SLA alert, status with a reason, merge, not a request."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import pytest
from fake_telegram import FakeTelegram
from fake_twilio import FakeTwilio
from pipelines import make_pipeline
from pydantic import SecretStr
from serving import Relay
from sqlalchemy import select

from channels.desk.api import api_routes
from channels.email.smtp import SmtpChannel, SmtpReplier
from channels.telegram.wire import TelegramReplier
from channels.twilio.replier import TwilioReplier
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import (
    OutboundSmtpSettings,
    SmtpSettings,
    TelegramSettings,
    TwilioSettings,
    WebSettings,
)
from intake.desk import agents
from intake.desk.conversation import ReplyOptions
from intake.desk.watch import SlaWatcher
from intake.messages import ChannelKind, InboundMessage
from intake.outbox import acks
from intake.outbox.delivery import Deliverer
from intake.outbox.notices import NoticeOptions
from intake.pipeline import references
from intake.pipeline.pipeline import Pipeline
from storage.models import Outbox

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday inside every preset's hours
SECRET = b"d" * 32
MAILBOX = "support@support.example.com"
ACCOUNT, TOKEN = "AC" + "0" * 32, "twilio-token"
BOT = "7000000001:AAHfake-token_for-the-tests"
WHATSAPP_FROM, SMS_FROM = "+14155238886", "+14155550100"
TEMPLATE = "HX" + "1" * 32


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Desk:
    storage: Storage
    pipeline: Pipeline
    clock: Clock
    relay: Relay
    smtp: SmtpChannel
    twilio: FakeTwilio
    telegram: FakeTelegram
    deliverer: Deliverer
    base_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, who: str = "ann") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers)

    async def deliver(self) -> None:
        while await self.deliverer.run_once():
            pass


def options(**overrides: Any) -> ReplyOptions:
    return ReplyOptions(**({"mailbox": MAILBOX, "secret": SECRET} | overrides))


async def start_web(storage: Storage, clock: Clock, pipeline: Pipeline, **kw: Any) -> WebChannel:
    routes = api_routes(storage.sessions, clock, replies=options(**kw))
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [routes])
    await web.start(pipeline)
    return web


@pytest.fixture
async def desk(storage: Storage) -> AsyncIterator[Desk]:
    clock = Clock()
    pipeline = make_pipeline(storage, secret=SECRET, clock=clock, notify_emails=())
    smtp = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]), clock=clock
    )
    await smtp.start(pipeline)
    twilio, telegram = FakeTwilio(ACCOUNT, TOKEN), FakeTelegram(BOT)
    await twilio.start()
    await telegram.start()
    relay = Relay()
    await relay.start()
    twilio_settings = TwilioSettings(
        account_sid=ACCOUNT, auth_token=SecretStr(TOKEN), api_base=twilio.base_url
    )
    by_twilio = TwilioReplier(twilio_settings, whatsapp_from=WHATSAPP_FROM, sms_from=SMS_FROM)
    by_bot = TelegramReplier(TelegramSettings(token=SecretStr(BOT), api_base=telegram.api_base))
    outbound = OutboundSmtpSettings.model_validate({"port": relay.port, "from": MAILBOX})
    by_mail = SmtpReplier(outbound, clock=clock, timeout=10)
    repliers = {"email": by_mail, "whatsapp": by_twilio, "sms": by_twilio, "telegram": by_bot}
    deliverer = Deliverer(storage.sessions, repliers, clock=clock)
    web = await start_web(storage, clock, pipeline)
    found = Desk(
        storage,
        pipeline,
        clock,
        relay,
        smtp,
        twilio,
        telegram,
        deliverer,
        f"http://127.0.0.1:{web.port}",
    )
    for who in ("ann", "bob"):
        found.tokens[who] = await agents.add_agent(
            storage.sessions,
            f"{who}@vendor.example",
            "correct horse battery",
            name=who.title(),
            now=NOW,
        )
    try:
        yield found
    finally:
        await web.stop()
        await by_mail.aclose()
        await by_twilio.aclose()
        await by_bot.aclose()
        await relay.stop()
        await telegram.stop()
        await twilio.stop()
        await smtp.stop()


def customer_mail(subject: str, message_id: str, **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Jo Doe <jo@customer.example>"
    mail["To"] = headers.pop("to", MAILBOX)
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content("The export shows error 500.")
    return mail


async def mail_in(desk: Desk, mail: EmailMessage) -> None:
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=desk.smtp.port)


async def only_ticket(api: httpx.AsyncClient) -> dict[str, Any]:
    [row] = (await api.get("/api/tickets")).json()["tickets"]
    shown = (await api.get(f"/api/tickets/{row['reference']}")).json()
    assert isinstance(shown, dict)
    return shown


async def test_email_reply_is_threaded_and_the_answer_joins_the_ticket(desk: Desk) -> None:
    await mail_in(desk, customer_mail("Export fails", "<q1@customer.example>"))
    desk.clock.now = NOW + timedelta(minutes=30)
    async with desk.client() as api:
        ticket = await only_ticket(api)
        ref, [first] = ticket["reference"], ticket["messages"]
        assert (first["direction"], first["kind"], ticket["first_response_at"]) == (
            "in",
            "customer",
            None,
        )
        answer = await api.post(
            f"/api/tickets/{ref}/replies",
            json={"text": "Hello Jo,\nplease try again.", "after": first["id"]},
        )
        assert answer.status_code == 201, answer.text
        sent = answer.json()
        assert (sent["kind"], sent["direction"], sent["author"], sent["delivery"]) == (
            "reply",
            "out",
            "ann@vendor.example",
            "queued",
        )
        await desk.deliver()
        [reply] = [m for _, m in desk.relay.received if m["Subject"].startswith("Re:")]
        assert ref in reply["Subject"] and reply["To"] == "jo@customer.example"
        assert reply["From"].addresses[0].addr_spec == MAILBOX
        assert reply["In-Reply-To"] == "<q1@customer.example>"
        assert "<q1@customer.example>" in reply["References"]
        assert reply["Reply-To"] == references.reply_address(SECRET, ticket["id"], MAILBOX)
        assert references.verified_tickets(SECRET, [reply["Message-ID"]]) == [ticket["id"]]
        assert reply["Auto-Submitted"] is None  # a person's answer, not a robot's
        assert "please try again." in reply.get_content()
        # The customer answers from their mail client: it quotes our Message-ID.
        desk.clock.now = NOW + timedelta(hours=1)
        await mail_in(
            desk,
            customer_mail(
                f"Re: {reply['Subject']}",
                "<q2@customer.example>",
                In_Reply_To=reply["Message-ID"],
                to=reply["Reply-To"],
            ),
        )
        shown = (await api.get(f"/api/tickets/{ref}")).json()
        assert len((await api.get("/api/tickets")).json()["tickets"]) == 1
        assert [(m["kind"], m["direction"]) for m in shown["messages"]] == [
            ("customer", "in"),
            ("reply", "out"),
            ("customer", "in"),
        ]
        assert shown["messages"][1]["delivery"] == "sent"
        # The first reply recorded the first response, time and agent, by itself.
        assert shown["first_response_at"] == (NOW + timedelta(minutes=30)).isoformat()
        [event] = [e for e in shown["events"] if e["kind"] == "first_response"]
        assert event["actor"] == "ann@vendor.example" and event["details"]["by"] == "reply"


async def seed_chats(desk: Desk, at: datetime) -> dict[str, str]:
    refs = {}
    for channel, sender, reply_to, sid in (
        (ChannelKind.WHATSAPP, "+420601123456", "", "SMwa1"),
        (ChannelKind.SMS, "+420601654321", "", "SMsms1"),
        (ChannelKind.TELEGRAM, "tg:4242", "777000111", "tg:1:5"),
    ):
        desk.clock.now = at
        receipt = await desk.pipeline(
            InboundMessage(
                channel=channel,
                channel_message_id=sid,
                received_at=at,
                sender=sender,
                reply_to=reply_to,
                text="The export does not work",
                extra={"chat_id": 777000111},
            )
        )
        refs[str(channel)] = receipt.reference
    return refs


async def test_whatsapp_sms_and_telegram_replies_reach_their_wires(desk: Desk) -> None:
    refs = await seed_chats(desk, NOW)
    await desk.deliver()  # the acknowledgements
    acks_sent = len(desk.twilio.sent()), len(desk.telegram.made("sendMessage"))
    desk.clock.now = NOW + timedelta(hours=2)
    async with desk.client() as api:
        for channel, ref in refs.items():
            answer = await api.post(
                f"/api/tickets/{ref}/replies", json={"text": f"Fixed ({channel})."}
            )
            assert answer.status_code == 201, answer.text
    await desk.deliver()
    forms = [r.form for r in desk.twilio.sent()[acks_sent[0] :]]
    assert {(f["To"], f["From"], f["Body"]) for f in forms} == {
        ("whatsapp:+420601123456", f"whatsapp:{WHATSAPP_FROM}", "Fixed (whatsapp)."),
        ("+420601654321", SMS_FROM, "Fixed (sms)."),
    }
    [bot] = desk.telegram.made("sendMessage")[acks_sent[1] :]
    assert (bot["chat_id"], bot["text"]) == (777000111, "Fixed (telegram).")


async def test_whatsapp_outside_24_hours_is_refused_unless_a_template_is_set(
    desk: Desk,
) -> None:
    ref = (await seed_chats(desk, NOW))["whatsapp"]
    desk.clock.now = NOW + timedelta(hours=25)
    async with desk.client() as api:
        refused = await api.post(f"/api/tickets/{ref}/replies", json={"text": "Still there?"})
    assert refused.status_code == 409 and "24 hours" in refused.json()["error"]
    async with desk.storage.sessions() as session:
        assert await session.scalar(select(Outbox.id).where(Outbox.kind == "reply")) is None
    web = await start_web(desk.storage, desk.clock, desk.pipeline, whatsapp_template_sid=TEMPLATE)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{web.port}",
            headers={"Authorization": f"Bearer {desk.tokens['ann']}"},
        ) as api:
            sent = await api.post(f"/api/tickets/{ref}/replies", json={"text": "Still there?"})
        assert sent.status_code == 201, sent.text
    finally:
        await web.stop()
    await desk.deliver()
    template = desk.twilio.sent()[-1].form
    assert template["ContentSid"] == TEMPLATE and "Body" not in template
    assert json.loads(template["ContentVariables"])["2"] == ref


async def test_two_agents_at_once_send_one_reply_each_never_a_duplicate(desk: Desk) -> None:
    await mail_in(desk, customer_mail("Export fails", "<q1@customer.example>"))
    async with desk.client("ann") as ann, desk.client("bob") as bob:
        ticket = await only_ticket(ann)
        ref, seen = ticket["reference"], ticket["messages"][-1]["id"]
        path = f"/api/tickets/{ref}/replies"
        first, second = await asyncio.gather(
            ann.post(path, json={"text": "Ann here.", "after": seen}),
            bob.post(path, json={"text": "Bob here.", "after": seen}),
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [201, 409], (first.text, second.text)
        won, lost = (first, second) if first.status_code == 201 else (second, first)
        # The stale agent sees the newer reply first, and sends nothing blindly.
        assert [m["id"] for m in lost.json()["newer"]] == [won.json()["id"]]
        assert lost.json()["newer"][0]["kind"] == "reply"
        loser = bob if lost is second else ann
        again = await loser.post(
            path, json={"text": "Also: try it now.", "after": won.json()["id"]}
        )
        assert again.status_code == 201
        # A retried request (same key, or same view and text) is the same reply, not another.
        keyed = [await ann.post(path, json={"text": "Once.", "key": "k-1"}) for _ in range(2)]
        assert keyed[0].json()["id"] == keyed[1].json()["id"]
        body = {"text": "Twice?", "after": keyed[0].json()["id"]}
        repeated = [await bob.post(path, json=body) for _ in range(2)]
        assert repeated[0].json()["id"] == repeated[1].json()["id"]
    await desk.deliver()
    texts = [
        m.get_body(("plain",)).get_content().strip()  # type: ignore[union-attr]
        for _, m in desk.relay.received
        if m["Subject"].startswith("Re:")
    ]
    assert sorted(texts) == sorted([won.json()["text"], "Also: try it now.", "Once.", "Twice?"])


async def test_notes_never_leave_and_the_timeline_has_everything(desk: Desk) -> None:
    await mail_in(desk, customer_mail("Export fails", "<q1@customer.example>"))
    async with desk.client() as api:
        ref = (await only_ticket(api))["reference"]
        note = await api.post(f"/api/tickets/{ref}/notes", json={"text": "Customer is on 4.2"})
        assert note.status_code == 201 and note.json()["kind"] == "note"
        await desk.deliver()
        assert all("on 4.2" not in m.as_string() for _, m in desk.relay.received)
        await api.post(f"/api/tickets/{ref}/replies", json={"text": "Try 4.3"})
        await api.patch(f"/api/tickets/{ref}", json={"status": "on_hold", "reason": "logs"})
        await desk.deliver()
        answer = await api.get(f"/api/tickets/{ref}/timeline", params={"zone": "Europe/Prague"})
        assert answer.status_code == 200, answer.text
        entries = answer.json()["entries"]
        kinds = [(e["kind"], e["direction"], e["delivery"]) for e in entries]
        assert kinds == [
            ("customer", "in", None),
            ("ack", "out", "sent"),
            ("note", "out", None),
            ("reply", "out", "sent"),
            ("event", "out", None),
            ("event", "out", None),
        ], kinds
        assert entries[0]["at"].endswith("+01:00")  # Prague in March
        assert (
            entries[-1]["text"] == "on hold: logs" and entries[-1]["author"] == "ann@vendor.example"
        )
        bad = await api.get(f"/api/tickets/{ref}/timeline", params={"zone": "Mars/Olympus"})
        assert bad.status_code == 400
    async with desk.storage.sessions() as session:
        kinds_queued = list(await session.scalars(select(Outbox.kind)))
    assert sorted(kinds_queued) == ["ack", "reply"]


async def test_attachments_go_out_with_a_reply_and_come_down_as_downloads(desk: Desk) -> None:
    mail = customer_mail("Export fails", "<q1@customer.example>")
    mail.add_attachment(
        b"<html><script>alert(1)</script>", maintype="text", subtype="html", filename="page.html"
    )
    await mail_in(desk, mail)
    async with desk.client() as api:
        ticket = await only_ticket(api)
        ref, [inbound] = ticket["reference"], ticket["messages"][0]["files"]
        assert ticket["messages"][0]["attachments"] == ["page.html"]
        down = await api.get(f"/api/tickets/{ref}/attachments/{inbound['id']}")
        assert down.status_code == 200 and down.content == b"<html><script>alert(1)</script>"
        assert down.headers["content-disposition"].startswith("attachment;")
        assert down.headers["x-content-type-options"] == "nosniff"
        pdf = b"%PDF-1.4 fake" * 100
        files = [
            {
                "name": "záznam.pdf",
                "content_type": "application/pdf",
                "data": base64.b64encode(pdf).decode(),
            }
        ]
        sent = await api.post(
            f"/api/tickets/{ref}/replies", json={"text": "See the log.", "files": files}
        )
        assert sent.status_code == 201, sent.text
        [up] = sent.json()["files"]
        assert (up["name"], up["size"], up["content_type"]) == (
            "záznam.pdf",
            len(pdf),
            "application/pdf",
        )
        back = await api.get(f"/api/tickets/{ref}/attachments/{up['id']}")
        assert (
            back.content == pdf
            and "filename*=UTF-8''z%C3%A1znam.pdf" in back.headers["content-disposition"]
        )
        other = await api.get(f"/api/tickets/SUP-999999/attachments/{up['id']}")
        assert other.status_code == 404
        bad = await api.post(
            f"/api/tickets/{ref}/replies",
            json={"text": "x", "files": [{"name": "a.bin", "data": "not base64!"}]},
        )
        assert bad.status_code == 400 and "base64" in bad.json()["error"]
    await desk.deliver()
    [reply] = [m for _, m in desk.relay.received if m["Subject"].startswith("Re:")]
    [part] = list(reply.iter_attachments())  # type: ignore[attr-defined]
    assert part.get_filename() == "záznam.pdf" and part.get_content() == pdf


async def test_files_over_the_limit_are_refused(desk: Desk) -> None:
    await mail_in(desk, customer_mail("Export fails", "<q1@customer.example>"))
    web = await start_web(desk.storage, desk.clock, desk.pipeline, max_attachment_bytes=1000)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{web.port}",
            headers={"Authorization": f"Bearer {desk.tokens['ann']}"},
        ) as api:
            ref = (await only_ticket(api))["reference"]
            data = base64.b64encode(b"x" * 1001).decode()
            answer = await api.post(
                f"/api/tickets/{ref}/replies",
                json={"text": "x", "files": [{"name": "a", "data": data}]},
            )
            assert answer.status_code == 400 and "over the limit" in answer.json()["error"]
            huge = await api.post(f"/api/tickets/{ref}/replies", json={"text": "x" * 400_000})
            assert huge.status_code == 413
    finally:
        await web.stop()


async def test_assignment_and_the_assignees_sla_alert(desk: Desk) -> None:
    await mail_in(desk, customer_mail("Export fails", "<q1@customer.example>"))
    async with desk.client() as api:
        ticket = await only_ticket(api)
        ref = ticket["reference"]
        given = await api.patch(f"/api/tickets/{ref}", json={"assignee": "bob@vendor.example"})
        assert given.status_code == 200 and given.json()["assignee"] == "bob@vendor.example"
        [row] = (await api.get("/api/tickets")).json()["tickets"]
        assert row["assignee"] == "bob@vendor.example"
        nobody = await api.patch(f"/api/tickets/{ref}", json={"assignee": "eve@vendor.example"})
        assert nobody.status_code == 400 and "no active agent" in nobody.json()["error"]
    due = datetime.fromisoformat(ticket["first_response_due"])
    watcher = SlaWatcher(
        desk.storage.sessions,
        NoticeOptions(mailbox=MAILBOX, notify_emails=("oncall@vendor.example",)),
        acks.environment(),
        clock=lambda: due + timedelta(minutes=1),
    )
    await watcher.run_once()
    async with desk.storage.sessions() as session:
        alerted = list(
            await session.scalars(select(Outbox.recipient).where(Outbox.kind == "alert"))
        )
    # Every SLA alert the notify address has, the assignee has too.
    assert alerted and alerted.count("bob@vendor.example") == alerted.count("oncall@vendor.example")
    assert set(alerted) == {"bob@vendor.example", "oncall@vendor.example"}
    async with desk.client() as api:
        freed = await api.patch(f"/api/tickets/{ref}", json={"assignee": None})
        assert freed.json()["assignee"] is None
        kinds = [e["kind"] for e in freed.json()["events"]]
        assert kinds.count("assigned") == 1 and kinds.count("unassigned") == 1


async def test_status_and_priority_with_reasons_merge_and_not_a_request(desk: Desk) -> None:
    await mail_in(desk, customer_mail("Export fails", "<q1@customer.example>"))
    await mail_in(desk, customer_mail("Export still fails", "<q2@customer.example>"))
    async with desk.client() as api:
        rows = (await api.get("/api/tickets")).json()["tickets"]
        first, second = sorted(r["reference"] for r in rows)
        changed = await api.patch(
            f"/api/tickets/{first}", json={"priority": "urgent", "reason": "production is down"}
        )
        assert changed.status_code == 200, changed.text
        [event] = [e for e in changed.json()["events"] if e["kind"] == "changed"]
        assert event["details"]["reason"] == "production is down"
        merged = await api.post(f"/api/tickets/{second}/merge", json={"into": first})
        assert merged.status_code == 200, merged.text
        assert merged.json()["reference"] == first and len(merged.json()["messages"]) == 2
        gone = (await api.get(f"/api/tickets/{second}")).json()
        assert gone["status"] == "merged" and gone["messages"] == []
        twice = await api.post(f"/api/tickets/{second}/merge", json={"into": first})
        assert twice.status_code == 200
        assert (
            await api.post(f"/api/tickets/{first}/merge", json={"into": first})
        ).status_code == 400
        # The customer answers the merged ticket: the answer joins the one it was merged into.
        await mail_in(
            desk, customer_mail(f"Re: [{second}] Export still fails", "<q3@customer.example>")
        )
        assert len((await api.get(f"/api/tickets/{first}")).json()["messages"]) == 3
        # Machine mail that slipped through: no SLA, no automatic mail to it any more.
        await mail_in(desk, customer_mail("Newsletter", "<n1@customer.example>"))
        rows = (await api.get("/api/tickets", params={"open": "true"})).json()["tickets"]
        [news] = [r["reference"] for r in rows if r["subject"] == "Newsletter"]
        marked = await api.post(
            f"/api/tickets/{news}/not-a-request", json={"reason": "a newsletter"}
        )
        assert marked.status_code == 200, marked.text
        shown = marked.json()
        assert (shown["status"], shown["first_response_due"], shown["resolution_due"]) == (
            "machine",
            None,
            None,
        )
        assert shown["messages"][0]["kind"] == "machine"
        await desk.deliver()
        timeline = (await api.get(f"/api/tickets/{news}/timeline")).json()["entries"]
        [ack] = [e for e in timeline if e["kind"] == "ack"]
        assert (ack["delivery"], ack["delivery_reason"]) == ("failed", "cancelled: not a request")
    subjects = [m["Subject"] for _, m in desk.relay.received]
    assert not any("Newsletter" in s for s in subjects)
