"""kill -9 of `intake serve` in the middle of its work, then a restart: nothing confirmed is
lost, nothing is stored twice, the queued acknowledgements go out, and it serves again."""

from __future__ import annotations

import asyncio
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from dovecot import Dovecot
from fake_twilio import FakeTwilio
from harness import (
    ACCOUNT,
    MESSAGING,
    PUBLIC,
    TOKEN,
    Database,
    Served,
    whatsapp,
    write_config,
)
from serving import Relay, free_port, wait_until
from twilio.request_validator import RequestValidator

from storage.models import Message, Outbox, Ticket

MESSAGES = 200
CONNECTIONS = 10
KILL_AFTER = 60  # confirmed messages before the kill
WEBHOOKS = 40


def customer_mail(n: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Customer {n} <c{n}@customer.example>"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = f"Export {n} fails"
    mail["Message-ID"] = f"<load-{n}@customer.example>"
    mail.set_content(f"Request number {n}: the export shows error 500.")
    return mail


def sqlite_service(tmp_path: Path, relay: Relay, **sections: dict[str, Any]) -> Served:
    smtp_port = free_port()
    config = write_config(
        tmp_path / "intake.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"},
            "smtp": {"port": smtp_port, "domains": ["support.example.com"]},
            "outbound.smtp": {"port": relay.port, "from": "support@support.example.com"},
            "web": {"enabled": False},
            # Hundreds of strangers, every one acknowledged: lift the unidentified budget.
            "pipeline": {"unidentified_acks_per_hour": 100_000},
            **sections,
        },
    )
    return Served(config, smtp_port=smtp_port)


async def send_load(port: int, numbers: list[int], answers: dict[int, int | str]) -> None:
    """One SMTP connection sending `numbers` in turn; records each reply (or why none)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
    try:
        await client.connect()
        for n in numbers:
            try:
                await client.send_message(customer_mail(n))
                answers[n] = 250
            except aiosmtplib.SMTPResponseException as exc:
                answers[n] = exc.code
    except (aiosmtplib.SMTPException, OSError) as exc:  # the server died under us
        for n in numbers:
            answers.setdefault(n, type(exc).__name__)
    finally:
        client.close()


async def test_kill_during_smtp_load_loses_and_doubles_nothing(
    tmp_path: Path, relay: Relay
) -> None:
    served = sqlite_service(tmp_path, relay)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    answers: dict[int, int | str] = {}
    await served.start()
    try:
        chunks = [list(range(i, MESSAGES, CONNECTIONS)) for i in range(CONNECTIONS)]
        load = [asyncio.create_task(send_load(served.smtp_port, c, answers)) for c in chunks]
        confirmed = lambda: sum(1 for code in answers.values() if code == 250)  # noqa: E731
        await wait_until(lambda: confirmed() >= KILL_AFTER, f"{KILL_AFTER} messages confirmed")
        await served.kill()
        await asyncio.gather(*load)
        assert len(answers) == MESSAGES  # every message has an outcome
        accepted = {n for n, code in answers.items() if code == 250}
        assert KILL_AFTER <= len(accepted) < MESSAGES, "the kill did not land mid-load"

        stored = Counter(m.channel_message_id for m in await database.rows(Message))
        assert all(stored[f"load-{n}@customer.example"] == 1 for n in accepted)
        assert max(stored.values()) == 1  # not confirmed: stored or not, but never twice
        # What the dead process may have had in hand: the restarted one takes it over once
        # the dead one's lease (20 s, no longer renewed) has run out.
        leased = [o.id for o in await database.rows(Outbox, Outbox.status == "pending")]

        await served.start()
        # The senders retry what was not confirmed (any reply but 250, or none at all).
        retried: dict[int, int | str] = {}
        left = sorted(set(range(MESSAGES)) - accepted)
        await asyncio.gather(
            *(
                send_load(served.smtp_port, left[i::CONNECTIONS], retried)
                for i in range(CONNECTIONS)
            )
        )
        assert set(retried.values()) <= {250}
        stored = Counter(m.channel_message_id for m in await database.rows(Message))
        assert len(stored) == MESSAGES and set(stored.values()) == {1}
        assert len(await database.rows(Ticket)) == MESSAGES

        expected = {f"c{n}@customer.example" for n in range(MESSAGES)}
        await wait_until(lambda: set(relay.recipients()) == expected, "every acknowledgement")

        async def all_sent() -> bool:
            outbox = await database.rows(Outbox)
            return {o.status for o in outbox} == {"sent"}

        await wait_until(all_sent, "the outbox to be empty")
        # At least once: only a notice the dead process had in hand may have gone twice.
        twice = [r for r, count in Counter(relay.recipients()).items() if count > 1]
        assert len(twice) <= len(leased)
        assert await served.stop() == 0, served.log_text()
    finally:
        if served.process is not None and served.process.poll() is None:
            await served.kill()
    assert "Traceback" not in served.log_text()


async def post_webhooks(port: int, numbers: list[int], answers: dict[int, int | str]) -> None:
    """Twilio's side: one request after another, each signed as Twilio signs it."""
    validator = RequestValidator(TOKEN)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for n in numbers:
            fields = whatsapp(n)
            signature = validator.compute_signature(PUBLIC + MESSAGING, fields)
            try:
                reply = await client.post(
                    MESSAGING, data=fields, headers={"X-Twilio-Signature": signature}
                )
                answers[n] = reply.status_code
            except httpx.TransportError as exc:  # the server died under us
                for rest in numbers[numbers.index(n) :]:
                    answers[rest] = type(exc).__name__
                return


async def test_kill_during_twilio_webhooks_then_twilio_retries(
    tmp_path: Path, relay: Relay
) -> None:
    fake = FakeTwilio(ACCOUNT, TOKEN)
    await fake.start()
    web_port = free_port()
    served = sqlite_service(
        tmp_path,
        relay,
        web={"enabled": True, "port": web_port, "public_url": PUBLIC},
        twilio={"enabled": True, "account_sid": ACCOUNT, "auth_token": TOKEN,
                "api_base": fake.base_url, "whatsapp_from": "+14155238886"},
    )  # fmt: skip
    served.web_port = web_port
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    answers: dict[int, int | str] = {}
    await served.start()
    try:
        chunks = [list(range(i, WEBHOOKS, 4)) for i in range(4)]
        load = [asyncio.create_task(post_webhooks(web_port, c, answers)) for c in chunks]
        await wait_until(lambda: list(answers.values()).count(200) >= 10, "10 webhooks answered")
        await served.kill()
        await asyncio.gather(*load)
        assert 10 <= list(answers.values()).count(200) < WEBHOOKS
        leased = [o.id for o in await database.rows(Outbox, Outbox.status == "pending")]

        await served.start()
        # Twilio retries what it got no 200 for, and, after a timeout, even what it did.
        retried: dict[int, int | str] = {}
        await asyncio.gather(*(post_webhooks(web_port, c, retried) for c in chunks))
        assert set(retried.values()) == {200}
        stored = Counter(m.channel_message_id for m in await database.rows(Message))
        assert len(stored) == WEBHOOKS and set(stored.values()) == {1}
        assert len(await database.rows(Ticket)) == WEBHOOKS

        expected = {f"whatsapp:+420601{n:06d}" for n in range(WEBHOOKS)}
        sent_to = lambda: [s.form["To"] for s in fake.sent()]  # noqa: E731
        await wait_until(lambda: set(sent_to()) == expected, "an acknowledgement to each")
        twice = [to for to, count in Counter(sent_to()).items() if count > 1]
        assert len(twice) <= len(leased)
        assert await served.stop() == 0, served.log_text()
    finally:
        if served.process is not None and served.process.poll() is None:
            await served.kill()
        await fake.stop()
    assert "Traceback" not in served.log_text()


# Enough that the kill lands mid-mailbox even when a loaded machine slows the test down.
IMAP_MESSAGES = 120


def imap_mail(n: int) -> bytes:
    return (
        f"From: Carol {n} <carol{n}@customer.example>\r\nTo: support@support.example.com\r\n"
        f"Subject: Export fails #{n}\r\nMessage-ID: <imap-kill-{n}@customer.example>\r\n"
        "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "\r\nThe PDF export shows error 500.\r\n"
    ).encode()


def seen_ids(server: Dovecot) -> set[str]:
    with server.client() as client:
        client.select_folder("INBOX", readonly=True)
        found = client.search(["SEEN"])
        headers = client.fetch(found, [b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    return {
        data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip().strip("<>")
        for data in headers.values()
    }


async def test_kill_while_reading_imap_between_commit_and_flag(
    tmp_path: Path, relay: Relay
) -> None:
    server = Dovecot()
    server.start()
    for n in range(IMAP_MESSAGES):
        server.deliver(imap_mail(n))
    served = sqlite_service(
        tmp_path,
        relay,
        imap={"enabled": True, "host": "127.0.0.1", "port": server.port, "ssl": False,
              "user": server.user, "password": server.password, "poll_seconds": 0.2},
    )  # fmt: skip
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    everyone = {f"imap-kill-{n}@customer.example" for n in range(IMAP_MESSAGES)}
    try:
        await served.start()

        async def some_stored() -> bool:
            return len(await database.rows(Message)) >= 10

        await wait_until(some_stored, "the first tickets from IMAP")
        await served.kill()
        stored = {m.channel_message_id for m in await database.rows(Message)}
        seen = await asyncio.to_thread(seen_ids, server)
        assert seen <= stored  # flagged only after its commit
        assert stored < everyone, "the kill did not land mid-mailbox"

        await served.start()
        await wait_until(
            lambda: asyncio.to_thread(lambda: seen_ids(server) == everyone), "all flagged"
        )
        counted = Counter(m.channel_message_id for m in await database.rows(Message))
        assert set(counted) == everyone and set(counted.values()) == {1}
        assert len(await database.rows(Ticket)) == IMAP_MESSAGES
        expected = {f"carol{n}@customer.example" for n in range(IMAP_MESSAGES)}
        await wait_until(lambda: set(relay.recipients()) == expected, "every acknowledgement")
        assert await served.stop() == 0, served.log_text()
    finally:
        if served.process is not None and served.process.poll() is None:
            await served.kill()
        server.wait_stopped()
    assert "Traceback" not in served.log_text()
