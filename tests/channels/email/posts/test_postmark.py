"""Postmark's inbound webhook (JSON, basic auth in the URL) over real HTTP into the real
pipeline, on SQLite and PostgreSQL; with `RawEmail` and with the message rebuilt from the
JSON fields. Payloads follow Postmark's documented inbound format."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mail_posts import NOW, Desk, desk_for, mail, refuse, serving
from pydantic import SecretStr
from sqlalchemy import select

from channels.email.posts import mail_post_routes
from intake.cli.app import Storage
from intake.config import MailgunSettings, PostmarkSettings, SendgridSettings, SesSettings
from intake.errors import ConfigError
from storage.models import Attachment, Message, Outbox
from storage.webhook_tokens import SeenTokens

USER, PASSWORD = "postmark", "s3cret-in-the-webhook-url"
PATH = "/webhooks/mail/postmark"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def routes(storage: Storage, max_bytes: int = 1_048_576) -> Any:
    settings = PostmarkSettings(
        enabled=True, user=USER, password=SecretStr(PASSWORD), max_request_bytes=max_bytes
    )
    return mail_post_routes(
        mailgun=MailgunSettings(),
        postmark=settings,
        sendgrid=SendgridSettings(),
        ses=SesSettings(),
        clock=lambda: NOW,
        tokens=SeenTokens(storage.sessions),
    )


def inbound(**changes: Any) -> dict[str, Any]:
    """An inbound webhook payload as Postmark posts it (raw email content not included)."""
    payload: dict[str, Any] = {
        "FromName": "Bob Builder",
        "MessageStream": "inbound",
        "From": "bob@customer.example",
        "FromFull": {"Email": "bob@customer.example", "Name": "Bob Builder", "MailboxHash": ""},
        "To": '"Support" <support@support.example.com>',
        "ToFull": [{"Email": "support@support.example.com", "Name": "Support", "MailboxHash": ""}],
        "Cc": '"Dana" <dana@customer.example>',
        "CcFull": [{"Email": "dana@customer.example", "Name": "Dana", "MailboxHash": ""}],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": "support@support.example.com",
        "Subject": "Export fails with error 500",
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "",
        "MailboxHash": "",
        "Date": "Tue, 10 Mar 2026 10:59:00 +0100",
        "TextBody": "Hello,\nthe export fails with error 500.\nBob",
        "HtmlBody": "<p>Hello,<br>the export fails with error 500.</p><p>Bob</p>",
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": "X-Spam-Checker-Version", "Value": "SpamAssassin 3.3.1"},
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": "<req-pm@customer.example>"},
        ],
        "Attachments": [
            {
                "Name": "screenshot.png",
                "Content": base64.b64encode(PNG).decode(),
                "ContentType": "image/png",
                "ContentLength": len(PNG),
                "ContentID": "",
            }
        ],
    }
    return payload | changes


@pytest.fixture
async def desk(storage: Storage) -> AsyncIterator[Desk]:
    async with desk_for(storage, routes(storage)) as desk:
        yield desk


async def acks(desk: Desk) -> list[Outbox]:
    async with desk.storage.sessions() as session:
        return list(await session.scalars(select(Outbox).where(Outbox.kind == "ack")))


async def post(desk: Desk, payload: object, auth: tuple[str, str] = (USER, PASSWORD)) -> int:
    response = await desk.client.post(PATH, json=payload, auth=auth)
    return response.status_code


async def test_raw_email_is_taken_as_it_is_and_a_redelivery_is_the_same_ticket(
    desk: Desk,
) -> None:
    raw = mail("Raw subject", message_id="<raw-1@customer.example>")
    payload = inbound(RawEmail=raw.decode())
    # The credentials in the webhook URL, as configured at Postmark.
    port = desk.client.base_url.port
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}{PATH}"
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, json=payload)).status_code == 200
    assert await post(desk, payload) == 200
    [ticket] = await desk.tickets()
    assert ticket.subject == "Raw subject"
    [message] = await desk.messages()
    assert message.channel_message_id == "raw-1@customer.example"


async def test_without_raw_email_the_message_is_rebuilt_from_the_json(desk: Desk) -> None:
    assert await post(desk, inbound()) == 200
    assert await post(desk, inbound()) == 200  # Postmark's retry
    [ticket] = await desk.tickets()
    assert (ticket.sender, ticket.sender_name, ticket.subject) == (
        "bob@customer.example",
        "Bob Builder",
        "Export fails with error 500",
    )
    [message] = await desk.messages()
    assert message.channel_message_id == "req-pm@customer.example"
    assert "the export fails with error 500" in message.text
    async with desk.storage.sessions() as session:
        [attachment] = list(await session.scalars(select(Attachment)))
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "screenshot.png",
        "image/png",
        len(PNG),
    )
    assert attachment.sha256 == hashlib.sha256(PNG).hexdigest()
    assert [ack.recipient for ack in await acks(desk)] == ["bob@customer.example"]


async def test_postmarks_message_id_keys_a_message_without_one(desk: Desk) -> None:
    headers = [{"Name": "X-Spam-Status", "Value": "No"}]
    payload = inbound(Headers=headers, HtmlBody="", Attachments=[])
    assert [await post(desk, payload), await post(desk, payload)] == [200, 200]
    [message] = await desk.messages()
    assert "73e6d360-66eb-11e1-8e72-a8904824019b" in message.channel_message_id


async def test_rebuilt_headers_still_mark_an_auto_reply(desk: Desk) -> None:
    headers = [
        {"Name": "Auto-Submitted", "Value": "auto-replied"},
        {"Name": "Message-ID", "Value": "<ooo-1@customer.example>"},
    ]
    payload = inbound(Subject="Out of office", Headers=headers, TextBody="I am away.")
    assert await post(desk, payload) == 200
    assert len(await desk.tickets()) == 1
    assert await acks(desk) == []  # RFC 3834: never answer an auto-reply


async def test_json_values_cannot_inject_headers(desk: Desk) -> None:
    payload = inbound(
        Subject="Help\r\nBcc: victim@elsewhere.example",
        Headers=[{"Name": "X-Evil\r\nBcc", "Value": "victim@elsewhere.example"}],
    )
    assert await post(desk, payload) == 200
    [ticket] = await desk.tickets()
    assert "\n" not in ticket.subject and "\r" not in ticket.subject
    async with desk.storage.sessions() as session:
        [raw] = list(await session.scalars(select(Message.raw)))
    assert b"\nBcc:" not in raw and b"X-Evil" not in raw


async def test_wrong_or_missing_credentials_are_403_before_the_body_is_read(desk: Desk) -> None:
    attempts = [
        await post(desk, inbound(), auth=(USER, "wrong")),
        await post(desk, inbound(), auth=("someone", PASSWORD)),
        (await desk.client.post(PATH, json=inbound())).status_code,
        (
            await desk.client.post(
                PATH, json=inbound(), headers={"Authorization": f"Bearer {PASSWORD}"}
            )
        ).status_code,
        (await desk.client.post(PATH, content=b"{not json", auth=("x", "y"))).status_code,
    ]
    assert attempts == [403] * len(attempts)
    assert await desk.tickets() == []


async def test_bad_payloads_are_400_and_oversized_413(storage: Storage) -> None:
    async with desk_for(storage, routes(storage, max_bytes=2048)) as desk:
        bad_attachment = inbound(Attachments=[{"Name": "a", "Content": "***"}], TextBody="x")
        sent = [
            (await desk.client.post(PATH, content=b"{not json", auth=(USER, PASSWORD))),
            (await desk.client.post(PATH, json=[1, 2], auth=(USER, PASSWORD))),
            (await desk.client.post(PATH, json=bad_attachment, auth=(USER, PASSWORD))),
            (
                await desk.client.post(
                    PATH, json=inbound(TextBody="x" * 3000), auth=(USER, PASSWORD)
                )
            ),
        ]
        assert [r.status_code for r in sent] == [400, 400, 400, 413]
        assert await desk.tickets() == []


async def test_storage_away_is_503(storage: Storage) -> None:
    async with serving(routes(storage), refuse) as client:
        response = await client.post(PATH, json=inbound(), auth=(USER, PASSWORD))
    assert response.status_code == 503


def test_enabled_without_credentials_is_a_config_error() -> None:
    async def never(**post: object) -> bool:
        raise AssertionError

    with pytest.raises(ConfigError, match=r"postmark\.password"):
        mail_post_routes(
            mailgun=MailgunSettings(),
            postmark=PostmarkSettings(enabled=True, user="postmark"),
            sendgrid=SendgridSettings(),
            ses=SesSettings(),
            clock=lambda: NOW,
            tokens=never,
        )
