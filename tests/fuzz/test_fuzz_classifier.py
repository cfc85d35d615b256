"""Fuzzing the classifier's public entry points: `classify`, `own_text` and `compile_rules`.

Whatever the text, subject, headers or envelope, `classify` answers a well-formed
Classification; a rule document that is not valid is refused with `RuleFileError`, nothing else.
The texts come from the real corpus (parsed, then mutated), from the rules' own vocabulary
repeated and spliced (what regex backtracking feeds on), and from arbitrary Unicode.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any

import pytest
from fuzzing import corpus, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from channels.email.mime import parse_email
from classifier import (
    MISSING_INFO,
    Category,
    Classification,
    RuleFileError,
    RuleSet,
    classify,
    compile_rules,
    load_rules,
    own_text,
)
from intake.messages import ChannelKind

RULES = load_rules()
# Words and shapes the rules and own_text look for; repeated, they probe for backtracking.
VOCABULARY = (
    "urgent", "URGENT:", "naléhavé", "dringend", "not urgent", "nicht dringend", "severity 1",
    "Severity: critical", "priority 2", "P1", "závažnost 1", "down", "outage", "error 500",
    "Traceback", "invoice", "refund", "feature request", "it would be nice", "how do I",
    "?", "Steps to reproduce:", "since yesterday", "we changed", "Out of office",
    "Automatic reply:", "Undelivered Mail Returned to Sender", "Delivery Status Notification",
    "MAILER-DAEMON", "> ", ">> ", "-- ", "--\n", "_____", "-----Original Message-----",
    "On Mon, 1 Jan 2024, a@b.c wrote:", "Dne 1. 1. 2024 napsal(a):", "From: a\nSent: b\nTo: c",
    "Am 1.1.2024 schrieb x:", "Disclaimer:", "Best regards,", "S pozdravem", "\n", "\n\n",
    " ", "\t", "\u00a0", "\u200b", "ß", "İ", "\u0301", "\ufeff", "\x00", "\r\n", "\u2028",
)  # fmt: skip
MACHINE_HEADERS = (
    "Auto-Submitted", "Precedence", "List-Id", "List-Unsubscribe", "X-Auto-Response-Suppress",
    "X-Priority", "Importance", "Priority", "X-MSMail-Priority", "Return-Path", "X-Spam-Flag",
    "Content-Type", "X-Autoreply", "X-Autorespond", "X-Failed-Recipients", "X-Intake-Loop",
    "From", "Subject", "Feedback-ID",
)  # fmt: skip
HEADER_VALUES = (
    "auto-replied", "auto-generated", "no", "bulk", "list", "junk", "<list.example>", "1",
    "1 (Highest)", "high", "urgent", "YES", "multipart/report; report-type=delivery-status",
    "<>", "", " ", "MAILER-DAEMON@x", "\x00", "no-reply@x.example",
)  # fmt: skip


@cache
def corpus_texts() -> tuple[str, ...]:
    """The readable text of every corpus message, as the email adapter hands it on."""
    return tuple(parse_email(raw).text for raw in corpus())


words = st.lists(st.sampled_from(VOCABULARY) | st.text(max_size=12), max_size=60).map("".join)
repeated = st.builds(
    lambda word, count, glue: glue.join([word] * count),
    st.sampled_from(VOCABULARY),
    st.integers(1, 3000),
    st.sampled_from(("", " ", "\n", "> ", "\t", "-")),
)


@st.composite
def corpus_text(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(corpus_texts()))
    if text and draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(words) + text[at + draw(st.integers(0, 200)) :]
    return text


texts = st.one_of(words, repeated, corpus_text(), st.text(max_size=2000))
headers = st.lists(
    st.tuples(
        st.sampled_from(MACHINE_HEADERS) | st.text(max_size=20),
        st.sampled_from(HEADER_VALUES) | st.text(max_size=60),
    ),
    max_size=8,
)


def check(result: Classification, header_list: Sequence[tuple[str, str]]) -> None:
    assert isinstance(result, Classification)
    assert result.severity is None or 1 <= result.severity <= 4
    assert result.explicit_severity is None or 1 <= result.explicit_severity <= 4
    assert result.category in set(Category)
    assert result.auto_generated == (result.machine_kind is not None)
    assert set(result.missing) <= set(MISSING_INFO)
    for item in result.evidence:
        assert item.signal and item.rule and item.where
        assert isinstance(item.matched, str)
    # The evidence count is checked by test_evidence_is_bounded (a known classifier bug).


@fuzz_settings(120)
@given(
    subject=st.one_of(words, st.text(max_size=200), st.sampled_from(VOCABULARY)),
    text=texts,
    header_list=headers,
    channel=st.sampled_from([c.value for c in ChannelKind]),
    envelope=st.one_of(
        st.none(), st.just(""), st.sampled_from(HEADER_VALUES), st.text(max_size=40)
    ),
)
def test_classify_answers_any_message(
    subject: str, text: str, header_list: list[tuple[str, str]], channel: str, envelope: str | None
) -> None:
    result = classify(subject, text, header_list, RULES, channel=channel, envelope_sender=envelope)
    check(result, header_list)


@fuzz_settings(60)
@given(text=texts)
def test_own_text_is_a_part_of_the_text(text: str) -> None:
    own = own_text(text)
    assert isinstance(own, str)
    assert len(own) <= len(text) + 1  # what the sender wrote: cut, never grown


# Rule documents: the packaged layout with its values replaced by arbitrary data.
_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
_patterns = st.sampled_from(
    ("(", "a{2,1}", "(?P<x>a)", r"\1", "(a)(b)", "[", "a**", "(?i)", "\\", "", "(a|b)*c", "é")
) | st.text(max_size=20)
_documents = st.fixed_dictionaries(
    {"language": st.sampled_from(("en", "xx", "EN", "", "e n")) | _values},
    optional={
        "urgent": st.fixed_dictionaries(
            {}, optional={"markers": st.dictionaries(st.text(max_size=8), _patterns | _values)}
        )
        | _values,
        "explicit_severity": st.fixed_dictionaries(
            {},
            optional={
                "patterns": st.dictionaries(st.text(max_size=8), _patterns, max_size=2),
                "levels": st.dictionaries(st.text(max_size=8), _values | st.integers(0, 5)),
            },
        ),
        "category": st.dictionaries(st.text(max_size=10), _values, max_size=3),
        "negation": _values,
    },
)


@fuzz_settings(40)
@given(documents=st.lists(_documents, min_size=1, max_size=2))
def test_a_bad_rule_file_is_refused_with_rule_file_error(documents: list[dict[str, Any]]) -> None:
    try:
        rules = compile_rules([(f"fuzz-{n}.toml", doc) for n, doc in enumerate(documents)])
    except RuleFileError:
        return
    assert isinstance(rules, RuleSet)
    check(classify("Urgent: down", "Severity 1, error 500.", (), rules), ())


def test_evidence_is_bounded() -> None:
    result = classify("", "urgent " * 10_000, (), RULES)
    assert len(result.evidence) <= 200


# Found by the atheris harness (tests/fuzz/atheris_classify.py) on a mutated corpus mail.
HANG_TEXT = "hello" + "." * 100_000
HANG_SECONDS = 60  # linear work takes milliseconds; the quadratic one takes ~10 minutes


def test_trailing_punctuation_does_not_hang() -> None:
    script = (
        "from classifier import classify, load_rules\n"
        "classify('', 'hello' + '.' * 100_000, (), load_rules())\n"
    )
    try:
        subprocess.run([sys.executable, "-c", script], check=True, timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"classify did not finish in {HANG_SECONDS} s on {len(HANG_TEXT):,} chars")
