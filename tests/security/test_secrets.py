"""Secrets never in logs or pages. The whole service runs with known secret values (Twilio auth
token, Telegram bot token, which is in every Bot API URL, webhook secret, IMAP password,
pipeline secret, an agent's password and API token) against real SMTP, a real Dovecot, and
local fakes of Twilio and Telegram; every log record (DEBUG, httpx/httpcore/telegram/aiosmtpd
included) and every page served is searched for them."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import httpx
import pytest
from dovecot import Dovecot
from fake_telegram import FakeTelegram
from fake_twilio import FakeTwilio
from forgery import mail
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service
from intake.config import Settings
from intake.desk import agents
from intake.redact import MASK, Redactor, redact_logs, secrets_of
from storage import db

TWILIO_SID = "AC" + "7" * 32
TWILIO_TOKEN = "f00dfeedcafe0123twiliosecret9876"
TG_TOKEN = "7000000009:AAHsecret-telegram_bot-token"
TG_SECRET = "webhook-Secret_Token-42"
PIPELINE_SECRET = "pipeline-hmac-secret-0123456789"
DB_PASSWORD = "DbPa55word-secret"
AGENT_PASSWORD = "agent horse battery staple"
PUBLIC = "https://support.example.com"
LOGGERS = ("", "httpx", "httpcore", "telegram", "aiosmtpd", "mail.log", "imapclient",
           "sqlalchemy", "asyncpg", "uvicorn", "intake", "channels", "storage")  # fmt: skip
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)


def settings(imap: Dovecot, twilio: FakeTwilio, telegram: FakeTelegram) -> Settings:
    values: dict[str, Any] = {
        "database": {"url": f"postgresql+asyncpg://postgres:{DB_PASSWORD}@127.0.0.1:5432/test"},
        "pipeline": {"secret": PIPELINE_SECRET},
        "smtp": {"host": "127.0.0.1", "port": 0},
        "outbound": {"smtp": {"host": "127.0.0.1", "port": 9}},  # nothing listens: errors log
        "web": {"host": "127.0.0.1", "port": 0, "public_url": PUBLIC},
        "imap": {"enabled": True, "host": "127.0.0.1", "port": imap.port, "ssl": False,
                 "user": imap.user, "password": imap.password, "poll_seconds": 0.2},
        "twilio": {"enabled": True, "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN,
                   "api_base": twilio.base_url, "whatsapp_from": "+14155238886",
                   "sms_from": "+14155550100"},
        "telegram": {"enabled": True, "token": TG_TOKEN, "api_base": telegram.api_base,
                     "secret_token": TG_SECRET, "poll_timeout_seconds": 1},
        "notify": {"emails": [], "telegram_chat_ids": [-1001500000001]},
    }  # fmt: skip
    return Settings(**values)


def tg_update(update_id: int) -> dict[str, Any]:
    chat = {"id": 777000111, "type": "private", "first_name": "Bob"}
    return {
        "update_id": update_id,
        "message": {"message_id": 5, "date": 1773136800, "chat": chat, "text": "It is down",
                    "from": {"id": 777000111, "is_bot": False, "first_name": "Bob"}},
    }  # fmt: skip


def web_port(service: Service) -> int:
    return next(int(getattr(c, "port", 0)) for c in service.channels if c.name == "web")


def smtp_port(service: Service) -> int:
    return next(int(getattr(c, "port", 0)) for c in service.channels if c.name == "smtp")


async def exercise(service: Service, storage: Storage, telegram: FakeTelegram, imap: Dovecot,
                   token: str) -> list[str]:  # fmt: skip
    """Drive every channel and page; return the pages' HTML and JSON."""
    pages: list[str] = []
    await aiosmtplib.send(mail("Alice <alice@customer.example>"), hostname="127.0.0.1",
                          port=smtp_port(service))  # fmt: skip
    imap.deliver(mail("carol@customer.example", "By IMAP").as_bytes())
    telegram.push(tg_update(900000777))
    base = f"http://127.0.0.1:{web_port(service)}"
    async with httpx.AsyncClient(base_url=base) as client:
        fields = {"MessageSid": "SM" + "5" * 32, "From": "whatsapp:+420601123456",
                  "To": "whatsapp:+14155238886", "Body": "Help", "NumMedia": "0"}  # fmt: skip
        url = PUBLIC + "/webhooks/twilio/messaging"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, fields)
        answer = await client.post("/webhooks/twilio/messaging", data=fields,
                                   headers={"X-Twilio-Signature": signature})  # fmt: skip
        assert answer.status_code == 200
        forged = await client.post("/webhooks/twilio/messaging", data=fields,
                                   headers={"X-Twilio-Signature": "Zm9yZ2Vk"})  # fmt: skip
        assert forged.status_code == 403
        login = await client.get("/login")
        csrf = re.findall(r'name="csrf_token" value="([^"]+)"', login.text)[0]
        for password in ("wrong " + AGENT_PASSWORD, AGENT_PASSWORD):
            await client.post("/login", data={"csrf_token": csrf, "email": "ann@vendor.example",
                                              "password": password})  # fmt: skip
        pages.append((await client.get("/")).text)
        api = {"Authorization": f"Bearer {token}"}
        pages.append((await client.get("/api/tickets", headers=api)).text)
        await client.get("/api/tickets", headers={"Authorization": f"Bearer {token}x"})
        for reference in sorted(set(re.findall(r"SUP-\d{6}", pages[-1]))):
            pages.append((await client.get(f"/tickets/{reference}")).text)
            pages.append((await client.get(f"/api/tickets/{reference}", headers=api)).text)
        pages.append((await client.get("/callback")).text)
    for _ in range(3600):  # the Telegram update and the IMAP mail (a bound, not a timing)
        async with storage.sessions() as session:
            count = await session.scalar(text("SELECT count(*) FROM tickets"))
        if count == 4 and telegram.made("sendMessage"):
            break
        await asyncio.sleep(0.05)
    async with storage.sessions() as session:
        channels = (await session.execute(text("SELECT channel FROM tickets"))).scalars().all()
    assert count == 4, channels
    await service.deliverer.run_once()  # acks out: Twilio fake, Telegram fake, dead SMTP relay
    return pages


@SQLITE_ONLY
async def test_no_secret_in_any_log_line_or_page(
    storage: Storage, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    imap = Dovecot()
    imap.start()
    twilio = FakeTwilio(TWILIO_SID, TWILIO_TOKEN)
    telegram = FakeTelegram(TG_TOKEN)
    await twilio.start()
    await telegram.start()
    config = settings(imap, twilio, telegram)
    token = await agents.add_agent(storage.sessions, "ann@vendor.example", AGENT_PASSWORD,
                                   name="Ann", now=datetime.now(UTC))  # fmt: skip
    service = Service(config, storage, await build_pipeline(config, storage))
    service.deliverer.idle = 0.05
    try:
        await service.start()
        for name in LOGGERS:  # after start: the most a deployment could turn on
            caplog.set_level(logging.DEBUG, logger=name)
        pages = await exercise(service, storage, telegram, imap, token)
        # The database password: an engine on a URL that carries it, used at DEBUG.
        engine = db.create_engine(config.database.url)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()
        logging.getLogger("intake.test").warning("relay said: %s", config.database.url)
    finally:
        await service.stop()
        await telegram.stop()
        await twilio.stop()
        imap.stop()
        imap.wait_stopped()
    secrets = [TWILIO_TOKEN, TG_TOKEN, TG_SECRET, PIPELINE_SECRET, DB_PASSWORD, AGENT_PASSWORD,
               imap.password, token]  # fmt: skip
    logged = "\n".join(
        caplog.handler.format(record) + repr(record.__dict__) for record in caplog.records
    )
    assert any(r.name.startswith("httpx") for r in caplog.records)  # URLs were logged ...
    assert MASK in logged  # ... and the token in them was masked
    for secret in secrets:
        assert secret not in logged, secret
        for page in pages:
            assert secret not in page, secret


def test_the_redactor_masks_every_form_and_the_factory_every_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Settings(database={"url": f"postgresql+asyncpg://u:{DB_PASSWORD}@h/db"},
                      telegram={"token": TG_TOKEN}, twilio={"auth_token": TWILIO_TOKEN})  # type: ignore[arg-type]  # fmt: skip
    found = secrets_of(config, b"raw-key-bytes", b"\xff\xfe")
    assert set(found) == {DB_PASSWORD, TG_TOKEN, TWILIO_TOKEN, "raw-key-bytes"}
    redact = Redactor(found)
    assert redact(f"GET /bot{TG_TOKEN}/getMe") == f"GET /bot{MASK}/getMe"
    assert TG_TOKEN.replace(":", "%3A") not in redact("x" + TG_TOKEN.replace(":", "%3A"))
    undo = redact_logs(found)
    try:
        caplog.set_level(logging.DEBUG)
        log = logging.getLogger("anything.at.all")
        log.debug("token %s", TG_TOKEN)
        try:
            raise RuntimeError(f"failed at https://api.example/bot{TG_TOKEN}/x")
        except RuntimeError:
            log.exception("it broke")
        log.info(f"format string with {TWILIO_TOKEN} in it")
        assert logging.getLogger("httpx").level == logging.WARNING
    finally:
        undo()
    logging.getLogger("anything.at.all").info("after: %s", TG_TOKEN)  # undone: as it is
    text_logged = caplog.text
    assert text_logged.count(TG_TOKEN) == 1 and text_logged.endswith(f"after: {TG_TOKEN}\n")
    assert TWILIO_TOKEN not in text_logged and text_logged.count(MASK) == 3
