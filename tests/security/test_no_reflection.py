"""No reflection (issue 16, item 2): forged Froms at unrelated domains with a spam subject get
at most `unidentified_acks_per_hour` acknowledgements, none of which carries the spam; a sender
that fails authentication gets none; known contacts' acknowledgements stay as they were.

The first test runs `intake serve` for real and reads what reached its outbound relay."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import pytest
from forgery import Zone, key, mail, seed, signed
from pipelines import make_pipeline
from serving import Relay, ServeProcess, accepts, free_port, wait_until
from sqlalchemy import func, select

from channels.email.sender_checks import SenderChecks
from channels.email.smtp import SmtpChannel
from intake.cli.app import Storage
from intake.config import SmtpSettings
from intake.messages import ChannelKind, InboundMessage
from intake.pipeline.pipeline import Pipeline
from storage import db
from storage.models import Outbox, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
SPAM = "Buy cheap pills at spam.example"
SUPPORT = "support@support.example.com"
CONTACTS = """
[[organizations]]
name = "Acme"
plan = "plus"
domains = ["acme.example"]

[[organizations.contacts]]
name = "Alice"
email = "alice@acme.example"
role = "nominated"
"""


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    server = Relay()
    await server.start()
    yield server
    await server.stop()


async def test_forged_froms_get_a_bounded_number_of_acks_that_quote_nothing(
    tmp_path: Path, relay: Relay
) -> None:
    smtp_port = free_port()
    (tmp_path / "contacts.toml").write_text(CONTACTS, encoding="utf-8")
    (tmp_path / "intake.toml").write_text(
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path / "intake.db"}"
[contacts]
file = "contacts.toml"
[pipeline]
unidentified_acks_per_hour = 10
[smtp]
port = {smtp_port}
[web]
enabled = false
[outbound.smtp]
port = {relay.port}
[notify]
emails = []
""",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serve = ServeProcess("intake serve", tmp_path, env, ["--config", "intake.toml"])
    serve.start()
    try:

        def ready() -> bool:
            serve.assert_running()
            return "serving; policy" in serve.output() and accepts(smtp_port)

        await wait_until(ready, "intake serve to start")
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port) as client:
            for n in range(30):  # one session, 30 forged Froms at 30 unrelated domains
                forged = mail(f"victim{n}@domain{n}.example", f"{SPAM} {n}", f"{SPAM}: here\n")
                await client.sendmail(f"x{n}@domain{n}.example", [SUPPORT], forged.as_bytes())
            genuine = mail("alice@acme.example", "Export fails")
            await client.sendmail("alice@acme.example", [SUPPORT], genuine.as_bytes())
        engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
        try:
            sessions = db.session_factory(engine)

            async def all_sent() -> bool:
                async with sessions() as session:
                    statuses = list(await session.scalars(select(Outbox.status)))
                return len(statuses) == len(relay.received) and set(statuses) == {"sent"}

            await wait_until(lambda: len(relay.received) >= 11, "the acknowledgements")
            await wait_until(all_sent, "the outbox to be sent")
            async with sessions() as session:
                stored = await session.scalar(select(func.count(Ticket.id)))
        finally:
            await engine.dispose()
    finally:
        assert serve.stop() == 0
    assert stored == 31  # every message is a ticket; only the acknowledgements are bounded
    to_victims = [m for _, m in relay.received if str(m["To"]).startswith("victim")]
    assert len(to_victims) == 10
    for message in to_victims:
        whole = message.as_string()
        assert "pills" not in whole and "spam.example" not in whole, whole
        assert str(message["Subject"]).endswith("] Your support request")
    [to_alice] = [m for _, m in relay.received if str(m["To"]) == "alice@acme.example"]
    assert str(to_alice["Subject"]).endswith("] Re: Export fails")  # known contacts: as before


@pytest.fixture
async def checked_smtp(storage: Storage) -> AsyncIterator[SmtpChannel]:
    """Our own DKIM and DMARC checks against a DNS that is a dict: acme.example says reject."""
    await seed(storage)
    zone = Zone()
    zone.publish_dkim("acme.example", key("acme"))
    zone.publish_dkim("evil.example", key("evil"))
    zone.add_txt("_dmarc.acme.example", b"v=DMARC1; p=reject")
    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: NOW,
        sender_checks=SenderChecks(verify_dkim=True, txt=zone.txt, spf_lookup=zone.spf_lookup),
    )
    await channel.start(make_pipeline(storage, notify_emails=()))
    yield channel
    await channel.stop()


async def test_a_sender_that_fails_authentication_gets_no_acknowledgement(
    storage: Storage, checked_smtp: SmtpChannel
) -> None:
    forged = signed(mail("Bob <bob@acme.example>", "Reset my password"), "evil.example",
                    key("evil"))  # fmt: skip
    genuine = signed(mail("Bob <bob@acme.example>", "Export fails"), "acme.example", key("acme"))
    for raw in (forged, genuine):
        await aiosmtplib.send(
            raw, sender="bob@acme.example", recipients=["support@support.example.com"],
            hostname="127.0.0.1", port=checked_smtp.port,
        )  # fmt: skip
    async with storage.sessions() as session:
        tickets = list(await session.scalars(select(Ticket).order_by(Ticket.id)))
        acks = list(await session.scalars(select(Outbox).where(Outbox.kind == "ack")))
    assert [t.decision["authenticity"]["verdict"] for t in tickets] == ["fail", "pass"]
    assert [a.ticket_id for a in acks] == [tickets[1].id]  # only the genuine one


async def test_the_unidentified_budget_is_per_hour_and_zero_means_none(storage: Storage) -> None:
    now = [NOW]
    intake = make_pipeline(storage, clock=lambda: now[0], unidentified_acks_per_hour=2)
    silent = make_pipeline(storage, unidentified_acks_per_hour=0)

    async def write(pipeline: Pipeline, n: int) -> None:
        await pipeline(
            InboundMessage(
                channel=ChannelKind.EMAIL,
                channel_message_id=f"<b{n}@x>",
                received_at=now[0],
                sender=f"someone{n}@else{n}.example",
                subject=f"{SPAM} {n}",
            )
        )

    for n in range(3):
        await write(intake, n)
    now[0] = NOW + timedelta(minutes=59)
    await write(intake, 3)
    now[0] = NOW + timedelta(hours=1)  # the first two have left the window
    await write(intake, 4)
    await write(silent, 5)
    async with storage.sessions() as session:
        acked = list(
            await session.scalars(
                select(Outbox.recipient).where(Outbox.kind == "ack").order_by(Outbox.id)
            )
        )
        stored = await session.scalar(select(func.count(Ticket.id)))
    assert acked == ["someone0@else0.example", "someone1@else1.example", "someone4@else4.example"]
    assert stored == 6
