"""A literal prefilter: which rules can possibly match a text, and where.

Python's `re` tries a rule at every position of the text, about 40 ns per character per rule,
and a message meets some 300 rules. Two facts about a rule's pattern, read from its parse tree,
let most of that work be skipped:

- its *anchors*: literals one of which every match starts with ("outage" for
  `\\b(?:outage|downtime)\\b`). Such a rule is tried only where an anchor occurs.
- else its *triggers*: literals one of which every match contains ("down" for
  `\\b(?:is|are) down\\b`). Such a rule scans the text only if a trigger occurs.

A rule with neither (no word-start literal, no literal of three characters) scans every text.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import Any

_MIN_TRIGGER = 3
_MIN_ANCHOR = 1
DIGIT = "#"  # the anchor of a rule that starts with \\d at a word start
_MAX_RUNS = 16
_ZERO_WIDTH = frozenset({"AT", "ASSERT", "ASSERT_NOT"})
_REPEATS = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})

try:  # the stdlib's own regex parser; private, so a future Python without it just disables gating
    _PARSER: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - not on Python 3.11-3.13
    _PARSER = None


def triggers(pattern: str) -> frozenset[str] | None:
    """Literals one of which every match of `pattern` contains; None if there are none."""
    if _PARSER is None:  # pragma: no cover - see above
        return None
    found = _required(_PARSER.parse(pattern).data)
    if found is None or min(map(len, found)) < _MIN_TRIGGER:
        return None
    return frozenset(found)


def anchors(pattern: str) -> frozenset[str] | None:
    """Literals one of which every match of `pattern` starts with, at the start of a word
    (the pattern begins with \\b); None if there are none."""
    if _PARSER is None:  # pragma: no cover - see above
        return None
    found = _leading(list(_PARSER.parse(pattern).data), bounded=False)
    if found is None or min(map(len, found)) < _MIN_ANCHOR:
        return None
    return frozenset(found)


def _leading(items: list[tuple[Any, Any]], bounded: bool) -> set[str] | None:
    for index, (op, argument) in enumerate(items):
        name = str(op)
        if name in _ZERO_WIDTH:
            bounded = bounded or (name == "AT" and str(argument) == "AT_BOUNDARY")
            continue  # \\b, ^ and look-arounds consume nothing
        rest = items[index + 1 :]
        if name == "IN" and [str(item) for entry in argument for item in entry] == [
            "CATEGORY",
            "CATEGORY_DIGIT",
        ]:
            return {DIGIT} if bounded else None
        if _small_class(name, argument):
            runs = _run(items[index:])
            return runs if bounded and all(run[:1].isalnum() for run in runs) else None
        if name == "SUBPATTERN":
            return _leading(list(argument[-1].data) + rest, bounded)
        if name == "BRANCH":
            return _union([_leading(list(branch.data) + rest, bounded) for branch in argument[1]])
        if name in _REPEATS:  # the first repetition alone: "(?:ab)+c" starts "ab", not "abc"
            inner = _leading(list(argument[2].data), bounded)
            return inner if argument[0] >= 1 else _union([inner, _leading(rest, bounded)])
        return None
    return None  # the pattern can match the empty string


def _run(items: list[tuple[Any, Any]]) -> set[str]:
    runs: set[str] = {""}
    for op, argument in items:
        # The parser factors a common prefix out of an alternation: "this|the" is "th" and
        # a branch of "is" and "e". A branch of plain literals continues the runs.
        pieces = _small_class(str(op), argument) or _literal_branches(str(op), argument)
        if not pieces or len(runs) * len(pieces) > _MAX_RUNS:
            break
        runs = {run + piece for run in runs for piece in pieces}
    return runs


def _literal_branches(name: str, argument: Any) -> list[str]:
    if name != "BRANCH":
        return []
    words = []
    for branch in argument[1]:
        if not branch or any(str(op) != "LITERAL" for op, _ in branch):
            return []
        words.append("".join(chr(code) for _, code in branch))
    return words


def _union(sets: list[set[str] | None]) -> set[str] | None:
    if any(found is None for found in sets):
        return None
    return set().union(*(found for found in sets if found is not None))


def _required(items: Iterable[tuple[Any, Any]]) -> set[str] | None:
    """The best set of required literals in a sequence: every element of it is required, so
    any element's set will do; prefer the one whose shortest literal is longest. A run of
    literals may pass through a small character class ("50[234]" gives 502, 503, 504)."""
    best: set[str] | None = None
    runs: set[str] = {""}

    def consider(candidates: set[str] | None) -> None:
        nonlocal best
        if (
            candidates
            and "" not in candidates
            and (best is None or _score(candidates) > _score(best))
        ):
            best = candidates

    for op, argument in items:
        name = str(op)
        chars = _small_class(name, argument)
        if chars and len(runs) * len(chars) <= _MAX_RUNS:
            runs = {run + char for run in runs for char in chars}
            continue
        consider(runs)
        runs = {""}
        consider(_element(name, argument))
    consider(runs)
    return best


def _small_class(name: str, argument: Any) -> list[str]:
    if name == "LITERAL":
        return [chr(argument)]
    if name == "IN" and all(str(op) == "LITERAL" for op, _ in argument):
        return [chr(code) for _, code in argument]
    return []


def _element(name: str, argument: Any) -> set[str] | None:
    if name == "SUBPATTERN":
        return _required(argument[-1].data)
    if name == "BRANCH":
        return _union([_required(branch.data) for branch in argument[1]])
    if name in _REPEATS and argument[0] >= 1:
        return _required(argument[2].data)
    return None  # character classes, anchors, look-arounds and optional parts require nothing


def _score(literals: set[str]) -> tuple[int, int]:
    return min(map(len, literals)), -len(literals)


_WORD = re.compile(r"\w+")
# Cuts a text into gap, word, gap, word, ..., gap: one call, no match objects, linear.
_WORDS = re.compile(r"(\w+)")
# In ASCII text `\w` is [0-9A-Za-z_]: blanking every other character lets str.split cut the
# words, 4x faster than the regular expression.
_ASCII_GAPS = str.maketrans(
    {chr(code): " " for code in range(128) if not (chr(code).isalnum() or chr(code) == "_")}
)
_CACHE_LIMIT = 100_000


class AnchorIndex:
    """Finds where the anchors of a rule set occur: at the start of which words.

    Every match of an anchored rule starts a word with one of its anchors, so the text is cut
    into words once (one `findall`, no match objects) and each word looked up; a word's anchors
    are remembered, since words recur from message to message (a cache: the answer depends on
    the word only).
    """

    __slots__ = ("_cache", "_lengths", "_stems")

    def __init__(self, literals: Iterable[str]) -> None:
        # An anchor is matched on its first word: "can not" is looked up as "can".
        self._stems = frozenset(_first_word(literal) for literal in literals)
        self._lengths = tuple(sorted({len(stem) for stem in self._stems if stem != DIGIT}))
        self._cache: dict[str, tuple[str, ...]] = {}

    @staticmethod
    def stem_of(literal: str) -> str:
        """The key under which an anchor literal is reported."""
        return _first_word(literal)

    def find(self, text: str) -> dict[str, list[int]]:
        """For each anchor stem that starts a word of `text`, where those words start."""
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        found: dict[str, list[int]] = {}
        if text.isascii():  # _words inlined: a generator costs a third of this loop
            blanked = text.translate(_ASCII_GAPS)
            start = 0
            for word in blanked.split():
                start = blanked.find(word, start)  # only blanks lie before it: this is the word
                stems = cache.get(word)
                if stems is None:
                    stems = cache[word] = self._stems_of(word)
                for stem in stems:
                    found.setdefault(stem, []).append(start)
                start += len(word)
            return found
        for start, word in _words(text):  # the general case
            stems = cache.get(word)
            if stems is None:
                stems = cache[word] = self._stems_of(word)
            for stem in stems:
                found.setdefault(stem, []).append(start)
        return found

    def _stems_of(self, word: str) -> tuple[str, ...]:
        stems = [
            word[:size]
            for size in self._lengths
            if size <= len(word) and word[:size] in self._stems
        ]
        if word[0].isdigit() and DIGIT in self._stems:
            stems.append(DIGIT)
        return tuple(stems)


def _words(text: str) -> Iterator[tuple[int, str]]:
    """(start, word) of every run of word characters (`\\w+`) in `text`, in order."""
    pieces = _WORDS.split(text)
    starts = accumulate(map(len, pieces))  # a word starts where the pieces before it end
    for start, word in zip(starts, pieces[1::2], strict=False):  # one start per piece
        yield start, word
        next(starts)  # past the word: the next value is the start of the next one


def _first_word(literal: str) -> str:
    if literal == DIGIT:
        return literal
    match = _WORD.match(literal)
    return literal if match is None else match.group()
