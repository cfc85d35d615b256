"""Our outgoing mail as wire bytes: a skeleton per shape, filled in per notice.

Written by hand for cost (issue 19): `compose` builds some forty header objects through the
policy's header registry, then aiosmtplib's `send_message` flattens the message again with a
generator: about a third of the CPU the product spent per message under load. Here `email` with
`policy.default` still authors the MIME structure, once per shape (kind, with or without HTML,
sender): that skeleton is flattened once, with a placeholder line for every per-message header
and body, and each notice only fills those in.

The filling keeps today's encoding of every header value: the values `compose` would write,
folded as the policy folds them when they are plain (printable ASCII, short words, nothing that
parses as an encoded word, addresses and ids in their simplest form), and otherwise folded by
the policy itself; a non-ASCII subject is encoded by `email.header.Header`, as `compose` does.
Control characters never reach a header (`header_value`), so no value can start a header line.
Bodies are always quoted-printable (binascii, CRLF line ends): lines stay within 76 characters,
whatever the text, and an encoded body can never contain the boundary, which has "=" in it.

Mail with files keeps `compose`: attachments are rare (agents' replies) and come in any shape.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache

from channels.email.compose import header_value, message_ids
from channels.email.policy import DEFAULT
from intake.messages import Ack
from intake.outbox.acks import LOOP_HEADER

# The policy aiosmtplib flattens with (`policy.SMTP`: CRLF), with our keeping header registry.
WIRE = DEFAULT.clone(linesep="\r\n")
MAX_LINE = 78  # the policy's max_line_length

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
# An address or message id the policy writes back exactly as given.
_ADDRESS = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")
_MESSAGE_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
_PRINTABLE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")

# The per-message header lines, in `compose`'s order; each is a placeholder in the skeleton.
FILLED = ("To", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "Reply-To")
TEXT, HTML = "text", "html"


@dataclass(frozen=True)
class Skeleton:
    """A flattened message cut at its placeholders: `pieces` and `slots` alternate."""

    pieces: tuple[bytes, ...]
    slots: tuple[str, ...]  # a header name, or TEXT / HTML for a body

    def fill(self, values: dict[str, bytes]) -> bytes:
        out = [self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(values[slot])
            out.append(piece)
        return b"".join(out)


def _placeholder(slot: str) -> str:
    return f"FILL-{slot}-{secrets.token_hex(8)}"


@lru_cache(maxsize=64)
def skeleton(kind: str, html: bool, sender: str, sender_name: str) -> Skeleton:
    """The shape `compose` gives a notice of `kind` from `sender`, cut at its placeholders."""
    mail = EmailMessage(policy=DEFAULT)
    local, _, domain = sender.partition("@")
    mail["From"] = Address(display_name=header_value(sender_name), username=local, domain=domain)
    marks: dict[str, str] = {}
    for name in FILLED:
        marks[name] = _placeholder(name)
        mail.set_raw(name, marks[name])  # raw: written back as it is
    if kind != "reply":  # as in `compose`: RFC 3834
        mail["Auto-Submitted"] = "auto-generated" if kind == "alert" else "auto-replied"
    mail["X-Auto-Response-Suppress"] = "All"
    mail[LOOP_HEADER] = header_value(sender)
    marks["X-Intake-Reference"] = _placeholder("X-Intake-Reference")
    mail.set_raw("X-Intake-Reference", marks["X-Intake-Reference"])
    marks[TEXT] = _placeholder(TEXT)
    mail.set_content(marks[TEXT], cte="quoted-printable")
    if html:
        marks[HTML] = _placeholder(HTML)
        mail.add_alternative(marks[HTML], subtype="html", cte="quoted-printable")
        mail.set_boundary(f"==={secrets.token_hex(16)}==")  # "=": never in a QP body
    flat = mail.as_bytes(policy=WIRE)
    # Cut out each placeholder's whole line: a header that a notice lacks leaves no trace.
    found = []
    for slot, mark in marks.items():
        line = (f"{slot}: {mark}\r\n" if slot not in (TEXT, HTML) else f"{mark}\r\n").encode()
        start = flat.index(line)
        found.append((start, start + len(line), slot))
    found.sort()
    pieces, slots, at = [], [], 0
    for start, end, slot in found:
        pieces.append(flat[at:start])
        slots.append(slot)
        at = end
    pieces.append(flat[at:])
    return Skeleton(tuple(pieces), tuple(slots))


def _fold_words(name: str, value: str) -> str | None:
    """`Name: value` folded at its spaces as the policy folds plain unstructured text, or
    None when the value is not plain (the policy then folds it itself)."""
    if not _PRINTABLE.fullmatch(value) or "=?" in value:
        return None
    if len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n"
    if 1 + len(value) <= MAX_LINE:  # the policy moves a value that fits a line of its own
        return f"{name}:\r\n {value}\r\n"
    words = value.split(" ")
    lines = [f"{name}: {words[0]}"]
    if len(lines[0]) > MAX_LINE:
        return None
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= MAX_LINE:
            lines[-1] += " " + word
        elif 1 + len(word) <= MAX_LINE:
            lines.append(" " + word)
        else:
            return None
    return "\r\n".join(lines) + "\r\n"


def _by_policy(name: str, value: str) -> bytes:
    """What the generator writes for `mail[name] = value` (or the error it raises)."""
    return WIRE.fold_binary(name, WIRE.header_factory(name, value))


def header_line(name: str, value: str) -> bytes:
    """The folded line(s) `compose` and the generator give `name: value`, CRLF-ended."""
    plain = None
    if name in ("To", "Reply-To"):
        if _ADDRESS.fullmatch(value) and len(name) + 2 + len(value) <= MAX_LINE:
            plain = f"{name}: {value}\r\n"
    elif name == "Message-ID":
        if _MESSAGE_ID.fullmatch(value) and len(name) + 2 + len(value) <= MAX_LINE:
            plain = f"{name}: {value}\r\n"
    else:
        plain = _fold_words(name, value)
    return plain.encode("ascii") if plain is not None else _by_policy(name, value)


def subject_line(subject: str) -> bytes:
    """`set_subject`'s encoding: a non-ASCII subject whole in `Header`'s encoded words."""
    if subject.isascii():
        return header_line("Subject", subject)
    encoded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    return f"Subject: {encoded}\r\n".encode("ascii")


def body(text: str) -> bytes:
    """`text` as `set_content` normalizes it (its line ends, a final one), quoted-printable."""
    lines = text.encode("utf-8").splitlines() or [b""]
    return binascii.b2a_qp(b"\r\n".join([*lines, b""]), istext=True)


def wire_bytes(ack: Ack, *, sender: str, sender_name: str, now: datetime) -> bytes:
    """What `compose(ack, ...)` flattened for SMTP would say, for a notice without files."""
    shape = skeleton(ack.kind, bool(ack.html), sender, sender_name)
    empty = b""
    values = {
        "To": header_line("To", header_value(ack.to)),
        "Subject": subject_line(header_value(ack.subject)[:250]),
        "Date": f"Date: {format_datetime(now)}\r\n".encode("ascii"),
        "Message-ID": empty,
        "In-Reply-To": empty,
        "References": empty,
        "Reply-To": empty,
        "X-Intake-Reference": empty,
        TEXT: body(ack.text),
        HTML: body(ack.html),
    }
    if ack.message_id:
        values["Message-ID"] = header_line("Message-ID", f"<{header_value(ack.message_id)}>")
    threaded = message_ids([ack.in_reply_to]) if ack.in_reply_to else ""
    if threaded:
        values["In-Reply-To"] = header_line("In-Reply-To", threaded)
    thread = message_ids(ack.references)
    if thread:
        values["References"] = header_line("References", thread)
    if ack.reply_to:
        values["Reply-To"] = header_line("Reply-To", header_value(ack.reply_to))
    if ack.reference:
        values["X-Intake-Reference"] = header_line(
            "X-Intake-Reference", header_value(ack.reference)
        )
    return shape.fill(values)
