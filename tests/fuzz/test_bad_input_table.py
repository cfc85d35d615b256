"""Bad input, case by case: giant headers, thousands of recipients, NUL bytes, invalid UTF-8,
deeply nested multiparts, attachments over the limit, header injection and markup.

Each mail case is sent over real SMTP to a running SmtpChannel in front of the real pipeline,
on SQLite and on PostgreSQL (which refuses NUL in text and over-long strings), and must end
as one stored ticket with the problem flagged, answered 250, and the server still serving.
"""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email import policy
from email.message import Message as MailMessage
from typing import Any

import aiosmtplib
import pytest
from fuzzing import CONTROLS, check_parsed
from pipelines import make_pipeline
from sqlalchemy import select

from channels.email.compose import compose
from channels.email.mime import parse_email
from channels.email.smtp import SmtpChannel
from channels.twilio.replier import sms_text, whatsapp_text
from channels.web.callback import clean_field
from intake.cli.app import Storage
from intake.config import SmtpSettings
from intake.messages import Ack, ChannelKind
from storage.models import Attachment, Message, Outbox, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
HEAD = b"From: Alice <alice@customer.example>\r\nTo: support@support.example.com\r\n"
ATTACHMENT_LIMIT = 10_000


def mail(*headers: bytes, body: bytes = b"The export fails.\r\n", ctype: bytes = b"") -> bytes:
    extra = b"".join(h + b"\r\n" for h in headers)
    content = b"Content-Type: " + ctype + b"\r\n" if ctype else b""
    return HEAD + extra + content + b"\r\n" + body


def nested_multipart(levels: int) -> bytes:
    opening = b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (n, n + 1)
        for n in range(levels)
    )
    closing = b"".join(b"\r\n--b%d--" % n for n in reversed(range(levels + 1)))
    inner = b"--b%d\r\nContent-Type: text/plain\r\n\r\nDeep inside.\r\n" % levels
    return mail(ctype=b'multipart/mixed; boundary="b0"', body=opening + inner + closing)


def nested_rfc822(levels: int) -> bytes:
    inner = b"Subject: innermost\r\n\r\nDeep inside.\r\n"
    for _ in range(levels):
        inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
    return mail(ctype=b"message/rfc822", body=inner)


def with_attachment(size: int) -> bytes:
    body = (
        b"--b\r\nContent-Type: text/plain\r\n\r\nSee the log.\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        b'filename="huge.log"\r\n\r\n' + (b"x" * 76 + b"\r\n") * (size // 78 + 1) + b"\r\n--b--\r\n"
    )
    return mail(ctype=b'multipart/mixed; boundary="b"', body=body)


many_to = b"To: " + b",\r\n ".join(b"r%d@customer.example" % r for r in range(5000))
CASES: dict[str, tuple[bytes, Callable[[Any], None]]] = {
    "giant-subject": (
        mail(b"Subject: " + b"Export fails " * 80_000),  # 1 MB on one line
        lambda p: len(p.subject) <= 998 and "truncated-headers" in p.problems,
    ),
    "giant-folded-subject": (
        mail(b"Subject: " + b"Export fails\r\n " * 80_000),  # 1 MB, folded as RFC 5322 says
        lambda p: p.subject.startswith("Export fails Export") and len(p.subject) <= 998,
    ),
    "giant-folded-header": (
        mail(b"X-Junk: " + b"a\r\n " * 200_000, b"Subject: still read"),
        lambda p: p.subject == "still read" and "truncated-headers" in p.problems,
    ),
    "five-thousand-to": (
        mail(many_to, b"Subject: many"),
        lambda p: len(p.to) == 1000 and "too-many-recipients" in p.problems,
    ),
    "nul-bytes": (
        mail(
            b"Subject: Ex\x00port",
            b'Cc: "N\x00ame" <c\x00c@customer.example>',
            body=b"Line\x00one\r\n\x00\x00\r\n",
        ),
        lambda p: p.subject == "Ex port" and p.cc == () and "\x00" not in p.text,
    ),
    "nul-in-from": (
        b"From: Al\x00ice <al\x00ice@customer.example>\r\nSubject: x\r\n\r\nHi\r\n",
        lambda p: p.from_addr is None and "\x00" not in p.from_name,
    ),
    "invalid-utf8": (
        mail(
            b"Subject: \xff\xfe caf\xc3 \xed\xa0\x80",
            b"Content-Transfer-Encoding: 8bit",
            ctype=b"text/plain; charset=utf-8",
            body=b"caf\xe9 \xc3\x28 \xf0\x28\x8c\x28\r\n",
        ),
        lambda p: (
            bool(p.subject)
            and "café" in p.text
            and any(x.startswith("charset-") for x in p.problems)
        ),
    ),
    "nested-multipart-1000": (
        nested_multipart(1000),
        lambda p: "too-deep" in p.problems,
    ),
    "nested-rfc822-1000": (
        nested_rfc822(1000),
        lambda p: "too-deep" in p.problems or "too-many-parts" in p.problems,
    ),
    "attachment-over-limit": (
        with_attachment(ATTACHMENT_LIMIT * 5),
        lambda p: p.attachments == () and "attachment-too-large:huge.log" in p.problems,
    ),
    "html-table-padding": (  # found by atheris: 40 KB of HTML became 550,000 blanks
        mail(ctype=b"text/html", body=b"<table><tr>" + b"<td>cell</td>" * 3000 + b"</tr></table>"),
        lambda p: "cell" in p.text and len(p.text) < 60_000,
    ),
    "idna-charset": (  # found by the fuzzer: UnicodeError out of the stdlib
        mail(ctype=b"text/plain; charset=idna", body=b"Caf\xe9 fails\r\n"),
        lambda p: "Caf" in p.text and not any(x.startswith("error:") for x in p.problems),
    ),
    "control-in-media-type": (
        mail(ctype=b'application/x\x01y; name="a.bin"', body=b"data"),
        lambda p: [a.content_type for a in p.attachments] == ["application/octet-stream"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_parse_flags_and_bounds(case: str) -> None:
    raw, expected = CASES[case]
    parsed = parse_email(raw, max_attachment_bytes=ATTACHMENT_LIMIT)
    check_parsed(parsed, max_attachment_bytes=ATTACHMENT_LIMIT)
    assert expected(parsed), parsed.problems


# -- over SMTP ------------------------------------------------------------------------------


@pytest.fixture
async def smtp(storage: Storage) -> AsyncIterator[SmtpChannel]:
    settings = SmtpSettings(
        host="127.0.0.1", port=0, domains=["support.example.com"], max_message_bytes=8 * 1024 * 1024
    )
    channel = SmtpChannel(settings, clock=lambda: NOW, max_attachment_bytes=ATTACHMENT_LIMIT)
    await channel.start(make_pipeline(storage))
    yield channel
    await channel.stop()


async def stored(storage: Storage) -> tuple[list[Ticket], list[Message], list[Attachment]]:
    async with storage.sessions() as session:
        return (
            list(await session.scalars(select(Ticket))),
            list(await session.scalars(select(Message))),
            list(await session.scalars(select(Attachment))),
        )


# The heaviest parse cases once each; all of them run through parse_email above.
SMTP_CASES = (
    "giant-folded-subject",
    "five-thousand-to",
    "nul-bytes",
    "nul-in-from",
    "invalid-utf8",
    "nested-multipart-1000",
    "attachment-over-limit",
    "control-in-media-type",
)


async def test_each_bad_mail_over_smtp_is_one_flagged_ticket(
    storage: Storage, smtp: SmtpChannel
) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, timeout=60) as client:
        for case in SMTP_CASES:
            raw = CASES[case][0].replace(
                b"\r\n\r\n", f"\r\nMessage-ID: <{case}@x>\r\n\r\n".encode(), 1
            )
            errors, reply = await client.sendmail(
                "alice@customer.example", ["support@support.example.com"], raw
            )
            assert errors == {} and reply.startswith("2.0.0 OK SUP-"), (case, reply)
    tickets, messages, attachments = await stored(storage)
    assert len(messages) == len(SMTP_CASES)
    for message in messages:
        assert "\x00" not in message.text and not CONTROLS.search(message.subject)
        assert not CONTROLS.search(message.sender) and len(message.subject) <= 998
    problems = {m.channel_message_id: m.problems for m in messages}
    assert "attachment-too-large:huge.log" in problems["attachment-over-limit@x"]
    assert "too-deep" in problems["nested-multipart-1000@x"]
    assert "too-many-recipients" in problems["five-thousand-to@x"]
    assert [a.content_type for a in attachments] == ["application/octet-stream"]
    assert all(len(t.subject) <= 998 and "\x00" not in t.sender_name for t in tickets)


async def test_thousands_of_rcpt_are_refused_politely_and_the_mail_kept(
    storage: Storage, smtp: SmtpChannel
) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port, timeout=60) as client:
        await client.ehlo()
        await client.mail("alice@customer.example")
        codes = [
            (await client.execute_command(f"RCPT TO:<r{n}@support.example.com>".encode())).code
            for n in range(2000)
        ]
        assert codes[:100] == [250] * 100 and set(codes[100:]) == {452}
        reply = await client.data(mail(b"Subject: many rcpt", b"Message-ID: <rcpt@x>"))
        assert reply.code == 250
    tickets, messages, _ = await stored(storage)
    assert len(tickets) == 1 and len(messages) == 1


# -- header injection and markup in what we send -------------------------------------------

HOSTILE = "Export\r\nBcc: victim@else.example\u2028X-Evil: 1\x00\x85<script>alert(1)</script>"


def headers_of(raw: bytes) -> list[str]:
    parsed: MailMessage = email.message_from_bytes(raw, policy=policy.default)
    return [name.lower() for name in parsed.keys()]


@pytest.mark.parametrize(
    "field",
    [
        "subject",
        "to",
        "reply_to",
        "in_reply_to",
        "reference",
        "message_id",
        "references",
        "sender_name",
    ],
)
def test_compose_never_lets_a_value_start_a_header(field: str) -> None:
    values: dict[str, Any] = {
        "outbox_id": 1,
        "kind": "ack",
        "channel": ChannelKind.EMAIL,
        "to": "alice@customer.example",
        "subject": "Re: x",
        "text": "Hi",
        "html": "<p>Hi</p>",
        "reference": "SUP-000001",
        "in_reply_to": "a@b",
        "message_id": "m@support.example.com",
    }
    name = "Support"
    if field == "references":
        values["references"] = (HOSTILE, "ok@x")
    elif field == "sender_name":
        name = HOSTILE
    else:
        values[field] = HOSTILE
    raw = compose(
        Ack(**values), sender="support@support.example.com", sender_name=name, now=NOW
    ).as_bytes()
    names = headers_of(raw)
    assert "bcc" not in names and "x-evil" not in names, names
    assert names.count("subject") == 1 and names.count("to") == 1
    head = raw.split(b"\n\n", 1)[0]
    assert b"\x00" not in head and b"\r\nBcc" not in head and b"\nX-Evil" not in head


async def test_acknowledgements_and_alerts_carry_hostile_text_safely(
    storage: Storage, smtp: SmtpChannel
) -> None:
    """Over SMTP, through the pipeline, into the outbox: every notice composes into a mail
    whose headers are ours alone and whose HTML shows the sender's markup as text."""
    # The From's name carries markup only: one hiding a CR or LF makes the From no one's, and
    # no notice goes out at all (tests/security/test_wire_trust.py).
    raw = (
        b"From: =?utf-8?q?Eve_Bcc=3A_x=40evil.example_=3Cscript=3Ealert(1)=3C/script=3E?= "
        b"<eve@customer.example>\r\nTo: support@support.example.com\r\n"
        b"Subject: =?utf-8?q?Urgent:_Export=0D=0ABcc:_victim@else.example=E2=80=A8X-Evil:_1"
        b"_<script>alert(1)</script>?=\r\nMessage-ID: <hostile@customer.example>\r\n\r\n"
        b"It shows <script>alert(1)</script> and <img src=x onerror=alert(1)>.\r\n"
    )
    await aiosmtplib.send(
        raw,
        sender="eve@customer.example",
        recipients=["support@support.example.com"],
        hostname="127.0.0.1",
        port=smtp.port,
    )
    async with storage.sessions() as session:
        rows = list(await session.scalars(select(Outbox)))
    assert {row.kind for row in rows} >= {"ack", "alert"}, [row.kind for row in rows]
    for row in rows:
        ack = Ack(
            outbox_id=row.id,
            kind=row.kind,
            channel=ChannelKind(row.channel),
            to=row.recipient,
            subject=str(row.payload.get("subject", "")),
            text=str(row.payload.get("text", "")),
            html=str(row.payload.get("html", "")),
            reference=str(row.payload.get("reference", "")),
            in_reply_to=row.payload.get("in_reply_to"),
            references=tuple(row.payload.get("references") or ()),
            message_id=row.payload.get("message_id"),
            reply_to=row.payload.get("reply_to"),
        )
        names = headers_of(
            compose(
                ack, sender="support@support.example.com", sender_name="Support", now=NOW
            ).as_bytes()
        )
        assert "bcc" not in names and "x-evil" not in names, (row.kind, names)
        assert "<script>alert" not in ack.html and "<img" not in ack.html, ack.html
        assert "\n" not in ack.subject and "\u2028" not in ack.subject


@pytest.mark.parametrize("kind", ["ack", "alert"])
def test_sms_and_whatsapp_bodies_are_plain_text_only(kind: str) -> None:
    ack = Ack(
        outbox_id=1,
        kind=kind,
        channel=ChannelKind.SMS,
        to="+420601123456",
        subject=HOSTILE,
        text=f"{HOSTILE}\nWe will respond by {HOSTILE}.",
        reference="SUP-000001",
    )
    assert len(sms_text(ack)) <= 160 and len(whatsapp_text(ack)) <= 1600


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("name", "Eve\r\nBcc: x\x00", "Eve Bcc: x"),
        ("name", "Ann\u2028X-Evil: 1", "Ann X-Evil: 1"),
        ("description", "Line 1\r\nLine 2\x00\x07", "Line 1\nLine 2"),
        ("zone", "Europe/Prague\x00", "Europe/Prague"),
    ],
)
def test_callback_fields_lose_their_control_characters(
    field: str, value: str, expected: str
) -> None:
    assert clean_field(field, value) == expected


def test_hostile_display_name_is_one_line_of_text() -> None:
    raw = (
        b"From: =?utf-8?q?Eve=0D=0ABcc=3A_x=40evil.example?= <eve@customer.example>\r\n"
        b"Subject: =?utf-8?q?a=E2=80=A8b=00c?=\r\nMessage-ID: <a\xe2\x80\xa8b@x>\r\n\r\nHi\r\n"
    )
    parsed = parse_email(raw)
    # A name hiding a CR LF makes the From no one's (issue 16): nothing of it is kept.
    assert (parsed.from_addr, parsed.from_name) == (None, "") and parsed.subject == "a b c"
    assert "invalid-from" in parsed.problems
    assert "\u2028" not in (parsed.message_id or "")
    markup = raw.replace(b"=0D=0A", b"_", 1)  # the same name without the line break
    assert parse_email(markup).from_name == "Eve Bcc: x@evil.example"


async def test_what_smtp_itself_forbids_is_refused_and_the_server_keeps_serving(
    storage: Storage, smtp: SmtpChannel
) -> None:
    """A 1 MB Subject on one line (RFC 5321 caps a line at 1,000 octets) and NUL or CR in
    commands, sent raw: aiosmtplib refuses to send such things at all."""
    reader, writer = await asyncio.open_connection("127.0.0.1", smtp.port)

    async def say(line: bytes) -> bytes:
        writer.write(line + b"\r\n")
        await writer.drain()
        reply = b""
        while not reply.endswith(b"\r\n") or reply.split(b"\r\n")[-2][3:4] == b"-":
            reply += await asyncio.wait_for(reader.read(65536), 30)
        return reply

    await asyncio.wait_for(reader.readline(), 30)  # the greeting
    assert (await say(b"EHLO client.example"))[:3] == b"250"
    assert (await say(b"MAIL FROM:<al\x00ice@customer.example>"))[:3] == b"250"
    for address in (b"x\x00y", b"x\x01y", b"support"):  # aiosmtpd takes them all
        assert (await say(b"RCPT TO:<" + address + b"@support.example.com>"))[:3] == b"250"
    assert (await say(b"DATA"))[:3] == b"354"
    stored_reply = await say(mail(b"Subject: NUL envelope", b"Message-ID: <env@x>") + b".")
    assert stored_reply[:3] == b"250", stored_reply  # stored, on PostgreSQL too
    assert (await say(b"MAIL FROM:<alice@customer.example>"))[:3] == b"250"
    assert (await say(b"RCPT TO:<support@support.example.com>"))[:3] == b"250"
    assert (await say(b"DATA"))[:3] == b"354"
    giant = mail(b"Subject: " + b"Export fails " * 80_000, b"Message-ID: <giant@x>")
    refused = await say(giant + b"\r\n.")
    assert refused[:3] == b"500" and b"too long" in refused.lower(), refused
    assert (await say(b"QUIT"))[:3] == b"221"
    writer.close()
    await writer.wait_closed()
    _, messages, _ = await stored(storage)
    assert [m.channel_message_id for m in messages] == ["env@x"]
    reply = await aiosmtplib.send(
        mail(b"Subject: fine", b"Message-ID: <fine@x>"),
        sender="alice@customer.example",
        recipients=["support@support.example.com"],
        hostname="127.0.0.1",
        port=smtp.port,
    )
    assert reply[1].startswith("2.0.0 OK SUP-")
