"""Spam through a real engine: SpamAssassin's spamd on loopback (local tests only, no DNS, no
network), asked by the pipeline before it decides. Spam is machine mail and never
acknowledged; with the daemon down or silent, mail goes on and the decision says so."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import pytest
from pipelines import make_pipeline
from serving import free_port
from sqlalchemy import select

from channels.email.smtp import SmtpChannel
from intake.cli.app import Storage, spam_checker
from intake.config import SmtpSettings, load_settings
from intake.spam.spamassassin import SpamAssassin
from storage import contacts
from storage.models import Outbox, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
# Deterministic: no Bayes (learning would make scores depend on what ran before), no DNS.
LOCAL_CF = "use_bayes 0\nbayes_auto_learn 0\nskip_rbl_checks 1\ndns_available no\n"


@dataclass(frozen=True)
class Spamd:
    port: int
    log: Path


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"PING SPAMC/1.5\r\n\r\n")
            return b"PONG" in conn.recv(100)
    except OSError:
        return False


def _start_spamd(home: Path, port: int) -> subprocess.Popen[bytes] | None:
    """spamd on 127.0.0.1:`port`, or None when it exited (its port was taken meanwhile)."""
    log = home / "spamd.log"
    args = [
        "spamd", "--local", "--nouser-config", f"--siteconfigpath={home / 'site'}",
        "--listen=127.0.0.1", f"--port={port}", "--allowed-ips=127.0.0.1",
        f"--helper-home-dir={home}", "--max-children=1", "--syslog=stderr",
        f"--pidfile={home / 'spamd.pid'}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        args.append("--username=nobody")  # spamd refuses to run children as root
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(home)},
        )  # fmt: skip
    deadline = time.monotonic() + 120  # compiling the rules takes a few seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if _pong(port):
            return process
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"spamd did not answer PING:\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def spamd() -> Iterator[Spamd]:
    if shutil.which("spamd") is None:
        pytest.fail("spamd is missing: scripts/test installs the spamassassin package")
    home = Path(tempfile.mkdtemp(prefix="spamd-"))
    home.chmod(0o755)  # spamd's children run as nobody
    (home / "site").mkdir()
    # The site config replaces /etc/spamassassin: its plugin list (*.pre) and our local.cf;
    # the rules still come from the package.
    for pre in Path("/etc/spamassassin").glob("*.pre"):
        shutil.copy(pre, home / "site")
    (home / "site" / "local.cf").write_text(LOCAL_CF, encoding="utf-8")
    process = None
    for _ in range(2):  # a free port may be taken before spamd binds it: try once more
        port = free_port()
        process = _start_spamd(home, port)
        if process is not None:
            break
    if process is None:
        raise AssertionError((home / "spamd.log").read_text(errors="replace"))
    yield Spamd(port, home / "spamd.log")
    process.terminate()
    process.wait(30)
    shutil.rmtree(home, ignore_errors=True)


def mail(sender: str, subject: str = "Export fails", body: str = "It fails.\n") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"] = sender, "support@support.example.com"
    message["Subject"], message["Message-ID"] = subject, make_msgid(domain="acme.example")
    message.set_content(body)
    return message


async def seed(storage: Storage) -> None:
    """Acme (circularo-saas plus) with Bob, its nominated representative."""
    async with storage.sessions.begin() as session:
        acme, _ = await contacts.upsert_organization(
            session, name="Acme", plan="plus", policy=None, support_start=None, region=None,
            domains=("acme.example",),
        )  # fmt: skip
        await contacts.upsert_contact(
            session, acme, name="Bob", email="bob@acme.example", phone=None, telegram=None,
            role="nominated",
        )  # fmt: skip


def gtube(sender: str = "bob@acme.example") -> bytes:
    return mail(sender, "Export fails", f"Please look at this.\n\n{GTUBE}\n").as_bytes()


async def test_the_daemon_scores_gtube_as_spam_and_a_request_as_ham(spamd: Spamd) -> None:
    engine = SpamAssassin("127.0.0.1", spamd.port, threshold=5.0, timeout_seconds=60)
    spam = await engine.check(gtube())
    assert (spam.verdict, spam.engine) == ("spam", "spamassassin")
    assert spam.score is not None and spam.score >= 1000 and spam.threshold == 5.0
    ham = await engine.check(mail("bob@acme.example", "Export fails").as_bytes())
    assert ham.verdict == "ham" and ham.score is not None and ham.score < 5.0


async def serve(storage: Storage, engine: SpamAssassin) -> SmtpChannel:
    await seed(storage)
    pipeline = make_pipeline(storage, notify_emails=())
    object.__setattr__(pipeline, "spam", engine)
    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: NOW,
    )
    await channel.start(pipeline)
    return channel


async def send(port: int, raw: bytes) -> str:
    _, reply = await aiosmtplib.send(
        raw, sender="bob@acme.example", recipients=["support@support.example.com"],
        hostname="127.0.0.1", port=port,
    )  # fmt: skip
    return reply


async def stored(storage: Storage) -> tuple[list[Ticket], list[Outbox]]:
    async with storage.sessions() as session:
        tickets = list(await session.scalars(select(Ticket).order_by(Ticket.id)))
        outbox = list(await session.scalars(select(Outbox).order_by(Outbox.id)))
    return tickets, outbox


@pytest.fixture
async def spam_smtp(storage: Storage, spamd: Spamd) -> AsyncIterator[SmtpChannel]:
    channel = await serve(storage, SpamAssassin("127.0.0.1", spamd.port, timeout_seconds=60))
    yield channel
    await channel.stop()


async def test_spam_is_machine_mail_and_never_acknowledged(
    storage: Storage, spam_smtp: SmtpChannel
) -> None:
    # A known contact's address: without the engine this would be a request with an ack.
    assert (await send(spam_smtp.port, gtube())).startswith("2.0.0")
    assert (await send(spam_smtp.port, mail("bob@acme.example").as_bytes())).startswith("2.0.0")
    (spam, request), outbox = await stored(storage)
    assert spam.status == "machine" and spam.decision["machine"]["kind"] == "spam"
    assert spam.decision["spam"] == "spam" and spam.decision["spam_check"]["score"] >= 1000
    assert (spam.first_response_due, spam.resolution_due) == (None, None)
    assert request.status == "open" and request.decision["spam"] == "ham"
    assert request.first_response_due is not None
    assert {o.ticket_id for o in outbox} == {request.id}  # nothing at all for the spam


class Silent:
    """A listener that accepts and never answers: a spamd that hangs."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _accepted(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *_: object) -> None:
        for writer in self.writers:
            writer.close()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_with_the_daemon_down_or_silent_intake_goes_on_and_says_so(
    storage: Storage,
) -> None:
    down = free_port()  # nothing listens there
    channel = await serve(storage, SpamAssassin("127.0.0.1", down, timeout_seconds=5))
    try:
        assert (await send(channel.port, gtube())).startswith("2.0.0")
        async with Silent() as silent:
            engine = SpamAssassin("127.0.0.1", silent, timeout_seconds=0.5)
            slow = await engine.check(gtube())
    finally:
        await channel.stop()
    [ticket], outbox = await stored(storage)
    # The check did not happen: the GTUBE mail is a request like any other, acknowledged.
    assert ticket.status == "open" and ticket.decision["spam"] == "unavailable"
    assert ticket.decision["spam_check"]["engine"] == "spamassassin"
    assert ticket.decision["spam_check"]["detail"]
    assert [o.kind for o in outbox] == ["ack"]
    assert slow.verdict == "unavailable" and "no answer within 0.5 s" in slow.detail


def test_the_engine_is_configured_under_spam(tmp_path: Path) -> None:
    config = tmp_path / "intake.toml"
    config.write_text("", encoding="utf-8")
    assert spam_checker(load_settings(config, env={})) is None  # default: none
    config.write_text('[spam]\nengine = "spamassassin"\nport = 7830\n', encoding="utf-8")
    settings = load_settings(config, env={"INTAKE_SPAM_THRESHOLD": "6.5"})
    assert spam_checker(settings) == SpamAssassin("127.0.0.1", 7830, 6.5, 5.0)
