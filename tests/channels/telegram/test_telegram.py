"""The Telegram channel against a local fake of the Bot API, over real HTTP, with the real
pipeline on SQLite and PostgreSQL: polling and webhook, commands, contact cards, files, and
the replier's way back through the outbox."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fake_telegram import FakeTelegram, payload
from pipelines import make_pipeline
from pydantic import SecretStr
from sqlalchemy import select

from channels.telegram.channel import WEBHOOK_PATH, TelegramChannel, TelegramReplier
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import TelegramSettings, WebSettings
from intake.errors import ConfigError, PermanentChannelError, TransientChannelError, TransientError
from intake.messages import Ack, ChannelKind, InboundMessage, Intake, Receipt
from intake.outbox.delivery import Deliverer
from intake.pipeline.pipeline import Pipeline
from storage import contacts
from storage.models import Attachment, Contact, Message, Outbox, Ticket

TOKEN = "7000000001:AAHfake-token_for-the-tests"
SECRET = "s3cret-Token_for-webhooks"
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday, inside every window
BOB = 777000111  # the sender of the recorded updates
ALERTS_CHAT = -1001500000001
_update_ids = itertools.count(900000001)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns (an error here) when it builds a RetryAfter unless opted in to timedeltas;
    # the product reads either form (`retry_seconds`).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def seeded(storage: Storage) -> Storage:
    async with storage.sessions.begin() as session:
        org_id, _ = await contacts.upsert_organization(
            session,
            name="Acme",
            plan="plus",
            policy=None,
            support_start=None,
            region=None,
            domains=("acme.example",),
        )
        for name, email, phone, role in (
            ("Alice", "alice@acme.example", "+420601123456", "nominated"),
            ("Carol", "carol@acme.example", "+420602123456", "user"),
        ):
            await contacts.upsert_contact(
                session, org_id, name=name, email=email, phone=phone, telegram=None, role=role
            )
    return storage


def settings(fake: FakeTelegram, mode: str = "polling") -> TelegramSettings:
    return TelegramSettings(
        enabled=True,
        token=SecretStr(TOKEN),
        mode=mode,  # type: ignore[arg-type]
        api_base=fake.api_base,
        secret_token=SecretStr(SECRET),
    )


def pipeline(storage: Storage) -> Pipeline:
    return make_pipeline(
        storage, clock=lambda: NOW, notify_emails=(), notify_telegram=(ALERTS_CHAT,)
    )


def update(name: str, *, user: int = BOB, **message: Any) -> dict[str, Any]:
    """A recorded update with a fresh update_id, from `user`, with `message` fields replaced."""
    data = copy.deepcopy(payload(name))
    data["update_id"] = next(_update_ids)
    body = data["message"]
    body["from"]["id"] = user
    if body["chat"]["type"] == "private":
        body["chat"]["id"] = user
    body.update(message)
    return data


@asynccontextmanager
async def polling(
    fake: FakeTelegram, storage: Storage, intake: Intake | None = None, **options: Any
) -> AsyncIterator[TelegramChannel]:
    channel = TelegramChannel(
        settings(fake),
        storage.sessions,
        lambda: NOW,
        poll_timeout=1,
        backoff_base=0.05,
        backoff_cap=0.2,
        **options,
    )
    await channel.start(intake or pipeline(storage))
    try:
        yield channel
    finally:
        await channel.stop()


async def handled(fake: FakeTelegram, channel: TelegramChannel, *updates: dict[str, Any]) -> None:
    """Push updates and wait until the channel has confirmed the last one."""
    fake.push(*updates)
    last = updates[-1]["update_id"]
    await fake.wait_for(lambda: (channel.offset or 0) > last)


async def rows(storage: Storage, model: Any) -> list[Any]:
    async with storage.sessions() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


def replies_to(fake: FakeTelegram, chat: int) -> list[dict[str, Any]]:
    return [p for p in fake.made("sendMessage") if p["chat_id"] == chat]


# -- polling -------------------------------------------------------------------------------


async def test_text_becomes_a_ticket_confirmed_after_commit_and_acked(
    fake: FakeTelegram, seeded: Storage
) -> None:
    pipe = pipeline(seeded)
    calls_at_commit: list[int] = []

    async def intake(message: InboundMessage) -> Receipt:
        receipt = await pipe(message)
        calls_at_commit.append(len(fake.calls))
        return receipt

    text = update("update_text")
    async with polling(fake, seeded, intake) as channel:
        await handled(fake, channel, text)
        await fake.wait_for(lambda: len(fake.made("getUpdates")) >= 3)
    # The seam: every request went to our fake under the configured token.
    assert [c.method for c in fake.calls[:3]] == ["getMe", "deleteWebhook", "getUpdates"]
    offsets = [(i, c.params.get("offset")) for i, c in enumerate(fake.calls)]
    confirming = [i for i, offset in offsets if offset == text["update_id"] + 1]
    assert confirming and min(confirming) >= calls_at_commit[0]  # asked for the next only after
    [ticket] = await rows(seeded, Ticket)
    assert (ticket.channel, ticket.sender, ticket.reply_to) == ("telegram", f"tg:{BOB}", str(BOB))
    assert ticket.sender_name == "Bob Builder" and ticket.contact_status == "unidentified"
    [message] = await rows(seeded, Message)
    assert message.channel_message_id == f"update:{text['update_id']}"
    assert message.text == text["message"]["text"]
    assert message.extra == {"chat_id": BOB, "telegram_username": "bob_builds"}

    replier = TelegramReplier(settings(fake))
    try:
        assert await Deliverer(seeded.sessions, {"telegram": replier}, clock=lambda: NOW).run_once()
    finally:
        await replier.aclose()
    [sent] = replies_to(fake, BOB)
    assert "SUP-000001" in sent["text"] and "parse_mode" not in sent
    assert sent["reply_parameters"]["message_id"] == text["message"]["message_id"]
    assert [o.status for o in await rows(seeded, Outbox)] == ["sent"]


async def test_a_redelivered_update_makes_one_ticket(fake: FakeTelegram, seeded: Storage) -> None:
    text = update("update_text")
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, text)
    # Telegram sends it again, as after a crash before the confirmation reached it.
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, text)
    assert len(await rows(seeded, Ticket)) == 1
    assert len(await rows(seeded, Message)) == 1
    assert len([o for o in await rows(seeded, Outbox) if o.kind == "ack"]) == 1


async def test_a_transient_failure_leaves_the_update_unconfirmed(
    fake: FakeTelegram, seeded: Storage
) -> None:
    pipe = pipeline(seeded)
    failures = [TransientError("database locked")]

    async def flaky(message: InboundMessage) -> Receipt:
        if failures:
            raise failures.pop()
        return await pipe(message)

    text = update("update_text")
    async with polling(fake, seeded, flaky) as channel:
        await handled(fake, channel, text)
    assert fake.delivered[text["update_id"]] >= 2  # read again, not skipped
    assert len(await rows(seeded, Ticket)) == 1


async def test_photo_and_document_become_attachments_and_oversize_is_flagged(
    fake: FakeTelegram, seeded: Storage
) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"p" * 3000
    pdf = b"%PDF-1.7\n" + b"d" * 2000
    fake.add_file("AgACAgIAAxkBAAIBRGXx-x", "photos/file_7.jpg", jpeg)
    fake.add_file("BQACAgIAAxkBAAIBRWXx", "documents/file_8.pdf", pdf)
    fake.add_file("BIG", "documents/file_9.zip", b"z" * 5000)
    photo = update("update_photo")
    photo["message"]["photo"][-1]["file_size"] = len(jpeg)
    document = update("update_document", user=BOB + 1)
    big = update("update_document", user=BOB + 2)
    big["message"]["document"].update(file_id="BIG", file_name="../dump.zip", file_size=5000)
    async with polling(fake, seeded, max_file_bytes=4096) as channel:
        await handled(fake, channel, photo, document, big)
    found = {(a.filename, a.content_type, a.size) for a in await rows(seeded, Attachment)}
    assert found == {
        ("photo_AQADRGXx-x.jpg", "image/jpeg", len(jpeg)),  # the largest size only
        ("export-log.pdf", "application/pdf", len(pdf)),
    }
    paths = {p["path"] for p in fake.made("file")}
    assert paths == {"documents/file_8.pdf", "photos/file_7.jpg"}  # never the big one
    assert "BIG" not in {p["file_id"] for p in fake.made("getFile")}
    by_sender = {m.sender: m for m in await rows(seeded, Message)}
    assert by_sender[f"tg:{BOB + 2}"].problems == ["attachment-too-large:dump.zip"]
    assert by_sender[f"tg:{BOB}"].text == "This is what the export page shows."


async def test_a_malformed_update_is_skipped_not_stuck(fake: FakeTelegram, seeded: Storage) -> None:
    broken = {"update_id": next(_update_ids), "message": {"text": "no chat, no date"}}
    text = update("update_text")
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, broken, text)
    assert len(await rows(seeded, Ticket)) == 1


async def test_stop_finishes_the_update_in_hand_and_confirms_it(
    fake: FakeTelegram, seeded: Storage
) -> None:
    pipe = pipeline(seeded)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(message: InboundMessage) -> Receipt:
        entered.set()
        await release.wait()
        return await pipe(message)

    first, second = update("update_text"), update("update_text", user=BOB + 1)
    channel = TelegramChannel(settings(fake), seeded.sessions, lambda: NOW, poll_timeout=1)
    await channel.start(slow)
    fake.push(first, second)
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.create_task(channel.stop())
    await asyncio.sleep(0.2)
    assert not stopping.done()  # waits for the update in hand
    release.set()
    await stopping
    assert [t.sender for t in await rows(seeded, Ticket)] == [f"tg:{BOB}"]
    assert fake.made("getUpdates")[-1]["offset"] == first["update_id"] + 1  # confirmed at stop
    assert [u["update_id"] for u in fake.updates] == [second["update_id"]]  # left for later


async def test_start_refuses_a_bad_token_or_webhook_secret(fake: FakeTelegram) -> None:
    unused: Any = None
    wrong = settings(fake).model_copy(update={"token": SecretStr("1:wrong")})
    with pytest.raises(ConfigError, match=r"telegram\.token") as bad_token:
        await TelegramChannel(wrong, unused, lambda: NOW).start(unused)
    assert "1:wrong" not in str(bad_token.value)
    no_secret = settings(fake, "webhook").model_copy(update={"secret_token": SecretStr("")})
    channel = TelegramChannel(no_secret, unused, lambda: NOW, public_url="https://x.example")
    with pytest.raises(ConfigError, match="secret_token"):
        await channel.start(unused)
    await channel.bot.shutdown()
    assert fake.made("setWebhook") == []


# -- commands and contact cards ------------------------------------------------------------


async def test_start_explains_and_offers_the_phone_button_without_a_ticket(
    fake: FakeTelegram, seeded: Storage
) -> None:
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, update("update_start"), update("update_group_text"))
    [answer] = replies_to(fake, BOB)
    assert "support desk" in answer["text"] and "/status" in answer["text"]
    [[button]] = answer["reply_markup"]["keyboard"]
    assert button == {"text": "Share my phone number", "request_contact": True}
    assert await rows(seeded, Ticket) == []  # nor for the agents' group chatter
    assert replies_to(fake, ALERTS_CHAT) == []


@pytest.mark.parametrize(
    ("phone", "name", "status"),
    [("420601123456", "Alice", "nominated"), ("+420 602 123 456", "Carol", "known")],
)
async def test_own_contact_card_identifies_later_messages(
    fake: FakeTelegram, seeded: Storage, phone: str, name: str, status: str
) -> None:
    card = update("update_contact")
    card["message"]["contact"].update(phone_number=phone, user_id=BOB)
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, card)
        assert await rows(seeded, Ticket) == []  # the card itself is no request
        await handled(fake, channel, update("update_text"))
    [answer] = replies_to(fake, BOB)  # the text's ack waits in the outbox
    assert f"identified as {name} of Acme" in answer["text"]
    assert answer["reply_markup"] == {"remove_keyboard": True}
    linked = [c for c in await rows(seeded, Contact) if c.telegram]
    assert [(c.name, c.telegram) for c in linked] == [(name, str(BOB))]
    [ticket] = await rows(seeded, Ticket)
    assert ticket.contact_status == status and ticket.organization_id is not None


async def test_someone_elses_contact_card_is_refused(fake: FakeTelegram, seeded: Storage) -> None:
    card = update("update_contact")
    card["message"]["contact"].update(user_id=BOB + 5)  # Alice's number, another account
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, card)
    [answer] = replies_to(fake, BOB)
    assert "your own phone number" in answer["text"]
    assert all(c.telegram is None for c in await rows(seeded, Contact))
    assert await rows(seeded, Ticket) == []


async def test_status_answers_only_the_tickets_own_sender(
    fake: FakeTelegram, seeded: Storage
) -> None:
    stranger = BOB + 9
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, update("update_text"))
        await handled(
            fake,
            channel,
            update("update_start", text="/status SUP-000001"),
            update("update_start", user=stranger, text="/status SUP-000001"),
            update("update_start", user=stranger, text="/status SUP-000099"),
            update("update_start", text="/status whatever"),
        )
    own, usage = (r["text"] for r in replies_to(fake, BOB))
    assert own.startswith("SUP-000001: open, priority normal.") and "due by" in own
    assert "for example /status SUP-000123" in usage
    theirs = [r["text"] for r in replies_to(fake, stranger)]
    assert theirs == ["No such ticket: SUP-000001.", "No such ticket: SUP-000099."]
    assert len(await rows(seeded, Ticket)) == 1


# -- webhook -------------------------------------------------------------------------------


@asynccontextmanager
async def webhook(
    fake: FakeTelegram, storage: Storage, intake: Intake
) -> AsyncIterator[httpx.AsyncClient]:
    channel = TelegramChannel(
        settings(fake, "webhook"),
        storage.sessions,
        lambda: NOW,
        public_url="https://support.example.com/",
        max_body_bytes=64 * 1024,
    )
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [channel.routes])
    await channel.start(intake)
    await web.start(intake)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            yield client
    finally:
        await web.stop()
        await channel.stop()


async def test_webhook_checks_the_secret_and_confirms_after_commit(
    fake: FakeTelegram, seeded: Storage
) -> None:
    pipe = pipeline(seeded)
    failures = [TransientError("database locked")]

    async def flaky(message: InboundMessage) -> Receipt:
        if failures:
            raise failures.pop()
        return await pipe(message)

    text = update("update_text")
    header = "X-Telegram-Bot-Api-Secret-Token"
    async with webhook(fake, seeded, flaky) as client:
        [registered] = fake.made("setWebhook")
        assert registered["url"] == "https://support.example.com" + WEBHOOK_PATH
        assert registered["secret_token"] == SECRET
        assert registered["allowed_updates"] == ["message"]
        refused = [
            await client.post(WEBHOOK_PATH, json=text),
            await client.post(WEBHOOK_PATH, json=text, headers={header: SECRET + "x"}),
            await client.post(WEBHOOK_PATH, json=text, headers={header: ""}),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403]
        assert await rows(seeded, Ticket) == []
        ok = {header: SECRET}
        malformed = await client.post(WEBHOOK_PATH, content=b"{not json", headers=ok)
        not_update = await client.post(WEBHOOK_PATH, json={"message": {}}, headers=ok)
        huge = await client.post(WEBHOOK_PATH, content=b"x" * (65 * 1024), headers=ok)
        assert (malformed.status_code, not_update.status_code, huge.status_code) == (400, 400, 413)
        retry = await client.post(WEBHOOK_PATH, json=text, headers=ok)
        assert retry.status_code == 503 and await rows(seeded, Ticket) == []
        first = await client.post(WEBHOOK_PATH, json=text, headers=ok)
        again = await client.post(WEBHOOK_PATH, json=text, headers=ok)  # Telegram retried
        assert (first.status_code, again.status_code) == (200, 200)
    [ticket] = await rows(seeded, Ticket)
    assert ticket.sender == f"tg:{BOB}" and ticket.reply_to == str(BOB)


# -- the replier ---------------------------------------------------------------------------


def ack(to: str, text: str = "We have your request.") -> Ack:
    return Ack(outbox_id=1, kind="ack", channel=ChannelKind.TELEGRAM, to=to, subject="s", text=text)


async def test_replier_maps_flood_control_blocking_and_long_texts(fake: FakeTelegram) -> None:
    replier = TelegramReplier(settings(fake))
    try:
        fake.fail_next("sendMessage", "error_429", "error_403_blocked", "error_400_chat_not_found")
        with pytest.raises(TransientChannelError) as flood:
            await replier.send(ack(str(BOB)))
        assert flood.value.retry_after == 3
        with pytest.raises(PermanentChannelError, match="blocked"):
            await replier.send(ack(str(BOB)))
        with pytest.raises(PermanentChannelError, match=r"(?i)chat not found"):
            await replier.send(ack("12345"))
        with pytest.raises(PermanentChannelError):
            await replier.send(ack("not-a-chat"))
        await replier.send(ack(str(ALERTS_CHAT), "\U0001f525" * 3000 + "<b>x</b>"))
    finally:
        await replier.aclose()
    [sent] = fake.made("sendMessage")[-1:]
    assert sent["chat_id"] == ALERTS_CHAT and len(sent["text"].encode("utf-16-le")) // 2 <= 4096
    assert TOKEN not in str(flood.value)


async def test_outbox_retries_flood_control_and_fails_a_blocked_chat(
    fake: FakeTelegram, seeded: Storage
) -> None:
    urgent = update("update_text", text="Urgent: production is down, nobody can sign.")
    async with polling(fake, seeded) as channel:
        await handled(fake, channel, urgent)
    queued = {o.recipient: o.kind for o in await rows(seeded, Outbox)}
    assert queued == {str(BOB): "ack", str(ALERTS_CHAT): "alert"}
    fake.fail_next("sendMessage", "error_429", "error_403_blocked")
    replier = TelegramReplier(settings(fake))
    clock = [NOW]
    deliverer = Deliverer(seeded.sessions, {"telegram": replier}, clock=lambda: clock[0])
    try:
        await deliverer.run_once()  # the ack meets flood control, the alert a blocked bot
        states = {o.recipient: (o.status, o.attempts) for o in await rows(seeded, Outbox)}
        assert states[str(BOB)] == ("pending", 1) and states[str(ALERTS_CHAT)][0] == "failed"
        clock[0] = NOW + timedelta(minutes=1)
        await deliverer.run_once()
    finally:
        await replier.aclose()
    final = {o.recipient: o.status for o in await rows(seeded, Outbox)}
    assert final == {str(BOB): "sent", str(ALERTS_CHAT): "failed"}
    assert [r["chat_id"] for r in fake.made("sendMessage")] == [BOB, ALERTS_CHAT, BOB]
