"""What the wire believes, through the running service (in-process `Service`, real sockets):
an upstream's Authentication-Results and spam verdict only from a trusted relay, a From that
is not one mailbox gets no mail, and our SMTP name shows no software or version (issue 16)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from forgery import mail, seed
from serving import Relay, wait_until
from sqlalchemy import select

from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service
from intake.config import Settings
from storage.models import Message, Outbox, Ticket

SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
FORGED_AR = ("Authentication-Results", "mx.provider.example; dmarc=pass header.from=acme.example")
RELAY_ADDRESS = "127.0.0.2"  # loopback's whole /8 answers; the test binds its client here


def settings(relay_port: int, *, require: bool = True, **smtp: Any) -> Settings:
    values: dict[str, Any] = {
        "policy": {"name": "circularo-saas"},
        "smtp": {"host": "127.0.0.1", "port": 0, "domains": ["support.example.com"], **smtp},
        "web": {"enabled": False},
        "outbound": {"smtp": {"host": "127.0.0.1", "port": relay_port,
                              "from": "support@support.example.com"}},
        "authentication": {"trusted_authserv_ids": ["mx.provider.example"],
                           "trusted_relays": [f"{RELAY_ADDRESS}/32"],
                           "require_authentication": require},
    }  # fmt: skip
    return Settings(**values)


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    async with Relay() as relay:
        yield relay


@pytest.fixture(params=[True], ids=["require_authentication"])
async def service(
    request: pytest.FixtureRequest, storage: Storage, relay: Relay
) -> AsyncIterator[Service]:
    """`require_authentication` unless a test asks otherwise: a stranger whose mail carries no
    verdict at all is then unverified, and gets no acknowledgement (issue 16)."""
    await seed(storage)
    config = settings(relay.port, require=request.param)
    running = Service(config, storage, await build_pipeline(config, storage))
    running.deliverer.idle = 0.05
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def port_of(service: Service) -> int:
    return int(service.channels[0].port)  # type: ignore[attr-defined]


async def send(
    service: Service, message: EmailMessage | bytes, *, source: str = "127.0.0.1"
) -> str:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    _, reply = await aiosmtplib.send(
        raw, sender="mallory@elsewhere.example", recipients=["support@support.example.com"],
        hostname="127.0.0.1", port=port_of(service), source_address=(source, 0),
    )  # fmt: skip
    return reply


async def only_ticket(storage: Storage) -> Ticket:
    async with storage.sessions() as session:
        [ticket] = list(await session.scalars(select(Ticket)))
    return ticket


@SQLITE_ONLY
async def test_a_forged_authentication_results_from_a_direct_client_is_ignored(
    storage: Storage, service: Service
) -> None:
    spoof = mail("Alice <alice@acme.example>", "Urgent: give me admin", headers=(FORGED_AR,))
    assert (await send(service, spoof)).startswith("2.0.0 OK")
    ticket = await only_ticket(storage)
    assert ticket.contact_status == "known"  # not "nominated"
    assert "sender_unverified" in ticket.flags
    authenticity = ticket.decision["authenticity"]
    assert authenticity["verdict"] == "none" and authenticity["unverified"] is True
    assert authenticity["evidence"] == [
        "Authentication-Results from mx.provider.example ignored: "
        "client 127.0.0.1 is not a trusted relay"
    ]


@SQLITE_ONLY
async def test_the_same_header_from_a_trusted_relay_is_believed(
    storage: Storage, service: Service
) -> None:
    relayed = mail("Alice <alice@acme.example>", "Export fails", headers=(FORGED_AR,))
    assert (await send(service, relayed, source=RELAY_ADDRESS)).startswith("2.0.0 OK")
    ticket = await only_ticket(storage)
    assert (ticket.contact_status, ticket.flags) == ("nominated", [])
    assert ticket.decision["authenticity"]["evidence"] == [
        "Authentication-Results from mx.provider.example: dmarc=pass"
    ]


def _spam_seen(ticket: Ticket) -> bool:
    return any("spam" in str(e).lower() for e in ticket.decision["evidence"])


@SQLITE_ONLY
@pytest.mark.parametrize(("source", "counted"), [("127.0.0.1", False), (RELAY_ADDRESS, True)])
async def test_an_upstream_spam_verdict_counts_only_from_a_trusted_relay(
    storage: Storage, service: Service, source: str, counted: bool
) -> None:
    verdicts = (("X-Spam-Flag", "YES"), ("X-Spam-Status", "Yes, score=9.1"))
    flagged = mail("Bob <bob@acme.example>", "Export fails", headers=verdicts)
    assert (await send(service, flagged, source=source)).startswith("2.0.0 OK")
    ticket = await only_ticket(storage)
    assert _spam_seen(ticket) is counted


@SQLITE_ONLY
@pytest.mark.parametrize(
    "from_header",
    [
        # An encoded CRLF in the display name (header injection in disguise).
        "=?utf-8?q?Victim=0D=0ABcc:_victim5@example.org?= <attacker@evil.example>",
        # An encoded word hiding a colon: once read as a group, the ack went to
        # `_victim5@example.org?=`.
        "=?utf-8?q?x=0D=0A:_victim5@example.org?= <attacker@evil.example>",
        "Friends: victim5@example.org, victim6@example.org;",  # a group
        "victim5@example.org, victim6@example.org",  # not one mailbox
    ],
)
@pytest.mark.parametrize("service", [False], ids=["no_verdict_needed"], indirect=True)
async def test_a_from_that_is_not_one_mailbox_gets_no_mail(
    storage: Storage, service: Service, relay: Relay, from_header: str
) -> None:
    head = f"From: {from_header}\r\nTo: support@support.example.com\r\n"
    raw = (head + "Subject: Help\r\nMessage-ID: <bad@evil.example>\r\n\r\nHello\r\n").encode()
    assert (await send(service, raw)).startswith("2.0.0 OK")
    # A control message from a stranger is acknowledged: once it has reached the relay, the
    # deliverer has had its chance at the first one too.
    control = mail("Carol <carol@stranger.example>", "Export fails")
    assert (await send(service, control)).startswith("2.0.0 OK")
    await wait_until(lambda: len(relay.received) >= 1, "the control acknowledgement")
    await asyncio.sleep(0.2)  # the deliverer's idle pass, not a timing assertion
    assert relay.recipients() == ["carol@stranger.example"]
    async with storage.sessions() as session:
        bad = await session.scalar(select(Ticket).where(Ticket.subject == "Help"))
        assert bad is not None
        assert (bad.sender, bad.contact_status) == ("unknown@invalid", "unidentified")
        acks = await session.scalars(select(Outbox).where(Outbox.ticket_id == bad.id))
        assert list(acks) == []
        stored = await session.scalar(select(Message).where(Message.ticket_id == bad.id))
        assert stored is not None and "invalid-from" in stored.problems


@SQLITE_ONLY
@pytest.mark.parametrize("service", [False], ids=["no_verdict_needed"], indirect=True)
async def test_the_banner_and_ehlo_name_us_and_no_software(
    storage: Storage, service: Service, relay: Relay
) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port_of(service))
    banner = await client.connect()
    ehlo = await client.ehlo()
    await client.quit()
    assert banner.message == "support.example.com ESMTP"
    assert ehlo.message.splitlines()[0] == "support.example.com"
    for said in (banner.message, ehlo.message):
        assert "Python" not in said and "1.4" not in said and "aiosmtpd" not in said.lower()
    # Our acknowledgements greet the relay with the same name.
    assert (await send(service, mail("Carol <carol@stranger.example>"))).startswith("2.0.0")
    await wait_until(lambda: len(relay.received) >= 1, "the acknowledgement")
    assert relay.sessions[0].session is not None
    assert relay.sessions[0].session.host_name == "support.example.com"
