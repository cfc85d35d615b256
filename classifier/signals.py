"""The text signals: urgency, subject priority, explicit and impact severity, category and the
necessary information. Each function reads a Document and the RuleSet and returns its finding
with the evidence for it."""

from __future__ import annotations

import re
from collections.abc import Iterator

from classifier.document import Document
from classifier.model import MISSING_INFO, Category, Evidence
from classifier.ruleset import CANCEL, Rule, RuleGroup, RuleSet

# A negation cue counts only within the clause of the word it negates: "No, it is urgent"
# and "not down, but all users are locked out" must still fire.
_CLAUSE_END = re.compile(r"[.!?;:,\n]")
_CLAUSE_MARKS = tuple(".!?;:,\n")
_WINDOW = 60

# Ties go to the more specific and more serious category.
_PRECEDENCE = (
    Category.SERVICE_CREDIT,
    Category.OUTAGE,
    Category.ERROR,
    Category.FEATURE_REQUEST,
    Category.ACCOUNT_BILLING,
    Category.QUESTION,
)
# A credit claim always talks about the outage it claims for, and a feature request about
# what does not work yet: their own wording outweighs those words.
_WEIGHT = {Category.SERVICE_CREDIT: 3, Category.FEATURE_REQUEST: 2}
_SUBJECT_WEIGHT = 2  # the subject names the topic
_CATEGORY = {category.value: category for category in Category}  # Category(value), faster

# Severity a category implies when the text states no impact (Scalr and Circularo on-premise
# 12: questions, how-to, enhancement requests are 4; an error is a partial loss, 3).
_IMPLIED_SEVERITY = {
    Category.OUTAGE: 1,
    Category.ERROR: 3,
    Category.QUESTION: 4,
    Category.FEATURE_REQUEST: 4,
    Category.ACCOUNT_BILLING: 4,
    Category.SERVICE_CREDIT: 4,
}
# A claim is about an outage in the past and an enhancement is severity 4 by definition,
# whatever impact words they use.
_FIXED_SEVERITY = frozenset({Category.SERVICE_CREDIT, Category.FEATURE_REQUEST})

Hit = tuple[Rule, re.Match[str]]


def hits(document: Document, group: RuleGroup, rules: RuleSet) -> Iterator[Hit]:
    """The group's hits that are neither inside a cancel span nor negated in their clause."""
    for rule, match in group.search(document, document.own_end):
        if rule.kind != CANCEL and not negated(document.folded, match, rules):
            yield rule, match


def negated(folded: str, match: re.Match[str], rules: RuleSet) -> bool:
    """Whether a negation cue stands right before or after the match, in the same clause."""
    start, end = match.span()
    before = folded[max(0, start - _WINDOW) : start]
    # The clause starts after the last clause mark: a few reverse scans beat a regex search,
    # which tries to run to the end of the window from every mark.
    boundary = max(map(before.rfind, _CLAUSE_MARKS))
    if boundary >= 0:
        before = before[boundary + 1 :]
    if rules.negation_before.test(before):
        return True
    after = folded[end : end + _WINDOW]
    stop = _CLAUSE_END.search(after)
    if stop is not None:
        after = after[: stop.start()]
    return rules.negation_after.test(after)


def _evidence(document: Document, signal: str, hit: Hit) -> Evidence:
    rule, match = hit
    return Evidence(signal, rule.name, document.text(match), document.where(match.start()))


def urgency(document: Document, rules: RuleSet) -> tuple[bool, list[Evidence]]:
    """Whether the sender's own subject or text carries an urgent marker. A subject that an
    auto-responder or a bounce echoes ("Automatic reply: URGENT: ...", "Undeliverable: Re:
    Urgent ...") is someone else's: its markers do not count."""
    found = list(hits(document, rules.urgent, rules))
    if any(match.start() < document.subject_end for _, match in found) and _echoed(document, rules):
        found = [hit for hit in found if hit[1].start() >= document.subject_end]
    evidence = [_evidence(document, "urgent", hit) for hit in found]
    return bool(evidence), evidence


def _echoed(document: Document, rules: RuleSet) -> bool:
    """Whether the subject is a machine's echo of another message's subject."""
    return any(
        group.match(document.folded, document.subject_end) is not None
        for group in (rules.auto_reply_subject, rules.bounce_subject)
    )


def subject_priority(document: Document, rules: RuleSet) -> tuple[str | None, list[Evidence]]:
    """The four-tier priority a leading "Urgent:", "High:", "Medium:" or "Low:" sets."""
    hit = rules.subject_priority.match(document.folded, document.subject_end)
    if hit is None:
        return None, []
    return hit[0].kind, [_evidence(document, "subject_priority", hit)]


def explicit_severity(document: Document, rules: RuleSet) -> tuple[int | None, list[Evidence]]:
    """The most severe "Sev1", "P2", "Severity 3", "Level 4" the sender wrote."""
    levels: list[int] = []
    evidence: list[Evidence] = []
    for hit in hits(document, rules.explicit_severity, rules):
        token = hit[1].group(1).lower()  # the rule's one group: the level token
        level = int(token) if token.isdigit() else rules.severity_tokens.get(token)
        if level is not None:
            levels.append(level)
            evidence.append(_evidence(document, "explicit_severity", hit))
    return (min(levels) if levels else None), evidence


def categorize(document: Document, rules: RuleSet) -> tuple[Category, list[Evidence]]:
    """The category whose rules weigh most; subject hits count double."""
    scores: dict[Category, int] = {}
    evidence: list[Evidence] = []
    for hit in hits(document, rules.category, rules):
        category = _CATEGORY[hit[0].kind]
        weight = _SUBJECT_WEIGHT if hit[1].start() < document.subject_end else 1
        scores[category] = scores.get(category, 0) + weight * _WEIGHT.get(category, 1)
        evidence.append(_evidence(document, "category", hit))
    if not scores:
        return Category.OTHER, evidence
    best = max(scores.values())
    return next(c for c in _PRECEDENCE if scores.get(c) == best), evidence


def severity(
    document: Document, rules: RuleSet, category: Category, explicit: int | None
) -> tuple[int | None, list[Evidence]]:
    """Severity 1-4: the sender's own, else the worst impact stated, else the category's."""
    if explicit is not None:
        return explicit, []
    if category in _FIXED_SEVERITY:
        return _IMPLIED_SEVERITY[category], [_implied(category)]
    found = list(hits(document, rules.severity, rules))
    if found:
        worst = min(int(rule.kind) for rule, _ in found)
        return worst, [_evidence(document, "severity", hit) for hit in found]
    if category in _IMPLIED_SEVERITY:
        return _IMPLIED_SEVERITY[category], [_implied(category)]
    return None, []


def _implied(category: Category) -> Evidence:
    return Evidence("severity", f"category.{category.value}", category.value, "category")


def missing_info(document: Document, rules: RuleSet) -> tuple[tuple[str, ...], list[Evidence]]:
    """Which pieces of necessary information the text does not give."""
    missing: list[str] = []
    evidence: list[Evidence] = []
    for key in MISSING_INFO:
        found = rules.info[key].search(document, document.own_end)
        hit = found[0] if found else None
        if hit is None:
            missing.append(key)
            evidence.append(Evidence("missing", f"info.{key}", "", "body"))
        else:
            evidence.append(_evidence(document, "info", hit))
    return tuple(missing), evidence
