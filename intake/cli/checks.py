"""`intake config check`: is the configuration whole, and does what it names answer?

Each check is one line: `ok` or `FAIL`, what was checked, and for a failure what is wrong.
Only what the configuration names is reached (the database, the outbound relay with a
connect and EHLO, the IMAP mailbox with a login); Twilio and Telegram credentials are only
checked for their shape, since reaching those clouds would send traffic on the operator's
account. Secrets are never printed.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import aiosmtplib
from sqlalchemy import text

from intake.cli.existing import sqlite_path
from intake.cli.serve import smtp_tls
from intake.config import Settings
from intake.contacts.file import read_contacts_file
from intake.contacts.values import normalize_email, normalize_phone
from intake.errors import IntakeError
from intake.policy.files import load_policy
from storage import db

TIMEOUT = 10.0
# Twilio: "AC" and 32 hex digits; auth tokens are 32 hex digits.
_TWILIO_SID = re.compile(r"^AC[0-9a-f]{32}$")
_TWILIO_TOKEN = re.compile(r"^[0-9a-f]{32}$")
# Telegram: "<bot id>:<35 characters>"; the webhook secret is 1-256 of A-Z, a-z, 0-9, _ and -.
_TELEGRAM_TOKEN = re.compile(r"^[0-9]{5,16}:[A-Za-z0-9_-]{30,}$")
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True, slots=True)
class Finding:
    what: str
    problem: str = ""  # empty: all is well

    def line(self) -> str:
        return f"ok   {self.what}" if not self.problem else f"FAIL {self.what}: {self.problem}"


async def check_all(settings: Settings) -> list[Finding]:
    """Every check, in the order of the configuration's sections."""
    findings: list[Finding] = []
    for check in (_database, _policy, _contacts, _smtp, _outbound, _imap, _web, _notify,
                  _twilio, _telegram):  # fmt: skip
        try:
            findings.extend(await check(settings))
        except IntakeError as exc:  # a check that failed in a way it did not foresee
            findings.append(Finding(check.__name__.strip("_"), str(exc)))
    return findings


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


async def _database(settings: Settings) -> list[Finding]:
    url = settings.database.url
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return [Finding(f"database {path.absolute()}: not there yet; `intake serve` or "
                        "`intake db upgrade` creates it")]  # fmt: skip
    what = f"database {path.absolute()}" if path is not None else "database"
    try:
        engine = db.create_engine(url)
    except Exception as exc:  # a malformed URL or a missing driver
        return [Finding("database.url", _one_line(exc))]
    try:
        async with asyncio.timeout(TIMEOUT):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the driver raises: say it in one line
        return [Finding(what, f"cannot connect: {type(exc).__name__}: {_one_line(exc)}")]
    finally:
        await engine.dispose()
    return [Finding(what + " answers")]


async def _policy(settings: Settings) -> list[Finding]:
    policy = load_policy(settings.policy.name)
    return [Finding(f"policy {policy.name}: plans {', '.join(policy.plans)}")]


async def _contacts(settings: Settings) -> list[Finding]:
    if settings.contacts.file is None:
        return []
    records = read_contacts_file(
        settings.contacts.file, default_region=settings.contacts.default_region
    )
    return [Finding(f"contacts.file {settings.contacts.file}: {len(records)} organizations")]


async def _smtp(settings: Settings) -> list[Finding]:
    if not settings.smtp.enabled:
        return []
    smtp_tls(settings.smtp)  # a certificate that cannot be loaded is a ConfigError
    domains = ", ".join(settings.smtp.domains)
    return [Finding(f"smtp: listens on {settings.smtp.host}:{settings.smtp.port} for {domains}")]


async def _outbound(settings: Settings) -> list[Finding]:
    relay = settings.outbound.smtp
    what = f"outbound.smtp {relay.host}:{relay.port}"
    findings = []
    try:
        normalize_email(relay.from_address)
    except ValueError as exc:
        findings.append(Finding("outbound.smtp.from", str(exc)))
    client = aiosmtplib.SMTP(hostname=relay.host, port=relay.port, timeout=TIMEOUT)
    try:
        await client.connect()  # reads the banner and says EHLO
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        client.close()
        return [*findings, Finding(what, f"no relay answers: {_one_line(exc)}")]
    return [*findings, Finding(what + " answers EHLO")]


async def _imap(settings: Settings) -> list[Finding]:
    imap = settings.imap
    if not imap.enabled:
        return []
    what = f"imap {imap.user} at {imap.host}:{imap.port}, folder {imap.folder}"
    from channels.email.imap_session import ImapSession  # imapclient: only for IMAP

    try:
        # imapclient blocks on its socket: a worker thread keeps this loop free.
        session = await asyncio.to_thread(ImapSession.open, imap, timeout=TIMEOUT)
    except IntakeError as exc:
        return [Finding(what, _one_line(exc))]
    await asyncio.to_thread(session.logout)
    return [Finding(what + ": logged in")]


async def _web(settings: Settings) -> list[Finding]:
    if not settings.web.enabled:
        return []
    findings = [Finding(f"web: listens on {settings.web.host}:{settings.web.port}")]
    webhooks = settings.twilio.enabled or settings.telegram.mode == "webhook"
    if webhooks and not settings.web.public_url.startswith("https://"):
        findings.append(Finding("web.public_url", "Twilio and Telegram call an https:// URL"))
    return findings


async def _notify(settings: Settings) -> list[Finding]:
    findings = []
    for address in settings.notify.emails:
        try:
            normalize_email(address)
        except ValueError as exc:
            findings.append(Finding("notify.emails", str(exc)))
    if settings.notify.telegram_chat_ids and not settings.telegram.token.get_secret_value():
        findings.append(Finding("notify.telegram_chat_ids", "no [telegram] token to send with"))
    if not settings.notify.emails and not settings.notify.telegram_chat_ids:
        return [Finding("notify: no target; urgent alerts reach no one")]
    return findings or [Finding("notify: alert targets look right")]


async def _twilio(settings: Settings) -> list[Finding]:
    twilio = settings.twilio
    if not twilio.enabled:
        return []
    findings = []
    if not _TWILIO_SID.match(twilio.account_sid):
        findings.append(Finding("twilio.account_sid", "not 'AC' and 32 hex digits"))
    if not _TWILIO_TOKEN.match(twilio.auth_token.get_secret_value()):
        findings.append(Finding("twilio.auth_token", "not 32 hex digits (value not shown)"))
    for key, number in (("whatsapp_from", twilio.whatsapp_from), ("sms_from", twilio.sms_from)):
        if number:
            try:
                normalize_phone(number)
            except ValueError as exc:
                findings.append(Finding(f"twilio.{key}", str(exc)))
    if not (twilio.whatsapp_from or twilio.sms_from):
        findings.append(Finding("twilio", "neither whatsapp_from nor sms_from: no replies"))
    return findings or [Finding("twilio: credentials have the right shape")]


async def _telegram(settings: Settings) -> list[Finding]:
    telegram = settings.telegram
    if not telegram.enabled and not telegram.token.get_secret_value():
        return []
    findings = []
    if not _TELEGRAM_TOKEN.match(telegram.token.get_secret_value()):
        findings.append(Finding("telegram.token", "not a bot token like 123456:ABC... (not shown)"))
    if telegram.mode == "webhook" and not _TELEGRAM_SECRET.match(
        telegram.secret_token.get_secret_value()
    ):
        findings.append(
            Finding("telegram.secret_token", "webhook mode needs 1-256 of A-Z a-z 0-9 _ -")
        )
    return findings or [Finding("telegram: credentials have the right shape")]
