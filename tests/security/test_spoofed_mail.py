"""End to end over real SMTP: a spoofed nominated contact gets no privileges and the ticket
says so; the genuine one, DKIM-signed, keeps them. DNS is a dict (no real DNS, ever)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiosmtplib
import pytest
from aiosmtpd.smtp import Session
from dovecot import Dovecot
from forgery import Zone, key, mail, seed, signed
from pipelines import make_pipeline
from pydantic import SecretStr
from sqlalchemy import select

from channels.email.imap import ImapChannel
from channels.email.inbound import inbound_from_raw
from channels.email.sender_checks import SenderChecks, with_upstream_verdict
from channels.email.smtp import SmtpChannel
from intake.cli.app import Storage
from intake.config import AuthenticationSettings, ImapSettings, SmtpSettings
from intake.messages import Authenticity, InboundMessage, Receipt
from intake.pipeline.pipeline import PipelineOptions
from storage.models import Outbox, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def zone() -> Zone:
    zone = Zone()
    zone.publish_dkim("acme.example", key("acme"))
    zone.publish_dkim("evil.example", key("evil"))
    zone.add_txt("_dmarc.acme.example", b"v=DMARC1; p=reject")
    zone.add_txt("acme.example", b"v=spf1 ip4:192.0.2.0/24 -all")  # not our loopback client
    zone.add_txt("evil.example", b"v=spf1 ip4:127.0.0.1 -all")
    return zone


async def serve(storage: Storage, checks: SenderChecks, *, require: bool = False) -> SmtpChannel:
    await seed(storage)
    pipeline = make_pipeline(storage, notify_emails=())
    if require:
        options = PipelineOptions(default_policy="circularo-saas", require_authentication=True)
        object.__setattr__(pipeline, "options", options)
    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: NOW,
        sender_checks=checks,
    )
    await channel.start(pipeline)
    return channel


@pytest.fixture
async def smtp(storage: Storage) -> AsyncIterator[SmtpChannel]:
    dns = zone()
    channel = await serve(
        storage, SenderChecks(verify_dkim=True, verify_spf=True, txt=dns.txt,
                              spf_lookup=dns.spf_lookup),
    )  # fmt: skip
    yield channel
    await channel.stop()


async def send(port: int, raw: bytes, mail_from: str) -> str:
    _, reply = await aiosmtplib.send(
        raw, sender=mail_from, recipients=["support@support.example.com"],
        hostname="127.0.0.1", port=port, local_hostname="client.example",
    )  # fmt: skip
    return reply


async def tickets(storage: Storage) -> list[Ticket]:
    async with storage.sessions() as session:
        return list(await session.scalars(select(Ticket).order_by(Ticket.id)))


async def test_a_spoofed_nominated_contact_gets_no_privileges(
    storage: Storage, smtp: SmtpChannel
) -> None:
    forged = signed(mail("Alice <alice@acme.example>", "Urgent: give me admin"), "evil.example",
                    key("evil"))  # fmt: skip
    assert (await send(smtp.port, forged, "mallory@evil.example")).startswith("2.0.0 OK")
    [ticket] = await tickets(storage)
    assert ticket.sender == "alice@acme.example" and ticket.organization_id is not None
    assert ticket.contact_status == "known"  # not "nominated"
    assert "sender_unverified" in ticket.flags and "not_nominated" in ticket.flags
    evidence = ticket.decision["authenticity"]
    assert evidence["verdict"] == "fail" and evidence["unverified"] is True
    assert "dmarc=fail for acme.example" in evidence["evidence"][0]
    assert "dkim=pass (evil.example)" in evidence["evidence"][0]
    # The real nominated representative is asked to endorse it, as for any colleague.
    assert [n["email"] for n in ticket.decision["nominated"]] == ["alice@acme.example"]


async def test_the_genuine_nominated_contact_keeps_them(
    storage: Storage, smtp: SmtpChannel
) -> None:
    genuine = signed(mail("Alice <alice@acme.example>"), "acme.example", key("acme"))
    assert (await send(smtp.port, genuine, "alice@acme.example")).startswith("2.0.0 OK")
    [ticket] = await tickets(storage)
    assert (ticket.contact_status, ticket.flags) == ("nominated", [])
    assert ticket.decision["authenticity"]["verdict"] == "pass"
    async with storage.sessions() as session:
        [ack] = list(await session.scalars(select(Outbox).where(Outbox.kind == "ack")))
    assert ack.recipient == "alice@acme.example"


async def test_require_authentication_treats_unsigned_mail_as_unverified(
    storage: Storage,
) -> None:
    dns = Zone()  # nothing published: every verdict is "none"
    channel = await serve(
        storage, SenderChecks(verify_dkim=True, txt=dns.txt, spf_lookup=dns.spf_lookup),
        require=True,
    )  # fmt: skip
    try:
        await send(channel.port, mail("alice@acme.example").as_bytes(), "alice@acme.example")
    finally:
        await channel.stop()
    [ticket] = await tickets(storage)
    assert ticket.contact_status == "known" and "sender_unverified" in ticket.flags
    assert ticket.decision["authenticity"]["verdict"] == "none"


async def test_without_checks_configured_the_message_carries_no_verdict() -> None:
    seen: list[InboundMessage] = []

    async def intake(message: InboundMessage) -> Receipt:
        seen.append(message)
        raise RuntimeError("stop here")

    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: NOW,
    )
    await channel.start(intake)
    try:
        with pytest.raises(aiosmtplib.SMTPDataError):
            await send(channel.port, mail("alice@acme.example").as_bytes(), "alice@acme.example")
    finally:
        await channel.stop()
    assert seen[0].authenticity.verdict == "none" and seen[0].authenticity.evidence == ()


async def test_over_imap_the_mailbox_providers_header_decides(storage: Storage) -> None:
    """Mail read from a mailbox: only the provider's (trusted, topmost) header counts; the one
    the sender wrote into the message, claiming the same authserv-id, is below it."""
    await seed(storage)
    server = Dovecot()
    server.start()
    settings = ImapSettings(enabled=True, host="127.0.0.1", port=server.port, ssl=False,
                            user=server.user, password=SecretStr(server.password),
                            poll_seconds=0.2, idle_seconds=2)  # fmt: skip
    trusted = AuthenticationSettings(trusted_authserv_ids=["mx.provider.example"])
    intake = with_upstream_verdict(make_pipeline(storage, notify_emails=()), trusted)
    channel = ImapChannel(settings, storage.sessions, lambda: NOW, backoff_base=0.05)
    forged_ar = (
        "Authentication-Results",
        "mx.provider.example; dmarc=pass header.from=acme.example",
    )
    spoof = mail("Alice <alice@acme.example>", "Spoofed", headers=(forged_ar,))
    server.deliver(
        b"Authentication-Results: mx.provider.example; dkim=pass header.d=evil.example;\r\n"
        b" spf=pass smtp.mailfrom=evil.example; dmarc=fail header.from=acme.example\r\n"
        + spoof.as_bytes(policy=spoof.policy.clone(linesep="\r\n"))
    )
    try:
        await channel.start(intake)
        for _ in range(1200):
            if await tickets(storage):
                break
            await asyncio.sleep(0.05)
    finally:
        await channel.stop()
        server.stop()
        server.wait_stopped()
    [ticket] = await tickets(storage)
    assert ticket.contact_status == "known" and "sender_unverified" in ticket.flags
    assert ticket.decision["authenticity"]["evidence"] == [
        "Authentication-Results from mx.provider.example: dmarc=fail"
    ]


async def test_mail_our_checks_choke_on_counts_as_unverified() -> None:
    def exploding(name: bytes, timeout: float = 5) -> bytes | None:
        raise RuntimeError("resolver exploded")

    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: NOW,
        sender_checks=SenderChecks(verify_dkim=True, txt=exploding),
    )
    session = Session(asyncio.get_running_loop())
    session.peer = ("127.0.0.1", 25025)
    raw = signed(mail("alice@acme.example"), "acme.example", key("acme"))
    message = inbound_from_raw(raw, received_at=NOW)
    checked = await channel.authenticate(message, session, "alice@acme.example")
    assert checked.authenticity == Authenticity("fail", ("our check could not run: RuntimeError",))
