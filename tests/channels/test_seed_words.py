"""Issue 17: what the seed policies owe and what the customer is told, through the running
service: mail by SMTP (aiosmtplib), the /callback form over HTTP, signed Twilio webhooks.

Each test names the item of the issue it holds. The service runs on the real clock, so the
tests compare deadlines with each other and with the receipt, never with fixed instants.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from fake_twilio import FakeTwilio, load
from pipelines import NOTICE_DEFAULTS
from pydantic import SecretStr
from serving import Relay
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from channels.email.smtp import SmtpChannel
from channels.web.app import WebChannel
from intake.cli import admin
from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service
from intake.config import Settings
from intake.desk.actions import ticket_detail
from intake.desk.watch import SlaWatcher
from intake.outbox import acks
from intake.outbox.notices import NoticeOptions
from storage.models import Outbox, Ticket

ACCOUNT = "AC" + "1" * 32
TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "http://support.example.com"
RECENT = date.today() - timedelta(days=30)  # a support period running now

CONTACTS = f"""
[[organizations]]
name = "Onsite Ltd"
plan = "plus"
policy = "circularo-onprem"
domains = ["onsite.example"]
support_start = {RECENT.isoformat()}
[[organizations.contacts]]
name = "Olga Novak"
email = "olga@onsite.example"
role = "nominated"

[[organizations]]
name = "Oldsite Ltd"
plan = "plus"
policy = "circularo-onprem"
domains = ["oldsite.example"]
support_start = 2024-01-10
[[organizations.contacts]]
name = "Otto Old"
email = "otto@oldsite.example"
role = "nominated"

[[organizations]]
name = "Smallsite Ltd"
plan = "standard"
policy = "circularo-onprem"
domains = ["smallsite.example"]
support_start = {RECENT.isoformat()}
[[organizations.contacts]]
name = "Sid Small"
email = "sid@smallsite.example"
role = "nominated"

[[organizations]]
name = "Fourco"
plan = "standard"
policy = "four-tier"
domains = ["four.example"]
[[organizations.contacts]]
name = "Fred Four"
email = "fred@four.example"
phone = "+420 603 000 444"
role = "user"

[[organizations]]
name = "Saasy"
plan = "standard"
policy = "circularo-saas"
domains = ["saasy.example"]
[[organizations.contacts]]
name = "Sam Saas"
email = "sam@saasy.example"
phone = "+420 602 000 111"
role = "nominated"

[[organizations]]
name = "Saasplus"
plan = "plus"
policy = "circularo-saas"
domains = ["saasplus.example"]
[[organizations.contacts]]
name = "Petra Plus"
email = "petra@saasplus.example"
phone = "+420 601 123 456"
role = "nominated"
"""


@dataclass
class Desk:
    service: Service
    storage: Storage
    web: httpx.AsyncClient
    smtp_port: int

    async def mail(self, sender: str, subject: str, text: str, name: str = "") -> Ticket:
        """Send one mail by SMTP; the 250 comes after the commit, so its ticket is there."""
        mail = EmailMessage()
        mail["From"] = f"{name} <{sender}>" if name else sender
        mail["To"] = "support@support.example.com"
        mail["Subject"] = subject
        mail.set_content(text)
        await aiosmtplib.send(mail, hostname="127.0.0.1", port=self.smtp_port)
        return await self.latest()

    async def latest(self) -> Ticket:
        async with self.storage.sessions() as session:
            found = await session.scalar(select(Ticket).order_by(Ticket.id.desc()).limit(1))
        assert found is not None
        return found

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.storage.sessions() as session:
            found = await session.get(Ticket, ticket_id)
        assert found is not None
        return found

    async def notices(self, ticket_id: int, kind: str) -> list[Outbox]:
        async with self.storage.sessions() as session:
            query = select(Outbox).where(Outbox.ticket_id == ticket_id, Outbox.kind == kind)
            return list(await session.scalars(query.order_by(Outbox.id)))

    async def ack_text(self, ticket_id: int) -> str:
        [ack] = await self.notices(ticket_id, "ack")
        return " ".join(ack.payload["text"].split())

    async def callback(self, **fields: str) -> httpx.Response:
        page = (await self.web.get("/callback")).text
        values = {
            name: _hidden(page, name) for name in ("csrf_token", "submission")
        } | {
            "name": "Sam Saas", "organization": "Saasy", "phone": "+420 602 000 111",
            "email": "sam@saasy.example", "window_from": "09:00", "window_to": "11:00",
            "zone": "Europe/Prague", "description": "Please call me about the export.",
            "urgent": "no",
        }  # fmt: skip
        return await self.web.post("/callback", data=values | fields)

    async def whatsapp(self, fields: dict[str, str]) -> httpx.Response:
        return await self.twilio("/webhooks/twilio/messaging", fields)

    async def twilio(self, path: str, fields: dict[str, str]) -> httpx.Response:
        """A webhook signed as Twilio signs it: our public URL and path, the account's token."""
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, fields)
        return await self.web.post(path, data=fields, headers={"X-Twilio-Signature": signature})


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name}"
    return match[1]


@pytest.fixture
async def desk(storage: Storage, tmp_path: Path) -> AsyncIterator[Desk]:
    contacts = tmp_path / "contacts.toml"
    contacts.write_text(CONTACTS, encoding="utf-8")
    await admin.import_contacts(
        storage, contacts, default_policy="circularo-saas", default_region="CZ"
    )
    twilio = FakeTwilio(ACCOUNT, TOKEN)
    await twilio.start()
    relay = Relay()
    await relay.start()
    values: dict[str, Any] = {
        "policy": {"name": "circularo-saas"},
        "smtp": {"host": "127.0.0.1", "port": 0, "domains": ["support.example.com"]},
        "web": {"host": "127.0.0.1", "port": 0, "public_url": PUBLIC},
        "outbound": {"smtp": {"host": "127.0.0.1", "port": relay.port,
                              "from": "support@support.example.com"}},
        "notify": {"emails": ["oncall@vendor.example"]},
        "twilio": {"enabled": True, "account_sid": ACCOUNT, "auth_token": TOKEN,
                   "api_base": twilio.base_url, "whatsapp_from": "+14155238886",
                   "sms_from": "+14155550100"},
    }  # fmt: skip
    settings = Settings(**values)
    assert isinstance(settings.twilio.auth_token, SecretStr)
    service = Service(settings, storage, await build_pipeline(settings, storage))
    await service.start()
    try:
        smtp = next(c for c in service.channels if isinstance(c, SmtpChannel))
        web = next(c for c in service.channels if isinstance(c, WebChannel))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            yield Desk(service, storage, client, smtp.port)
    finally:
        await service.stop()
        await relay.stop()
        await twilio.stop()


# --- 1. circularo-onprem: every email starts at Level 3; the text only suggests -------------


async def test_onprem_email_starts_at_level_3_and_its_text_suggests(desk: Desk) -> None:
    down = await desk.mail(
        "olga@onsite.example", "Production is down", "Production is down, nobody can work."
    )
    assert down.priority == "level-3"
    assert down.decision["priority"] == {"value": "level-3", "rule": "default for email"}
    assert down.decision["suggested_priority"] == "level-1"
    # Plus, Level 3: 24 h / 48 h on the Plus calendars, not Level 1's 6 h / 8 h.
    assert "first response: 24 support hours" in " ".join(down.decision["deadlines"])
    [alert] = await desk.notices(down.id, "alert")
    assert "suggested Level 1 (Critical)" in alert.payload["subject"]
    assert "Organization: Onsite Ltd" in alert.payload["text"]
    shown = await ticket_detail(desk.storage.sessions, down.id)  # tickets show / the API
    assert shown["decision"]["suggested_priority"] == "level-1"

    how_to = await desk.mail(
        "olga@onsite.example", "Adding users", "How do I add a new user to the workspace?"
    )
    assert how_to.priority == "level-3"
    assert how_to.decision["suggested_priority"] in ("level-4", None)
    assert await desk.notices(how_to.id, "alert") == []  # a lower suggestion alerts nobody


# --- 2. no promise where the policy owes none ----------------------------------------------


async def test_expired_support_has_no_deadlines_and_says_why(desk: Desk) -> None:
    row = await desk.mail("otto@oldsite.example", "Export fails", "The export fails again.")
    assert "support_expired" in row.flags
    assert (row.clock_starts, row.first_response_due, row.resolution_due) == (None, None, None)
    text = await desk.ack_text(row.id)
    assert "We will respond" not in text and "aim to resolve" not in text
    assert "Your support period ended on 2025-01-10, so no response or resolution time" in text
    assert "Please renew your support" in text
    # Not chased: a month later the SLA watcher still has nothing to say about it.
    later = datetime.now(UTC) + timedelta(days=30)
    options = NoticeOptions(**NOTICE_DEFAULTS)
    watcher = SlaWatcher(desk.storage.sessions, options, acks.environment(), lambda: later)
    report = await watcher.run_once()
    assert (report.alerts, report.breaches) == (0, 0)


async def test_over_quota_has_no_deadlines_and_says_what_to_do(desk: Desk) -> None:
    # circularo-onprem Standard: 25 requests a support period; the 26th is over quota.
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=desk.smtp_port)
    await client.connect()
    for n in range(25):
        mail = EmailMessage()
        mail["From"], mail["To"] = f"user{n}@smallsite.example", "support@support.example.com"
        mail["Subject"] = f"Question {n}"
        mail.set_content("How do I export?")
        await client.send_message(mail)
    await client.quit()
    row = await desk.mail("sid@smallsite.example", "One more", "The export fails.")
    assert "over_quota" in row.flags
    assert (row.first_response_due, row.resolution_due) == (None, None)
    assert row.decision["deadlines"] == ["no time owed: over_quota"]
    text = await desk.ack_text(row.id)
    assert "We will respond" not in text
    assert "used the 25 requests of its current support period, so no response" in text
    assert "buy more requests" in text


# --- 3. a raised priority brings its flags and a complete alert ----------------------------


async def test_four_tier_follow_up_raised_to_urgent_calls_on_call(desk: Desk) -> None:
    first = await desk.mail("fred@four.example", "Dashboard slow", "The dashboard is slow.")
    assert (first.priority, first.flags) == ("medium", [])
    reference = f"SUP-{first.id:06d}"
    await desk.mail("fred@four.example", f"Urgent: Re: [{reference}] Dashboard slow", "Worse.")
    raised = await desk.ticket(first.id)
    assert raised.priority == "urgent" and "on_call" in raised.flags
    assert raised.first_response_due is not None
    assert raised.first_response_due - raised.received_at == timedelta(hours=1)
    [alert] = await desk.notices(first.id, "alert")
    assert "raised to Urgent" in alert.payload["subject"]
    assert "on call" in alert.payload["subject"]
    text = alert.payload["text"]
    assert "Organization: Fourco" in text and "unknown" not in text
    assert "Priority: Urgent" in text
    assert "First response due: no target" not in text
    assert re.search(r"First response due: \w+day \d+ \w+ \d{4}, \d\d:\d\d", text)


# --- 4. call-back requests need phone support ----------------------------------------------


async def test_callback_from_a_plan_without_phone_support_is_flagged_and_told(desk: Desk) -> None:
    answer = await desk.callback()
    assert answer.status_code == 200
    row = await desk.latest()
    assert row.channel == "web" and "channel_not_entitled" in row.flags
    text = await desk.ack_text(row.id)
    assert "You asked us to call you back, but your standard plan does not include phone" in text
    assert "It includes support through: the web help desk." in text

    await desk.callback(name="Petra Plus", phone="+420 601 123 456", email="petra@saasplus.example")
    plus = await desk.latest()
    assert plus.plan == "plus" and "channel_not_entitled" not in plus.flags


async def test_a_call_from_a_plan_without_phone_support_is_told_its_channels(
    desk: Desk,
) -> None:
    caller = {"From": "+420602000111", "Caller": "+420602000111", "AccountSid": ACCOUNT}
    recorded = load("voice_recorded.json") | caller
    answer = await desk.twilio("/webhooks/twilio/voice/recorded?digit=2", recorded)
    assert answer.status_code == 200
    row = await desk.latest()
    assert (row.channel, row.plan) == ("voice", "standard")
    assert "channel_not_entitled" in row.flags
    text = await desk.ack_text(row.id)
    assert "your standard plan does not include phone support" in text
    assert "It includes support through: the web help desk." in text


async def test_callback_on_a_one_plan_policy_names_no_plan(desk: Desk) -> None:
    await desk.callback(name="Fred Four", phone="+420 603 000 444", email="fred@four.example")
    row = await desk.latest()
    assert row.policy == "four-tier" and "channel_not_entitled" in row.flags
    text = await desk.ack_text(row.id)
    assert "but your plan does not include phone support" in text
    assert "standard" not in text


# --- 5. four-tier: the customer sets the priority; the text alerts on-call -----------------


async def test_four_tier_outage_without_prefix_stays_medium_and_alerts_on_call(
    desk: Desk,
) -> None:
    down = await desk.mail(
        "fred@four.example", "Our service is down", "Our service is down, nobody can log in."
    )
    assert down.priority == "medium"
    assert down.decision["suggested_priority"] == "urgent"
    assert "on_call" in down.flags
    [alert] = await desk.notices(down.id, "alert")
    assert "suggested Urgent" in alert.payload["subject"]
    assert "Priority: Medium" in alert.payload["text"]

    word = await desk.mail("fred@four.example", "Invoices", "This is urgent, please help.")
    assert word.priority == "medium" and word.decision["suggested_priority"] == "urgent"
    [alert] = await desk.notices(word.id, "alert")
    assert alert.payload["subject"].startswith(f"[SUP-{word.id:06d}] suggested Urgent")


# --- 6. the response cap: a resolution is also a response ----------------------------------


async def test_saas_standard_urgent_promises_one_time(desk: Desk) -> None:
    row = await desk.mail("sam@saasy.example", "Urgent: export fails", "The export fails.")
    assert row.priority == "urgent"
    assert row.first_response_due == row.resolution_due is not None
    assert row.decision["response_capped"] is True
    assert "first response capped at the resolution deadline" in row.decision["deadlines"]
    text = await desk.ack_text(row.id)
    assert "We will respond, and aim to resolve it, by" in text
    assert "If this is urgent" not in text


# --- 7. the words the customer reads -------------------------------------------------------


async def test_acknowledgements_speak_the_policy_own_words(desk: Desk) -> None:
    onsite = await desk.mail("olga@onsite.example", "Export", "The export fails.", "Olga")
    text = await desk.ack_text(onsite.id)
    assert "Priority: Level 3 (Medium)" in text and "Severity:" not in text

    # circularo-saas Standard: urgent is no faster, so nobody is invited to say it.
    saas = await desk.mail("sam@saasy.example", "Export", "The export fails.", "Sam")
    text = await desk.ack_text(saas.id)
    assert "Priority: Normal" in text and "Severity:" not in text
    assert "If this is urgent" not in text
    # Plus: urgent resolves sooner, and the word works anywhere.
    plus = await desk.mail("petra@saasplus.example", "Export", "The export fails.", "Petra")
    text = await desk.ack_text(plus.id)
    assert 'If this is urgent, reply with the word "Urgent" in the subject.' in text

    # four-tier: one plan, no severities; the hint says what works (a leading "Urgent:"),
    # and a From without a display name is greeted by the contacts file's name.
    four = await desk.mail("fred@four.example", "Export", "The export fails.")
    text = await desk.ack_text(four.id)
    assert text.startswith("Hello Fred Four,")
    assert "Priority: Medium" in text and "Severity:" not in text
    assert 'If this is urgent, reply with "Urgent:" at the start of the subject.' in text
    assert "standard" not in text


async def test_whatsapp_without_a_profile_name_greets_the_contact(desk: Desk) -> None:
    fields = {k: v for k, v in load("whatsapp_inbound.json").items() if k != "ProfileName"}
    fields |= {"AccountSid": ACCOUNT}
    answer = await desk.whatsapp(fields)
    assert answer.status_code == 200
    row = await desk.latest()
    assert (row.channel, row.plan) == ("whatsapp", "plus")
    assert (await desk.ack_text(row.id)).startswith("Hello Petra Plus,")
