"""Mailgun route forwards (with MIME) over real HTTP into the real pipeline, on SQLite and
PostgreSQL. Signatures are computed here as Mailgun documents them: HMAC-SHA256 of
timestamp + token under the webhook signing key, hex."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from mail_posts import NOW, Desk, desk_for, mail, multipart, refuse, serving
from pydantic import SecretStr
from sqlalchemy import select

from channels.email.posts import mail_post_routes
from intake.cli.app import Storage
from intake.config import MailgunSettings, PostmarkSettings, SendgridSettings, SesSettings
from intake.errors import ConfigError
from storage.models import Outbox
from storage.webhook_tokens import SeenTokens

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
PATH = "/webhooks/mail/mailgun"


def routes(storage: Storage, key: str = KEY, max_bytes: int = 1_048_576) -> object:
    return mail_post_routes(
        mailgun=MailgunSettings(
            enabled=True, signing_key=SecretStr(key), max_request_bytes=max_bytes
        ),
        postmark=PostmarkSettings(),
        sendgrid=SendgridSettings(),
        ses=SesSettings(),
        clock=lambda: NOW,
        tokens=SeenTokens(storage.sessions),
    )


def forward(
    raw: bytes,
    *,
    key: str = KEY,
    at: float | None = None,
    token: str | None = None,
    signature: str | None = None,
) -> dict[str, bytes | str]:
    """The fields of a route's `forward()` to a URL ending in "mime", signed."""
    timestamp = str(int(NOW.timestamp() if at is None else at))
    token = token or secrets.token_hex(25)  # Mailgun's tokens: 50 characters
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "recipient": "support@support.example.com",
        "sender": "bob@customer.example",
        "from": "Bob Builder <bob@customer.example>",
        "subject": "Export fails with error 500",
        "body-mime": raw,
        "timestamp": timestamp,
        "token": token,
        "signature": digest if signature is None else signature,
    }


async def post(desk: Desk, fields: dict[str, bytes | str]) -> int:
    body, content_type = multipart(fields)
    response = await desk.client.post(PATH, content=body, headers={"content-type": content_type})
    return response.status_code


@pytest.fixture
async def desk(storage: Storage) -> AsyncIterator[Desk]:
    async with desk_for(storage, routes(storage)) as desk:  # type: ignore[arg-type]
        yield desk


async def test_signed_forward_is_one_ticket_and_mailguns_retry_the_same(desk: Desk) -> None:
    fields = forward(mail())
    assert await post(desk, fields) == 200
    assert await post(desk, fields) == 200  # the same post again: Mailgun's retry
    assert await post(desk, forward(mail())) == 200  # the same mail under a new token
    [ticket] = await desk.tickets()
    assert (ticket.channel, ticket.sender, ticket.subject) == (
        "email",
        "bob@customer.example",
        "Export fails with error 500",
    )
    [message] = await desk.messages()
    assert message.channel_message_id == "req-1@customer.example"
    assert "error 500 since this morning" in message.text


async def test_the_mime_url_mailgun_needs_is_served_and_a_parsed_post_refused(
    desk: Desk,
) -> None:
    body, content_type = multipart(forward(mail()))
    headers = {"content-type": content_type}
    response = await desk.client.post(PATH + "/mime", content=body, headers=headers)
    assert response.status_code == 200
    parsed = {k: v for k, v in forward(mail()).items() if k != "body-mime"}
    parsed["body-plain"] = "Hello, the export fails."  # what a URL not ending in mime gets
    assert await post(desk, parsed) == 400
    assert len(await desk.tickets()) == 1


async def test_urlencoded_forward_keeps_the_8bit_message_exact(desk: Desk) -> None:
    raw = (
        b"From: =?iso-8859-2?q?Ji=F8=ED?= <jiri@customer.example>\r\n"
        b"To: support@support.example.com\r\nSubject: Nelze exportovat\r\n"
        b"Message-ID: <cz-1@customer.example>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=iso-8859-2\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"Export kon\xe8\xed chybou 500.\r\n"
    )
    fields = forward(raw)
    response = await desk.client.post(
        PATH,
        content=urlencode(fields).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    [message] = await desk.messages()
    assert message.text.strip() == "Export končí chybou 500."
    [ticket] = await desk.tickets()
    assert ticket.sender_name == "Jiří"


async def test_forged_posts_are_403_and_store_nothing(desk: Desk) -> None:
    fields = forward(mail())
    attempts = [
        forward(mail(), key="key-someone-elses"),  # another account's signing key
        forward(mail(), signature=""),
        forward(mail(), signature="0" * 64),
        {k: v for k, v in fields.items() if k != "signature"},
        {k: v for k, v in fields.items() if k != "token"},
        fields | {"timestamp": str(int(NOW.timestamp()) + 1)},  # not what was signed
        fields | {"token": "another-token"},
    ]
    assert [await post(desk, f) for f in attempts] == [403] * len(attempts)
    assert await desk.tickets() == []


async def test_stale_or_future_timestamps_are_403_though_signed(desk: Desk) -> None:
    minutes = [-6, 6, -60 * 24]
    stale = [forward(mail(), at=(NOW + timedelta(minutes=m)).timestamp()) for m in minutes]
    assert [await post(desk, f) for f in stale] == [403, 403, 403]
    fresh = [forward(mail(), at=(NOW + timedelta(minutes=m)).timestamp()) for m in (-4, 4)]
    assert [await post(desk, f) for f in fresh] == [200, 200]
    assert len(await desk.tickets()) == 1


async def test_a_replayed_token_with_another_message_is_403(desk: Desk) -> None:
    first = forward(mail())
    assert await post(desk, first) == 200
    other = mail("Please reset all passwords", message_id="<evil@attacker.example>")
    replay = first | {"body-mime": other}  # the captured signature, a new body
    assert await post(desk, replay) == 403
    assert await post(desk, first) == 200  # the original still is the same ticket
    [ticket] = await desk.tickets()
    assert ticket.subject == "Export fails with error 500"


async def test_oversized_or_malformed_posts_are_refused(storage: Storage) -> None:
    async with desk_for(storage, routes(storage, max_bytes=4096)) as desk:  # type: ignore[arg-type]
        big = forward(mail(text="x" * 8000))
        assert await post(desk, big) == 413
        body, _ = multipart(forward(mail()))
        broken = await desk.client.post(
            PATH, content=body, headers={"content-type": "multipart/form-data; boundary=zz"}
        )
        assert broken.status_code in (400, 403)  # nothing readable, so nothing signed
        json_post = await desk.client.post(PATH, json={"timestamp": "1"})
        assert json_post.status_code == 415
        assert await desk.tickets() == []


async def test_storage_away_is_503_and_the_retry_is_taken(storage: Storage) -> None:
    fields = forward(mail())
    async with serving(routes(storage), refuse) as client:  # type: ignore[arg-type]
        body, content_type = multipart(fields)
        response = await client.post(PATH, content=body, headers={"content-type": content_type})
        assert response.status_code == 503
    async with desk_for(storage, routes(storage)) as desk:  # type: ignore[arg-type]
        assert await post(desk, fields) == 200  # Mailgun's retry: same token, same message
        assert len(await desk.tickets()) == 1


async def test_token_ledger_away_is_503(storage: Storage) -> None:
    async def broken(**post: object) -> bool:
        raise OSError("database gone")

    factory = mail_post_routes(
        mailgun=MailgunSettings(enabled=True, signing_key=SecretStr(KEY)),
        postmark=PostmarkSettings(),
        sendgrid=SendgridSettings(),
        ses=SesSettings(),
        clock=lambda: NOW,
        tokens=broken,
    )
    async with serving(factory, refuse) as client:
        body, content_type = multipart(forward(mail()))
        response = await client.post(PATH, content=body, headers={"content-type": content_type})
    assert response.status_code == 503


def test_enabled_without_signing_key_is_a_config_error() -> None:
    async def never(**post: object) -> bool:
        raise AssertionError

    with pytest.raises(ConfigError, match=r"mailgun\.signing_key"):
        mail_post_routes(
            mailgun=MailgunSettings(enabled=True),
            postmark=PostmarkSettings(),
            sendgrid=SendgridSettings(),
            ses=SesSettings(),
            clock=lambda: NOW,
            tokens=never,
        )


async def test_a_reply_to_our_tokened_address_joins_its_ticket(desk: Desk) -> None:
    assert await post(desk, forward(mail())) == 200
    async with desk.storage.sessions() as session:
        [ack] = list(await session.scalars(select(Outbox).where(Outbox.kind == "ack")))
    reply_to = ack.payload["reply_to"]
    assert "+" in reply_to  # our plus-address carrying the ticket's token
    # The customer's client dropped In-Reply-To; only the envelope recipient tells.
    reply = mail("Re: your request", message_id="<req-2@customer.example>", text="More logs.")
    fields = forward(reply) | {"recipient": reply_to}
    assert await post(desk, fields) == 200
    assert len(await desk.tickets()) == 1
    assert [m.channel_message_id for m in await desk.messages()] == [
        "req-1@customer.example",
        "req-2@customer.example",
    ]
