"""A spooled mail (channels.email.spool) reads as the same message as the bytes in memory.

`inbound_from_spool` parses the message with its large base64 bodies left in the file; every
field must equal what `inbound_from_raw` makes of the same bytes, and the bodies read back from
the file must be the decoded attachments. Any mail it cannot cut is parsed whole instead.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import BinaryIO

import pytest

from channels.email.inbound import (
    LARGE_BYTES,
    inbound_from_raw,
    inbound_from_spool,
    inbound_message,
)
from channels.email.spool import ELIDE_BYTES, skeleton
from intake.messages import InboundMessage, SpamVerdict, Spooled
from intake.spam.checker import screened

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parents[2] / "data" / "mail"
SHARED_MAIL = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "mail"
CORPUS = sorted(p for p in SHARED_MAIL.rglob("*") if p.is_file() and p.suffix != ".tsv")


def spooled(raw: bytes) -> BinaryIO:
    file = tempfile.TemporaryFile()
    file.write(raw)
    file.flush()
    return file  # type: ignore[return-value]


def content(spooled: Spooled) -> bytes:
    return b"".join(spooled.chunks())


def attachments(message: InboundMessage) -> list[tuple[str, str, bytes]]:
    return [
        (a.filename, a.content_type, content(a.spooled) if a.spooled else a.data)
        for a in message.attachments
    ]


def assert_same(raw: bytes, max_attachment_bytes: int = 10_485_760) -> InboundMessage:
    expected = inbound_from_raw(raw, received_at=NOW, max_attachment_bytes=max_attachment_bytes)
    with spooled(raw) as file:
        got = inbound_from_spool(
            file, len(raw), received_at=NOW, max_attachment_bytes=max_attachment_bytes
        )
        for name in ("channel_message_id", "sender", "subject", "text", "headers", "problems"):
            assert getattr(got, name) == getattr(expected, name), name
        assert attachments(got) == attachments(expected)
        for attachment in got.attachments:
            if attachment.spooled is not None:
                data = content(attachment.spooled)
                assert attachment.spooled.sha256 == hashlib.sha256(data).hexdigest()
                assert attachment.size == len(data)
        assert (content(got.raw_spooled) if got.raw_spooled else got.raw) == raw
    return got


def large(*, text: str = "The export fails; logs attached.\n", parts: int = 2) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Alice <alice@customer.example>"
    mail["To"] = "support@support.example.com"
    mail["Subject"] = "Logs"
    mail["Message-ID"] = "<large@customer.example>"
    mail.set_content(text)
    mail.add_alternative(f"<p>{text}</p>", subtype="html")
    for n in range(parts):
        data = os.urandom(ELIDE_BYTES * 2 + n)
        mail.add_attachment(data, maintype="application", subtype="zip", filename=f"l{n}.zip")
    mail.add_attachment(b"small", maintype="text", subtype="plain", filename="note.txt")
    return mail


@pytest.mark.parametrize("path", [*sorted(DATA.iterdir()), *CORPUS], ids=lambda p: p.name)
def test_every_test_and_corpus_mail_reads_the_same(path: Path) -> None:
    if path.suffix == ".md":
        pytest.skip("not mail")
    assert_same(path.read_bytes())


def test_large_attachments_stay_in_the_file() -> None:
    got = assert_same(large().as_bytes())
    assert [a.spooled is not None for a in got.attachments] == [True, True, False]
    assert got.raw == b"" and got.raw_spooled is not None


def test_a_forwarded_message_with_a_large_attachment() -> None:
    outer = large(parts=0)
    outer.add_attachment(large(parts=1))  # message/rfc822 holding a large attachment
    got = assert_same(outer.as_bytes())
    assert any(a.spooled is not None for a in got.attachments)


def test_attachment_over_the_cap_is_flagged_not_kept() -> None:
    got = assert_same(large(parts=1).as_bytes(), max_attachment_bytes=ELIDE_BYTES)
    assert [a.filename for a in got.attachments] == ["note.txt"]
    assert "attachment-too-large:l0.zip" in got.problems


def lines(data: bytes) -> Iterator[bytes]:
    encoded = base64.b64encode(data)
    for start in range(0, len(encoded), 76):
        yield encoded[start : start + 76] + b"\r\n"


@pytest.mark.parametrize(
    "body",
    [
        b"".join(lines(os.urandom(ELIDE_BYTES * 2)))[:-7] + b"\r\n",  # not a multiple of 4
        b"".join(lines(os.urandom(ELIDE_BYTES * 2))) + b"AB=C\r\n",  # padding in the middle
        b"".join(lines(os.urandom(ELIDE_BYTES * 2))) + b"not base64!\r\n",
    ],
    ids=["short", "padding", "junk"],
)
def test_base64_the_strict_decoder_refuses_is_parsed_whole(body: bytes) -> None:
    raw = (
        b"From: a@customer.example\r\nSubject: odd\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--b\r\n"
        b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="x.zip"\r\n\r\n' + body + b"--b--\r\n"
    )
    with spooled(raw) as file:
        assert skeleton(file) is None
    got = assert_same(raw)
    assert got.raw == raw and got.raw_spooled is None  # read and parsed in memory


def test_a_closed_spool_is_never_read() -> None:
    raw = large(parts=1).as_bytes()
    file = spooled(raw)
    got = inbound_from_spool(file, len(raw), received_at=NOW)
    file.close()
    [part] = [a.spooled for a in got.attachments if a.spooled is not None]
    with pytest.raises(ValueError):
        content(part)


class Recording:
    """A spam engine that keeps what it was given."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    async def check(self, raw: bytes) -> SpamVerdict:
        self.seen.append(raw)
        return SpamVerdict("ham", "recording")


async def test_a_spam_engine_reads_a_spooled_mail_whole() -> None:
    raw = large(parts=1).as_bytes()
    engine = Recording()
    with spooled(raw) as file:
        message = inbound_from_spool(file, len(raw), received_at=NOW)
        assert message.raw == b""
        checked = await screened(message, engine)
    assert engine.seen == [raw] and checked.spam == SpamVerdict("ham", "recording")


def test_large_mail_read_whole_is_parsed_from_a_file() -> None:
    raw = large(parts=3).as_bytes()  # as IMAP and the email APIs hand it over
    assert len(raw) > LARGE_BYTES
    expected = inbound_from_raw(raw, received_at=NOW)
    with inbound_message(raw, received_at=NOW) as got:
        assert got.raw == b"" and got.raw_spooled is not None and content(got.raw_spooled) == raw
        for name in ("text", "subject", "problems", "channel_message_id"):
            assert getattr(got, name) == getattr(expected, name), name
        assert attachments(got) == attachments(expected)
    with pytest.raises(ValueError):  # its file is gone
        content(got.raw_spooled)
    small = b"From: a@customer.example\r\nSubject: hi\r\n\r\nhello\r\n"
    with inbound_message(small, received_at=NOW) as message:
        assert message.raw == small
