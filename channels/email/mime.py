"""Turn raw RFC 5322 bytes into a `ParsedEmail`: total, bounded and fast.

`parse_email` never raises and never does I/O. Whatever it could not read (a charset, a
part too deep, an oversized attachment, input that is not mail at all) it reports in
`ParsedEmail.problems`, and the caller keeps the raw bytes.

Why compat32 and not `policy.default`: the classifier's target is 2,000 messages/s including
this parse. `policy.default` re-parses Content-Type through the header registry every time the
feed parser asks for it, which costs 7x on the shared corpus (2.8 s instead of 0.27 s for
flanker's 3,000-part enclosed-endless.eml), and its address parser takes about 0.3 ms for one
From header (4 s for 5,000 recipients). So the tree is built by the same feed parser under
compat32, headers are decoded with `email.header.decode_header`, and addresses are split
with `email.utils.getaddresses`; on the shared corpus the decoded subjects are the same.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

import cchardet
from inscriptis import get_text

from channels.email.mailbox import one_mailbox

__all__ = ["ParsedAttachment", "ParsedEmail", "is_attachment", "parse_email", "part_headers"]

_MAX_HEADERS = 500
_MAX_HEADER_CHARS = 16_384
_MAX_HEADER_BLOCK = 262_144
_MAX_SUBJECT_CHARS = 998  # RFC 5322 line limit: the subject is echoed in acknowledgements
_MAX_ADDRESS_CHARS = 65_536  # getaddresses is linear; 64 KB is about 2,000 addresses
_MAX_RECIPIENTS = 1_000
_MAX_IDS = 100
_MAX_TEXT_CHARS = 1_000_000
_MAX_HTML_CHARS = 524_288  # inscriptis converts about 2 MB/s: keep one part under 0.3 s
_DETECT_BYTES = 65_536
_MAX_PROBLEMS = 50

# C0/C1 controls, DEL and the Unicode line separators: any of them in a header value could
# split a header line or a log line downstream.
_LINE_JUNK = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# The same for body text, which keeps TAB and LF (CR is normalized away first).
_TEXT_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]+")
# Blanks and controls, C1 and the Unicode line separators included: an id is echoed in our
# acknowledgements' In-Reply-To and References headers.
_MSG_ID = re.compile(r"<([^<>\s\x00-\x20\x7f-\x9f]{1,998})>")
_BARE_ID = re.compile(r"[^<>\s\x00-\x20\x7f-\x9f]{1,998}@[^<>\s\x00-\x20\x7f-\x9f]{1,998}")
# No control characters either: a NUL in an address would reach the database (PostgreSQL
# refuses it in text, and the message would be retried for ever) and the log lines.
_ADDR_SPEC = re.compile(
    r"[^@\s<>,;:\"\\()\[\]\x00-\x1f\x7f]{1,64}@[^@\s<>,;:\"\\()\[\]\x00-\x1f\x7f]{1,255}"
)
# A MIME type as stored with an attachment; anything else is stored as octet-stream.
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,128}")
_SIMPLE_MAILBOX = re.compile(
    r"\s*(?:(?P<name>[^<>@,;:\\\[\]]*?)\s*<(?P<addr>[^<>\s@]+@[^<>\s@]+)>"
    r"|(?P<bare>[^<>\s@]+@[^<>\s@]+))\s*"
)
_TAG = re.compile(r"<[^>]*>")
_PADDING = re.compile(r"[ \t]{9,}")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>")
_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.I)
_DELIMITER = re.compile(rb"^--([^\r\n]{1,210})", re.M)
# The shapes most mail takes, read here directly; everything else goes through the stdlib,
# whose general parsers cost 10-30 us a call (see _charset, _part_filename and _date).
_SIMPLE_CTYPE = re.compile(
    r'\s*[a-z0-9.+-]+/[a-z0-9.+-]+(?:\s*;\s*[a-z0-9-]+=(?:"[\w.:+-]*"|[\w.:+-]+))*\s*;?\s*',
    re.I | re.A,
)
_SIMPLE_PARAM = re.compile(r';\s*([a-z0-9-]+)="?([\w.:+-]*)', re.I | re.A)
_SIMPLE_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
    r"|Nov|Dec) ([1-9]\d{3}) (\d\d):(\d\d)(?::(\d\d))? ([+-])(\d\d)(\d\d)(?: \([^()]*\))?",
    re.A,
)
# The header block of the usual message as the feed parser reads it: field lines (a name, a
# colon) and their continuation lines, each ended by LF or CRLF, then an empty line. What the
# parser treats specially is left out: an envelope "From " line, a nameless field, a lone CR.
_PLAIN_HEAD = re.compile(r"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)+\r?\n")
_PLAIN_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+):([^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)")
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
)}  # fmt: skip

# Labels that mail clients write but mean a superset (WHATWG Encoding does the same).
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "shift_jis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
}
# These codecs turn ASCII escapes into arbitrary characters, or are for domain names (and
# raise a bare UnicodeError on 8-bit input); no mail body is written in them.
_UNSAFE_CODECS = frozenset({"unicode-escape", "raw-unicode-escape", "punycode", "idna"})
# Seven-bit codecs whose ASCII bytes do not mean ASCII text.
_STATEFUL_PREFIXES = ("iso2022", "utf-7", "utf-16", "utf-32", "hz")


class _Message(Message):
    """compat32's Message with a header lookup through an index of lower-cased names.

    Message.get lower-cases every name on every call, and the feed parser and the walk ask
    each part for its Content-Type and a few more a dozen times. The index is rebuilt when
    the header list is replaced or grows; the stdlib's only other edit (replace_header)
    keeps the name in place.
    """

    _index: tuple[list[tuple[str, Any]], int, dict[str, int]] | None = None

    def get(self, name: str, failobj: Any = None) -> Any:
        headers: list[tuple[str, Any]] = self._headers  # type: ignore[attr-defined]
        index = self._index
        if index is None or index[0] is not headers or index[1] != len(headers):
            first: dict[str, int] = {}
            for position, (key, _) in enumerate(headers):
                first.setdefault(key.lower(), position)
            index = self._index = (headers, len(headers), first)
        found = index[2].get(name.lower())
        if found is None:
            return failobj
        return self.policy.header_fetch_parse(*headers[found])


class _RawHeaders(Compat32):
    """compat32, except that header values come back as the raw strings.

    compat32 wraps a value holding raw 8-bit bytes in a `Header` whose str() loses them;
    RFC 6532 mail writes UTF-8 there, and `_fix_8bit` decodes it properly.
    """

    message_factory = _Message

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_RAW_HEADERS = _RawHeaders()


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedAttachment:
    """One attachment or inline part, decoded from its transfer encoding."""

    filename: str  # RFC 2231 / encoded words decoded, path stripped; "" when the sender gave none
    content_type: str
    size: int
    sha256: str
    data: bytes
    inline: bool
    content_id: str | None  # without angle brackets


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedEmail:
    """The readable content of one message; see `parse_email` for the limits."""

    message_id: str | None
    subject: str
    from_addr: str | None
    from_name: str
    reply_to: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    headers: tuple[tuple[str, str], ...]
    attachments: tuple[ParsedAttachment, ...]
    problems: tuple[str, ...]


def parse_email(
    raw: bytes,
    *,
    max_attachment_bytes: int = 10_485_760,
    max_depth: int = 20,
    max_parts: int = 500,
) -> ParsedEmail:
    """Parse any bytes into a ParsedEmail; never raises.

    Problems use the forms "unparseable", "too-deep", "too-many-parts", "truncated-headers",
    "too-many-recipients", "text-truncated", "html-truncated", "bad-date",
    "attachment-too-large:<name>", "charset-unknown:<label>", "charset-fallback:<label>"
    (the declared charset could not decode the part), "charset-mismatch:<label>" (declared a
    single-byte charset, was UTF-8), "charset-detected:<codec>" and "defect:<email defect>".
    """
    walk = _Walk(
        max_attachment_bytes=max_attachment_bytes, max_depth=max_depth, max_parts=max_parts
    )
    try:
        return _parse(bytes(raw), walk)
    except Exception as exc:  # totality: hostile input becomes a flagged result, not a crash
        walk.flag("unparseable")
        walk.flag(f"error:{type(exc).__name__}")
        return _result(Message(_RAW_HEADERS), walk, text="")


@dataclass(slots=True, kw_only=True)
class _Walk:
    """Mutable state of one parse: limits, what was collected, what went wrong."""

    max_attachment_bytes: int
    max_depth: int
    max_parts: int
    parts: int = 0
    problems: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)

    def flag(self, problem: str) -> None:
        if problem not in self.problems and len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(problem)

    def body(self, part: Message, depth: int, keep_text: bool = True) -> list[str]:
        """Text chunks of `part`; collects its attachments on the way."""
        self.parts += 1
        if self.parts > self.max_parts:
            self.flag("too-many-parts")
            return []
        if depth > self.max_depth:
            self.flag("too-deep")
            return []
        for defect in part.defects:
            self.flag(f"defect:{type(defect).__name__}")
        ctype = part.get_content_type()
        # is_multipart() first: get_payload() of a leaf holding 8-bit bytes decodes them with
        # the declared charset and "replace", which some codecs (idna) refuse with UnicodeError.
        if part.is_multipart():
            payload = part.get_payload()
            children = [child for child in payload if isinstance(child, Message)]
            if ctype.startswith("message/"):
                return self._message(ctype, children, depth, keep_text)
            if ctype == "multipart/alternative":
                return self._alternative(children, depth, keep_text)
            return [chunk for child in children for chunk in self.body(child, depth + 1, keep_text)]
        disposition = part.get_content_disposition()
        filename = _part_filename(part)
        if _is_text(ctype, disposition, filename):
            return [self._text(part, ctype)] if keep_text else []
        self._attach(part, ctype, disposition, filename)
        return []

    def _alternative(self, children: list[Message], depth: int, keep_text: bool) -> list[str]:
        # Prefer text/plain, then a nested multipart (usually related: HTML plus images),
        # then HTML. The others are walked only for their attachments.
        def rank(child: Message) -> int:
            ctype = child.get_content_type()
            return 0 if ctype == "text/plain" else 1 if child.is_multipart() else 2

        chosen = min(children, key=rank) if children else None
        chunks: list[str] = []
        for child in children:
            chunks += self.body(child, depth + 1, keep_text and child is chosen)
        return chunks

    def _message(self, ctype: str, inner: list[Message], depth: int, keep_text: bool) -> list[str]:
        if ctype == "message/delivery-status":  # RFC 3464: blocks of fields, no body
            fields = [
                f"{name}: {_header_text(value)}" for block in inner for name, value in block.items()
            ]
            return ["\n".join(fields)] if keep_text else []
        if not inner:
            return []
        message = inner[0]
        chunks = self.body(message, depth + 1, keep_text)
        if not keep_text:
            return []
        lines = ["---------- Forwarded message ----------"]
        for name in ("From", "Date", "Subject", "To", "Cc"):
            if (value := message.get(name)) is not None:
                lines.append(f"{name}: {_header_text(value)}")
        return ["\n".join(lines), *chunks]

    def _text(self, part: Message, ctype: str) -> str:
        data = part.get_payload(decode=True)
        raw = data if isinstance(data, bytes) else b""
        text, problems = _decode_bytes(raw, _charset(part))
        for problem in problems:
            self.flag(problem)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        # ASCII text with nothing unprintable but TAB and LF has no junk: skip the regex.
        if not (text.isascii() and text.replace("\n", "").replace("\t", "").isprintable()):
            text = _TEXT_JUNK.sub("", text)
        return self._html(text) if ctype == "text/html" else text

    def _html(self, html: str) -> str:
        if len(html) > _MAX_HTML_CHARS:
            html = html[:_MAX_HTML_CHARS]
            self.flag("html-truncated")
        html = _XML_DECL.sub("", html)  # lxml refuses str input that declares an encoding
        try:
            text = str(get_text(html))
        except Exception:  # lxml gave up on this markup; the words are still worth keeping
            return _TAG.sub(" ", html)
        # inscriptis pads table cells to align columns: a 40 KB newsletter became 550,000
        # blanks. Trailing blanks go, and a long run is kept short enough to still separate.
        lines = (line.rstrip(" \t") for line in text.split("\n"))
        return _PADDING.sub("        ", "\n".join(lines))

    def _attach(
        self, part: Message, ctype: str, disposition: str | None, filename: str | None
    ) -> None:
        name = _filename(filename)
        ctype = ctype if _MEDIA_TYPE.fullmatch(ctype) else "application/octet-stream"
        data = part.get_payload(decode=True)
        blob = data if isinstance(data, bytes) else b""
        if len(blob) > self.max_attachment_bytes:
            self.flag(f"attachment-too-large:{name or ctype}")
            return
        cid = _ids(part.get("Content-ID"))
        content_id = cid[0] if cid else None
        self.attachments.append(
            ParsedAttachment(
                filename=name,
                content_type=ctype,
                size=len(blob),
                sha256=hashlib.sha256(blob).hexdigest(),
                data=blob,
                # multipart/related images often carry a Content-ID and no disposition at all
                inline=disposition == "inline" or (disposition is None and content_id is not None),
                content_id=content_id,
            )
        )


def _is_text(ctype: str, disposition: str | None, filename: str | None) -> bool:
    """Whether a leaf part is read as the message's text; any other is an attachment."""
    is_text = ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")
    return is_text and disposition != "attachment" and filename is None


def part_headers(block: bytes) -> Message:
    """One part's header block, parsed as `parse_email` parses it."""
    return BytesParser(policy=_RAW_HEADERS).parsebytes(block, headersonly=True)


def is_attachment(part: Message) -> bool:
    """Whether `parse_email` takes this leaf part (headers enough) as an attachment."""
    ctype = part.get_content_type()
    return not _is_text(ctype, part.get_content_disposition(), _part_filename(part))


def _parse(raw: bytes, walk: _Walk) -> ParsedEmail:
    parser = BytesParser(policy=_RAW_HEADERS)
    # Each declared boundary spells "boundary": counting that settles the usual message in
    # a fraction of the regular expression's time.
    too_deep = (
        raw.lower().count(b"boundary") > walk.max_depth
        and _boundary_depth(raw, walk.max_depth) > walk.max_depth
    )
    message = None
    if not too_deep:
        try:
            message = _plain_message(raw)
            if message is None:
                message = parser.parsebytes(raw)
        except RecursionError:  # message/rfc822 nested past the interpreter's limit
            too_deep = True
    if message is None:
        walk.flag("too-deep")
        message = parser.parsebytes(raw, headersonly=True)
        message.set_payload("")
    if not raw.strip() or not message.keys():
        walk.flag("unparseable")
    text = "\n\n".join(chunk.strip("\n") for chunk in walk.body(message, 0) if chunk.strip())
    if len(text) > _MAX_TEXT_CHARS:
        text = text[:_MAX_TEXT_CHARS]
        walk.flag("text-truncated")
    return _result(message, walk, text=text)


def _plain_message(raw: bytes) -> Message | None:
    """The feed parser's tree of a single-part message with a plain header block, built
    directly in a third of the parser's time; None for any other message. On such a block
    the parser splits the same fields, strips the same blanks and line ends (compat32's
    header_source_parse), and takes the rest after the empty line as the payload of a part
    that is neither multipart nor message/*."""
    text = raw.decode("ascii", "surrogateescape")  # as BytesParser does
    head = _PLAIN_HEAD.match(text)
    if head is None:
        return None
    message = _Message(_RAW_HEADERS)
    for name, value in _PLAIN_FIELD.findall(text, 0, head.end()):
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    message.set_payload(text[head.end() :])
    return message


def _result(message: Message, walk: _Walk, *, text: str) -> ParsedEmail:
    # One pass over the headers: compat32's get() scans them all on every call.
    index: dict[str, list[str]] = {}
    headers = _headers(message, walk, index)

    def first(name: str) -> str | None:
        return index[name][0] if name in index else None

    from_addr, from_name = _from_mailbox(first("from"), walk)
    reply_to, _ = _mailbox(first("reply-to"))
    return ParsedEmail(
        message_id=next(iter(_ids(first("message-id"))), None),
        subject=_fold(_header_text(first("subject") or ""))[:_MAX_SUBJECT_CHARS],
        from_addr=from_addr,
        from_name=from_name,
        reply_to=reply_to,
        to=_recipients(index.get("to", []), walk),
        cc=_recipients(index.get("cc", []), walk),
        date=_date(first("date"), walk),
        in_reply_to=_ids(first("in-reply-to")),
        references=_ids(" ".join(index.get("references", []))),
        text=text,
        headers=headers,
        attachments=tuple(walk.attachments),
        problems=tuple(walk.problems),
    )


def _boundary_depth(raw: bytes, limit: int) -> int:
    """How deeply multiparts nest, read before parsing.

    The feed parser matches every line against every open boundary, so its time grows with
    depth x lines (900 levels and 1 MB take 13 s). Counting declared boundaries is cheap and
    settles almost every message; only past `limit` are the delimiter lines followed.
    """
    names = {quoted or bare for quoted, bare in _BOUNDARY_PARAM.findall(raw)}
    if len(names) <= limit:
        return len(names)
    opened: list[bytes] = []
    deepest = 0
    for match in _DELIMITER.finditer(raw):
        line = match.group(1).rstrip()
        if line.endswith(b"--") and line[:-2] in names:
            if line[:-2] in opened:
                del opened[opened.index(line[:-2]) :]
        elif line in names and line not in opened:
            opened.append(line)
            deepest = max(deepest, len(opened))
    return deepest


def _headers(
    message: Message, walk: _Walk, index: dict[str, list[str]]
) -> tuple[tuple[str, str], ...]:
    """Every header decoded, in order; `index` gets the raw values under lower-cased names."""
    result: list[tuple[str, str]] = []
    budget = _MAX_HEADER_BLOCK  # bounds the decoding work however many headers there are
    full = False
    for name, value in message.raw_items():
        index.setdefault(name.lower(), []).append(value)
        if full:  # the index still takes every header
            continue
        if budget <= 0 or len(result) == _MAX_HEADERS:
            walk.flag("truncated-headers")
            full = True
            continue
        size = len(value)
        if size > _MAX_HEADER_CHARS:
            walk.flag("truncated-headers")
            size = _MAX_HEADER_CHARS
        budget -= size
        if value.isascii() and value.isprintable() and "=?" not in value:
            text = value[:_MAX_HEADER_CHARS]  # most headers: _header_text's fast path, inlined
        else:
            text = _header_text(value, limit=_MAX_HEADER_CHARS)[:_MAX_HEADER_CHARS]
        if not (name.isascii() and name.isprintable()):  # only such a name needs cleaning
            name = _LINE_JUNK.sub("", _fix_8bit(name))
        result.append((name[:200], text))
    return tuple(result)


def _header_text(value: str, limit: int = 2 * _MAX_SUBJECT_CHARS) -> str:
    """A header value as one line of text: unfolded, encoded words decoded, no controls."""
    text = str(value)[:limit]
    if text.isascii() and text.isprintable() and "=?" not in text:
        return text  # most headers: nothing to unfold, decode or remove
    # RFC 5322 2.2.3: unfolding removes the CRLF only; the following blank stays.
    text = _fix_8bit(text).replace("\r", "").replace("\n", "")
    if "=?" in text:
        text = _decode_words(text)
    return _LINE_JUNK.sub(" ", text)


def _decode_words(text: str) -> str:
    """RFC 2047 encoded words decoded; an undecodable header is kept as written.

    email.header.decode_header rather than policy.default's parser: it yields the same
    text on every encoded header of the shared corpus, runs 5x faster, and hands us the
    bytes so that an unknown or wrong charset goes through the same fallbacks as a body.
    """
    try:
        chunks = decode_header(text)
    except (HeaderParseError, ValueError):  # bad base64 in a word
        return text
    pieces = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            pieces.append(chunk)
        elif charset is None:  # decode_header's own encoding of the text between words
            pieces.append(chunk.decode("raw-unicode-escape", "replace"))
        else:
            pieces.append(_fix_8bit(_decode_bytes(chunk, charset)[0]))
    return "".join(pieces)


def _fold(text: str) -> str:
    return " ".join(text.split())


def _fix_8bit(value: str) -> str:
    """Raw 8-bit header bytes (kept by compat32 as surrogate escapes) as text, UTF-8 first."""
    if value.isascii():
        return value
    text, _ = _decode_bytes(value.encode("utf-8", "surrogateescape"), None)
    return text


def _mailbox(value: str | None) -> tuple[str | None, str]:
    """(addr-spec lower-cased or None, display name) of the first address in `value`."""
    if value is None:
        return None, ""
    # Cached only when short, as the usual From is: a sender writes again and again.
    return _first_mailbox(value) if len(value) <= 256 else _first_mailbox.__wrapped__(value)


def _from_mailbox(value: str | None, walk: _Walk) -> tuple[str | None, str]:
    """The From's (addr-spec, display name) when it is exactly one valid mailbox; otherwise
    (None, "") and the problem `invalid-from`: we never write to an address we misread."""
    if value is None:
        return None, ""
    text = _fix_8bit(str(value)[:2_000]).replace("\r", "").replace("\n", "")
    if "=?" not in text and not any(c in text for c in '",(:;'):
        simple = _SIMPLE_MAILBOX.fullmatch(text)  # the usual shapes, without the parser
        if simple is not None and (addr := _addr(simple["addr"] or simple["bare"])):
            return addr, _fold(_header_text(simple["name"] or ""))
    found = one_mailbox(text)
    if found is not None and (addr := _addr(found[0])):
        return addr, _fold(found[1])
    walk.flag("invalid-from")
    return None, ""


@functools.lru_cache(maxsize=1024)
def _first_mailbox(value: str) -> tuple[str | None, str]:
    # Split before decoding, so a comma inside an encoded display name cannot split it.
    text = _fix_8bit(str(value)[:2_000]).replace("\r", "").replace("\n", "")
    name, addr = next(iter(_addresses(text)), ("", ""))
    return _addr(addr), _fold(_header_text(name))


def _addresses(text: str) -> list[tuple[str, str]]:
    """(name, addr) pairs. getaddresses walks the text a character at a time (0.1 ms for one
    address), so the common shapes, `a@b` and `Name <a@b>` without quotes or comments, are
    matched by a regular expression first."""
    if '"' not in text and "(" not in text:
        simple = [_SIMPLE_MAILBOX.fullmatch(item) for item in text.split(",") if item.strip()]
        if all(simple):
            return [(m["name"] or "", m["addr"] or m["bare"]) for m in simple if m]
    return getaddresses([text])


def _addr(addr: str) -> str | None:
    addr = addr.strip().lower()
    return addr if _ADDR_SPEC.fullmatch(addr) else None


def _recipients(values: list[str], walk: _Walk) -> tuple[str, ...]:
    if not values:  # no such header (Cc usually): nothing to join, decode or split
        return ()
    text = _fix_8bit(", ".join(str(v) for v in values)).replace("\r", "").replace("\n", "")
    if len(text) <= 256:  # far below both limits; cached, as the usual To (our address) recurs
        return _clean_addresses(text)
    if len(text) > _MAX_ADDRESS_CHARS:
        text = text[: text.rfind(",", 0, _MAX_ADDRESS_CHARS) + 1]
        walk.flag("too-many-recipients")
    found = _clean_addresses.__wrapped__(text)
    if len(found) > _MAX_RECIPIENTS:
        walk.flag("too-many-recipients")
    return found[:_MAX_RECIPIENTS]


@functools.lru_cache(maxsize=1024)
def _clean_addresses(text: str) -> tuple[str, ...]:
    """The distinct valid addresses in an address list, lower-cased, in order."""
    found: dict[str, None] = {}  # an ordered set
    for _, addr in _addresses(text):
        if (clean := _addr(addr)) is not None:
            found[clean] = None
    return tuple(found)


def _ids(value: str | None) -> tuple[str, ...]:
    """Message ids without brackets; of a long list the first (thread root) and the latest."""
    if not value:
        return ()
    text = _fix_8bit(str(value)[: _MAX_IDS * 1_000])
    ids = _MSG_ID.findall(text) or _BARE_ID.findall(text)
    if len(ids) > _MAX_IDS:
        ids = [ids[0], *ids[-(_MAX_IDS - 1) :]]
    return tuple(ids)


def _date(value: str | None, walk: _Walk) -> datetime | None:
    if value is None:
        return None
    text = _fold(str(value)[:200])
    simple = _SIMPLE_DATE.fullmatch(text)
    try:
        if simple is not None and simple.group(7, 8, 9) != ("-", "00", "00"):  # "-0000": see below
            parsed = _simple_date(simple)
        else:
            parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        walk.flag("bad-date")
        return None
    # RFC 5322 3.3: "-0000" means the zone is unknown; UTC is the only honest reading.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _simple_date(match: re.Match[str]) -> datetime:
    """What parsedate_to_datetime returns for an RFC 5322 date, 5x faster."""
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    return datetime(
        int(year),
        _MONTHS[month],
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        tzinfo=_zone(sign, zone_hours, zone_minutes),
    )


@functools.lru_cache(maxsize=64)  # senders use a few dozen offsets
def _zone(sign: str, hours: str, minutes: str) -> timezone:
    offset = int(hours) * 3600 + int(minutes) * 60
    return timezone(timedelta(seconds=-offset if sign == "-" else offset))


def _part_filename(part: Message) -> str | None:
    """part.get_filename(), which parses both headers' parameters in full (about 20 us),
    skipped when neither header mentions a name parameter."""
    for header in ("content-disposition", "content-type"):
        value = part.get(header)
        if value is not None and "name" in str(value).lower():
            return part.get_filename()
    return None


def _charset(part: Message) -> str | None:
    """part.get_content_charset(), which parses the parameters in full (about 30 us), read
    directly from the common `type/subtype; charset="x"` shapes."""
    value = part.get("content-type")
    if value is None:
        return None
    text = str(value)
    # Cached only when short: a hostile megabyte-long header is not worth keeping.
    simple = _simple_charset(text) if len(text) <= 256 else _simple_charset.__wrapped__(text)
    if simple is not _NOT_SIMPLE:
        return simple
    charset: str | None = part.get_content_charset()
    return charset


_NOT_SIMPLE = "\x00"  # no charset label is a NUL


@functools.lru_cache(maxsize=256)
def _simple_charset(value: str) -> str | None:
    """The charset a common Content-Type value names (None if none), else _NOT_SIMPLE.
    Cached: most mail repeats a handful of Content-Type values."""
    if "charset" not in value.lower():
        return None
    if _SIMPLE_CTYPE.fullmatch(value):
        params: list[tuple[str, str]] = _SIMPLE_PARAM.findall(value)
        for name, token in params:
            if name.lower() == "charset":
                return token.lower()
    return _NOT_SIMPLE


def _filename(value: str | None) -> str:
    if not value:
        return ""
    name = _header_text(value, limit=2_000)  # encoded words: Outlook puts them in name=
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()  # never a path
    return name[:255]


def _decode_bytes(data: bytes, declared: str | None) -> tuple[str, tuple[str, ...]]:
    """Text of `data`: the declared charset, then UTF-8, then a detector; never raises."""
    label, codec = _label(declared or "")
    if data.isascii() and not (codec or "").startswith(_STATEFUL_PREFIXES):
        return data.decode("ascii"), ()
    problems: list[str] = []
    if label and codec is None:
        problems.append(f"charset-unknown:{label}")
    if codec is not None and codec != "utf-8":
        try:
            text = data.decode(codec)
        except UnicodeError:  # not only UnicodeDecodeError: some codecs raise the base class
            problems.append(f"charset-fallback:{label}")
        else:
            if data.isascii() or not _single_byte(codec):
                return text, ()
            try:  # a valid multi-byte UTF-8 sequence is almost never real single-byte text
                return data.decode("utf-8"), (f"charset-mismatch:{label}",)
            except UnicodeDecodeError:
                return text, ()
    try:
        return data.decode("utf-8").removeprefix("\ufeff"), tuple(problems)
    except UnicodeDecodeError:
        if codec == "utf-8":
            problems.append(f"charset-fallback:{label}")
    guess = _codec(cchardet.detect(data[:_DETECT_BYTES])["encoding"]) or "cp1252"
    problems.append(f"charset-detected:{guess}")
    return data.decode(guess, "replace"), tuple(problems)


def _label(declared: str) -> tuple[str, str | None]:
    """A declared charset label, cleaned, and its codec; cached, as labels recur."""
    if len(declared) > 64:  # not a real label: not worth a cache entry
        return _clean_label.__wrapped__(declared)
    return _clean_label(declared)


@functools.lru_cache(maxsize=256)
def _clean_label(declared: str) -> tuple[str, str | None]:
    label = _LINE_JUNK.sub("", declared.strip().strip("\"'").lower())[:40]
    return label, _codec(label)


@functools.lru_cache(maxsize=256)
def _codec(label: str | None) -> str | None:
    """Python's name for a charset label, or None if unknown or not a text encoding."""
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        return None
    try:
        b"a".decode(name)  # LookupError for bytes-to-bytes codecs such as base64 or zlib
    except LookupError:
        return None
    except UnicodeError:  # a text codec that cannot read b"a" (utf-16) is still a text codec
        pass
    return None if name in _UNSAFE_CODECS else _SUPERSETS.get(name, name)


@functools.lru_cache(maxsize=256)
def _single_byte(codec: str) -> bool:
    if codec.startswith(_STATEFUL_PREFIXES):
        return False
    return len(bytes(range(256)).decode(codec, "replace")) == 256
