"""SendGrid Inbound Parse with "POST the raw, full MIME message" (multipart/form-data, the
message in `email`), basic auth in the URL, over real HTTP into the real pipeline on SQLite
and PostgreSQL. The fields follow SendGrid's documented raw-mode post."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mail_posts import NOW, Desk, desk_for, mail, multipart, refuse, serving
from pydantic import SecretStr

from channels.email.posts import mail_post_routes
from intake.cli.app import Storage
from intake.config import MailgunSettings, PostmarkSettings, SendgridSettings, SesSettings
from intake.errors import ConfigError
from storage.webhook_tokens import SeenTokens

USER, PASSWORD = "parse", "an-inbound-parse-secret"
PATH = "/webhooks/mail/sendgrid"


def routes(storage: Storage, max_bytes: int = 1_048_576) -> Any:
    settings = SendgridSettings(
        enabled=True, user=USER, password=SecretStr(PASSWORD), max_request_bytes=max_bytes
    )
    return mail_post_routes(
        mailgun=MailgunSettings(),
        postmark=PostmarkSettings(),
        sendgrid=settings,
        ses=SesSettings(),
        clock=lambda: NOW,
        tokens=SeenTokens(storage.sessions),
    )


def parse_post(raw: bytes) -> tuple[bytes, str]:
    """The body of a raw-mode Inbound Parse post and its content type."""
    return multipart(
        {
            "headers": "",
            "dkim": "{@customer.example : pass}",
            "email": raw,
            "to": "support@support.example.com",
            "from": "Bob Builder <bob@customer.example>",
            "sender_ip": "192.0.2.25",
            "spam_report": "",
            "envelope": json.dumps(
                {"to": ["support@support.example.com"], "from": "bob@customer.example"}
            ),
            "subject": "Export fails with error 500",
            "spam_score": "0.1",
            "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
            "SPF": "pass",
        },
        boundary="xYzZY",
    )


@pytest.fixture
async def desk(storage: Storage) -> AsyncIterator[Desk]:
    async with desk_for(storage, routes(storage)) as desk:
        yield desk


async def post(
    client: httpx.AsyncClient, raw: bytes, auth: tuple[str, str] | None = (USER, PASSWORD)
) -> int:
    body, content_type = parse_post(raw)
    headers = {"content-type": content_type}
    response = await client.post(PATH, content=body, headers=headers, auth=auth or None)
    return response.status_code


async def test_raw_post_is_one_ticket_however_often_sent(desk: Desk) -> None:
    port = desk.client.base_url.port
    async with httpx.AsyncClient(base_url=f"http://{USER}:{PASSWORD}@127.0.0.1:{port}") as url:
        assert await post(url, mail(), auth=None) == 200  # credentials in the URL
    assert await post(desk.client, mail()) == 200  # SendGrid's retry
    [ticket] = await desk.tickets()
    assert (ticket.sender, ticket.subject) == (
        "bob@customer.example",
        "Export fails with error 500",
    )
    [message] = await desk.messages()
    assert message.channel_message_id == "req-1@customer.example"


async def test_wrong_or_missing_credentials_are_403_and_store_nothing(desk: Desk) -> None:
    attempts = [
        await post(desk.client, mail(), auth=(USER, "guess")),
        await post(desk.client, mail(), auth=("admin", PASSWORD)),
        await post(desk.client, mail(), auth=None),
    ]
    assert attempts == [403, 403, 403]
    assert await desk.tickets() == []


async def test_malformed_empty_or_oversized_posts_are_refused(storage: Storage) -> None:
    async with desk_for(storage, routes(storage, max_bytes=4096)) as desk:
        body, _ = parse_post(mail())
        broken = await desk.client.post(
            PATH, content=body[:200], headers={"content-type": "multipart/form-data"}
        )
        no_email = await desk.client.post(
            PATH, content=b"subject=hi", auth=(USER, PASSWORD),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        statuses = [
            (await desk.client.post(PATH, content=body[:200], auth=(USER, PASSWORD))).status_code,
            no_email.status_code,
            await post(desk.client, mail(text="y" * 5000)),
        ]
        assert broken.status_code == 403  # credentials first, whatever the body
        assert statuses == [415, 400, 413]
        assert await desk.tickets() == []


async def test_storage_away_is_503(storage: Storage) -> None:
    async with serving(routes(storage), refuse) as client:
        assert await post(client, mail()) == 503


def ecdsa_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key pair; the public half as SendGrid's API shows it (base64 DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return key, base64.b64encode(der).decode()


def signed_headers(key: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str) -> dict[str, str]:
    """What a Parse security policy with signature verification adds to a post."""
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


async def test_signed_parse_posts_are_checked_with_the_policys_public_key(
    storage: Storage,
) -> None:
    key, public = ecdsa_key()
    other, _ = ecdsa_key()
    factory = mail_post_routes(
        mailgun=MailgunSettings(),
        postmark=PostmarkSettings(),
        sendgrid=SendgridSettings(enabled=True, public_key=public),
        ses=SesSettings(),
        clock=lambda: NOW,
        tokens=SeenTokens(storage.sessions),
    )
    body, content_type = parse_post(mail())
    timestamp = str(int(NOW.timestamp()))
    good = signed_headers(key, body, timestamp) | {"content-type": content_type}
    async with desk_for(storage, factory) as desk:
        forged = [
            signed_headers(other, body, timestamp),
            signed_headers(key, body, str(int(timestamp) + 1))
            | {"X-Twilio-Email-Event-Webhook-Timestamp": timestamp},
            {"X-Twilio-Email-Event-Webhook-Timestamp": timestamp},
            good | {"X-Twilio-Email-Event-Webhook-Signature": "***"},
        ]
        statuses = [
            (
                await desk.client.post(
                    PATH, content=body, headers=h | {"content-type": content_type}
                )
            ).status_code
            for h in forged
        ]
        tampered = body.replace(b"error 500", b"error 501")
        statuses.append((await desk.client.post(PATH, content=tampered, headers=good)).status_code)
        assert statuses == [403] * 5
        assert await desk.tickets() == []
        first = await desk.client.post(PATH, content=body, headers=good)
        replay = await desk.client.post(PATH, content=body, headers=good)
        assert (first.status_code, replay.status_code) == (200, 200)
        assert len(await desk.tickets()) == 1  # a replay brings only the same message


def test_a_bad_public_key_or_no_credentials_is_a_config_error() -> None:
    async def never(**post: object) -> bool:
        raise AssertionError

    for settings in (
        SendgridSettings(enabled=True, public_key="bm90IGEga2V5"),
        SendgridSettings(enabled=True, user="parse"),
    ):
        with pytest.raises(ConfigError, match=r"sendgrid\."):
            mail_post_routes(
                mailgun=MailgunSettings(),
                postmark=PostmarkSettings(),
                sendgrid=settings,
                ses=SesSettings(),
                clock=lambda: NOW,
                tokens=never,
            )
