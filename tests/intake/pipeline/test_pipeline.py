"""The intake pipeline on SQLite and PostgreSQL: identify, thread, decide, store, queue."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from classifier import load_rules
from intake.cli.app import Storage
from intake.messages import ChannelKind, InboundMessage, ReceiptStatus
from intake.outbox import acks
from intake.outbox.endorsements import EndorsementDigests
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline import references
from intake.pipeline.pipeline import Pipeline, PipelineOptions
from storage import contacts, suppressions
from storage.models import Message, Outbox, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday, inside every window
SECRET = b"s" * 32
RULES = load_rules()
_ids = itertools.count(1)

ORGS: list[dict[str, Any]] = [
    {"name": "Acme", "plan": "plus", "policy": None, "domains": ("acme.example",),
     "contacts": [("Alice", "alice@acme.example", None, None, "nominated"),
                  ("Bob", "bob@acme.example", "+420601123456", "777", "user")]},
    {"name": "Hooli", "plan": "standard", "policy": None, "domains": ("hooli.example",),
     "contacts": [("Hank", "hank@hooli.example", None, None, "nominated")]},
    {"name": "Globex", "plan": "standard", "policy": "scalr", "domains": ("globex.example",),
     "contacts": [("Eve", "eve@globex.example", None, None, "designated"),
                  ("Frank", "frank@globex.example", None, None, "user")]},
    {"name": "Initech", "plan": "plus", "policy": "circularo-onprem",
     "support_start": date(2024, 1, 15), "domains": ("initech.example",),
     "contacts": [("Grace", "grace@initech.example", None, None, "nominated")]},
    {"name": "Umbrella", "plan": "standard", "policy": "circularo-onprem",
     "support_start": date(2026, 1, 1), "domains": ("umbrella.example",),
     "contacts": [("Ivy", "ivy@umbrella.example", None, None, "nominated")]},
    {"name": "Fourco", "plan": "standard", "policy": "four-tier", "domains": ("fourco.example",),
     "contacts": [("Jo", "jo@fourco.example", None, None, "user")]},
    {"name": "Scorco", "plan": "standard", "policy": "scoro", "domains": ("scorco.example",),
     "contacts": [("Kim", "kim@scorco.example", None, None, "user")]},
]  # fmt: skip


@pytest.fixture
async def seeded(storage: Storage) -> Storage:
    async with storage.sessions.begin() as session:
        for org in ORGS:
            org_id, _ = await contacts.upsert_organization(
                session,
                name=org["name"],
                plan=org["plan"],
                policy=org["policy"],
                support_start=org.get("support_start"),
                region=None,
                domains=org["domains"],
            )
            for name, email, phone, telegram, role in org["contacts"]:
                await contacts.upsert_contact(
                    session, org_id, name=name, email=email, phone=phone, telegram=telegram,
                    role=role,
                )  # fmt: skip
    return storage


def pipeline(storage: Storage, default_policy: str = "circularo-saas", **options: Any) -> Pipeline:
    defaults: dict[str, Any] = {
        "mailbox": "support@support.example.com",
        "our_domains": frozenset({"support.example.com"}),
        "notify_emails": ("oncall@vendor.example",),
    }
    notifier = Notifier(
        options=NoticeOptions(**(defaults | options)),
        secret=SECRET,
        templates=acks.environment(),
        clock=lambda: NOW,
    )
    return Pipeline(
        sessions=storage.sessions,
        rules=RULES,
        options=PipelineOptions(default_policy=default_policy),
        notifier=notifier,
    )


def mail(sender: str, subject: str, text: str = "Hello.", **fields: Any) -> InboundMessage:
    message_id = fields.pop("message_id", f"m{next(_ids)}@customer.example")
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_message_id=message_id,
        rfc_message_id=message_id,
        received_at=fields.pop("received_at", NOW),
        sender=sender,
        subject=subject,
        text=text,
        **fields,
    )


def chat(
    sender: str, text: str, channel: ChannelKind = ChannelKind.WHATSAPP, **fields: Any
) -> InboundMessage:
    return InboundMessage(
        channel=channel,
        channel_message_id=fields.pop("channel_message_id", f"SM{next(_ids)}"),
        received_at=fields.pop("received_at", NOW),
        sender=sender,
        text=text,
        **fields,
    )


async def ticket(storage: Storage, ticket_id: int) -> Ticket:
    async with storage.sessions() as session:
        row = await session.get(Ticket, ticket_id)
        assert row is not None
        return row


async def notices(storage: Storage, kind: str | None = None) -> list[Outbox]:
    async with storage.sessions() as session:
        query = select(Outbox).order_by(Outbox.id)
        if kind:
            query = query.where(Outbox.kind == kind)
        return list(await session.scalars(query))


async def test_nominated_email_becomes_a_ticket_with_deadlines_and_an_ack(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(
        mail(
            "alice@acme.example",
            "Export fails",
            "The PDF export shows error 500.",
            sender_name="Alice A.",
            message_id="orig-1@acme.example",
            references=("older@acme.example",),
            thread_hints=("older@acme.example",),
        )
    )
    assert receipt.status is ReceiptStatus.ACCEPTED
    assert receipt.reference == references.format_reference(receipt.ticket_id)
    row = await ticket(seeded, receipt.ticket_id)
    assert (row.contact_status, row.plan, row.priority, row.flags) == (
        "nominated",
        "plus",
        "normal",
        [],
    )
    assert row.policy == "circularo-saas"
    # circularo-saas plus: Prague every day 08-20; 11:00 CET + 24 h = 3 days later 11:00.
    assert row.first_response_due == datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
    assert row.decision["priority"] == {"value": "normal", "rule": "policy default"}
    assert row.decision["contact"]["matched_by"] == "email"
    [ack] = await notices(seeded, "ack")
    assert ack.recipient == "alice@acme.example" and ack.channel == "email"
    payload = ack.payload
    assert payload["subject"] == f"[{receipt.reference}] Re: Export fails"
    assert payload["in_reply_to"] == "orig-1@acme.example"
    assert payload["references"] == ["older@acme.example", "orig-1@acme.example"]
    assert references.verified_tickets(SECRET, [payload["message_id"]]) == [receipt.ticket_id]
    assert references.verified_tickets(SECRET, [payload["reply_to"]]) == [receipt.ticket_id]
    assert "Hello Alice A." in payload["text"]
    assert "Thursday 12 March 2026, 11:00 CET" in payload["text"]
    assert "the exact error message" not in payload["text"]  # it gave one
    assert "<strong>" in payload["html"]


async def test_redelivery_is_a_duplicate_and_queues_nothing(seeded: Storage) -> None:
    intake = pipeline(seeded)
    message = mail("alice@acme.example", "Export fails")
    first = await intake(message)
    again = await intake(message)
    assert again.status is ReceiptStatus.DUPLICATE and again.ticket_id == first.ticket_id
    assert len(await notices(seeded)) == 1
    async with seeded.sessions() as session:
        assert await session.scalar(select(func.count(Message.id))) == 1


async def test_concurrent_redelivery_makes_one_ticket(seeded: Storage) -> None:
    intake = pipeline(seeded)
    message = mail("alice@acme.example", "Export fails")
    receipts = await asyncio.gather(*(intake(message) for _ in range(5)))
    assert len({r.ticket_id for r in receipts}) == 1
    assert sum(r.status is ReceiptStatus.ACCEPTED for r in receipts) == 1
    assert len(await notices(seeded, "ack")) == 1


async def test_known_colleague_on_a_nominated_channel(seeded: Storage) -> None:
    # Bob is a user of Acme (plus): email needs the nominated representative (1.8).
    intake = pipeline(seeded)
    receipt = await intake(mail("bob@acme.example", "Question about roles"))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.contact_status == "known" and row.flags == ["not_nominated"]
    [ack] = await notices(seeded, "ack")
    assert "nominated representative" in ack.payload["text"]
    assert "Alice" not in ack.payload["text"]
    # The ticket names who may endorse it; the sender's acknowledgement does not.
    assert row.decision["nominated"] == [
        {"name": "Alice", "email": "alice@acme.example", "phone": None}
    ]
    # Alice is asked in her organization's next digest (intake.outbox.endorsements).
    assert not await notices(seeded, "endorse")
    assert await EndorsementDigests(seeded.sessions, intake.notifier).run_once() == 1
    [endorse] = await notices(seeded, "endorse")
    assert endorse.recipient == "alice@acme.example"
    assert endorse.payload["subject"] == f"[{receipt.reference}] Please confirm a support request"
    # Bob is our contact, but nothing proves he wrote it: named, his subject not quoted.
    assert f"{receipt.reference}  2026-03-10 10:00 UTC  Bob by email\n" in endorse.payload["text"]
    assert "Question about roles" not in endorse.payload["text"]


async def test_unknown_address_at_an_organization_domain_is_known(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(mail("zoe@mail.acme.example", "Hello"))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.contact_status == "known" and row.organization_id is not None
    assert row.decision["contact"]["matched_by"] == "domain"


async def test_unidentified_sender_is_flagged_and_never_told_the_nominee(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(mail("stranger@else.example", "Hello"))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.contact_status == "unidentified" and row.organization_id is None
    # The default policy's first plan (standard) takes only the web help desk.
    assert set(row.flags) == {"unidentified", "channel_not_entitled"}
    assert row.first_response_due is not None  # circularo-saas gives unidentified an SLA
    [ack] = await notices(seeded, "ack")
    for name in ("Alice", "alice@", "Hank", "Grace"):
        assert name not in ack.payload["text"]
    assert "could not match" in ack.payload["text"]
    assert not await notices(seeded, "endorse")


async def test_scoro_gives_unidentified_senders_no_deadlines(seeded: Storage) -> None:
    intake = pipeline(seeded, default_policy="scoro")
    receipt = await intake(mail("stranger@else.example", "The app shows an error"))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.first_response_due is None and row.clock_starts is None
    assert row.decision["deadlines"] == ["no SLA for this sender"]


async def test_channel_not_entitled_says_which_channels_the_plan_has(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(mail("hank@hooli.example", "Login question"))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.flags == ["channel_not_entitled"]
    [ack] = await notices(seeded, "ack")
    assert "Your standard plan includes support through: the web help desk." in " ".join(
        ack.payload["text"].split()
    )


async def test_scalr_requests_from_non_designated_contacts(seeded: Storage) -> None:
    intake = pipeline(seeded)
    designated = await ticket(seeded, (await intake(mail("eve@globex.example", "Hi"))).ticket_id)
    other = await ticket(seeded, (await intake(mail("frank@globex.example", "Hi"))).ticket_id)
    assert designated.flags == [] and designated.contact_status == "designated"
    assert other.flags == ["not_designated"] and other.policy == "scalr"


async def test_scalr_severity_and_on_call_alert(seeded: Storage) -> None:
    text = "Production is down for all users, nothing works. Severity 1."
    receipt = await pipeline(seeded)(mail("eve@globex.example", "Outage", text))
    row = await ticket(seeded, receipt.ticket_id)
    assert (row.priority, row.severity) == ("severity-1", 1)
    [alert] = await notices(seeded, "alert")
    assert alert.recipient == "oncall@vendor.example"
    assert "severity 1" in alert.payload["subject"]


async def test_support_expired_after_twelve_months(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(mail("grace@initech.example", "Upgrade question"))
    row = await ticket(seeded, receipt.ticket_id)
    assert "support_expired" in row.flags
    [ack] = await notices(seeded, "ack")
    text = " ".join(ack.payload["text"].split())
    assert "Your support period ended on 2025-01-15, so no response" in text


async def test_over_quota(seeded: Storage) -> None:
    # circularo-onprem standard: 25 requests a support period; the 26th is over quota.
    intake = pipeline(seeded)
    flags = []
    for n in range(26):
        receipt = await intake(mail("ivy@umbrella.example", f"Request {n}"))
        flags.append((await ticket(seeded, receipt.ticket_id)).flags)
    assert all("over_quota" not in f for f in flags[:25])
    assert "over_quota" in flags[25]


async def test_over_quota_within_one_batch(seeded: Storage) -> None:
    """26 requests that arrive together: one group commit, its tickets written together with
    ids handed out up front (more than one block of them), and the quota still counts the
    batch's own tickets, each counted once."""
    intake = pipeline(seeded)
    batch = [mail("ivy@umbrella.example", f"Request {n}") for n in range(26)]
    receipts = await asyncio.gather(*(intake(m) for m in batch))
    assert intake.group.redone == 0
    ids = [r.ticket_id for r in receipts]
    assert ids == list(range(ids[0], ids[0] + 26))  # in arrival order, none skipped
    flags = [(await ticket(seeded, ticket_id)).flags for ticket_id in ids]
    assert sum("over_quota" in f for f in flags) == 1 and "over_quota" in flags[25]
    later = await intake(mail("judy@umbrella.example", "One more"))  # the next batch
    assert later.ticket_id == ids[-1] + 1


async def test_onprem_email_starts_at_level_three(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(mail("ivy@umbrella.example", "Configuration of SSO"))
    row = await ticket(seeded, receipt.ticket_id)
    assert (row.priority, row.severity) == ("level-3", 3)
    assert row.decision["priority"]["rule"] == "default for email"


async def test_four_tier_urgent_subject_is_on_call(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(mail("jo@fourco.example", "Urgent: IAM Services Offline"))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.priority == "urgent" and "on_call" in row.flags
    assert row.first_response_due == NOW + timedelta(hours=1)
    assert [a.recipient for a in await notices(seeded, "alert")] == ["oncall@vendor.example"]


# --- threading ---------------------------------------------------------------------------


async def test_reply_to_our_ack_threads_by_token_even_without_a_reference(seeded: Storage) -> None:
    intake = pipeline(seeded)
    first = await intake(mail("alice@acme.example", "Export fails"))
    [ack] = await notices(seeded, "ack")
    # The provider rewrote our Message-ID; the reply still goes to our tokened address.
    reply = mail("alice@acme.example", "Re: something", thread_hints=(ack.payload["reply_to"],))
    assert (await intake(reply)).ticket_id == first.ticket_id
    by_message_id = mail("alice@acme.example", "x", thread_hints=(ack.payload["message_id"],))
    receipt = await intake(by_message_id)
    assert (receipt.status, receipt.ticket_id) == (ReceiptStatus.FOLLOW_UP, first.ticket_id)


async def test_forged_token_does_not_thread(seeded: Storage) -> None:
    intake = pipeline(seeded)
    first = await intake(mail("alice@acme.example", "Export fails"))
    forged = f"support+{references.format_reference(first.ticket_id).lower()}-{'0' * 20}@x"
    receipt = await intake(mail("mallory@evil.example", "hi", thread_hints=(forged,)))
    assert receipt.status is ReceiptStatus.ACCEPTED and receipt.ticket_id != first.ticket_id


async def test_subject_reference_is_honoured_only_within_the_organization(seeded: Storage) -> None:
    intake = pipeline(seeded)
    first = await intake(mail("alice@acme.example", "Export fails"))
    subject = f"Re: [{first.reference}] Export fails"
    colleague = await intake(mail("bob@acme.example", subject))
    outsider = await intake(mail("mallory@evil.example", subject))
    assert colleague.status is ReceiptStatus.FOLLOW_UP and colleague.ticket_id == first.ticket_id
    assert outsider.status is ReceiptStatus.ACCEPTED and outsider.ticket_id != first.ticket_id


async def test_in_reply_to_a_stored_message_threads(seeded: Storage) -> None:
    intake = pipeline(seeded)
    first = await intake(mail("alice@acme.example", "Export fails", message_id="a1@acme.example"))
    reply = mail("alice@acme.example", "Re: Export fails", thread_hints=("<a1@acme.example>",))
    assert (await intake(reply)).ticket_id == first.ticket_id
    # A follow-up is not acknowledged again.
    assert len(await notices(seeded, "ack")) == 1


async def test_chat_follow_ups_within_the_window(seeded: Storage) -> None:
    intake = pipeline(seeded)
    first = await intake(chat("+420601123456", "The app crashes on login"))
    later = await intake(
        chat("+420601123456", "Still crashing", received_at=NOW + timedelta(hours=3))
    )
    days = await intake(chat("+420601123456", "New thing", received_at=NOW + timedelta(hours=30)))
    sms = await intake(chat("+420601123456", "via sms", channel=ChannelKind.SMS))
    assert later.ticket_id == first.ticket_id
    assert days.ticket_id != first.ticket_id
    assert sms.ticket_id != first.ticket_id
    row = await ticket(seeded, first.ticket_id)
    assert row.contact_status == "known" and row.decision["contact"]["matched_by"] == "phone"


async def test_urgent_follow_up_raises_priority_and_records_why(seeded: Storage) -> None:
    intake = pipeline(seeded)
    first = await intake(mail("alice@acme.example", "Export fails", message_id="b1@acme.example"))
    before = await ticket(seeded, first.ticket_id)
    assert before.priority == "normal"
    reply = mail(
        "alice@acme.example",
        "Re: Export fails",
        "This is now URGENT, customers wait.",
        thread_hints=("b1@acme.example",),
        received_at=NOW + timedelta(hours=2),
    )
    await intake(reply)
    after = await ticket(seeded, first.ticket_id)
    assert after.priority == "urgent" and after.urgent
    [raised] = after.decision["raised"]
    assert (raised["from"], raised["to"]) == ("normal", "urgent")
    # Recomputed from the original receipt: plus urgent 24 h / 2 days (24 h) from NOW.
    assert after.first_response_due == datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
    assert len(await notices(seeded, "alert")) == 1


@pytest.mark.parametrize(
    "notation", ["whatsapp:+420601123456", "+420 601 123 456", "00420601123456"]
)
async def test_phone_matched_in_any_notation(seeded: Storage, notation: str) -> None:
    receipt = await pipeline(seeded)(chat(notation, "hello"))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.contact_status == "known" and row.decision["contact"]["contact"] == "Bob"


async def test_email_matched_whatever_its_case(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(mail("Alice@ACME.Example", "Hello"))
    assert (await ticket(seeded, receipt.ticket_id)).contact_status == "nominated"


async def test_chat_acks_speak_of_chat_not_subject_lines(seeded: Storage) -> None:
    await pipeline(seeded)(chat("+420601123456", "The export is broken"))
    [ack] = await notices(seeded, "ack")
    assert ack.channel == "whatsapp" and ack.recipient == "+420601123456"
    assert 'just write "urgent"' in ack.payload["text"]
    assert "subject" not in ack.payload["text"]


async def test_telegram_sender_matched_by_user_id(seeded: Storage) -> None:
    receipt = await pipeline(seeded)(chat("tg:777", "hi", channel=ChannelKind.TELEGRAM))
    row = await ticket(seeded, receipt.ticket_id)
    assert row.contact_status == "known" and row.decision["contact"]["matched_by"] == "telegram"
    assert row.flags == ["channel_not_entitled"]  # plus has no Telegram


# --- never answer a machine ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"headers": (("Auto-Submitted", "auto-replied"),)}, "machine"),
        ({"envelope_sender": ""}, "null sender"),
        ({"headers": (("X-Intake-Loop", "support@support.example.com"),)}, "loop"),
        ({"reply_to": "support@support.example.com"}, "ours"),
    ],
)
async def test_no_ack_to_machines_or_ourselves(
    seeded: Storage, fields: dict[str, Any], why: str
) -> None:
    receipt = await pipeline(seeded)(mail("alice@acme.example", "Hello", **fields))
    assert receipt.status is ReceiptStatus.ACCEPTED, why
    assert not await notices(seeded, "ack"), why


async def test_suppressed_addresses_get_no_automatic_mail(seeded: Storage) -> None:
    async with seeded.sessions.begin() as session:
        for address in ("alice@acme.example", "oncall@vendor.example"):
            await suppressions.suppress(session, address, "5.1.1", until=NOW + timedelta(days=1),
                                        now=NOW)  # fmt: skip
    await pipeline(seeded)(mail("alice@acme.example", "URGENT: all users are down"))
    assert await notices(seeded) == []  # no ack, and the agent alert address bounced too


async def test_acks_per_sender_are_rate_limited(seeded: Storage) -> None:
    intake = pipeline(seeded, acks_per_sender_per_hour=3)
    for n in range(5):
        await intake(mail("alice@acme.example", f"Request {n}"))
    assert len(await notices(seeded, "ack")) == 3


async def test_two_hundred_concurrent_messages(seeded: Storage) -> None:
    intake = pipeline(seeded, acks_per_sender_per_hour=1000)
    messages = [mail(f"user{n}@acme.example", f"Request {n}") for n in range(200)]
    receipts = await asyncio.gather(*(intake(m) for m in messages))
    assert len({r.reference for r in receipts}) == 200
    assert all(r.status is ReceiptStatus.ACCEPTED for r in receipts)
    async with seeded.sessions() as session:
        assert await session.scalar(select(func.count(Ticket.id))) == 200
        assert await session.scalar(select(func.count(Message.id))) == 200
    assert len(await notices(seeded, "ack")) == 200
