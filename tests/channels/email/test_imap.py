"""channels.email.imap against a real Dovecot on loopback, the real pipeline on both databases."""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from dovecot import Dovecot
from pipelines import make_pipeline
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from channels.email.imap import ImapChannel, backfill
from channels.email.imap_session import REFUSED, SEEN
from channels.email.inbound import inbound_from_raw
from intake.cli.app import Storage
from intake.config import ImapSettings
from intake.errors import ConfigError, InputRefusedError, TransientError
from intake.messages import InboundMessage, Receipt, ReceiptStatus
from intake.pipeline.pipeline import Pipeline
from storage import mailboxes
from storage.models import Message, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
WAIT_SECONDS = 20.0
_numbers = itertools.count(1)


def pipeline(storage: Storage) -> Pipeline:
    return make_pipeline(storage, clock=lambda: NOW)


def mail(subject: str = "Export fails") -> tuple[str, bytes]:
    """A customer's message: its Message-ID (the idempotency key) and its bytes."""
    number = next(_numbers)
    message_id = f"imap-{number}-{uuid.uuid4().hex[:8]}@customer.example"
    raw = (
        f"From: Carol Customer <carol{number}@customer.example>\r\n"
        "To: support@support.example.com\r\n"
        f"Subject: {subject} #{number}\r\n"
        f"Message-ID: <{message_id}>\r\n"
        "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "The PDF export shows error 500.\r\n"
    ).encode()
    return message_id, raw


def deliver(server: Dovecot, count: int = 1, **options: Any) -> list[str]:
    ids = []
    for _ in range(count):
        message_id, raw = mail()
        server.deliver(raw, **options)
        ids.append(message_id)
    return ids


def imap_settings(server: Dovecot, **overrides: Any) -> ImapSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": server.port,
        "ssl": False,
        "user": server.user,
        "password": SecretStr(server.password),
        "poll_seconds": 0.2,
        "idle_seconds": 2,
    }
    return ImapSettings(**(values | overrides))


def channel(storage: Storage, settings: ImapSettings, **knobs: Any) -> ImapChannel:
    knobs = {"backoff_base": 0.05, "backoff_cap": 0.5} | knobs
    return ImapChannel(settings, storage.sessions, lambda: NOW, **knobs)


@asynccontextmanager
async def running(
    imap: ImapChannel, intake: Callable[[InboundMessage], Awaitable[Receipt]]
) -> AsyncIterator[ImapChannel]:
    await imap.start(intake)
    try:
        yield imap
    finally:
        await imap.stop()


async def pipeline_unused(message: InboundMessage) -> Receipt:
    raise AssertionError("the channel must not get as far as the intake")


class Recording:
    """The real pipeline, with the receipts it gave and optional failures injected first."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner
        self.receipts: list[Receipt] = []
        self.before: Callable[[InboundMessage, int], Awaitable[None]] | None = None
        self.calls = 0

    async def __call__(self, message: InboundMessage) -> Receipt:
        self.calls += 1
        if self.before is not None:
            await self.before(message, self.calls)
        receipt = await self.inner(message)
        self.receipts.append(receipt)
        return receipt

    def count(self, status: ReceiptStatus) -> int:
        return sum(r.status is status for r in self.receipts)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")
        await asyncio.sleep(0.05)


async def count_rows(storage: Storage, model: type[Ticket] | type[Message]) -> int:
    async with storage.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def stored_ids(storage: Storage) -> list[str]:
    async with storage.sessions() as session:
        return list(await session.scalars(select(Message.channel_message_id)))


async def tickets_reach(storage: Storage, count: int) -> None:
    async def check() -> bool:
        return await count_rows(storage, Ticket) >= count

    await eventually(check, f"{count} tickets")


def _flags_by_id(server: Dovecot, folder: str) -> dict[str, set[bytes]]:
    with server.client() as client:
        client.select_folder(folder, readonly=True)
        found = client.fetch(
            client.search("ALL"), [b"FLAGS", b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
        )
    flags: dict[str, set[bytes]] = {}
    for data in found.values():
        header = data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
        message_id = header.split(":", 1)[1].strip().strip("<>")
        flags[message_id] = set(data[b"FLAGS"])
    return flags


async def flags_by_id(server: Dovecot, folder: str = "INBOX") -> dict[str, set[bytes]]:
    """What a separate IMAP connection sees: Message-ID -> flags."""
    return await asyncio.to_thread(_flags_by_id, server, folder)


async def all_seen(server: Dovecot, ids: list[str]) -> None:
    async def check() -> bool:
        flags = await flags_by_id(server)
        return all(SEEN in flags.get(i, set()) for i in ids)

    await eventually(check, f"{len(ids)} messages flagged \\Seen")


async def position(storage: Storage, server: Dovecot) -> mailboxes.MailboxPosition | None:
    key = f"{server.user}@127.0.0.1:{server.port}/INBOX"
    async with storage.sessions() as session:
        return await mailboxes.get_position(session, key)


# -- new mail ------------------------------------------------------------------------------------


async def test_new_mail_becomes_a_ticket_and_then_seen(storage: Storage, dovecot: Dovecot) -> None:
    [first] = deliver(dovecot)
    async with running(channel(storage, imap_settings(dovecot)), pipeline(storage)):
        await tickets_reach(storage, 1)
        await all_seen(dovecot, [first])
        [second] = deliver(dovecot)  # while the channel waits (IDLE)
        await tickets_reach(storage, 2)
        await all_seen(dovecot, [first, second])
    assert sorted(await stored_ids(storage)) == sorted([first, second])
    state = await position(storage, dovecot)
    assert state is not None and state.last_uid == 2
    assert state.uidvalidity == await asyncio.to_thread(dovecot.uidvalidity)


async def test_first_run_takes_the_unseen_backlog_only(storage: Storage, dovecot: Dovecot) -> None:
    read, unread = deliver(dovecot), deliver(dovecot, 2)
    with dovecot.client() as client:  # somebody read the first one before the bot existed
        client.select_folder("INBOX")
        client.add_flags(client.search("ALL")[:1], [SEEN])
    intake = Recording(pipeline(storage))
    async with running(channel(storage, imap_settings(dovecot)), intake):
        await tickets_reach(storage, 2)
        await all_seen(dovecot, unread)
        [later] = deliver(dovecot)
        await tickets_reach(storage, 3)
    assert sorted(await stored_ids(storage)) == sorted([*unread, later])
    assert read[0] not in await stored_ids(storage)
    state = await position(storage, dovecot)
    assert state is not None and state.last_uid == 4


async def test_fifty_at_once_make_fifty_tickets(storage: Storage, dovecot: Dovecot) -> None:
    ids = deliver(dovecot, 50)
    intake = Recording(pipeline(storage))
    async with running(channel(storage, imap_settings(dovecot), batch_size=7), intake):
        await tickets_reach(storage, 50)
        await all_seen(dovecot, ids)
    assert await count_rows(storage, Ticket) == 50
    assert sorted(await stored_ids(storage)) == sorted(ids)
    assert intake.count(ReceiptStatus.ACCEPTED) == 50 and len(intake.receipts) == 50


@pytest.mark.parametrize("move", [True, False], ids=["MOVE", "COPY+EXPUNGE"])
async def test_processed_mail_is_moved(
    storage: Storage, make_dovecot: Callable[..., Dovecot], move: bool
) -> None:
    # Without MOVE advertised the channel falls back to COPY, \Deleted and UID EXPUNGE.
    server = make_dovecot(capabilities=None if move else "IMAP4rev1 IDLE UIDPLUS")
    with server.client() as client:
        client.create_folder("Processed")
    ids = deliver(server, 3)
    settings = imap_settings(server, processed_folder="Processed")
    async with running(channel(storage, settings), pipeline(storage)):
        await tickets_reach(storage, 3)

        async def moved() -> bool:
            return set((await flags_by_id(server, "Processed")).keys()) == set(ids)

        await eventually(moved, "3 messages in Processed")
    assert await flags_by_id(server, "INBOX") == {}


async def test_missing_processed_folder_is_refused_at_start(dovecot: Dovecot) -> None:
    settings = imap_settings(dovecot, processed_folder="Nowhere")
    imap = ImapChannel(settings, async_sessionmaker(), lambda: NOW)
    with pytest.raises(ConfigError) as refused:
        await imap.start(pipeline_unused)
    assert refused.value.key == "imap.processed_folder"


# -- failures --------------------------------------------------------------------------------------


async def test_connection_cut_mid_fetch_loses_and_doubles_nothing(
    storage: Storage, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    ids = deliver(dovecot, 30)
    intake = Recording(pipeline(storage))

    async def cut(message: InboundMessage, call: int) -> None:
        if call in (5, 17):  # committed next, then the flag finds the connection gone
            await asyncio.to_thread(dovecot.kick)

    intake.before = cut
    caplog.set_level(logging.INFO, logger="channels.email.imap")
    async with running(channel(storage, imap_settings(dovecot), batch_size=10), intake):
        await tickets_reach(storage, 30)
        await all_seen(dovecot, ids)
    assert await count_rows(storage, Ticket) == 30
    assert sorted(await stored_ids(storage)) == sorted(ids)
    # Each cut came between commit and flag: that message came back once as a duplicate.
    assert intake.count(ReceiptStatus.DUPLICATE) == 2
    assert "reconnected" in caplog.text
    assert dovecot.password not in caplog.text


async def test_uidvalidity_change_makes_no_duplicates(
    storage: Storage, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    before = deliver(dovecot, 3)
    async with running(channel(storage, imap_settings(dovecot)), pipeline(storage)):
        await tickets_reach(storage, 3)
        await all_seen(dovecot, before)
    old = await asyncio.to_thread(dovecot.uidvalidity)
    dovecot.change_uidvalidity()
    [after] = deliver(dovecot)
    assert await asyncio.to_thread(dovecot.uidvalidity) != old
    intake = Recording(pipeline(storage))
    async with running(channel(storage, imap_settings(dovecot)), intake):
        await tickets_reach(storage, 4)
        await all_seen(dovecot, [*before, after])

        async def rescanned() -> bool:
            return len(intake.receipts) == 4

        await eventually(rescanned, "the whole folder read again")
    assert intake.count(ReceiptStatus.DUPLICATE) == 3
    assert intake.count(ReceiptStatus.ACCEPTED) == 1
    assert await count_rows(storage, Ticket) == 4
    assert "UIDVALIDITY changed" in caplog.text
    state = await position(storage, dovecot)
    assert state is not None and state.uidvalidity != old and state.last_uid == 4


async def test_crash_between_commit_and_flag(storage: Storage, dovecot: Dovecot) -> None:
    [first] = deliver(dovecot)
    async with running(channel(storage, imap_settings(dovecot)), pipeline(storage)):
        await all_seen(dovecot, [first])
    # The next one is committed by a process that dies before it can flag it.
    second, raw = mail()
    dovecot.deliver(raw)
    crashed = await pipeline(storage)(inbound_from_raw(raw, received_at=NOW))
    assert crashed.status is ReceiptStatus.ACCEPTED
    assert SEEN not in (await flags_by_id(dovecot))[second]
    intake = Recording(pipeline(storage))
    async with running(channel(storage, imap_settings(dovecot)), intake):
        await all_seen(dovecot, [first, second])
    assert [r.status for r in intake.receipts] == [ReceiptStatus.DUPLICATE]
    assert intake.receipts[0].ticket_id == crashed.ticket_id
    assert await count_rows(storage, Ticket) == 2


async def test_transient_error_leaves_the_message_unseen(
    storage: Storage, dovecot: Dovecot
) -> None:
    [only] = deliver(dovecot)
    intake = Recording(pipeline(storage))
    flags_on_retry: list[set[bytes]] = []

    async def database_away_once(message: InboundMessage, call: int) -> None:
        if call == 1:
            raise TransientError("storage unavailable: OperationalError")
        flags_on_retry.append((await flags_by_id(dovecot))[only])

    intake.before = database_away_once
    async with running(channel(storage, imap_settings(dovecot)), intake):
        await tickets_reach(storage, 1)
        await all_seen(dovecot, [only])
    assert intake.calls == 2
    assert SEEN not in flags_on_retry[0]
    assert await count_rows(storage, Ticket) == 1


async def test_refused_message_is_flagged_and_passed(storage: Storage, dovecot: Dovecot) -> None:
    bad, good = deliver(dovecot, 2)
    intake = Recording(pipeline(storage))

    async def refuse_first(message: InboundMessage, call: int) -> None:
        if message.channel_message_id == bad:
            raise InputRefusedError("hostile")

    intake.before = refuse_first
    async with running(channel(storage, imap_settings(dovecot)), intake):
        await all_seen(dovecot, [bad, good])
    flags = await flags_by_id(dovecot)
    assert {SEEN, REFUSED} <= flags[bad] and REFUSED not in flags[good]
    assert await stored_ids(storage) == [good]


async def test_wrong_password_is_refused_at_start(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    settings = imap_settings(dovecot, password=SecretStr("not-the-password"))
    imap = ImapChannel(settings, async_sessionmaker(), lambda: NOW)
    with pytest.raises(ConfigError) as refused:
        await imap.start(pipeline_unused)
    assert "not-the-password" not in str(refused.value) + caplog.text


# -- waiting for mail -----------------------------------------------------------------------------


async def test_idle_picks_up_new_mail(storage: Storage, dovecot: Dovecot) -> None:
    # Polling would take an hour and IDLE is re-issued only every minute: only the server's
    # IDLE notification can bring the message in within the wait.
    settings = imap_settings(dovecot, poll_seconds=3600, idle_seconds=60)
    async with running(channel(storage, settings), pipeline(storage)):
        await asyncio.sleep(0.5)  # let it settle into IDLE (not required for correctness)
        [arrived] = deliver(dovecot)
        await tickets_reach(storage, 1)
        await all_seen(dovecot, [arrived])


@pytest.mark.parametrize("advertised", [False, True], ids=["server-without-IDLE", "idle-off"])
async def test_polling_picks_up_new_mail(
    storage: Storage, make_dovecot: Callable[..., Dovecot], advertised: bool
) -> None:
    server = make_dovecot(capabilities=None if advertised else "IMAP4rev1 UIDPLUS MOVE")
    settings = imap_settings(server, poll_seconds=0.2, idle_seconds=3600)
    imap = channel(storage, settings, use_idle=not advertised)
    async with running(imap, pipeline(storage)):
        [arrived] = deliver(server)
        await tickets_reach(storage, 1)
        await all_seen(server, [arrived])


# -- TLS -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
async def test_tls_with_a_private_ca(storage: Storage, dovecot_tls: Dovecot, mode: str) -> None:
    assert dovecot_tls.tls is not None
    port = dovecot_tls.ssl_port if mode == "ssl" else dovecot_tls.port
    settings = imap_settings(
        dovecot_tls,
        port=port,
        ssl=mode == "ssl",
        starttls=mode == "starttls",
        ca_file=dovecot_tls.tls.ca,
    )
    [only] = deliver(dovecot_tls)
    async with running(channel(storage, settings), pipeline(storage)):
        await tickets_reach(storage, 1)
        await all_seen(dovecot_tls, [only])
    logins = [
        line for line in (dovecot_tls.root / "dovecot.log").read_text().splitlines()
        if "imap-login: Info: Login:" in line
    ]  # fmt: skip
    assert logins and all(", TLS," in line for line in logins)


async def test_untrusted_certificate_is_refused(dovecot_tls: Dovecot) -> None:
    settings = imap_settings(dovecot_tls, port=dovecot_tls.ssl_port, ssl=True)  # system CAs
    imap = ImapChannel(settings, async_sessionmaker(), lambda: NOW)
    with pytest.raises(ConfigError) as refused:
        await imap.start(pipeline_unused)
    assert refused.value.key == "imap.ca_file"
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)


# -- backfill --------------------------------------------------------------------------------------


async def test_backfill_skips_stored_messages(storage: Storage, dovecot: Dovecot) -> None:
    deliver(dovecot, days_ago=10)  # outside the range asked for
    stored = deliver(dovecot, 2)
    settings = imap_settings(dovecot)
    async with running(channel(storage, settings), pipeline(storage)):
        await tickets_reach(storage, 3)
    before = await position(storage, dovecot)
    # Lost in the outage: a message that was handled elsewhere (seen) but never stored.
    missed, raw = mail()
    dovecot.deliver(raw)
    with dovecot.client() as client:
        client.select_folder("INBOX")
        client.add_flags(client.search("ALL")[-1:], [SEEN])
    since = date.today() - timedelta(days=1)
    result = await backfill(settings, pipeline(storage), since, lambda: NOW)
    assert (result.seen, result.accepted, result.duplicates, result.refused) == (3, 1, 2, 0)
    assert set(stored) | {missed} <= set(await stored_ids(storage))
    assert await count_rows(storage, Ticket) == 4
    assert await position(storage, dovecot) == before
