"""The searchable form of one message: subject and own text, folded, with offsets kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from classifier.folding import normalize, strip_marks
from classifier.ruleset import RuleSet

_SEPARATOR = "\n\n"  # ends every clause, so no negation window spans subject and body
# What is read of a message. RFC 5322 caps a line at 998 characters; a request whose own text
# runs past 64 Ki characters is a pasted log or a newsletter, and reading on would only let
# one message slow the whole intake down.
_MAX_SUBJECT = 998
_MAX_TEXT = 65_536


@dataclass(frozen=True, slots=True)
class Document:
    """`folded` is `original` lower-cased and accent-free, character for character;
    `anchors` and `triggers` say which rules can match in it (see classifier/gate.py).
    `original` is the subject, the own text and, from `own_end` on, the footer (what follows
    the own text before quoted mail: only machine-mail rules read it)."""

    original: str
    folded: str
    subject_end: int
    anchors: Mapping[str, list[int]]
    triggers: frozenset[str]
    own_end: int

    @property
    def body_start(self) -> int:
        return self.subject_end + len(_SEPARATOR)

    def where(self, position: int) -> str:
        """Which part of the message a match at `position` lies in."""
        if position < self.subject_end:
            return "subject"
        return "body" if position < self.own_end else "footer"

    def text(self, match: re.Match[str]) -> str:
        """The matched text as the sender wrote it."""
        return self.original[match.start() : match.end()].strip()


def make_document(subject: str, own: str, rules: RuleSet, footer: str = "") -> Document:
    """Join a one-line subject, the own text and the footer, and fold them once for every
    rule."""
    line = " ".join(normalize(subject[: _MAX_SUBJECT * 2]).split())[:_MAX_SUBJECT]
    original = line + _SEPARATOR + normalize(own[:_MAX_TEXT])
    own_end = len(original)
    if footer:
        original += _SEPARATOR + normalize(footer)
    folded = strip_marks(original).lower()
    return Document(
        original,
        folded,
        len(line),
        rules.anchors_in(folded),
        rules.triggers_in(folded),
        own_end,
    )
