"""channels.email.mime._plain_message: the tree it builds without the feed parser is the same."""

from __future__ import annotations

import random
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from channels.email.mime import _RAW_HEADERS, _plain_message

REPO = Path(__file__).resolve().parents[3]
MAIL = sorted(
    path
    for root in (REPO / "tests" / "data", (REPO / ".." / "shared" / "corpus").resolve())
    for path in root.rglob("*")
    if path.is_file() and path.suffix not in (".tsv", ".md", ".json", ".py")
)


def _state(message: Message) -> dict[str, object]:
    """Everything a Message holds, but the lookup index our subclass caches."""
    state = dict(vars(message))
    state.pop("_index", None)
    state["defects"] = [repr(defect) for defect in message.defects]
    return state


def _same_as_parser(raw: bytes) -> bool:
    """True when the fast path builds the parser's tree, False when it declines."""
    fast = _plain_message(raw)
    if fast is None:
        return False
    assert _state(fast) == _state(BytesParser(policy=_RAW_HEADERS).parsebytes(raw))
    return True


def test_corpus_messages_build_the_parsers_tree() -> None:
    taken = sum(_same_as_parser(path.read_bytes()) for path in MAIL)
    assert 100 < taken < len(MAIL)  # most simple mail takes the fast path, multipart does not


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\r\nX-B:\tb \r\n  c\r\n\r\nbody\r\n",
        b"Subject:\n continued\n\n",
        b"A: 1\nA: 2\n\nbody without a line end",
        b"Subject: caf\xc3\xa9\n\n\xff\xfe",
        b"Content-Type: text/html\n\n<p>x</p>",
    ],
)
def test_plain_blocks_are_taken(raw: bytes) -> None:
    assert _same_as_parser(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"From someone@example.org Mon Jan 1\nSubject: a\n\nbody",  # envelope line
        b" Subject: a\n\nbody",  # starts with a continuation line
        b": nameless\n\nbody",
        b"Subject : a\n\nbody",  # blank before the colon
        b"Subject: a\rb\n\nbody",  # a lone CR ends a line for the parser
        b"Subject: a\nno colon here\n\nbody",
        b"Subject: a\n",  # no empty line
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n",
        b"Content-Type: message/rfc822\n\nSubject: inner\n\nx",
        b"",
    ],
)
def test_other_blocks_are_left_to_the_parser(raw: bytes) -> None:
    assert _plain_message(raw) is None


def test_generated_blocks_build_the_parsers_tree() -> None:
    starts = ["Subject:", "X-A :", "From ", " ", "\t", ":", "Content-Type:", "B:", "\xe9:", ""]
    values = ["", " x", "\t y  ", " multipart/mixed; boundary=b", " message/rfc822", " a\rb"]
    ends = ["\n", "\r\n", "\r", "\n\n", "\r\n\r\n", "\n\r\n"]
    rng = random.Random(7)
    taken = 0
    for _ in range(20_000):
        lines = rng.randint(1, 5)
        text = "".join(
            rng.choice(starts) + rng.choice(values) + rng.choice(ends) for _ in range(lines)
        )
        taken += _same_as_parser((text + rng.choice(["", "\nbody\n"])).encode("latin-1"))
    assert taken > 1_000
