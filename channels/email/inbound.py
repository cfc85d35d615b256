"""Raw email bytes -> `InboundMessage`, the same for mail from SMTP and from IMAP.

The idempotency key is the Message-ID, so a message that arrives twice (redelivered, polled
again after a crash, or by both SMTP and IMAP) is one ticket. Mail without a Message-ID is
keyed by the hash of its bytes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from channels.email.mime import parse_email
from intake.messages import Attachment, ChannelKind, InboundMessage

# Where a Message-ID is longer than this, its hash stands in (the column holds 998).
MAX_ID_LENGTH = 500
UNKNOWN_SENDER = "unknown@invalid"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def message_key(message_id: str | None, raw: bytes) -> str:
    if not message_id:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
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
        channel_message_id=message_key(parsed.message_id, raw),
        received_at=received_at,
        sender=sender,
        sender_name=parsed.from_name,
        reply_to=reply_to,
        subject=parsed.subject,
        text=parsed.text,
        attachments=tuple(
            Attachment(
                filename=a.filename or "attachment",
                content_type=a.content_type,
                data=a.data,
            )
            for a in parsed.attachments
        ),
        references=(*parsed.references, *parsed.in_reply_to),
        thread_hints=(*parsed.in_reply_to, *parsed.references, *recipients),
        rfc_message_id=rfc_id,
        headers=parsed.headers,
        envelope_sender=envelope_sender,
        problems=parsed.problems,
        raw=raw,
    )
