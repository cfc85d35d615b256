"""channels.email.mime: every shared-corpus message, golden hard cases, synthetic hostile mail."""

from __future__ import annotations

import base64
import csv
import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP
from pathlib import Path

import pytest

from channels.email.mime import _RAW_HEADERS, ParsedEmail, parse_email

REPO = Path(__file__).resolve().parents[3]
SHARED_MAIL = (REPO / ".." / "shared" / "corpus" / "mail").resolve()
GOLDEN = REPO / "tests" / "data" / "mail"


def _corpus_rows() -> list[dict[str, str]]:
    # CI always has ../shared beside the repo: a missing corpus must fail, not skip.
    labels = SHARED_MAIL / "labels.tsv"
    with labels.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


ROWS = _corpus_rows()


def _unescape(value: str) -> str:
    escapes = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in escapes:
            out.append(escapes[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _assert_clean(parsed: ParsedEmail) -> None:
    """What downstream code may rely on for any input at all."""
    assert isinstance(parsed, ParsedEmail)
    for value in (parsed.subject, parsed.from_name, *(v for pair in parsed.headers for v in pair)):
        assert not set(value) & {"\r", "\n", "\x00"}, value[:80]
    assert "\x00" not in parsed.text and "\r" not in parsed.text
    assert parsed.date is None or parsed.date.tzinfo is not None
    for mid in (parsed.message_id, *parsed.in_reply_to, *parsed.references):
        assert mid is None or ("<" not in mid and ">" not in mid and " " not in mid)


def test_corpus_is_complete() -> None:
    assert len(ROWS) == 173


@pytest.mark.parametrize("row", ROWS, ids=[row["path"] for row in ROWS])
def test_every_corpus_message_parses(row: dict[str, str]) -> None:
    _assert_clean(parse_email((SHARED_MAIL / row["path"]).read_bytes()))


# Deliberate differences from labels.tsv's expected_subject:
# - whitespace is folded (runs of blanks, TABs and the blanks around the subject collapse to one
#   space) and control characters are removed, so the label is folded the same way here;
# - example13.eml uses RFC 2822's obsolete syntax (blanks before the colon and a line "__" in
#   the header block). The stdlib feed parser, like every strict parser, finds no header at all,
#   and we do not rewrite obsolete syntax: the subject is "" and the message is "unparseable".
OBSOLETE_SYNTAX = "ruby-mail/rfc2822/example13.eml"
SUBJECT_ROWS = [row for row in ROWS if row["expected_subject"]]


@pytest.mark.parametrize("row", SUBJECT_ROWS, ids=[row["path"] for row in SUBJECT_ROWS])
def test_corpus_subject(row: dict[str, str]) -> None:
    parsed = parse_email((SHARED_MAIL / row["path"]).read_bytes())
    if row["path"] == OBSOLETE_SYNTAX:
        assert parsed.subject == ""
        assert "unparseable" in parsed.problems
    else:
        assert parsed.subject == " ".join(_unescape(row["expected_subject"]).split())


def _golden(name: str) -> ParsedEmail:
    return parse_email((GOLDEN / name).read_bytes())


# (file, attribute, expected): a str attribute must contain `expected`, a tuple must hold it.
CONTAINS = [
    ("japanese_shift_jis.eml", "text", "このメールはテスト用のメールです"),
    ("mail_test_9", "text", "你们看看这个是什么"),  # GB2312 label, GBK bytes: read as GB18030
    ("mail_test_12", "text", "我公司可代开各类增值税发票"),  # GB2312 label, UTF-8 bytes
    ("mail_test_12", "problems", "charset-fallback:gb2312"),
    ("invalid_subject_characters.eml", "subject", "Formação FrenetikPolis"),
    ("raw_email10.eml", "text", "Envoyé par le service de messagerie texte de Bell Mobilité"),
    ("raw_email10.eml", "problems", "charset-unknown:x-unknown"),
    ("tt_bounce_11.txt", "subject", "Undeliverable: prof. Ivars Lācis uzstāsies ar lekciju"),
    ("long-links.eml", "text", "http://www.longurlmaker.com/view/?id="),
    ("content_transfer_encoding_with_8bits.eml", "text", "PROVANTAGE"),
    ("msg_46.txt", "text", "Testing email forwarding with Groupwise"),
    ("msg_46.txt", "text", "Subject: GroupwiseForwardingTest"),
    ("attachment_message_rfc822.eml", "text", "Just attaching another PDF"),
    ("example07.eml", "in_reply_to", "3456@example.net"),
    ("example07.eml", "references", "1234@local.machine.example"),
    ("enclosed-endless.eml", "problems", "too-many-parts"),
    ("enclosed-endless.eml", "text", "you're kicking ass"),
    ("torture.eml", "text", "This is a demonstration of multi-part mail"),
    ("long-header.eml", "subject", "Die heiße Zypernsonne quälte Max und Victoria"),
    ("long-header.eml", "problems", "truncated-headers"),
    ("raw_email_incorrect_header.eml", "problems", "defect:MissingHeaderBodySeparatorDefect"),
    ("raw_email_incorrect_header.eml", "text", "Stop adware/spyware once and for all"),
    ("mailbox-full.eml", "text", "Diagnostic-Code:"),
    ("utf8_headers.eml", "subject", "Säying Hello"),
    ("utf8_headers.eml", "from_name", "Jöhn Doe"),
    ("example14.eml", "subject", "Re: TEST テストテスト"),
]


@pytest.mark.parametrize(("name", "attribute", "expected"), CONTAINS)
def test_golden_contains(name: str, attribute: str, expected: str) -> None:
    assert expected in getattr(_golden(name), attribute)


def test_golden_html_only_newsletter_is_readable_text() -> None:
    text = _golden("content_transfer_encoding_with_8bits.eml").text
    assert "<td" not in text and "<table" not in text and "</" not in text


def test_golden_rfc2231_continued_filename() -> None:
    (attachment,) = _golden("japanese_attachment_long_name.eml").attachments
    assert attachment.filename == "かきくけこ" * 5 + ".txt"
    assert attachment.content_type == "text/plain"


def test_golden_rfc2231_latin1_filename_of_inline_image() -> None:
    (attachment,) = _golden("attachment_with_quoted_filename.eml").attachments
    assert attachment.filename == "Eelanalüüsi päring.jpg"
    assert attachment.inline


def test_golden_inline_images_keep_content_ids() -> None:
    images = [a for a in _golden("mail_test_5").attachments if a.content_type.startswith("image/")]
    assert images and all(a.inline and a.content_id for a in images)
    assert all("<" not in (a.content_id or "") for a in images)


def test_golden_forwarded_attachment_is_collected() -> None:
    parsed = _golden("attachment_message_rfc822.eml")
    assert [a.filename for a in parsed.attachments] == ["broken.pdf"]
    assert "---------- Forwarded message ----------" in parsed.text


def test_golden_obsolete_syntax_is_not_mail_to_us() -> None:
    parsed = _golden("example13.eml")
    assert parsed.subject == "" and parsed.from_addr is None
    assert "unparseable" in parsed.problems


def test_golden_threading_and_addresses() -> None:
    parsed = _golden("example07.eml")
    assert parsed.message_id == "abcd.1234@local.machine.tld"
    assert parsed.from_addr == "jdoe@machine.example"
    assert parsed.from_name == "John Doe"
    assert parsed.date == datetime(1997, 11, 21, 11, 0, tzinfo=timezone(timedelta(hours=-6)))


# ---- synthetic mail -------------------------------------------------------------------------

CZECH = (
    "Dobrý den,\nod rána nám nejde přihlášení do aplikace, všichni uživatelé vidí chybu 500.\n"
    "Prosím o rychlé řešení, děkuji.\nJiří Novák"
)


def _message(subject: str = "Test", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Jana Dvořáková <Jana.Dvorakova@Example.CZ>"
    msg["To"] = "support@support.example.com"
    msg["Subject"] = subject
    msg["Message-ID"] = "<abc.123@example.cz>"
    msg["Date"] = "Mon, 02 Sep 2024 09:15:00 +0200"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def _raw_8bit(body: bytes, content_type: str = "text/plain", subject: bytes = b"Test") -> bytes:
    """A message whose body bytes are written as they are: EmailMessage always labels them."""
    return (
        b"From: jana@example.cz\r\nTo: support@support.example.com\r\nSubject: "
        + subject
        + b"\r\nMIME-Version: 1.0\r\nContent-Type: "
        + content_type.encode()
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
    )


def test_plain_message_fields() -> None:
    msg = _message(
        "Re: Invoice 2024/17",
        Reply_To="Účtárna <Billing@Example.CZ>",
        Cc="a@example.cz, B@Example.cz",
        In_Reply_To="<x1@example.com>",
        References="<x0@example.com> <x1@example.com>",
    )
    msg.set_content("Hello,\nplease see below.\n")
    parsed = parse_email(msg.as_bytes())
    assert parsed.subject == "Re: Invoice 2024/17"
    assert (parsed.from_addr, parsed.from_name) == ("jana.dvorakova@example.cz", "Jana Dvořáková")
    assert parsed.reply_to == "billing@example.cz"
    assert parsed.to == ("support@support.example.com",)
    assert parsed.cc == ("a@example.cz", "b@example.cz")
    assert parsed.message_id == "abc.123@example.cz"
    assert parsed.in_reply_to == ("x1@example.com",)
    assert parsed.references == ("x0@example.com", "x1@example.com")
    assert parsed.date == datetime(2024, 9, 2, 7, 15, tzinfo=UTC)
    assert parsed.text == "Hello,\nplease see below."
    assert ("Subject", "Re: Invoice 2024/17") in parsed.headers
    assert parsed.problems == ()


def test_invalid_reply_to_is_dropped() -> None:
    msg = _message(Reply_To="not an address")
    msg.set_content("x")
    assert parse_email(msg.as_bytes()).reply_to is None


def test_date_without_zone_is_utc_and_bad_date_is_flagged() -> None:
    msg = _message()
    msg.replace_header("Date", "Mon, 02 Sep 2024 09:15:00 -0000")
    assert parse_email(msg.as_bytes()).date == datetime(2024, 9, 2, 9, 15, tzinfo=UTC)
    msg.replace_header("Date", "yesterday at noon")
    parsed = parse_email(msg.as_bytes())
    assert parsed.date is None and "bad-date" in parsed.problems


def test_rfc2231_filenames() -> None:
    msg = _message()
    msg.set_content("see attached")
    long_name = "Smlouva č. 2024-117 \u2013 příloha s podpisy všech stran " * 3 + ".pdf"
    msg.add_attachment(
        b"%PDF-1.4", maintype="application", subtype="pdf", filename=("utf-8", "cs", long_name)
    )
    msg.add_attachment(b"a,b\n", maintype="text", subtype="csv", filename="přehled.csv")
    names = [a.filename for a in parse_email(msg.as_bytes()).attachments]
    assert names == [long_name, "přehled.csv"]
    assert "filename*" in msg.as_string()  # the case really is RFC 2231


def test_attachment_fields_and_path_stripped() -> None:
    msg = _message()
    msg.set_content("x")
    msg.add_attachment(
        b"\x00\x01secret",
        maintype="application",
        subtype="octet-stream",
        filename="../../etc/passwd",
    )
    (attachment,) = parse_email(msg.as_bytes()).attachments
    assert attachment.filename == "passwd"
    assert (attachment.size, attachment.data) == (8, b"\x00\x01secret")
    assert attachment.sha256 == hashlib.sha256(b"\x00\x01secret").hexdigest()
    assert not attachment.inline and attachment.content_id is None


def test_oversize_attachment_is_not_kept() -> None:
    msg = _message()
    msg.set_content("two files")
    msg.add_attachment(b"x" * 2_000, maintype="application", subtype="zip", filename="big.zip")
    msg.add_attachment(b"y" * 10, maintype="application", subtype="zip", filename="small.zip")
    parsed = parse_email(msg.as_bytes(), max_attachment_bytes=1_000)
    assert [a.filename for a in parsed.attachments] == ["small.zip"]
    assert "attachment-too-large:big.zip" in parsed.problems


def test_inline_image_in_related_html() -> None:
    msg = _message()
    msg.set_content("plain version")
    msg.add_alternative('<p>html version <img src="cid:logo@x"></p>', subtype="html")
    html = msg.get_payload()[1]
    html.add_related(b"\x89PNG", maintype="image", subtype="png", cid="<logo@x>")
    parsed = parse_email(msg.as_bytes())
    assert parsed.text == "plain version"  # text/plain preferred
    (image,) = parsed.attachments
    assert (image.inline, image.content_id, image.content_type) == (True, "logo@x", "image/png")


def test_html_only_drops_scripts_and_styles() -> None:
    msg = _message()
    msg.set_content(
        "<html><head><style>p { color: red }</style><script>alert('urgent')</script></head>"
        "<body><p>Our <b>export</b> fails.</p><ul><li>step one</li><li>step two</li></ul>"
        "</body></html>",
        subtype="html",
    )
    text = parse_email(msg.as_bytes()).text
    assert "Our export fails." in text and "step two" in text
    assert "alert" not in text and "color" not in text and "<" not in text


def test_shift_jis_declared() -> None:
    msg = _message("=?shift_jis?b?" + base64.b64encode("至急".encode("shift_jis")).decode() + "?=")
    msg.set_content("ログインできません。至急確認をお願いします。", charset="shift_jis")
    parsed = parse_email(msg.as_bytes())
    assert parsed.subject == "至急"
    assert parsed.text == "ログインできません。至急確認をお願いします。"


def test_iso_2022_jp_is_not_mistaken_for_ascii() -> None:
    parsed = parse_email(
        _raw_8bit("テスト".encode("iso2022_jp"), "text/plain; charset=iso-2022-jp")
    )
    assert parsed.text == "テスト"


def test_iso_8859_2_declared() -> None:
    parsed = parse_email(_raw_8bit(CZECH.encode("iso8859_2"), "text/plain; charset=iso-8859-2"))
    assert parsed.text == CZECH
    assert parsed.problems == ()


def test_windows_1250_without_charset_label() -> None:
    parsed = parse_email(_raw_8bit(CZECH.encode("cp1250")))
    assert parsed.text == CZECH
    assert "charset-detected:cp1250" in parsed.problems


def test_utf8_declared_but_windows_1250() -> None:
    parsed = parse_email(_raw_8bit(CZECH.encode("cp1250"), "text/plain; charset=utf-8"))
    assert parsed.text == CZECH
    assert "charset-fallback:utf-8" in parsed.problems


def test_latin1_declared_but_utf8() -> None:
    parsed = parse_email(_raw_8bit(CZECH.encode("utf-8"), "text/plain; charset=iso-8859-1"))
    assert parsed.text == CZECH
    assert "charset-mismatch:iso-8859-1" in parsed.problems


@pytest.mark.parametrize("label", ["x-unknown", "base64", "unicode-escape", "\r\nBcc: x"])
def test_unknown_or_unsafe_charset_labels(label: str) -> None:
    body = CZECH.encode("utf-8").replace(b"Dobr", b"\\u0041Dobr")
    parsed = parse_email(_raw_8bit(body, f'text/plain; charset="{label}"'))
    assert "\\u0041Dobr" in parsed.text  # the escape codec was refused, UTF-8 won


def test_unlabeled_8bit_subject() -> None:
    parsed = parse_email(_raw_8bit(b"x", subject="Zpráva \u2013 nefunguje přihlášení".encode()))
    assert parsed.subject == "Zpráva \u2013 nefunguje přihlášení"


def test_nested_forwarded_messages() -> None:
    inner = _message("Original problem report")
    inner.set_content("The export has failed since Monday.")
    middle = _message("Fwd: Original problem report")
    middle.set_content("FYI, see below.")
    middle.add_attachment(inner)
    outer = _message("Fwd: Fwd: Original problem report")
    outer.set_content("Forwarding again.")
    outer.add_attachment(middle)
    parsed = parse_email(outer.as_bytes())
    assert parsed.text.index("Forwarding again.") < parsed.text.index("FYI, see below.")
    assert parsed.text.index("FYI") < parsed.text.index("The export has failed since Monday.")
    assert parsed.text.count("---------- Forwarded message ----------") == 2
    assert "Subject: Original problem report" in parsed.text


def test_message_rfc822_nesting_past_the_limit() -> None:
    msg = _message("level 0")
    msg.set_content("deepest")
    for level in range(1, 30):
        outer = _message(f"level {level}")
        outer.set_content(msg)  # message/rfc822 directly, no multipart around it
        msg = outer
    parsed = parse_email(msg.as_bytes(), max_depth=20)
    assert "too-deep" in parsed.problems
    assert "Subject: level 28" in parsed.text and "deepest" not in parsed.text


def _deep_multipart(levels: int, body_lines: int) -> bytes:
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(levels)
    )
    tail = "".join(f"\n--b{i}--\n" for i in reversed(range(levels)))
    body = "Content-Type: text/plain\n\n" + "line of text\n" * body_lines
    return ("From: a@example.com\nSubject: deep\n" + head + body + tail).encode()


def test_deep_multipart_is_refused_before_parsing() -> None:
    # 900 levels and 60,000 lines take the feed parser 13 s; the pre-scan refuses them.
    parsed = parse_email(_deep_multipart(900, 60_000))
    assert "too-deep" in parsed.problems
    assert parsed.subject == "deep" and parsed.text == ""


def test_moderate_nesting_within_the_limit_is_read() -> None:
    parsed = parse_email(_deep_multipart(15, 3))
    assert parsed.text == "line of text\nline of text\nline of text"
    assert parsed.problems == ()


def test_nesting_beyond_the_interpreter_recursion_limit() -> None:
    raw = b"From: a@example.com\nSubject: s\n" + b"Content-Type: message/rfc822\n\n" * 5_000 + b"x"
    parsed = parse_email(raw)
    assert "too-deep" in parsed.problems and parsed.subject == "s"


def test_part_count_is_capped() -> None:
    msg = _message()
    msg.set_content("many")
    for i in range(40):
        msg.add_attachment(
            b"x", maintype="application", subtype="octet-stream", filename=f"{i}.bin"
        )
    parsed = parse_email(msg.as_bytes(), max_parts=10)
    assert "too-many-parts" in parsed.problems and len(parsed.attachments) < 10


def test_header_injection_in_encoded_words() -> None:
    evil = base64.b64encode(b"Hello\r\nBcc: victim@example.com\r\n\r\nbody").decode()
    name = base64.b64encode(b"Eve\r\nX-Evil: 1").decode()
    raw = (
        f"From: =?utf-8?b?{name}?= <eve@example.com>\r\n"
        f"Subject: =?utf-8?b?{evil}?=\r\nX-Note: =?utf-8?q?a=0D=0Ab=00c?=\r\n\r\nbody\r\n"
    ).encode()
    parsed = parse_email(raw)
    _assert_clean(parsed)
    assert parsed.subject == "Hello Bcc: victim@example.com body"
    # A display name hiding a CRLF makes the From no one's (issue 16, item 7).
    assert (parsed.from_addr, parsed.from_name) == (None, "")
    assert "invalid-from" in parsed.problems
    assert [name for name, _ in parsed.headers] == ["From", "Subject", "X-Note"]


def test_nul_bytes_everywhere() -> None:
    raw = b"From: a\x00b <ab@example.com>\r\nSubject: he\x00llo\r\n\r\nbo\x00dy\x00\r\n"
    parsed = parse_email(raw)
    _assert_clean(parsed)
    # In a header any control character becomes a blank (CR LF must not glue words together);
    # in the body NULs are dropped.
    assert (parsed.subject, parsed.text) == ("he llo", "body")


def test_thousands_of_recipients() -> None:
    msg = _message()
    msg.replace_header("To", ", ".join(f"User {i} <user{i}@example.com>" for i in range(5_000)))
    msg["Cc"] = ", ".join(["Dup@Example.com", "dup@example.com"] * 50)
    msg.set_content("hi")
    parsed = parse_email(msg.as_bytes(policy=SMTP))
    assert len(parsed.to) <= 1_000 and parsed.to[0] == "user0@example.com"
    assert parsed.cc == ("dup@example.com",)
    assert "too-many-recipients" in parsed.problems


def test_many_and_giant_headers_are_bounded() -> None:
    many = b"".join(b"X-Filler-%d: v\r\n" % i for i in range(5_000))
    giant = b"X-Giant: " + b"a" * 2_000_000 + b"\r\n"
    parsed = parse_email(b"From: a@example.com\r\n" + many + giant + b"Subject: s\r\n\r\nbody")
    assert len(parsed.headers) <= 500 and "truncated-headers" in parsed.problems
    assert parsed.subject == "s" and parsed.text == "body"
    parsed = parse_email(b"Subject: " + b"=?utf-8?q?ab?= " * 200_000 + b"\r\n\r\nx")
    assert len(parsed.subject) <= 998
    assert all(len(value) <= 16_384 for _, value in parsed.headers)


def test_long_references_keep_root_and_latest() -> None:
    refs = " ".join(f"<r{i}@example.com>" for i in range(300))
    msg = _message(References=refs)
    msg.set_content("x")
    parsed = parse_email(msg.as_bytes())
    assert len(parsed.references) == 100
    assert parsed.references[0] == "r0@example.com" and parsed.references[-1] == "r299@example.com"


def test_delivery_status_is_readable() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.com\r\n"
        b"\r\nFinal-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"\r\n--B--\r\n"
    )
    parsed = parse_email(raw)
    assert "I'm sorry to have to inform you" in parsed.text
    assert "Status: 5.1.1" in parsed.text and "Action: failed" in parsed.text


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n\r\n",
        b"hello, this is not mail at all",
        b"\x00" * 1_000,
        b"\xff\xfe\xfa" * 10_000,
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"Content-Type: text/plain; charset=*?\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: message/delivery-status\r\n\r\n\r\n\r\n",
        b"Content-Type: text/html\r\n\r\n<?xml version='1.0' encoding='utf-8'?><p>x</p>",
        b"Content-Type: text/html\r\n\r\n" + b"<div>" * 5_000 + b"deep",
        b"Date: Mon, 99 Foo 99999 99:99:99 +9999\r\nMessage-ID: <<<>>>\r\n\r\n",
        b'From: =?x?q?=?= <@>\r\nTo: ,,,<>,\r\nReply-To: "\\\r\n\r\n',
    ],
    ids=[
        "empty",
        "blank",
        "not-mail",
        "nuls",
        "binary",
        "empty-boundary",
        "bad-base64",
        "empty-rfc822",
        "empty-dsn",
        "xml-html",
        "deep-html",
        "bad-ids",
        "bad-addresses",
    ],
)
def test_hostile_input_never_raises(raw: bytes) -> None:
    _assert_clean(parse_email(raw))


def test_empty_and_not_mail_are_unparseable() -> None:
    assert "unparseable" in parse_email(b"").problems
    parsed = parse_email(b"hello, this is not mail at all")
    assert "unparseable" in parsed.problems and parsed.text == "hello, this is not mail at all"


def test_random_junk_never_raises() -> None:
    rng = random.Random(5322)
    seed = (GOLDEN / "example07.eml").read_bytes()
    for _ in range(200):
        junk = bytearray(seed)
        for _ in range(rng.randrange(1, 40)):
            junk[rng.randrange(len(junk))] = rng.randrange(256)
        _assert_clean(parse_email(bytes(junk)))
        _assert_clean(parse_email(rng.randbytes(rng.randrange(1, 3_000))))


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"tab\there\x01 bell\x07 esc\x1b del\x7f end", "tab\there bell esc del end"),
        (b"plain ascii, nothing to drop", "plain ascii, nothing to drop"),
        ("caf\u00e9 \u2028line\x85next".encode(), "caf\u00e9 linenext"),
    ],
)
def test_body_controls_dropped_on_both_paths(body: bytes, text: str) -> None:
    # ASCII text without controls skips the junk regex; every other text goes through it.
    raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    assert parse_email(raw).text == text


def test_header_lookup_follows_edits() -> None:
    # The parser's messages look headers up through a cached index of names: it must see
    # headers added, replaced and deleted after it was built.
    msg = BytesParser(policy=_RAW_HEADERS).parsebytes(
        b"From: a@example.com\r\nContent-Type: text/html\r\nX-A: 1\r\n\r\nhi"
    )
    assert msg.get_content_type() == "text/html" and msg.get("x-b") is None
    msg["X-B"] = "2"
    msg.replace_header("Content-Type", "text/plain")
    assert (msg.get("X-B"), msg.get_content_type()) == ("2", "text/plain")
    del msg["X-A"]
    msg["x-a"] = "3"
    assert (msg.get("X-A"), msg.get("missing", "none")) == ("3", "none")


def test_many_boundaries_still_counted() -> None:
    # More than max_depth mentions of "boundary" send the message to the real count.
    parts = "".join(
        f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(5)
    )
    raw = (
        f"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n{parts}".encode()
    )
    assert "too-deep" in parse_email(raw, max_depth=3).problems
    assert "too-deep" not in parse_email(raw, max_depth=10).problems
