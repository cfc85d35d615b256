"""The database away for a while under a running `intake serve`: the channels say "try again
later" (SMTP 451, webhooks 503), the background loops log and keep going, and when the
database is back everything works again without a restart."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import pytest
from dovecot import Dovecot
from fake_twilio import FakeTwilio
from harness import (
    ACCOUNT,
    MESSAGING,
    PUBLIC,
    TOKEN,
    Database,
    Proxy,
    Served,
    whatsapp,
    write_config,
)
from serving import Relay, free_port, wait_until
from twilio.request_validator import RequestValidator

from storage.models import Message, Outbox

POSTGRES_DSN = os.environ.get("INTAKE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def mail(n: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"c{n}@customer.example"
    message["To"] = "support@support.example.com"
    message["Subject"] = f"Request {n}"
    message["Message-ID"] = f"<gone-{n}@customer.example>"
    message.set_content("The export fails.")
    return message


async def smtp_reply(port: int, n: int) -> int:
    try:
        await aiosmtplib.send(mail(n), hostname="127.0.0.1", port=port, timeout=60)
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code
    return 250


async def webhook_status(port: int, n: int) -> httpx.Response:
    fields = whatsapp(n)
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + MESSAGING, fields)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        return await client.post(MESSAGING, data=fields, headers={"X-Twilio-Signature": signature})


async def health(port: int) -> int:
    async with httpx.AsyncClient(timeout=60) as client:
        return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio(ACCOUNT, TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


def service(tmp_path: Path, url: str, relay: Relay, twilio: FakeTwilio) -> Served:
    smtp_port, web_port = free_port(), free_port()
    sections: dict[str, dict[str, Any]] = {
        "database": {"url": url},
        "smtp": {"port": smtp_port, "domains": ["support.example.com"]},
        "outbound.smtp": {"port": relay.port, "from": "support@support.example.com"},
        "web": {"port": web_port, "public_url": PUBLIC},
        "twilio": {"enabled": True, "account_sid": ACCOUNT, "auth_token": TOKEN,
                   "api_base": twilio.base_url, "whatsapp_from": "+14155238886"},
        "sla": {"check_seconds": 0.5},  # the watcher meets the outage too
    }  # fmt: skip
    return Served(write_config(tmp_path / "intake.toml", sections), smtp_port=smtp_port,
                  web_port=web_port)  # fmt: skip


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    """A database of its own on the machine's PostgreSQL (whose server is never stopped)."""
    name = f"faults_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_postgresql_cut_away_and_back(
    tmp_path: Path, relay: Relay, twilio: FakeTwilio, postgres_database: str
) -> None:
    host, port = "127.0.0.1", 5432
    proxy = Proxy((host, port))
    await proxy.start()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{postgres_database}"
    served = service(tmp_path, url, relay, twilio)
    database = Database(f"postgresql+asyncpg://postgres@{host}:{port}/{postgres_database}")
    await served.start()
    try:
        assert await smtp_reply(served.smtp_port, 0) == 250
        await wait_until(lambda: relay.recipients() == ["c0@customer.example"], "the first ack")

        await proxy.cut()
        assert await smtp_reply(served.smtp_port, 1) == 451
        assert (await webhook_status(served.web_port or 0, 1)).status_code == 503
        assert await health(served.web_port or 0) == 503
        failing = ("outbox delivery pass failed", "SLA watch pass failed")
        await wait_until(lambda: all(f in served.log_text() for f in failing), "loops to fail")
        assert served.process is not None and served.process.poll() is None

        await proxy.restore()
        # No restart, no retry needed: the first message after the return is stored.
        assert await smtp_reply(served.smtp_port, 2) == 250
        assert (await webhook_status(served.web_port or 0, 2)).status_code == 200
        assert await health(served.web_port or 0) == 200
        # The senders retry what was deferred.
        assert await smtp_reply(served.smtp_port, 1) == 250
        assert (await webhook_status(served.web_port or 0, 1)).status_code == 200
        expected = {f"c{n}@customer.example" for n in range(3)}
        await wait_until(lambda: set(relay.recipients()) == expected, "the acks after the cut")
        await wait_until(lambda: len(twilio.sent()) == 2, "the WhatsApp acks")
        assert len(await database.rows(Message)) == 5

        # A blink (a restart, a failover) while nothing is going on: the pooled connections
        # are dead, yet the next message is stored at once (it is not told to come back).
        await proxy.cut()
        await proxy.restore()
        assert await smtp_reply(served.smtp_port, 3) == 250
        assert (await webhook_status(served.web_port or 0, 3)).status_code == 200
        assert await served.stop() == 0, served.log_text()
    finally:
        if served.process is not None and served.process.poll() is None:
            await served.kill()
        await proxy.stop()


async def test_sqlite_locked_by_another_process_then_released(
    tmp_path: Path, relay: Relay, twilio: FakeTwilio
) -> None:
    path = tmp_path / "intake.db"
    # Writers give up after a second of waiting for the lock, so the test need not wait 30.
    served = service(tmp_path, f"sqlite+aiosqlite:///{path}?timeout=1", relay, twilio)
    await served.start()
    holder: sqlite3.Connection | None = None
    try:
        assert await smtp_reply(served.smtp_port, 0) == 250
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # e.g. a backup tool or a careless sqlite3 shell
        assert await smtp_reply(served.smtp_port, 1) == 451
        assert (await webhook_status(served.web_port or 0, 1)).status_code == 503
        await wait_until(lambda: "outbox delivery pass failed" in served.log_text(), "a failure")
        holder.execute("ROLLBACK")
        holder.close()
        holder = None
        assert await smtp_reply(served.smtp_port, 1) == 250
        assert (await webhook_status(served.web_port or 0, 1)).status_code == 200
        expected = {"c0@customer.example", "c1@customer.example"}
        await wait_until(lambda: set(relay.recipients()) == expected, "the acks after the lock")
        await wait_until(lambda: len(twilio.sent()) == 1, "the WhatsApp ack")
        outbox = await Database(f"sqlite+aiosqlite:///{path}").rows(Outbox)
        assert len(outbox) == 3
        assert await served.stop() == 0, served.log_text()
    finally:
        if holder is not None:
            holder.close()
        if served.process is not None and served.process.poll() is None:
            await served.kill()


def imap_mail(n: int) -> bytes:
    return (
        f"From: Dana <dana{n}@customer.example>\r\nTo: support@support.example.com\r\n"
        f"Subject: Import stuck {n}\r\nMessage-ID: <imap-gone-{n}@customer.example>\r\n"
        "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "\r\nThe import has been stuck since 9:00.\r\n"
    ).encode()


def unseen_count(server: Dovecot) -> int:
    with server.client() as client:
        client.select_folder("INBOX", readonly=True)
        return len(client.search(["UNSEEN"]))


async def test_imap_waits_while_sqlite_is_locked(tmp_path: Path, relay: Relay) -> None:
    server = Dovecot()
    server.start()
    path = tmp_path / "intake.db"
    smtp_port = free_port()  # unused here, but it tells when the service is up
    config = write_config(
        tmp_path / "intake.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{path}?timeout=1"},
            "smtp": {"port": smtp_port, "domains": ["support.example.com"]},
            "outbound.smtp": {"port": relay.port, "from": "support@support.example.com"},
            "web": {"enabled": False},
            "imap": {"enabled": True, "host": "127.0.0.1", "port": server.port, "ssl": False,
                     "user": server.user, "password": server.password, "poll_seconds": 0.2},
        },
    )  # fmt: skip
    served = Served(config, smtp_port=smtp_port)
    database = Database(f"sqlite+aiosqlite:///{path}")
    holder: sqlite3.Connection | None = None
    try:
        server.deliver(imap_mail(0))
        await served.start()
        await wait_until(
            lambda: asyncio.to_thread(lambda: unseen_count(server) == 0), "the first mail"
        )

        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        server.deliver(imap_mail(1))
        await wait_until(
            lambda: any(
                "IMAP" in line and "retry in" in line for line in served.log_text().splitlines()
            ),
            "the poller to meet the lock",
        )
        assert await asyncio.to_thread(unseen_count, server) == 1  # not flagged: not stored
        holder.execute("ROLLBACK")
        holder.close()
        holder = None

        await wait_until(lambda: asyncio.to_thread(lambda: unseen_count(server) == 0), "the retry")
        stored = sorted(m.channel_message_id for m in await database.rows(Message))
        assert stored == ["imap-gone-0@customer.example", "imap-gone-1@customer.example"]
        expected = {"dana0@customer.example", "dana1@customer.example"}
        await wait_until(lambda: set(relay.recipients()) == expected, "both acks")
        assert await served.stop() == 0, served.log_text()
    finally:
        if holder is not None:
            holder.close()
        if served.process is not None and served.process.poll() is None:
            await served.kill()
        server.wait_stopped()
