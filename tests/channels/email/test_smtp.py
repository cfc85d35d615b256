"""Inbound SMTP over real sockets: aiosmtplib talks to our server, tickets land in storage."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
import pytest
import trustme
from pipelines import make_pipeline as build_pipeline
from sqlalchemy import func, select

from channels.email.smtp import SmtpChannel
from intake.cli.app import Storage
from intake.config import SmtpSettings
from intake.errors import TransientError
from intake.messages import InboundMessage, Receipt
from intake.pipeline.pipeline import Pipeline
from storage import db
from storage.models import Message, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def make_pipeline(storage: Storage) -> Pipeline:
    return build_pipeline(storage, secret=b"k" * 32, notify_emails=())


def settings(**overrides: object) -> SmtpSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 0,
        "domains": ["support.example.com"],
        "max_message_bytes": 65536,
    }
    return SmtpSettings.model_validate(values | overrides)  # fmt: skip


@pytest.fixture
async def server(storage: Storage) -> AsyncIterator[SmtpChannel]:
    channel = SmtpChannel(settings(), clock=lambda: NOW)
    await channel.start(make_pipeline(storage))
    yield channel
    await channel.stop()


def message(
    subject: str = "Export fails", message_id: str = "<x1@customer.example>"
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Alice <alice@customer.example>"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    mail.set_content("The export shows error 500.")
    return mail


async def count(storage: Storage, model: type[Ticket] | type[Message]) -> int:
    async with storage.sessions() as session:
        return await session.scalar(select(func.count(model.id))) or 0


async def test_mail_becomes_a_ticket_and_250_names_it(
    storage: Storage, server: SmtpChannel
) -> None:
    errors, reply = await aiosmtplib.send(message(), hostname="127.0.0.1", port=server.port)
    assert errors == {}
    assert reply.startswith("2.0.0 OK SUP-")
    async with storage.sessions() as session:
        ticket = await session.scalar(select(Ticket))
        assert ticket is not None and ticket.subject == "Export fails"
        raw = await session.scalar(select(Message.raw))
    assert raw is not None and b"error 500" in raw


async def test_redelivery_is_one_ticket(storage: Storage, server: SmtpChannel) -> None:
    for _ in range(3):
        await aiosmtplib.send(message(), hostname="127.0.0.1", port=server.port)
    assert await count(storage, Ticket) == 1


async def test_never_a_relay(server: SmtpChannel) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await aiosmtplib.send(message(), recipients=["someone@elsewhere.example"],
                              hostname="127.0.0.1", port=server.port)  # fmt: skip
    [error] = refused.value.recipients
    assert error.code == 550


async def test_too_many_recipients(server: SmtpChannel) -> None:
    recipients = [f"r{n}@support.example.com" for n in range(101)]
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port) as client:
        await client.ehlo()
        await client.mail("alice@customer.example")
        for address in recipients[:100]:
            await client.rcpt(address)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as too_many:
            await client.rcpt(recipients[100])
    assert too_many.value.code == 452


async def test_unparseable_mail_is_still_a_flagged_ticket(
    storage: Storage, server: SmtpChannel
) -> None:
    noise = bytes(range(1, 256)).replace(b"\n", b"").replace(b"\r", b"").replace(b":", b"")
    junk = b"\r\n".join(noise[i : i + 60] for i in range(0, len(noise), 60)) * 3
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port) as client:
        await client.sendmail("x@customer.example", ["support@support.example.com"], junk)
    async with storage.sessions() as session:
        ticket = await session.scalar(select(Ticket))
        raw = await session.scalar(select(Message.raw))
    assert ticket is not None and "unparseable" in ticket.flags
    assert raw is not None and len(raw) > 0


async def test_size_is_advertised_and_enforced(server: SmtpChannel) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port) as client:
        await client.ehlo()
        assert client.supports_extension("size")
        assert client.esmtp_extensions["size"] == "65536"
        assert client.supports_extension("8bitmime") and client.supports_extension("smtputf8")
    big = message()
    big.set_content("x" * 100_000)
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await aiosmtplib.send(big, hostname="127.0.0.1", port=server.port)
    assert refused.value.code == 552


async def test_utf8_addresses_and_8bit_bodies(storage: Storage, server: SmtpChannel) -> None:
    mail = message("Naléhavé: nejde export")
    mail.replace_header("From", "Jiří <jiří@příklad.example>")
    mail.set_content("Export nefunguje, chyba 500.", cte="8bit")
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=server.port)
    async with storage.sessions() as session:
        ticket = await session.scalar(select(Ticket))
    assert ticket is not None and ticket.subject == "Naléhavé: nejde export"
    assert ticket.urgent  # Czech "naléhavé" is an urgent marker


async def test_storage_away_is_451_and_the_server_keeps_serving(storage: Storage) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.real = make_pipeline(storage)
            self.down = True

        async def __call__(self, message: InboundMessage) -> Receipt:
            if self.down:
                raise TransientError("database is locked")
            return await self.real(message)

    flaky = Flaky()
    channel = SmtpChannel(settings(), clock=lambda: NOW)
    await channel.start(flaky)
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await aiosmtplib.send(message(), hostname="127.0.0.1", port=channel.port)
        assert deferred.value.code == 451
        flaky.down = False
        _, reply = await aiosmtplib.send(message(), hostname="127.0.0.1", port=channel.port)
        assert reply.startswith("2.0.0")
    finally:
        await channel.stop()


async def test_postgres_gone_is_451(storage: Storage) -> None:
    # A database that refuses connections: the real pipeline maps it to a transient error.
    engine = db.create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    gone = Storage(engine, db.session_factory(engine))
    channel = SmtpChannel(settings(), clock=lambda: NOW)
    await channel.start(make_pipeline(gone))
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as deferred:
            await aiosmtplib.send(message(), hostname="127.0.0.1", port=channel.port)
        assert deferred.value.code == 451
    finally:
        await channel.stop()
        await engine.dispose()


async def test_connection_cap(storage: Storage) -> None:
    channel = SmtpChannel(settings(), clock=lambda: NOW, max_connections=2)
    await channel.start(make_pipeline(storage))
    clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port) for _ in range(2)]
    try:
        for client in clients:
            await client.connect()
        with pytest.raises(aiosmtplib.SMTPConnectResponseError) as busy:
            await aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port).connect()
        assert busy.value.code == 421
    finally:
        for client in clients:
            await client.quit()
        await channel.stop()


async def test_starttls(storage: Storage, tmp_path: object) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    channel = SmtpChannel(settings(), clock=lambda: NOW, tls_context=server_context)
    await channel.start(make_pipeline(storage))
    try:
        _, reply = await aiosmtplib.send(
            message(), hostname="localhost", port=channel.port, start_tls=True,
            tls_context=client_context,
        )  # fmt: skip
        assert reply.startswith("2.0.0")
    finally:
        await channel.stop()


async def test_stop_finishes_the_message_in_hand(storage: Storage) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    class Slow:
        def __init__(self) -> None:
            self.real = make_pipeline(storage)

        async def __call__(self, message: InboundMessage) -> Receipt:
            started.set()
            await release.wait()
            return await self.real(message)

    channel = SmtpChannel(settings(), clock=lambda: NOW)
    await channel.start(Slow())
    sending = asyncio.create_task(
        aiosmtplib.send(message(), hostname="127.0.0.1", port=channel.port)
    )
    await started.wait()
    stopping = asyncio.create_task(channel.stop())
    await asyncio.sleep(0.2)
    with pytest.raises(OSError):  # no longer accepting
        await aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port, timeout=2).connect()
    release.set()
    _, reply = await sending
    await stopping
    assert reply.startswith("2.0.0")
    assert await count(storage, Ticket) == 1
