"""Secrets never reach a log line: a log record factory that replaces every configured secret
(and its URL-encoded form) in each record's message and traceback, from any logger.

A record factory, not a `logging.Filter`: a filter on a logger misses its children's records,
and one on a handler misses handlers added later; every record is made by the factory. The
Telegram bot token is part of every Bot API URL, which httpx logs at INFO, so httpx and
httpcore are also lowered to WARNING.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from intake.config import Settings

MASK = "[secret]"
NOISY_URL_LOGGERS = ("httpx", "httpcore")


def secrets_of(settings: Settings, *extra: bytes | str) -> list[str]:
    """Every secret the settings hold, and `extra` ones (the threading key kept in the DB)."""
    found = [
        settings.imap.password.get_secret_value(),
        settings.imap.oauth2_client_secret.get_secret_value(),
        settings.imap.oauth2_refresh_token.get_secret_value(),
        settings.outbound.smtp.password.get_secret_value(),
        settings.outbound.smtp.oauth2_client_secret.get_secret_value(),
        settings.outbound.smtp.oauth2_refresh_token.get_secret_value(),
        settings.twilio.auth_token.get_secret_value(),
        settings.telegram.token.get_secret_value(),
        settings.telegram.secret_token.get_secret_value(),
        settings.pipeline.secret.get_secret_value(),
        settings.mailgun.signing_key.get_secret_value(),
        settings.postmark.password.get_secret_value(),
        settings.sendgrid.password.get_secret_value(),
    ]
    try:
        found.append(make_url(settings.database.url).password or "")
    except ArgumentError:
        pass  # not a URL sqlalchemy reads: the engine refuses it before anything is logged
    for value in extra:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace") if value.isascii() else ""
        found.append(value)
    return [s for s in found if s]


class Redactor:
    """Replaces each secret, longest first (one may contain another), and its URL-encoded
    form, by MASK."""

    def __init__(self, secrets: Iterable[str]) -> None:
        variants = {v for s in secrets if s for v in (s, quote(s, safe=""), quote(s))}
        self.secrets = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


_active: list[Redactor] = []  # of every running service (tests run several in one process)
LATER_KEPT = 64  # secrets learnt at run time (OAuth2 tokens) masked at once: the newest ones
_later: deque[str] = deque(maxlen=LATER_KEPT)
_later_redactor: list[Redactor] = []  # one Redactor of `_later`, rebuilt when it grows
_installed: list[Callable[..., logging.LogRecord]] = []


def mask_later(secret: str) -> None:
    """Mask `secret` too, from now on: one learnt at run time, e.g. an OAuth2 access token."""
    if secret and secret not in _later:
        _later.append(secret)
        _later_redactor[:] = [Redactor(list(_later))]


def _redacted(record: logging.LogRecord) -> logging.LogRecord:
    redactors = list(_active)
    if not redactors:
        return record
    redactors.extend(_later_redactor)

    def redact(text: str) -> str:
        for redactor in redactors:
            text = redactor(text)
        return text

    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it; keep the raw parts out
        message = str(record.msg)
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


def redact_logs(secrets: Iterable[str]) -> Callable[[], None]:
    """Mask `secrets` in every log record from now on; returns what stops it (at `stop`).

    The record factory is installed once and stays; it does nothing while no secrets are
    registered, so undoing in any order is safe.
    """
    redactor = Redactor(secrets)
    if not _installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return _redacted(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed.append(factory)
    _active.append(redactor)
    levels = {name: logging.getLogger(name).level for name in NOISY_URL_LOGGERS}
    for name in NOISY_URL_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

    def undo() -> None:
        if redactor in _active:
            _active.remove(redactor)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    return undo
