"""`intake serve --workers 2`: two processes on one port, on SQLite and on PostgreSQL.

Many concurrent SMTP sessions to the one port make exactly one ticket and one acknowledgement
per message; /metrics on that port counts every worker's messages; one worker polls IMAP; a
worker killed is replaced; a separate `intake serve` on the port refuses to start; SIGTERM
stops every worker cleanly.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest
from dovecot import Dovecot
from fake_telegram import FakeTelegram, payload
from nodes import Node, Sink, migrated_storage
from serving import wait_until
from sqlalchemy import func, select

from intake.cli.app import Storage
from storage import db
from storage.models import Message, Outbox, Ticket

MESSAGES = 80
CONCURRENCY = 10
WORKERS = ["--workers", "2"]
ACCEPTED = re.compile(r"\[worker (\d)\] channels\.email\.smtp: .*: 250 ")
IMAP_TAKEN = re.compile(r"\[worker (\d)\] channels\.email\.imap: IMAP \S+: UID (\d+)")
STARTED = re.compile(r"worker 1 started \(pid (\d+)\)")
TELEGRAM_TOKEN = "7000000001:AAHfake-token_for-the-tests"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    return str(request.getfixturevalue("database_url"))


@pytest.fixture
async def storage(url: str) -> AsyncIterator[Storage]:
    """The test's own view of the workers' database, migrated as `intake serve` would."""
    async with migrated_storage(url) as found:
        yield found


def request(number: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"customer{number}@customer.example"  # one each: no per-sender limit
    mail["To"] = "support@support.example.com"
    mail["Subject"] = f"Export fails ({number})"
    mail["Message-ID"] = f"<workers-{number}@customer.example>"
    mail.set_content("The PDF export shows error 500.")
    return mail


async def send_all(port: int, numbers: range) -> None:
    """Each message on a connection of its own, CONCURRENCY at a time, all to one port."""
    queue = iter(numbers)

    async def client() -> None:
        for number in queue:
            await aiosmtplib.send(request(number), hostname="127.0.0.1", port=port, timeout=60)

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


async def count(storage: Storage, model: type[Ticket] | type[Message]) -> int:
    async with storage.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def outbox(storage: Storage) -> list[Outbox]:
    async with storage.sessions() as session:
        return list(await session.scalars(select(Outbox).order_by(Outbox.id)))


async def all_sent(storage: Storage) -> bool:
    rows = await outbox(storage)
    return bool(rows) and all(row.status == "sent" for row in rows)


def scrape(node: Node) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{node.web_port}/metrics", timeout=10) as got:
        return str(got.read().decode())


async def serving(node: Node) -> None:
    """Until both workers serve (/healthz answers as soon as one does)."""
    await asyncio.to_thread(node.wait_ready)
    await wait_until(lambda: node.output().count("intake.cli.serve: serving;") >= 2, "2 workers")


def workers_node(tmp_path: Path, url: str, sink: Sink, **env: str) -> Node:
    outbound = {
        "INTAKE_OUTBOUND_SMTP_HOST": "127.0.0.1",
        "INTAKE_OUTBOUND_SMTP_PORT": str(sink.port),
        "INTAKE_PIPELINE_UNIDENTIFIED_ACKS_PER_HOUR": "100000",  # every stranger answered
    }
    node = Node("workers", tmp_path, url, **outbound, **env)
    node.args = WORKERS
    return node


async def test_one_port_many_sessions_one_ticket_and_one_ack_each(
    tmp_path: Path, url: str, storage: Storage, sink: Sink
) -> None:
    node = workers_node(tmp_path, url, sink)
    try:
        node.start()
        await serving(node)
        await send_all(node.smtp_port, range(MESSAGES))
        await wait_until(lambda: all_sent(storage), "every acknowledgement sent")
        metrics = await asyncio.to_thread(scrape, node)
    finally:
        # In a thread: the sink runs on this event loop and must keep answering meanwhile.
        code = await asyncio.to_thread(node.stop)
    assert code == 0, node.output()
    log = node.output()
    # Both workers took connections on the one port, and both stopped cleanly.
    assert set(Counter(ACCEPTED.findall(log))) == {"0", "1"}
    assert "[worker 0] intake.cli.serve: stopped" in log
    assert "[worker 1] intake.cli.serve: stopped" in log

    assert await count(storage, Ticket) == MESSAGES
    async with storage.sessions() as session:
        stored = list(await session.scalars(select(Message.channel_message_id)))
    assert sorted(stored) == sorted(f"workers-{n}@customer.example" for n in range(MESSAGES))
    rows = await outbox(storage)
    assert len([row for row in rows if row.kind == "ack"]) == MESSAGES
    # Each notice claimed by one worker and sent once: the sink has each Message-ID once.
    sent = [str(row.payload["message_id"]) for row in rows]
    assert sink.message_ids == Counter(sent)
    assert all(n == 1 for n in sink.message_ids.values())
    # Whichever worker answered the scrape, it reports both workers' messages.
    assert f'intake_messages_total{{channel="email",status="accepted"}} {MESSAGES}.0' in metrics


async def test_a_killed_worker_is_replaced(
    tmp_path: Path, url: str, storage: Storage, sink: Sink
) -> None:
    node = workers_node(tmp_path, url, sink)
    try:
        node.start()
        await serving(node)
        await send_all(node.smtp_port, range(10))
        found = STARTED.search(node.output())
        assert found is not None, node.output()
        os.kill(int(found.group(1)), signal.SIGKILL)
        await wait_until(lambda: "worker 1 started" in node.output().split("restarting")[-1],
                         "worker 1 restarted")  # fmt: skip
        await send_all(node.smtp_port, range(10, 30))
        await wait_until(lambda: all_sent(storage), "every acknowledgement sent")
    finally:
        code = await asyncio.to_thread(node.stop)
    assert code == 0, node.output()
    assert f"(pid {found.group(1)}) exited with status -9: restarting" in node.output()
    assert await count(storage, Ticket) == 30
    # Every acknowledgement went out. Those of the messages sent after the replacement went
    # once; one of the first ten may have gone twice: the killed worker had it handed over at
    # its commit and sent it, but died before recording that, so it went again when the lease
    # ran out (the crash window: at least once, DESIGN).
    rows = await outbox(storage)
    assert len(sink.message_ids) == 30 and {row.status for row in rows} == {"sent"}
    replied = {str(r.payload["message_id"]): str(r.payload["in_reply_to"]) for r in rows}
    twice = {replied[i] for i, n in sink.message_ids.items() if n > 1}
    assert twice <= {f"workers-{n}@customer.example" for n in range(10)}
    assert max(sink.message_ids.values()) <= 2


async def test_one_imap_poller_among_the_workers(
    tmp_path: Path,
    url: str,
    storage: Storage,
    sink: Sink,
    dovecot: Dovecot,
    imap_env: Callable[..., dict[str, str]],
) -> None:
    node = workers_node(tmp_path, url, sink, **imap_env())
    for number in range(12):
        dovecot.deliver(
            (
                f"From: customer{number}@customer.example\r\n"
                "To: support@support.example.com\r\n"
                f"Subject: Export fails {number}\r\n"
                f"Message-ID: <imap-workers-{number}@customer.example>\r\n"
                "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\n\r\nError 500.\r\n"
            ).encode()
        )
    try:
        node.start()
        await serving(node)
        await wait_until(lambda: count_is(storage, 12), "12 tickets from the mailbox", timeout=90)
    finally:
        code = await asyncio.to_thread(node.stop)
    assert code == 0, node.output()
    taken = IMAP_TAKEN.findall(node.output())
    # Worker 0 alone fetched, each message once (no worker 1 fetching and finding duplicates).
    assert sorted(int(uid) for _, uid in taken) == list(range(1, 13))
    assert {worker for worker, _ in taken} == {"0"}
    assert "[worker 1] channels.email.imap" not in node.output()  # not even logged in


async def count_is(storage: Storage, expected: int) -> bool:
    return await count(storage, Ticket) >= expected


@pytest.mark.parametrize("second", [[], WORKERS], ids=["alone", "with-workers"])
async def test_a_separate_serve_on_the_workers_port_refuses_to_start(
    tmp_path: Path, sink: Sink, second: list[str]
) -> None:
    # The port is the matter here, not the database: SQLite alone.
    node = workers_node(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}", sink)
    try:
        node.start()
        await serving(node)
        # The same settings, so the same SMTP port: taken, whether this one has workers too
        # (with SO_REUSEPORT on both it would have joined the port).
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "intake.cli", "serve", *second],
            cwd=node.folder, env=dict(node.env), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        node.assert_running()
    finally:
        code = await asyncio.to_thread(node.stop)
    assert code == 0
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    logged = (" INFO ", " WARNING ")
    errors = [line for line in done.stderr.splitlines() if not any(k in line for k in logged)]
    assert errors == [
        f"intake: smtp.port: cannot listen on 127.0.0.1:{node.smtp_port}: "
        "address already in use (another process holds the port)"
    ], done.stderr


async def test_a_worker_that_cannot_start_stops_the_serve_with_one_line(
    tmp_path: Path, sink: Sink, imap_env: Callable[..., dict[str, str]]
) -> None:
    # Worker 0 logs in to IMAP at start, and is refused: as one process would, the serve
    # exits 2 with one error line, the other worker stopped too.
    env = imap_env(INTAKE_IMAP_PASSWORD="not-the-password")
    node = workers_node(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}", sink, **env)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "intake.cli", "serve", *WORKERS],
        cwd=node.folder, env=dict(node.env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "not-the-password" not in done.stderr
    logged = (" INFO ", " WARNING ")
    errors = [line for line in done.stderr.splitlines() if not any(k in line for k in logged)]
    assert len(errors) == 1 and errors[0].startswith("intake: imap."), done.stderr


async def test_one_telegram_poller_among_the_workers(tmp_path: Path, sink: Sink) -> None:
    # Telegram answers a second concurrent getUpdates with a conflict: one poller only, and
    # each update served once.
    fake = FakeTelegram(TELEGRAM_TOKEN)
    await fake.start()
    updates = []
    for number in range(15):
        update = payload("update_text")
        update["update_id"] = 815_100_000 + number
        update["message"]["message_id"] = 100 + number
        update["message"]["from"]["id"] = update["message"]["chat"]["id"] = 777_100_000 + number
        updates.append(update)
    fake.push(*updates)
    env = {
        "INTAKE_TELEGRAM_ENABLED": "true",
        "INTAKE_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "INTAKE_TELEGRAM_API_BASE": fake.api_base,
        "INTAKE_TELEGRAM_POLL_TIMEOUT_SECONDS": "1",
        "PTB_TIMEDELTA": "true",  # PTB 22 warns without it (as in tests/channels/telegram)
    }
    url = f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
    node = workers_node(tmp_path, url, sink, **env)
    engine = db.create_engine(url)
    storage = Storage(engine, db.session_factory(engine))
    try:
        node.start()
        await serving(node)
        await wait_until(lambda: count_is(storage, 15), "15 tickets from Telegram", timeout=90)
        await wait_until(lambda: len(fake.made("getUpdates")) > 3, "polling after them")
    finally:
        code = await asyncio.to_thread(node.stop)
        await engine.dispose()
        await fake.stop()
    assert code == 0, node.output()
    assert {fake.delivered[u["update_id"]] for u in updates} == {1}
    started = re.findall(r"\[worker (\d)\] \S+: telegram channel started", node.output())
    assert started == ["0"], node.output()
