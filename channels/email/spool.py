"""Large mail kept in a temporary file: the SMTP DATA spool, and what is read back from it.

aiosmtpd holds DATA in memory as one buffer per line and then their join, about four times
the message's size. Past a threshold our SMTP server writes the lines to an anonymous
temporary file instead (`Spool`), which the OS removes when it is closed, after a crash too.
`skeleton` reads the file back as the message with the body of each large base64 attachment
left out (a placeholder in its place), small enough to parse like any other mail; the bodies
left out (`SpooledPart`) are decoded from the file in chunks when they are stored.

Only mail whose structure reads plainly is cut this way (header blocks of `Name: value`
lines ended by an empty line, boundaries declared, base64 that decodes strictly); for any
other `skeleton` returns None and the caller parses the whole message in memory, as before.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from channels.email.mime import is_attachment, part_headers

CHUNK = 65_536  # bytes read, written to the spool and to storage at a time
ELIDE_BYTES = 65_536  # a base64 body at least this long is left in the file
_MAX_HEADER_BLOCK = 262_144  # a longer header block is not plain: parsed in memory instead
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]")
_BASE64_LINE = re.compile(rb"([A-Za-z0-9+/]*)(=?=?)\r?\n?")
_WHITESPACE = b" \t\r\n"


class Spool:
    """The DATA of one message: in memory up to `threshold` bytes, then in a temporary file."""

    def __init__(self, threshold: int, directory: str | None = None) -> None:
        self.threshold = threshold
        self.directory = directory
        self.size = 0
        self.file: BinaryIO | None = None
        self._buffer = bytearray()

    def write(self, line: bytes) -> None:
        self.size += len(line)
        if self.file is not None:
            self.file.write(line)
            return
        self._buffer += line
        if len(self._buffer) > self.threshold:
            file = tempfile.TemporaryFile(dir=self.directory, buffering=CHUNK)
            file.write(self._buffer)
            self.file = cast(BinaryIO, file)
            self._buffer = bytearray()

    def getvalue(self) -> bytes:
        """The message, when it stayed in memory."""
        return bytes(self._buffer)

    def finish(self) -> None:
        """All written: make the file readable by position."""
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        self._buffer = bytearray()
        if self.file is not None:
            self.file.close()  # anonymous: its space is freed now


TOO_BIG = "552 5.3.4 Error: Too much mail data"
TOO_LONG = "500 5.5.2 Line too long (see RFC 5321 4.5.3.1.6)"


async def read_data(
    reader: asyncio.StreamReader, spool: Spool, *, limit: int, line_limit: int
) -> str | None:
    """Read DATA up to its lone dot into `spool`, dot-unstuffed (RFC 5321 4.5.2), as
    aiosmtpd's `smtp_DATA` reads it; the refusal to answer, or None. Past the size `limit`
    (or a line past `line_limit`) the rest is read and dropped: the client is answered after
    its dot (RFC 5321 4.2.5)."""
    refusal: str | None = None
    size = 0
    fragments: list[bytes] = []
    while True:
        try:
            line = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as exc:  # longer than the reader's own limit
            refusal = refusal or TOO_LONG
            line = await reader.read(exc.consumed)
        except asyncio.IncompleteReadError as exc:  # the client went away mid-DATA
            raise ConnectionResetError("connection lost during DATA") from exc
        if not fragments and line == b".\r\n":
            return refusal
        size += len(line)
        if refusal is None and limit and size > limit:
            refusal = TOO_BIG
            spool.close()  # nothing more is kept
        fragments.append(line)
        if not line.endswith(b"\r\n"):
            continue
        whole = fragments[0] if len(fragments) == 1 else b"".join(fragments)
        fragments.clear()
        if refusal is None and len(whole) > line_limit:
            refusal = TOO_LONG
            spool.close()
        if refusal is None:
            spool.write(whole[1:] if whole.startswith(b".") else whole)


@dataclass(frozen=True, slots=True)
class SpooledPart:
    """Bytes `start:end` of a spool file, base64-decoded if `encoded`; `Spooled` for storage.

    Read by position (os.pread), so readers in other threads do not move a shared offset;
    once the spool is closed, reading raises ValueError instead of reading another file.
    """

    file: BinaryIO
    start: int
    end: int
    encoded: bool
    size: int
    sha256: str

    def chunks(self) -> Iterator[bytes]:
        decoder = _Base64() if self.encoded else None
        position = self.start
        while position < self.end:
            data = os.pread(self.file.fileno(), min(CHUNK, self.end - position), position)
            if not data:
                raise ValueError("the spool file is shorter than its parts")
            position += len(data)
            yield decoder.feed(data) if decoder is not None else data
        if decoder is not None:
            yield decoder.close()


@dataclass(slots=True)
class _Base64:
    """Strict base64 decoding of a body fed in pieces (the line ends are dropped)."""

    pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes | bytearray) -> bytes:
        self.pending += data.translate(None, _WHITESPACE)
        cut = len(self.pending) - len(self.pending) % 4
        done = base64.b64decode(bytes(self.pending[:cut]), validate=True)
        del self.pending[:cut]
        return done

    def close(self) -> bytes:
        if self.pending:
            raise binascii.Error("base64 body not a multiple of 4 characters")
        return b""


def whole(file: BinaryIO, size: int) -> SpooledPart:
    """The whole spool file as a `Spooled`, its digest read once."""
    digest = hashlib.sha256()
    part = SpooledPart(file, 0, size, encoded=False, size=size, sha256="")
    for chunk in part.chunks():
        digest.update(chunk)
    return SpooledPart(file, 0, size, encoded=False, size=size, sha256=digest.hexdigest())


@dataclass(slots=True)
class Skeleton:
    """A spooled message with its large base64 bodies left out: `text` to parse, `parts` the
    bodies in order, each replaced in `text` by the base64 of `marker(i)`."""

    text: bytes
    parts: list[SpooledPart]
    nonce: str

    def marker(self, index: int) -> bytes:
        return f"spooled-part-{self.nonce}-{index}".encode()


@dataclass(slots=True)
class _Scan:
    """State of one `skeleton` pass: the enclosing boundaries, the part being read."""

    file: BinaryIO
    out: bytearray = field(default_factory=bytearray)
    parts: list[SpooledPart] = field(default_factory=list)
    separators: list[bytes] = field(default_factory=list)  # "--boundary", outermost first
    header: bytearray | None = field(default_factory=bytearray)  # None: reading a body
    # A base64 attachment's body: buffered in `candidate` until it proves large, then left
    # out from `body_start` on, decoded only to learn its size and digest.
    candidate: bytearray | None = None
    body_start: int = 0
    decoder: _Base64 | None = None
    digest: Any = None  # hashlib's sha256 object
    decoded: int = 0
    padded: bool = False
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))


class _NotPlainError(Exception):
    """The message is not plain enough to cut: parse it whole."""


def skeleton(file: BinaryIO) -> Skeleton | None:
    """The spooled message without its large base64 bodies, or None when it is not plain."""
    scan = _Scan(file)
    file.seek(0)
    position = 0
    try:
        for line in file:
            position += len(line)
            _line(scan, line, position)
        _end_body(scan, position)
    except (_NotPlainError, binascii.Error, ValueError):
        return None
    if scan.header:  # headers to the end, without the empty line
        scan.out += scan.header
    return Skeleton(bytes(scan.out), scan.parts, scan.nonce)


def _line(scan: _Scan, line: bytes, after: int) -> None:
    """Read `line`, which ends at file position `after`."""
    if scan.header is not None:
        _header_line(scan, line, after)
        return
    boundary = _boundary(scan, line)
    if boundary is not None:
        _end_body(scan, after - len(line))
        scan.out += line
        index, closing = boundary
        del scan.separators[index + (0 if closing else 1) :]  # inner multiparts end here
        if not closing:
            scan.header = bytearray()
    elif scan.decoder is not None:
        _base64_line(scan, line)
    elif scan.candidate is not None:
        scan.candidate += line
        if len(scan.candidate) >= ELIDE_BYTES:
            scan.decoder, scan.digest = _Base64(), hashlib.sha256()
            for buffered in scan.candidate.splitlines(keepends=True):
                _base64_line(scan, buffered)
            scan.candidate = None
    else:
        scan.out += line


def _header_line(scan: _Scan, line: bytes, after: int) -> None:
    assert scan.header is not None
    if line in (b"\r\n", b"\n"):
        block = bytes(scan.header)
        scan.out += block + line
        scan.header = None
        _begin_body(scan, block, after)
        return
    if not _HEADER_LINE.match(line) or len(scan.header) + len(line) > _MAX_HEADER_BLOCK:
        raise _NotPlainError
    scan.header += line


def _begin_body(scan: _Scan, block: bytes, start: int) -> None:
    """After a header block: a multipart opens a boundary, message/* has headers next, a
    base64 attachment's body becomes a candidate for leaving out."""
    headers = part_headers(block)
    ctype = headers.get_content_type()
    if ctype == "multipart/digest":
        raise _NotPlainError  # its parts default to message/rfc822: not followed here
    if headers.get_content_maintype() == "multipart":
        boundary = headers.get_boundary()
        if boundary:
            scan.separators.append(b"--" + boundary.rstrip().encode("ascii", "surrogateescape"))
        return
    cte = str(headers.get("content-transfer-encoding", "")).strip().lower()
    if headers.get_content_maintype() == "message":
        if cte not in ("", "7bit", "8bit", "binary"):
            raise _NotPlainError
        if ctype != "message/delivery-status":
            scan.header = bytearray()  # the enclosed message's headers
        return
    if cte == "base64" and is_attachment(headers):
        scan.candidate = bytearray()
        scan.body_start = start


def _base64_line(scan: _Scan, line: bytes | bytearray) -> None:
    match = _BASE64_LINE.fullmatch(line)
    if match is None or (scan.padded and match.group(1)):
        raise _NotPlainError  # what the strict decoder would refuse
    scan.padded = scan.padded or bool(match.group(2))
    assert scan.decoder is not None
    data = scan.decoder.feed(line)
    scan.decoded += len(data)
    scan.digest.update(data)


def _boundary(scan: _Scan, line: bytes) -> tuple[int, bool] | None:
    """(index of the separator, whether it closes) when `line` is a boundary line as the
    feed parser reads them: a separator, perhaps "--", blanks, the line end."""
    if not scan.separators or not line.startswith(b"--"):
        return None
    for index in range(len(scan.separators) - 1, -1, -1):
        separator = scan.separators[index]
        if line.startswith(separator):
            rest = line[len(separator) :]
            closing = rest.startswith(b"--")
            if not rest[2 if closing else 0 :].rstrip(b"\r\n").strip(b" \t"):
                return index, closing
    return None


def _end_body(scan: _Scan, end: int) -> None:
    """The body being read ends at file position `end`: left out, or copied after all."""
    if scan.decoder is not None:
        scan.decoded += len(scan.decoder.close())
        marker = f"spooled-part-{scan.nonce}-{len(scan.parts)}".encode()
        scan.out += base64.b64encode(marker) + b"\r\n"
        part = SpooledPart(
            scan.file, scan.body_start, end, True, scan.decoded, scan.digest.hexdigest()
        )
        scan.parts.append(part)
    elif scan.candidate is not None:
        scan.out += scan.candidate
    scan.candidate = scan.decoder = scan.digest = None
    scan.decoded = 0
    scan.padded = False
