"""The literal prefilter: anchors and triggers read from a pattern, and anchors found in text."""

from __future__ import annotations

import re

import pytest

from classifier import gate


@pytest.mark.parametrize(
    ("pattern", "anchors", "triggers"),
    [
        (r"\burgent\b", {"urgent"}, {"urgent"}),
        (r"\b(?:outage|downtime)\b", {"outage", "downtime"}, {"outage", "downtime"}),
        (r"\bnalehav\w*", {"nalehav"}, {"nalehav"}),
        (r"\b(?:is|are)\s+down\b", {"is", "are"}, {"down"}),
        (r"\b(?:our\s+)?users\b", {"our", "users"}, {"users"}),
        (r"\b(?:easy\s+)?\s*workaround", None, {"workaround"}),
        (r"\b50[234]\b", {"502", "503", "504"}, {"502", "503", "504"}),
        (r"\b\d{1,2}:\d{2}\b", {gate.DIGIT}, None),
        (r"\d{1,2}:\d{2}", None, None),
        (r"(?:outage|downtime)", None, {"outage", "downtime"}),
        (r"\b-x", None, None),
        (r"\bx?", None, None),
        (r"\b(?:ab)+c", {"ab"}, None),
        (r"\b", None, None),
        (r"\b(foo|bar)x", {"foox", "barx"}, {"foo", "bar"}),
        (r"\b(?:a|[bc])d", {"ad", "bd", "cd"}, None),
        (r"\b(?:x|y)?z", {"x", "y", "z"}, None),
        (r"\?", None, None),
        (r"^\s*\d+[.)]", None, None),
        (r"\bcan\s*n[o']?t\b", {"can"}, {"can"}),
        # the parser factors "th" out of "this|the"; the anchors read through the branch
        (r"\b(?:this|the)\s+mail", {"this", "the"}, {"mail"}),
        (r"\b(?:tap|t\w)x", {"t"}, None),
    ],
)
def test_anchors_and_triggers(
    pattern: str, anchors: set[str] | None, triggers: set[str] | None
) -> None:
    assert gate.anchors(pattern) == (None if anchors is None else frozenset(anchors))
    assert gate.triggers(pattern) == (None if triggers is None else frozenset(triggers))


def test_anchor_index_finds_word_starts() -> None:
    index = gate.AnchorIndex(["urgent", "can not", "prod", "production", gate.DIGIT])
    assert gate.AnchorIndex.stem_of("can not") == "can"
    found = index.find("production is urgent, we cannot work; 9:30 unurgent")
    assert found == {
        "prod": [0],
        "production": [0],
        "urgent": [14],
        "can": [25],
        gate.DIGIT: [38, 40],
    }


@pytest.mark.parametrize(
    "text",
    [
        "production is urgent, we cannot work; 9:30 unurgent",  # ASCII: words cut by str.split
        "straße: urgent… prod_x — срочно urgent9 ¿urgent",  # any other text: by the regex
        "",
        "  ..urgent",
    ],
)
def test_anchor_index_words_are_regex_words(text: str) -> None:
    """Either way of cutting words finds what a search for \\w+ words finds."""
    index = gate.AnchorIndex(["urgent", "prod", "stra", "сроч", gate.DIGIT])
    expected: dict[str, list[int]] = {}
    for word in re.finditer(r"\w+", text):
        for stem in ("urgent", "prod", "stra", "сроч"):
            if word.group().startswith(stem):
                expected.setdefault(stem, []).append(word.start())
        if word.group()[0].isdigit():
            expected.setdefault(gate.DIGIT, []).append(word.start())
    assert index.find(text) == expected


def test_anchor_index_trailing_non_words() -> None:
    # A trailing run of non-word characters ends the scan; words before it are all found.
    index = gate.AnchorIndex(["urgent"])
    assert index.find("urgent. urgent" + "." * 50_000) == {"urgent": [0, 8]}
    assert index.find(" \n" * 1_000) == {}


def test_anchor_index_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "_CACHE_LIMIT", 2)
    index = gate.AnchorIndex(["urgent"])
    for text in ("a b c", "d e f", "urgent"):
        found = index.find(text)
    assert found == {"urgent": [0]}
