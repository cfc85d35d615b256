"""Email end to end over real sockets: in by SMTP, the acknowledgement out to a real sink,
bounces of it back in, two instances that must not loop, and `intake serve` as a process."""

from __future__ import annotations

import asyncio
import email
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from dovecot import Dovecot
from pydantic import SecretStr
from sqlalchemy import select

from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service
from intake.config import ImapSettings, Settings, SmtpSettings
from storage import contacts, db
from storage.models import Outbox, Suppression, Ticket


class Sink:
    """A real SMTP server (aiosmtpd) that keeps what it receives: the outbound relay."""

    def __init__(self) -> None:
        self.received: list[tuple[Envelope, Message]] = []
        self.arrived = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        self.received.append((envelope, email.message_from_bytes(raw, policy=policy.default)))
        self.arrived.set()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: SMTP(self, loop=loop), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"sink got {len(self.received)} of {count} messages")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.5)
            except TimeoutError:
                pass


def settings_for(domain: str, outbound_port: int, smtp_port: int = 0) -> Settings:
    values: dict[str, Any] = {
        "policy": {"name": "four-tier"},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "domains": [domain]},
        "web": {"enabled": False},
        "outbound": {"smtp": {"host": "127.0.0.1", "port": outbound_port,
                              "from": f"support@{domain}"}},
    }  # fmt: skip
    return Settings(**values)


async def running(settings: Settings, storage: Storage) -> Service:
    service = Service(settings, storage, await build_pipeline(settings, storage))
    service.deliverer.idle = 0.05
    await service.start()
    return service


async def known_customer(storage: Storage) -> None:
    """customer.example is a customer's domain: alice@ is known, so her acknowledgement may
    quote her subject (one to an unidentified sender never does)."""
    async with storage.sessions.begin() as session:
        await contacts.upsert_organization(
            session, name="Customer", plan="standard", policy=None, support_start=None,
            region=None, domains=("customer.example",),
        )  # fmt: skip


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    relay = Sink()
    await relay.start()
    yield relay
    await relay.stop()


def customer_mail(subject: str = "Export fails", **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Alice Customer <alice@customer.example>"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = "<c1@customer.example>"
    mail["References"] = "<c0@customer.example>"
    for name, value in headers.items():
        mail[name] = value
    mail.set_content("The export shows 'error 500' since this morning.")
    return mail


async def test_acknowledgement_arrives_threaded_and_marked(storage: Storage, sink: Sink) -> None:
    await known_customer(storage)
    service = await running(settings_for("support.example.com", sink.port), storage)
    try:
        smtp_port = service.channels[0].port
        await aiosmtplib.send(customer_mail(), hostname="127.0.0.1", port=smtp_port)
        await sink.wait_for(1)
    finally:
        await service.stop()
    envelope, ack = sink.received[0]
    assert envelope.rcpt_tos == ["alice@customer.example"]
    assert envelope.mail_from.startswith("support+sup-")  # bounces come back tokened
    assert str(ack["Subject"]).startswith("[SUP-") and str(ack["Subject"]).endswith(
        "] Re: Export fails"
    )
    assert ack["In-Reply-To"] == "<c1@customer.example>"
    assert str(ack["References"]).split() == ["<c0@customer.example>", "<c1@customer.example>"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["X-Auto-Response-Suppress"] == "All"
    assert ack["X-Intake-Loop"] == "support@support.example.com"
    assert str(ack["Message-ID"]).strip().startswith("<sup-")
    assert ack["Reply-To"] == envelope.mail_from
    assert ack.get_body(("plain",)) is not None and ack.get_body(("html",)) is not None
    text = ack.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "we have received your request" in text


async def test_no_header_injection_from_a_hostile_subject(storage: Storage, sink: Sink) -> None:
    await known_customer(storage)
    service = await running(settings_for("support.example.com", sink.port), storage)
    raw = (
        b"From: alice@customer.example\r\nTo: support@support.example.com\r\n"
        b"Subject: =?utf-8?q?hello=0D=0ABcc:_victim@else.example=0D=0AX-Evil:_1?=\r\n"
        b"Message-ID: <inj@customer.example>\r\n\r\nHi.\r\n"
    )
    try:
        await aiosmtplib.send(raw, sender="alice@customer.example",
                              recipients=["support@support.example.com"],
                              hostname="127.0.0.1", port=service.channels[0].port)  # fmt: skip
        await sink.wait_for(1)
    finally:
        await service.stop()
    envelope, ack = sink.received[0]
    assert envelope.rcpt_tos == ["alice@customer.example"]
    assert ack["Bcc"] is None and ack["X-Evil"] is None
    assert "Bcc: victim" in str(ack["Subject"])  # kept as text, on one line


async def test_bounce_of_our_ack_is_recorded_and_suppresses(storage: Storage, sink: Sink) -> None:
    service = await running(settings_for("support.example.com", sink.port), storage)
    try:
        port = service.channels[0].port
        await aiosmtplib.send(customer_mail(), hostname="127.0.0.1", port=port)
        await sink.wait_for(1)
        envelope, _ = sink.received[0]
        report = (
            "From: MAILER-DAEMON@mx.customer.example\r\n"
            f"To: {envelope.mail_from}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Message-ID: <dsn1@mx.customer.example>\r\nAuto-Submitted: auto-replied\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
            "\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
            "Final-Recipient: rfc822; alice@customer.example\r\nAction: failed\r\n"
            "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n--b--\r\n"
        ).encode()
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
            await client.sendmail("", [envelope.mail_from], report)  # MAIL FROM:<>
        again = customer_mail("Another problem")
        again.replace_header("Message-ID", "<c2@customer.example>")
        await aiosmtplib.send(again, hostname="127.0.0.1", port=port)
        await asyncio.sleep(0.5)
    finally:
        await service.stop()
    async with storage.sessions() as session:
        tickets = list(await session.scalars(select(Ticket).order_by(Ticket.id)))
        suppressed = await session.get(Suppression, "alice@customer.example")
        acks = list(await session.scalars(select(Outbox).where(Outbox.kind == "ack")))
    assert len(tickets) == 2  # the report became no ticket
    assert tickets[0].decision["bounces"][0]["status"] == "5.1.1"
    assert suppressed is not None and "5.1.1" in suppressed.reason
    assert len(acks) == 1 and len(sink.received) == 1  # none to the bouncing address


async def test_two_instances_stop_after_one_exchange(tmp_path: Path) -> None:
    engines = []
    services: list[Service] = []
    try:
        # A's outbound relay is B's SMTP server and B's is A's.
        stores = []
        for name in ("a", "b"):
            engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / name}.db")
            await db.upgrade(engine)
            engines.append(engine)
            stores.append(Storage(engine, db.session_factory(engine)))
        a_port, b_port = _free_port(), _free_port()
        a = await running(settings_for("a.example", b_port, a_port), stores[0])
        services.append(a)
        b = await running(settings_for("b.example", a_port, b_port), stores[1])
        services.append(b)
        # B's agent writes to A once, by hand (no robot headers).
        first = EmailMessage()
        first["From"] = "support@b.example"
        first["To"] = "support@a.example"
        first["Subject"] = "Question from a partner desk"
        first["Message-ID"] = "<p1@b.example>"
        first.set_content("Hello, please check our account.")
        await aiosmtplib.send(first, hostname="127.0.0.1", port=a.channels[0].port)
        await asyncio.sleep(2.0)  # room for a loop to show itself, were there one
    finally:
        for service in services:
            await service.stop()
    counts = []
    for store in stores:
        async with store.sessions() as session:
            counts.append(
                (
                    len(list(await session.scalars(select(Ticket)))),
                    len(list(await session.scalars(select(Outbox).where(Outbox.kind == "ack")))),
                )
            )
    for engine in engines:
        await engine.dispose()
    assert counts[0] == (1, 1)  # A: the partner's mail, acknowledged once
    assert counts[1] == (1, 0)  # B: A's acknowledgement, a machine's: never answered


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_drains_on_sigterm_and_exits_zero(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "intake.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/intake.db"\n'
        f'[smtp]\nport = {port}\ndomains = ["support.example.com"]\n'
        "[outbound.smtp]\nport = 9\n[web]\nenabled = false\n",
        encoding="utf-8",
    )
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "intake.cli", "serve", "--config", str(config)],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError((tmp_path / "serve.log").read_text()) from None
                time.sleep(0.1)
        asyncio.run(aiosmtplib_send(customer_mail(), port))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    listed = subprocess.run(
        [sys.executable, "-m", "intake.cli", "tickets", "list", "--json", "--config", str(config)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**os.environ},
    )  # fmt: skip
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["subject"] == "Export fails" and row["channel"] == "email"


async def aiosmtplib_send(mail: EmailMessage, port: int) -> None:
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=port)


async def test_mail_through_dovecot_is_acknowledged(
    storage: Storage, sink: Sink, dovecot: Dovecot
) -> None:
    settings = settings_for("support.example.com", sink.port).model_copy(
        update={
            "smtp": SmtpSettings(enabled=False),
            "imap": ImapSettings(
                enabled=True, host="127.0.0.1", port=dovecot.port, ssl=False, user=dovecot.user,
                password=SecretStr(dovecot.password), poll_seconds=0.2, idle_seconds=2,
            ),
        }
    )  # fmt: skip
    await known_customer(storage)
    service = await running(settings, storage)
    try:
        dovecot.deliver(customer_mail("Import stuck").as_bytes())
        await sink.wait_for(1)
    finally:
        await service.stop()
    envelope, ack = sink.received[0]
    assert envelope.rcpt_tos == ["alice@customer.example"]
    assert str(ack["Subject"]).endswith("] Re: Import stuck")
    assert ack["In-Reply-To"] == "<c1@customer.example>"
    with dovecot.client() as client:
        client.select_folder("INBOX")
        assert client.search(["UNSEEN"]) == []  # confirmed only after the commit
    async with storage.sessions() as session:
        [ticket] = list(await session.scalars(select(Ticket)))
    assert ticket.subject == "Import stuck"
