"""Notices filled into skeletons (channels.email.skeletons) say what `compose` says: every
header value and both bodies, as a receiver parses them, with CRLF line ends only."""

from __future__ import annotations

import dataclasses
import itertools
import random
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtplib.email import flatten_message

from channels.email.compose import compose, set_subject
from channels.email.skeletons import WIRE, header_line, subject_line, wire_bytes
from intake.messages import Ack, ChannelKind

NOW = datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)
SENDER = "support@support.example.com"

SUBJECTS = [
    "[SUP-000123] Re: Export fails (12)",
    "",
    " spaces   around and\tinside ",
    "Přijato: tisk selhává \u2013 chyba",
    "[SUP-000007] Re: Export selhává \u2013 naléhavé " + "x" * 90,
    "word " * 60,
    "x" * 200,
    "a" * 73 + " " + "b" * 73 + " c",
    "=?utf-8?q?already_encoded?= and more",
    "=?utf-8?b?w6E=?=",
    'specials (comment) <angle> "quoted" \\ back; semi: colon, comma. @at [x]',
    "injection\r\nBcc: victim@example.org",
    "injection\nX-Evil: 1\r\n\r\nbody",
    "nul\x00 and del\x7f and esc\x1b",
    "emoji 🎉 in the middle of a subject that goes on and on past the fold " * 2,
    "日本語の件名",
    "tab\tseparated\twords",
    "ends with space ",
    "  ",
]
TEXTS = [
    "Hello,\n\nwe have received your request.\n",
    "",
    "no final newline",
    "CRLF\r\nlines\r\nand lone\rCR",
    "Dobrý den,\nžluťoučký kůň úpěl ďábelské ódy.\n",
    "trailing spaces   \nand tabs\t\n",
    ".\n.leading dot\n..two\nFrom the start\n",
    "a=b and =?utf-8?q?x?= and --===boundary== lines\n--===abc==\n",
    "long line " * 200,
    "x" * 2000 + "\n",
    "\x00\x01 controls \x0b\x0c and \u2028 separators \x85\n",
    "\n\n\n",
]
HTMLS = ["", "<p>Hello,</p><p>we have received it.</p>", "<p>Dobrý den</p>\n" * 40]


def ack(**changes: object) -> Ack:
    base = Ack(
        outbox_id=1,
        kind="ack",
        channel=ChannelKind.EMAIL,
        to="customer1@example.org",
        subject=SUBJECTS[0],
        text=TEXTS[0],
        reference="SUP-000123",
        in_reply_to="load-1-123@example.org",
        references=("load-1-123@example.org",),
        message_id="ack-123.abc@support.example.com",
        reply_to="support+abc123@support.example.com",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def cases() -> list[Ack]:
    found = [ack(subject=s) for s in SUBJECTS]
    found += [ack(text=t, html=h) for t, h in itertools.product(TEXTS, HTMLS)]
    found += [ack(kind=k, html=h) for k in ("ack", "endorse", "alert", "reply") for h in HTMLS]
    found += [
        ack(in_reply_to=None, references=(), message_id=None, reply_to=None, reference=""),
        ack(in_reply_to="no-at-sign", references=("a b@c", "", "x@y")),
        ack(references=tuple(f"<ref-{n}.{'z' * n}@mail.example.org>" for n in range(20))),
        ack(references=("very-long-" + "r" * 120 + "@example.org",)),
        ack(in_reply_to="<with angle@example.org>", references=("=?x?=@y",)),
        ack(in_reply_to="ünïcode@example.org", references=("ref@exämple.org",)),
        ack(to="Jo Doe <jo@example.org>"),
        ack(to="zoë@example.org"),
        ack(to='"quoted local"@example.org'),
        ack(to="a..b@example.org"),
        ack(to="jo@example.org\r\nBcc: victim@example.org"),
        ack(to="x" * 90 + "@example.org"),
        ack(to=""),
        ack(reply_to="support+" + "t" * 80 + "@support.example.com"),
        ack(reply_to="Support <support@example.com>"),
        ack(message_id="id with space@example.org"),
        ack(message_id="id\r\nBcc: victim@example.org"),
        ack(message_id="m" * 90 + "@support.example.com"),
        ack(reference="SUP-1\r\nBcc: victim@example.org"),
        ack(reference="Ref " * 30),
    ]
    return found


def stdlib(notice: Ack, *, sender_name: str = "Support", now: datetime = NOW) -> bytes:
    """Today's wire bytes: `compose`, flattened as aiosmtplib's `send_message` does."""
    return flatten_message(compose(notice, sender=SENDER, sender_name=sender_name, now=now))


def parsed(raw: bytes) -> EmailMessage:
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(mail, EmailMessage)
    return mail


def lines(text: str) -> str:
    return text.replace("\r\n", "\n")


def assert_same_mail(new: bytes, old: bytes) -> None:
    assert b"\n" not in new.replace(b"\r\n", b"") and b"\r" not in new.replace(b"\r\n", b"")
    assert max(len(line) for line in new.split(b"\r\n")) <= 998
    mine, theirs = parsed(new), parsed(old)
    assert not mine.defects
    names = [n for n in theirs if n != "Content-Transfer-Encoding"]
    assert [n for n in mine if n != "Content-Transfer-Encoding"] == names
    for name in names:
        if name == "Content-Type" and theirs.is_multipart():
            assert mine.get_content_type() == theirs.get_content_type()
            continue
        assert str(mine[name]) == str(theirs[name]), name
    for kind in ("plain", "html"):
        part, other = mine.get_body((kind,)), theirs.get_body((kind,))
        assert (part is None) == (other is None)
        if part is not None and other is not None:
            assert dict(part.items()).keys() == dict(other.items()).keys()
            # Line ends compared in one form: a decoded text part has CRLF or LF depending on
            # its transfer encoding (base64 carries the LF `set_content` wrote), and the two
            # are the same text (RFC 2046 4.1.1).
            assert lines(part.get_content()) == lines(other.get_content())
            assert not part.defects


@pytest.mark.parametrize("notice", cases(), ids=lambda a: repr(a)[:60])
def test_filled_mail_reads_as_composed(notice: Ack) -> None:
    new = wire_bytes(notice, sender=SENDER, sender_name="Support", now=NOW)
    assert_same_mail(new, stdlib(notice))


@pytest.mark.parametrize("name", ["Support", "Podpora Čechy", 'Quote "me", (really)'])
def test_the_sender_s_name_is_encoded_as_composed(name: str) -> None:
    notice = ack(html=HTMLS[1])
    new = wire_bytes(notice, sender=SENDER, sender_name=name, now=NOW)
    assert_same_mail(new, stdlib(notice, sender_name=name))


@pytest.mark.parametrize(
    "now",
    [NOW, datetime(2026, 3, 1, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))],
)
def test_the_date_is_written_as_composed(now: datetime) -> None:
    new = wire_bytes(ack(), sender=SENDER, sender_name="Support", now=now)
    assert_same_mail(new, stdlib(ack(), now=now))


def test_each_notice_has_its_own_values_and_the_shape_s_boundary_is_not_in_bodies() -> None:
    one = wire_bytes(ack(html=HTMLS[1]), sender=SENDER, sender_name="S", now=NOW)
    other = wire_bytes(
        ack(html=HTMLS[1], to="other@example.org", subject="Other"),
        sender=SENDER, sender_name="S", now=NOW,
    )  # fmt: skip
    assert parsed(one)["To"] == "customer1@example.org"
    assert parsed(other)["To"] == "other@example.org"
    assert parsed(other)["Subject"] == "Other"
    boundary = parsed(one).get_boundary()
    assert boundary is not None and "=" in boundary
    assert one.count(f"--{boundary}".encode()) == 3  # two parts and the close


def random_values(seed: int, count: int, length: int) -> list[str]:
    """Printable one-line values (as `header_value` leaves them), plain and otherwise."""
    pick = random.Random(seed)
    alphabets = ["ab Z9.-_<>@()=?:;,\"'\\[]", "ab \u00e1\u2013", "ab.@-+ ", "x "]
    found = []
    for _ in range(count):
        alphabet = pick.choice(alphabets)
        raw = "".join(pick.choice(alphabet) for _ in range(pick.randrange(1, length)))
        found.append(" ".join(raw.split()))
    return [value for value in found if value]


@pytest.mark.parametrize("name", ["To", "Reply-To", "Message-ID", "In-Reply-To", "References",
                                  "X-Intake-Reference", "Subject"])  # fmt: skip
def test_header_lines_are_the_policy_s_own(name: str) -> None:
    for value in random_values(len(name), 400, 200):
        if name == "Subject" and not value.isascii():
            continue  # `Header` encodes those (below)
        try:
            theirs = WIRE.fold_binary(name, WIRE.header_factory(name, value))
        except Exception as exc:  # the generator cannot write it either: nor do we
            with pytest.raises(type(exc)):
                header_line(name, value)
            continue
        assert header_line(name, value) == theirs, value


def test_subjects_are_encoded_as_composed() -> None:
    for subject in random_values(7, 400, 300):
        mail = EmailMessage(policy=WIRE)
        set_subject(mail, subject[:250])
        line = subject_line(subject[:250])
        assert bytes(mail).startswith(line), subject
        assert parsed(line + b"\r\n")["Subject"] == parsed(bytes(mail))["Subject"]


def test_random_texts_decode_as_composed() -> None:
    pick = random.Random(19)
    alphabet = "ab =.\t\r\n\u00e1\u2013🎉-"
    for _ in range(200):
        text = "".join(pick.choice(alphabet) for _ in range(pick.randrange(0, 400)))
        html = "" if pick.random() < 0.5 else text[::-1]
        notice = ack(text=text, html=html)
        assert_same_mail(wire_bytes(notice, sender=SENDER, sender_name="S", now=NOW),
                         stdlib(notice, sender_name="S"))  # fmt: skip
