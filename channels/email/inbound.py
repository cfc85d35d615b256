"""Raw email bytes -> `InboundMessage`, the same for mail from SMTP and from IMAP.

The idempotency key is the Message-ID, so a message that arrives twice (redelivered, polled
again after a crash, or by both SMTP and IMAP) is one ticket. Mail without a Message-ID is
keyed by the hash of its bytes.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import BinaryIO, cast

from channels.email.mime import ParsedEmail, parse_email
from channels.email.spool import CHUNK, Skeleton, skeleton, whole
from intake.messages import Attachment, ChannelKind, InboundMessage, Spooled

# Where a Message-ID is longer than this, its hash stands in (the column holds 998).
MAX_ID_LENGTH = 500
UNKNOWN_SENDER = "unknown@invalid"
LARGE_BYTES = 262_144  # mail read whole past this is parsed from a temporary file
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def message_key(message_id: str | None, raw: bytes, *, digest: str = "") -> str:
    """The idempotency key; `digest`: the raw bytes' SHA-256 when they are not at hand."""
    if not message_id:
        return "sha256:" + (digest or hashlib.sha256(raw).hexdigest())
    if len(message_id) > MAX_ID_LENGTH:
        return "sha256-id:" + hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    return message_id


def inbound_from_raw(
    raw: bytes,
    *,
    received_at: datetime,
    envelope_sender: str | None = None,
    recipients: tuple[str, ...] = (),
    max_attachment_bytes: int = 10_485_760,
) -> InboundMessage:
    """Parse `raw` (never raises: broken mail still becomes a message, flagged)."""
    parsed = parse_email(raw, max_attachment_bytes=max_attachment_bytes)
    attachments = tuple(
        Attachment(filename=a.filename or "attachment", content_type=a.content_type, data=a.data)
        for a in parsed.attachments
    )
    return _inbound(
        parsed,
        attachments,
        key=message_key(parsed.message_id, raw),
        received_at=received_at,
        envelope_sender=envelope_sender,
        recipients=recipients,
        raw=raw,
    )


@contextmanager
def inbound_message(
    raw: bytes,
    *,
    received_at: datetime,
    envelope_sender: str | None = None,
    recipients: tuple[str, ...] = (),
    max_attachment_bytes: int = 10_485_760,
) -> Iterator[InboundMessage]:
    """`inbound_from_raw` for mail that arrives whole (IMAP, the email APIs): past
    `LARGE_BYTES` it is written to a temporary file and parsed from there, so that the
    caller's bytes are its one whole copy (their parse in memory cost about 8x). The message
    is good inside the `with` block; the file is gone after it."""
    if len(raw) <= LARGE_BYTES:
        yield inbound_from_raw(
            raw,
            received_at=received_at,
            envelope_sender=envelope_sender,
            recipients=recipients,
            max_attachment_bytes=max_attachment_bytes,
        )
        return
    with tempfile.TemporaryFile(buffering=CHUNK) as file:
        file.write(raw)
        file.flush()
        yield inbound_from_spool(
            cast(BinaryIO, file),
            len(raw),
            received_at=received_at,
            envelope_sender=envelope_sender,
            recipients=recipients,
            max_attachment_bytes=max_attachment_bytes,
        )


def inbound_from_spool(
    file: BinaryIO,
    size: int,
    *,
    received_at: datetime,
    envelope_sender: str | None = None,
    recipients: tuple[str, ...] = (),
    max_attachment_bytes: int = 10_485_760,
) -> InboundMessage:
    """A large mail spooled to `file` (channels.email.spool), parsed without the bodies of
    its large attachments: those and the raw bytes stay in the file until they are stored.
    Mail not plain enough to cut is read and parsed whole, as `inbound_from_raw` does."""
    cut = skeleton(file)
    parsed = parse_email(cut.text, max_attachment_bytes=max_attachment_bytes) if cut else None
    found = _spooled_attachments(parsed, cut, max_attachment_bytes) if parsed and cut else None
    if parsed is None or found is None:
        file.seek(0)
        return inbound_from_raw(
            file.read(),
            received_at=received_at,
            envelope_sender=envelope_sender,
            recipients=recipients,
            max_attachment_bytes=max_attachment_bytes,
        )
    attachments, problems = found
    raw = whole(file, size)
    return _inbound(
        replace(parsed, problems=problems),
        attachments,
        key=message_key(parsed.message_id, b"", digest=raw.sha256),
        received_at=received_at,
        envelope_sender=envelope_sender,
        recipients=recipients,
        raw_spooled=raw,
    )


def _spooled_attachments(
    parsed: ParsedEmail, cut: Skeleton, max_bytes: int
) -> tuple[tuple[Attachment, ...], tuple[str, ...]] | None:
    """The attachments, each left-out body in place of its marker; None if a marker is not
    where it belongs (the parse read the structure differently)."""
    left_out = {cut.marker(i): part for i, part in enumerate(cut.parts)}
    attachments: list[Attachment] = []
    problems = list(parsed.problems)
    for found in parsed.attachments:
        name = found.filename or "attachment"
        part = left_out.pop(found.data, None)
        if part is None:
            attachments.append(
                Attachment(filename=name, content_type=found.content_type, data=found.data)
            )
        elif part.size > max_bytes:  # as parse_email does with a body it holds
            problems.append(f"attachment-too-large:{found.filename or found.content_type}")
        else:
            attachments.append(
                Attachment(filename=name, content_type=found.content_type, data=b"", spooled=part)
            )
    if left_out or cut.nonce in parsed.text:
        return None
    return tuple(attachments), tuple(problems)


def _inbound(
    parsed: ParsedEmail,
    attachments: tuple[Attachment, ...],
    *,
    key: str,
    received_at: datetime,
    envelope_sender: str | None,
    recipients: tuple[str, ...],
    raw: bytes = b"",
    raw_spooled: Spooled | None = None,
) -> InboundMessage:
    # The SMTP server takes any bytes in MAIL FROM and RCPT TO; a control character (a NUL
    # that PostgreSQL refuses, a CR for a log line) makes an address nobody's.
    if envelope_sender and _CONTROL.search(envelope_sender):
        envelope_sender = UNKNOWN_SENDER
    recipients = tuple(r for r in recipients if not _CONTROL.search(r))
    sender = parsed.from_addr or (envelope_sender or "").lower() or UNKNOWN_SENDER
    reply_to = parsed.reply_to or ""
    if "invalid-from" in parsed.problems:
        # A From that is not one valid mailbox names no one: the sender is unidentified and
        # nothing is written to any address of this message (notices skip `.invalid`).
        sender, reply_to = UNKNOWN_SENDER, ""
    rfc_id = parsed.message_id if parsed.message_id and len(parsed.message_id) <= 998 else None
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_message_id=key,
        received_at=received_at,
        sender=sender,
        sender_name=parsed.from_name,
        reply_to=reply_to,
        subject=parsed.subject,
        text=parsed.text,
        attachments=attachments,
        references=(*parsed.references, *parsed.in_reply_to),
        thread_hints=(*parsed.in_reply_to, *parsed.references, *recipients),
        rfc_message_id=rfc_id,
        headers=parsed.headers,
        envelope_sender=envelope_sender,
        problems=parsed.problems,
        raw=raw,
        raw_spooled=raw_spooled,
    )
