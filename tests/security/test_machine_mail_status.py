"""Machine mail is not a request (CONTRACTS section 1), over real SMTP into the real pipeline:
an auto-reply to one of our tickets joins it and changes nothing; a newsletter or a bounce
rests in status `machine` with no deadlines, acknowledgement or alert, out of the open queue,
where an agent finds it and can make it a request."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from forgery import mail, seed
from pipelines import make_pipeline
from sqlalchemy import select

from channels.email.smtp import SmtpChannel
from intake.cli.app import Storage, build_pipeline, open_storage
from intake.config import SmtpSettings, load_settings
from intake.desk.actions import Action, QueueFilter, StatusConflictError, act, ticket_rows
from intake.desk.agents import AgentIdentity
from intake.messages import ChannelKind, InboundMessage
from intake.policy.files import load_policy
from intake.policy.model import compute_deadlines
from storage.models import Message, Outbox, Ticket
from storage.watch import open_tickets_by_priority

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
AGENT = AgentIdentity(1, "ann@vendor.example", "Ann")
NEWSLETTER = (("List-Unsubscribe", "<https://news.example/u?x=1>"), ("Precedence", "bulk"))


@pytest.fixture
async def smtp(storage: Storage) -> AsyncIterator[SmtpChannel]:
    await seed(storage)
    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: NOW,
    )
    await channel.start(make_pipeline(storage))
    yield channel
    await channel.stop()


async def send(port: int, raw: bytes, mail_from: str) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
        await client.sendmail(mail_from, ["support@support.example.com"], raw)  # "": <>


async def rows(storage: Storage, model: Any) -> list[Any]:
    async with storage.sessions() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


async def test_an_auto_reply_to_our_ticket_joins_it_and_changes_nothing(
    storage: Storage, smtp: SmtpChannel
) -> None:
    await send(smtp.port, mail("bob@acme.example", "Export fails").as_bytes(), "bob@acme.example")
    [before] = await rows(storage, Ticket)
    [ack] = [o for o in await rows(storage, Outbox) if o.kind == "ack"]
    outbox_before = len(await rows(storage, Outbox))
    # Bob's out-of-office answers our acknowledgement, and it says "urgent" to boot.
    away = mail("bob@acme.example", "Automatic reply: Urgent: out of office",
                "I am out of the office until Monday. For urgent matters call Carol.\n",
                headers=(("Auto-Submitted", "auto-replied"),
                         ("In-Reply-To", f"<{ack.payload['message_id']}>")))  # fmt: skip
    await send(smtp.port, away.as_bytes(), "bob@acme.example")
    [after] = await rows(storage, Ticket)
    assert after.id == before.id
    for column in ("status", "priority", "urgent", "first_response_due", "resolution_due",
                   "last_message_at", "flags"):  # fmt: skip
        assert getattr(after, column) == getattr(before, column), column
    messages = await rows(storage, Message)
    assert len(messages) == 2 and messages[1].extra["machine"] == "auto_reply"
    assert len(await rows(storage, Outbox)) == outbox_before  # no ack, no alert


async def test_machine_mail_rests_out_of_the_open_queue(
    storage: Storage, smtp: SmtpChannel
) -> None:
    # A newsletter from a customer's domain shouting "urgent", and a stray bounce.
    news = mail("news@acme.example", "URGENT: our spring sale ends today",
                "Production is down? Not with our new plan! Unsubscribe here.\n",
                headers=NEWSLETTER)  # fmt: skip
    await send(smtp.port, news.as_bytes(), "news@acme.example")
    bounce = mail("MAILER-DAEMON@mx.elsewhere.example", "Undelivered Mail Returned to Sender",
                  "This is the mail system. I'm sorry to have to inform you that your message\n"
                  "could not be delivered to one or more recipients.\n")  # fmt: skip
    await send(smtp.port, bounce.as_bytes(), "")
    machine = await rows(storage, Ticket)
    assert [t.status for t in machine] == ["machine", "machine"]
    assert [t.decision["machine"]["kind"] for t in machine] == ["bulk", "bounce"]
    for ticket in machine:
        assert (ticket.first_response_due, ticket.resolution_due, ticket.clock_starts) == (
            None, None, None)  # fmt: skip
        assert "on_call" not in ticket.flags
        assert "no deadlines" in ticket.decision["deadlines"][0]
    assert await rows(storage, Outbox) == []  # no acknowledgement, no agent alert
    queue = await ticket_rows(storage.sessions, only_open=True, overdue_at=None,
                              where=QueueFilter(), limit=50, offset=0)  # fmt: skip
    assert queue == []
    async with storage.sessions() as session:
        assert await open_tickets_by_priority(session) == {}  # metrics' tickets_open
    found = await ticket_rows(storage.sessions, only_open=False, overdue_at=None,
                              where=QueueFilter(status="machine"), limit=50, offset=0)  # fmt: skip
    assert [r["status"] for r in found] == ["machine", "machine"]

    # A person answering the bounce, urgently, joins it but does not make it a request.
    answer = mail("bob@acme.example", "Production is down",
                  "Urgent: production is down, did my mail arrive?\n",
                  headers=(("In-Reply-To", str(bounce["Message-ID"])),))  # fmt: skip
    await send(smtp.port, answer.as_bytes(), "bob@acme.example")
    returned = (await rows(storage, Ticket))[1]
    assert (returned.status, returned.priority, returned.first_response_due) == (
        "machine", machine[1].priority, None)  # fmt: skip
    assert len(await rows(storage, Message)) == 3 and await rows(storage, Outbox) == []
    newsletter = machine[0]

    # Holding or reopening it would queue it without deadlines; making it a request does not.
    with pytest.raises(StatusConflictError):
        await act(storage.sessions, newsletter.id, Action.REOPEN, AGENT, now=NOW)
    assert await act(storage.sessions, newsletter.id, Action.REQUEST, AGENT, now=NOW)
    assert not await act(storage.sessions, newsletter.id, Action.REQUEST, AGENT, now=NOW)
    [request, _] = await rows(storage, Ticket)
    due = compute_deadlines(load_policy(request.policy), request.plan, request.priority,
                            request.received_at)  # fmt: skip
    assert request.status == "open" and request.first_response_due is not None
    assert (request.first_response_due, request.resolution_due) == (
        due.first_response_due, due.resolution_due)  # fmt: skip
    assert request.decision["requested"]["machine"]["kind"] == "bulk"


def intake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=workdir, input="a long password\n",
    )  # fmt: skip


def listing(workdir: Path, *flags: str) -> list[dict[str, Any]]:
    out = intake(workdir, "tickets", "list", "--json", *flags).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_the_command_line_lists_machine_mail_and_makes_it_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "intake.toml").write_text(
        '[database]\nurl = "sqlite+aiosqlite:///intake.db"\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)

    async def feed() -> None:
        settings = load_settings(tmp_path / "intake.toml", env={})
        async with open_storage(settings) as storage:
            pipeline = await build_pipeline(settings, storage)
            news = InboundMessage(
                channel=ChannelKind.EMAIL, channel_message_id="n1@news.example",
                rfc_message_id="n1@news.example", received_at=datetime.now(UTC),
                sender="news@news.example", subject="Our newsletter",
                text="Read all about it.", headers=NEWSLETTER,
            )  # fmt: skip
            await pipeline(news)

    asyncio.run(feed())
    listed = listing(tmp_path)
    assert [(r["status"], r["first_response_due"]) for r in listed] == [("machine", None)]
    assert intake(tmp_path, "tickets", "list", "--json", "--open").stdout == ""
    reference = listed[0]["reference"]
    assert intake(tmp_path, "agents", "add", AGENT.email, "--password-stdin").returncode == 0
    done = intake(tmp_path, "agents", "update", reference, "--as", AGENT.email,
                  "--action", "request")  # fmt: skip
    assert done.returncode == 0, done.stderr
    [opened] = listing(tmp_path, "--open")
    assert opened["status"] == "open" and opened["reference"] == reference
