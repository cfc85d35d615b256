"""Composing our outgoing mail: acknowledgements, endorsement requests and agent alerts.

Pure: an `Ack` in, an `EmailMessage` out. Built with `email.policy.default` (its cheaper
twin, `channels.email.policy.DEFAULT`), threaded under
the customer's message, and marked so that no well-behaved robot answers it (RFC 3834
`Auto-Submitted`, Exchange's `X-Auto-Response-Suppress`) and so that it is recognised if it
comes back (our loop header).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from channels.email.policy import DEFAULT
from intake.messages import Ack
from intake.outbox.acks import LOOP_HEADER

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def header_value(value: str) -> str:
    """One line, no control characters: sender-controlled text can never start a header."""
    return " ".join(_CONTROL.sub(" ", value).split())


def message_ids(values: tuple[str, ...] | list[str]) -> str:
    """The ids as a header value (`<a@b> <c@d>`): one line, those without "@" or with a space
    left out."""
    cleaned = [header_value(v).strip("<>") for v in values if v and "@" in v]
    return " ".join(f"<{v}>" for v in cleaned if " " not in v)


def set_subject(mail: EmailMessage, subject: str) -> None:
    """Set Subject so that it arrives as written.

    `policy.default` folds a long non-ASCII value into encoded words but can drop the space
    between two of them ("selhává \u2013 chyba" arrives as "selhává\u2013 chyba"). A non-ASCII
    subject is therefore encoded here, whole, by `email.header.Header` (every character
    inside an encoded word, lines within 78), and stored raw: the generator leaves a raw
    value with short lines as it is.
    """
    if subject.isascii():
        mail["Subject"] = subject
        return
    encoded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\n")
    mail.set_raw("Subject", encoded)


def compose(ack: Ack, *, sender: str, sender_name: str, now: datetime) -> EmailMessage:
    mail = EmailMessage(policy=DEFAULT)
    local, _, domain = sender.partition("@")
    mail["From"] = Address(display_name=header_value(sender_name), username=local, domain=domain)
    mail["To"] = header_value(ack.to)
    set_subject(mail, header_value(ack.subject)[:250])
    mail["Date"] = format_datetime(now)
    if ack.message_id:
        mail["Message-ID"] = f"<{header_value(ack.message_id)}>"
    if ack.in_reply_to and message_ids([ack.in_reply_to]):
        mail["In-Reply-To"] = message_ids([ack.in_reply_to])
    if message_ids(ack.references):
        mail["References"] = message_ids(ack.references)
    if ack.reply_to:
        mail["Reply-To"] = header_value(ack.reply_to)
    # RFC 3834: a reply made by a machine is "auto-replied"; an alert is "auto-generated".
    # An agent's reply is a person's: no Auto-Submitted, so the customer's mail treats it so.
    if ack.kind != "reply":
        mail["Auto-Submitted"] = "auto-generated" if ack.kind == "alert" else "auto-replied"
    mail["X-Auto-Response-Suppress"] = "All"
    mail[LOOP_HEADER] = header_value(sender)
    if ack.reference:
        mail["X-Intake-Reference"] = header_value(ack.reference)
    mail.set_content(ack.text)
    if ack.html:
        mail.add_alternative(ack.html, subtype="html")
        # Named here: the generator would otherwise pick one and compile a regex to look for
        # it in the text (~0.3 ms). 128 random bits cannot turn up in our own text by chance.
        mail.set_boundary(f"==={secrets.token_hex(16)}==")
    for file in ack.files:
        main, _, sub = file.content_type.partition("/")
        mail.add_attachment(
            file.data, maintype=main or "application", subtype=sub or "octet-stream",
            filename=header_value(file.filename) or "file",
        )  # fmt: skip
    return mail
