"""`intake serve` wires the mail posts from `[mailgun]`, `[postmark]`, `[sendgrid]` and `[ses]`
(also set as INTAKE_<SECTION>_<KEY>), and keeps their secrets out of the logs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import httpx
import pytest
from mail_posts import mail, multipart
from sqlalchemy import select

from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service
from intake.config import load_settings
from intake.errors import ConfigError
from intake.redact import secrets_of
from storage.models import Ticket

KEY = "key-0f5c1a2b3c4d5e6f7a8b9c0d1e2f3a4b"
SENDGRID_PASSWORD = "sg-parse-password-7781"


def environment(storage_url: str) -> dict[str, str]:
    return {
        "INTAKE_DATABASE_URL": storage_url,
        "INTAKE_SMTP_ENABLED": "false",
        "INTAKE_WEB_PORT": "0",
        "INTAKE_MAILGUN_ENABLED": "true",
        "INTAKE_MAILGUN_SIGNING_KEY": KEY,
        "INTAKE_SENDGRID_ENABLED": "true",
        "INTAKE_SENDGRID_USER": "parse",
        "INTAKE_SENDGRID_PASSWORD": SENDGRID_PASSWORD,
        "INTAKE_SES_TOPIC_ARNS": "arn:aws:sns:eu-west-1:123456789012:a,arn:aws:sns:us-east-1:1:b",
    }


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_serve_takes_mailgun_and_sendgrid_posts_and_masks_their_secrets(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    url = str(storage.engine.url.render_as_string(hide_password=False))
    settings = load_settings(None, environment(url))
    assert settings.ses.topic_arns == [
        "arn:aws:sns:eu-west-1:123456789012:a",
        "arn:aws:sns:us-east-1:1:b",
    ]
    assert {KEY, SENDGRID_PASSWORD} <= set(secrets_of(settings))
    service = Service(settings, storage, await build_pipeline(settings, storage))
    await service.start()
    try:
        [web] = [c for c in service.channels if c.name == "web"]
        base = f"http://127.0.0.1:{web.port}"  # type: ignore[attr-defined]
        timestamp, token = str(int(time.time())), "a" * 50  # serve runs on the real clock
        signature = hmac.new(KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
        fields = {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()}
        body, kind = multipart(fields | {"body-mime": mail()})
        async with httpx.AsyncClient(base_url=base) as client:
            mailgun = await client.post(
                "/webhooks/mail/mailgun", content=body, headers={"content-type": kind}
            )
            logging.getLogger("intake.test").warning("key %s password %s", KEY, SENDGRID_PASSWORD)
            body, kind = multipart({"email": mail("Second", message_id="<sg@customer.example>")})
            sendgrid = await client.post(
                "/webhooks/mail/sendgrid",
                content=body,
                headers={"content-type": kind},
                auth=("parse", SENDGRID_PASSWORD),
            )
            postmark = await client.post("/webhooks/mail/postmark", json={})
    finally:
        await service.stop()
    # Postmark is not enabled: no route.
    assert (mailgun.status_code, sendgrid.status_code, postmark.status_code) == (200, 200, 404)
    async with storage.sessions() as session:
        subjects = set(await session.scalars(select(Ticket.subject)))
    assert subjects == {"Export fails with error 500", "Second"}
    logged = "\n".join(caplog.handler.format(record) for record in caplog.records)
    assert KEY not in logged and SENDGRID_PASSWORD not in logged


def test_enabled_ses_without_a_topic_is_refused_at_start() -> None:
    from channels.email.posts import mail_post_routes
    from intake.config import MailgunSettings, PostmarkSettings, SendgridSettings, SesSettings

    async def never(**post: object) -> bool:
        raise AssertionError

    with pytest.raises(ConfigError, match=r"ses\.topic_arns"):
        mail_post_routes(
            mailgun=MailgunSettings(),
            postmark=PostmarkSettings(),
            sendgrid=SendgridSettings(),
            ses=SesSettings(enabled=True),
            clock=lambda: None,  # type: ignore[arg-type, return-value]
            tokens=never,
        )
