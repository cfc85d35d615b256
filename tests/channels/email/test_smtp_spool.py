"""Large mail over real SMTP: DATA past the spool threshold goes to a temporary file, the
message is stored byte for byte with its attachments, and the file is gone afterwards (after
the 250, after a 552, after a dropped connection)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from pipelines import make_pipeline
from sqlalchemy import select

from channels.email.smtp import SmtpChannel
from intake.cli.app import Storage
from intake.config import SmtpSettings
from intake.messages import InboundMessage, Intake, Receipt
from storage.models import Attachment, Blob, Message, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
LIMIT = 2_000_000  # max_message_bytes
THRESHOLD = 16_384  # spool_threshold


def spool_files(folder: Path) -> list[str]:
    """Files of `folder` this process holds open (anonymous temporary files included)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


@pytest.fixture
def spool_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "spool"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


class Watching:
    """The pipeline, noting whether a spool file was open while it ran."""

    def __init__(self, intake: Intake, folder: Path) -> None:
        self.intake = intake
        self.folder = folder
        self.open_during: list[list[str]] = []

    async def __call__(self, message: InboundMessage) -> Receipt:
        self.open_during.append(spool_files(self.folder))
        return await self.intake(message)


@pytest.fixture
async def served(
    storage: Storage, spool_folder: Path
) -> AsyncIterator[tuple[SmtpChannel, Watching]]:
    settings = SmtpSettings(host="127.0.0.1", port=0, max_message_bytes=LIMIT)
    channel = SmtpChannel(settings, clock=lambda: NOW, spool_threshold=THRESHOLD)
    watching = Watching(make_pipeline(storage, secret=b"k" * 32, notify_emails=()), spool_folder)
    await channel.start(watching)
    yield channel, watching
    await channel.stop()


def large_mail(size: int, message_id: str = "<large@customer.example>") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Alice <alice@customer.example>"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = "Export fails: logs attached"
    mail["Message-ID"] = message_id
    mail.set_content("The PDF export shows error 500 since this morning.")
    mail.add_attachment(
        os.urandom(size), maintype="application", subtype="gzip", filename="logs.tar.gz"
    )
    mail.add_attachment(b"build 4711\n", maintype="text", subtype="plain", filename="version.txt")
    return mail


async def test_large_mail_is_stored_byte_for_byte(
    storage: Storage, served: tuple[SmtpChannel, Watching], spool_folder: Path
) -> None:
    channel, watching = served
    mail = large_mail(600_000)
    raw = mail.as_bytes().replace(b"\n", b"\r\n")  # as the client sends it
    logs = mail.get_payload()[1].get_payload(decode=True)
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port) as client:
        _, reply = await client.sendmail(
            "alice@customer.example", ["support@support.example.com"], raw
        )
    assert reply.startswith("2.0.0 OK SUP-")
    assert len(watching.open_during) == 1 and len(watching.open_during[0]) == 1  # it was spooled
    async with storage.sessions() as session:
        ticket = await session.scalar(select(Ticket))
        stored = (await session.execute(select(Message.raw, Message.raw_sha256))).one()
        kept = {
            row.filename: row
            for row in await session.execute(
                select(Attachment.filename, Attachment.size, Attachment.sha256, Blob.data).join(
                    Blob, Blob.sha256 == Attachment.sha256
                )
            )
        }
        raw_blob = await session.scalar(select(Blob.data).where(Blob.sha256 == stored.raw_sha256))
    assert ticket is not None and ticket.subject == "Export fails: logs attached"
    assert stored.raw == b"" and raw_blob == raw
    assert stored.raw_sha256 == hashlib.sha256(raw).hexdigest()
    assert sorted(kept) == ["logs.tar.gz", "version.txt"]
    assert kept["logs.tar.gz"].data == logs and kept["logs.tar.gz"].size == len(logs)
    assert kept["logs.tar.gz"].sha256 == hashlib.sha256(logs).hexdigest()
    assert kept["version.txt"].data == b"build 4711\n"
    assert spool_files(spool_folder) == []


async def test_the_same_large_mail_again_is_one_ticket(
    storage: Storage, served: tuple[SmtpChannel, Watching]
) -> None:
    channel, _ = served
    for _ in range(2):
        await aiosmtplib.send(large_mail(100_000), hostname="127.0.0.1", port=channel.port)
    async with storage.sessions() as session:
        assert len((await session.scalars(select(Ticket.id))).all()) == 1


class Client:
    """An SMTP client by hand: it sends no SIZE with MAIL, and may hang up mid-DATA."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        client = cls(*await asyncio.open_connection("127.0.0.1", port))
        await client.reply()  # the banner
        await client.command(b"EHLO client.example")
        return client

    async def reply(self) -> bytes:
        line = await self.reader.readline()
        while line[3:4] == b"-":  # a multi-line reply goes on
            line = await self.reader.readline()
        return line

    async def command(self, line: bytes) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def begin_data(self) -> None:
        assert (await self.command(b"MAIL FROM:<a@customer.example>")).startswith(b"250")
        assert (await self.command(b"RCPT TO:<support@support.example.com>")).startswith(b"250")
        assert (await self.command(b"DATA")).startswith(b"354")


def body(size: int) -> bytes:
    return (b"x" * 70 + b"\r\n") * (size // 72 + 1)


async def test_over_the_limit_is_552_and_serving_goes_on(
    storage: Storage, served: tuple[SmtpChannel, Watching], spool_folder: Path
) -> None:
    channel, watching = served
    client = await Client.connect(channel.port)
    await client.begin_data()
    client.writer.write(b"Subject: too big\r\n\r\n" + body(LIMIT))
    assert (await client.command(b".")).startswith(b"552 5.3.4")
    assert spool_files(spool_folder) == [] and watching.open_during == []
    await client.begin_data()  # the same session goes on
    client.writer.write(b"Subject: fine\r\nMessage-ID: <next@customer.example>\r\n\r\n")
    client.writer.write(body(THRESHOLD * 2))
    assert (await client.command(b".")).startswith(b"250 2.0.0 OK SUP-")
    client.writer.close()
    assert len(watching.open_during) == 1 and len(watching.open_during[0]) == 1  # spooled
    assert spool_files(spool_folder) == []
    async with storage.sessions() as session:
        assert (await session.scalars(select(Message.channel_message_id))).all() == [
            "next@customer.example"
        ]
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:  # one that sends SIZE
        await aiosmtplib.send(large_mail(LIMIT), hostname="127.0.0.1", port=channel.port)
    assert refused.value.code == 552


async def test_a_dropped_connection_leaves_no_spool_file(
    served: tuple[SmtpChannel, Watching], spool_folder: Path
) -> None:
    channel, watching = served
    client = await Client.connect(channel.port)
    await client.begin_data()
    client.writer.write(b"Subject: half\r\n\r\n" + body(THRESHOLD * 4))
    await client.writer.drain()
    for _ in range(500):  # until the server has read past the threshold
        if spool_files(spool_folder):
            break
        await asyncio.sleep(0.01)
    assert spool_files(spool_folder)
    client.writer.close()
    for _ in range(500):  # until the server has noticed the dropped connection
        if not spool_files(spool_folder):
            break
        await asyncio.sleep(0.01)
    assert spool_files(spool_folder) == []
    assert watching.open_during == []  # nothing half-read reached the pipeline
