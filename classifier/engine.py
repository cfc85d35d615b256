"""`classify`: one message's subject, text and headers in, a Classification out. Pure: no I/O,
no clock, no logging (the RuleSet remembers which rule anchors each word it has seen starts
with; that cache changes no result)."""

from __future__ import annotations

from collections.abc import Sequence

from classifier import signals
from classifier.document import make_document
from classifier.machine import detect_machine
from classifier.model import (
    MAIL_CHANNEL,
    PROBLEM_CATEGORIES,
    Category,
    Classification,
    Evidence,
    MachineKind,
)
from classifier.ruleset import RuleSet
from classifier.text import split_text

# What is read of a text at most: a longer body is a log or an attachment pasted inline, and
# reading it all would let one message stall the intake (own_text is linear, ~0.3 s/MiB).
_MAX_RAW_TEXT = 524_288

# Evidence kept per rule and signal: a marker repeated 10,000 times is one finding, and the
# evidence goes into the ticket's record and onto the agents' page.
_MAX_EVIDENCE_PER_RULE = 3

# Header priority markers mail clients set (compared case-insensitively). X-Priority is
# "1 (Highest)" .. "5 (Lowest)"; RFC 2156 Priority is normal/urgent/non-urgent.
_HIGH_PRIORITY: dict[str, frozenset[str]] = {
    "x-priority": frozenset({"1", "2"}),
    "priority": frozenset({"urgent"}),
    "importance": frozenset({"high"}),
    "x-msmail-priority": frozenset({"high"}),
}


def classify(
    subject: str,
    text: str,
    headers: Sequence[tuple[str, str]],
    rules: RuleSet,
    *,
    channel: str = "email",
    envelope_sender: str | None = None,
) -> Classification:
    """Classify one message; every signal comes with the evidence that set it."""
    own, footer = split_text(text[:_MAX_RAW_TEXT])
    document = make_document(subject, own, rules, footer)
    is_mail = channel == MAIL_CHANNEL
    urgent, urgent_evidence = signals.urgency(document, rules)
    tier, tier_evidence = signals.subject_priority(document, rules)
    header_evidence = _header_priority(headers) if is_mail else []
    explicit, explicit_evidence = signals.explicit_severity(document, rules)
    kind, machine_evidence = (
        detect_machine(document, headers, envelope_sender, rules) if is_mail else (None, [])
    )
    # Mail a machine wrote (auto-replies, bounces, bulk, notifications) is nobody's problem
    # report: no category, severity or missing information. List mail is a person's words.
    category: Category = Category.OTHER
    category_evidence: list[Evidence] = []
    severity: int | None = None
    severity_evidence: list[Evidence] = []
    if kind is None or kind is MachineKind.LIST:
        category, category_evidence = signals.categorize(document, rules)
        severity, severity_evidence = signals.severity(document, rules, category, explicit)
    missing: tuple[str, ...] = ()
    info_evidence: list[Evidence] = []
    if category in PROBLEM_CATEGORIES:
        missing, info_evidence = signals.missing_info(document, rules)
    return Classification(
        urgent=urgent,
        subject_priority=tier,
        header_priority=bool(header_evidence),
        explicit_severity=explicit,
        severity=severity,
        category=category,
        auto_generated=kind is not None,
        machine_kind=kind,
        missing=missing,
        evidence=_bounded(
            [
                *urgent_evidence,
                *tier_evidence,
                *header_evidence,
                *explicit_evidence,
                *severity_evidence,
                *category_evidence,
                *machine_evidence,
                *info_evidence,
            ]
        ),
    )


def _bounded(evidence: list[Evidence]) -> tuple[Evidence, ...]:
    """The first few findings of each (signal, rule), in order."""
    seen: dict[tuple[str, str], int] = {}
    kept = []
    for item in evidence:
        count = seen[item.signal, item.rule] = seen.get((item.signal, item.rule), 0) + 1
        if count <= _MAX_EVIDENCE_PER_RULE:
            kept.append(item)
    return tuple(kept)


def _header_priority(headers: Sequence[tuple[str, str]]) -> list[Evidence]:
    evidence: list[Evidence] = []
    for name, value in headers:
        wanted = _HIGH_PRIORITY.get(name.lower())
        if wanted is None:
            continue
        token = value.strip().split(" ", 1)[0].lower() if value.strip() else ""
        if token in wanted:
            rule = "header." + name.strip().lower().replace("-", "_")
            evidence.append(Evidence("header_priority", rule, value.strip(), f"header:{name}"))
    return evidence
