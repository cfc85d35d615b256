"""Shared pieces of the fuzz tests: hypothesis settings that keep CI deterministic and bounded,
the real corpus as seeds, strategies that build hostile mail, and the output bounds checked.

Derandomized with no example database: every run tries the same inputs, so a failure in CI
is reproducible on any machine, and the time spent is bounded by `max_examples`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from channels.email.mime import ParsedEmail
from intake.messages import InboundMessage

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS_DIRS = (DATA / "mail", DATA / "classify")
MAX_CORPUS_FILE = 64 * 1024  # bigger files are kept out of seeds: they slow every example


def fuzz_settings(examples: int) -> settings:
    """Deterministic, bounded and free of wall-clock checks (2 shared cores are slow)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
        ],
    )


@cache
def corpus() -> tuple[bytes, ...]:
    """Every real message in tests/data/mail and tests/data/classify, in a stable order."""
    files = sorted(
        path
        for folder in CORPUS_DIRS
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix not in (".md", ".py", ".tsv")
        and path.stat().st_size <= MAX_CORPUS_FILE
    )
    return tuple(path.read_bytes() for path in files)


# -- strategies -----------------------------------------------------------------------------

HOSTILE_BYTES = (
    b"\x00", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\r\n ", b"\xff", b"\xc3", b"\xed\xa0\x80",
    b"=?", b"?=", b"=?utf-8?b?", b"=?x?q?=0D=0A?=", b"--", b"boundary=", b":", b";", b'"',
    b"<", b">", b"@", b",", b"\\", b"\xe2\x80\xa8", b"\t", b"=\r\n", b"begin 644 x\r\n",
)  # fmt: skip
CHARSETS = (
    "utf-8", "us-ascii", "iso-8859-1", "iso-8859-2", "windows-1250", "koi8-r", "shift_jis",
    "iso-2022-jp", "utf-16", "utf-7", "gb2312", "big5", "x-unknown", "base64", "zlib",
    "unicode-escape", "utf-8\x00", "", "rot13", "idna", "punycode", "utf-32-be", "hz",
)  # fmt: skip
HEADER_NAMES = (
    "Subject", "From", "To", "Cc", "Reply-To", "Date", "Message-ID", "In-Reply-To",
    "References", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    "Auto-Submitted", "Precedence", "List-Id", "X-Priority", "Return-Path", "X-Intake-Loop",
)  # fmt: skip
TYPES = (
    "text/plain", "text/html", "multipart/mixed", "multipart/alternative", "multipart/related",
    "message/rfc822", "message/delivery-status", "application/octet-stream", "image/png",
    "multipart/report", "message/global", "text/rfc822-headers",
)  # fmt: skip


def header_text() -> st.SearchStrategy[str]:
    """Header values as senders and their broken clients write them."""
    encoded = st.builds(
        lambda charset, kind, payload: f"=?{charset}?{kind}?{payload}?=",
        st.sampled_from(CHARSETS),
        st.sampled_from("bBqQx"),
        st.text(alphabet="=ABCDEFabcdef0123456789_+/?", max_size=40),
    )
    plain = st.text(max_size=40)
    pieces = st.one_of(plain, encoded, st.sampled_from(("<a@b>", "a@b", ",", '"', "\r\n")))
    return st.lists(pieces, max_size=5).map(" ".join)


@st.composite
def built_mail(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A message from headers and parts that are each plausible, together hostile."""
    boundary = draw(st.sampled_from(("b", "=_x", "", "a" * 80, "--", "b\x00")))
    ctype = draw(st.sampled_from(TYPES))
    charset = draw(st.sampled_from(CHARSETS))
    lines = [f'Content-Type: {ctype}; charset={charset}; boundary="{boundary}"']
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=5)):
        lines.append(f"{name}: {draw(header_text())}")
    encoding = draw(st.sampled_from(("7bit", "8bit", "base64", "quoted-printable", "x-uue", "")))
    lines.append(f"Content-Transfer-Encoding: {encoding}")
    head = "\r\n".join(lines).encode("utf-8", "surrogatepass")
    if ctype.startswith(("multipart/", "message/")) and depth < 3:
        children = draw(st.lists(built_mail(depth + 1), max_size=3))
        end = draw(st.sampled_from((f"--{boundary}--", "", f"--{boundary}")))
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + child + b"\r\n" for child in children)
        body += end.encode()
    else:
        body = draw(st.one_of(st.binary(max_size=200), st.text(max_size=100).map(str.encode)))
    return head + b"\r\n\r\n" + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real message with a few bytes inserted, replaced, deleted, or cut."""
    data = bytearray(draw(st.sampled_from(corpus())))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(("insert", "replace", "delete", "cut", "repeat")))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(HOSTILE_BYTES))
        elif action == "replace":
            data[at] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "cut":
            del data[at:]
        else:
            data[at:at] = bytes(data[at : at + 200]) * draw(st.integers(1, 20))
    return bytes(data)


def any_mail() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=2048),
        st.lists(st.sampled_from(HOSTILE_BYTES) | st.binary(max_size=20)).map(b"".join),
        built_mail(),
        mutated(),
    )


# -- bounds ---------------------------------------------------------------------------------

LINE_BREAKERS = re.compile("[\x00\r\n\u2028\u2029\x85]")
CONTROLS = re.compile("[\x00-\x1f\x7f]")
MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,128}")


def check_parsed(parsed: ParsedEmail, *, max_attachment_bytes: int) -> None:
    """What `parse_email` promises of any result, whatever the input was."""
    assert isinstance(parsed, ParsedEmail)
    assert len(parsed.subject) <= 998 and not LINE_BREAKERS.search(parsed.subject)
    assert not LINE_BREAKERS.search(parsed.from_name)
    for address in (parsed.from_addr, parsed.reply_to, *parsed.to, *parsed.cc):
        assert address is None or (
            "@" in address and not LINE_BREAKERS.search(address) and " " not in address
        )
    assert len(parsed.to) <= 1000 and len(parsed.cc) <= 1000
    assert len(parsed.text) <= 1_000_000 and "\x00" not in parsed.text
    assert len(parsed.headers) <= 500 and len(parsed.problems) <= 50
    for name, value in parsed.headers:
        assert len(value) <= 16_384 and len(name) <= 200
        assert not LINE_BREAKERS.search(name) and not LINE_BREAKERS.search(value)
    for message_id in (parsed.message_id, *parsed.in_reply_to, *parsed.references):
        assert message_id is None or (message_id and not re.search(r"[\s<>]", message_id))
    assert len(parsed.references) <= 100 and len(parsed.in_reply_to) <= 100
    assert parsed.date is None or parsed.date.tzinfo is not None
    for attachment in parsed.attachments:
        assert attachment.size == len(attachment.data) <= max_attachment_bytes
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert len(attachment.filename) <= 255 and not CONTROLS.search(attachment.filename)
        assert MEDIA_TYPE.fullmatch(attachment.content_type), attachment.content_type
    for problem in parsed.problems:
        assert not CONTROLS.search(problem), problem


def check_inbound(message: InboundMessage) -> None:
    """What the pipeline may rely on of any email turned into an InboundMessage."""
    assert message.sender and not CONTROLS.search(message.sender)
    # PostgreSQL refuses NUL in text: one in any stored field would make the message a
    # transient failure for ever (SMTP 451, retried until the sender gives up).
    strings = [
        message.sender_name, message.reply_to, message.subject, message.text,
        *message.references, *message.thread_hints, *message.problems,
        *(part for pair in message.headers for part in pair),
        *(f"{a.filename} {a.content_type}" for a in message.attachments),
    ]  # fmt: skip
    assert not any("\x00" in text for text in strings)
    assert 0 < len(message.channel_message_id) <= 998
    assert not LINE_BREAKERS.search(message.channel_message_id)
    assert message.rfc_message_id is None or len(message.rfc_message_id) <= 998
    assert all(a.filename for a in message.attachments)
