"""Compiled rules as frozen data, and how a group of them is run over a message's text.

Built by classifier/rules.py (the loader); read by the signal functions. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, cast

from classifier.gate import AnchorIndex

# The kind of a rule that matches a span inside which its section's other rules do not count
# (a negation, a referral such as "for urgent matters call").
CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule: its full name, its kind within the section, its folded pattern, and
    the literals one of which any match starts with (`anchors`) or else contains (`triggers`);
    see classifier/gate.py."""

    name: str
    kind: str
    pattern: str
    regex: re.Pattern[str]
    anchors: frozenset[str] | None
    triggers: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """Rules of one section. Short texts (a subject, a clause) are tried with one alternation
    of them all; a message's text with `search`, which runs only the rules that can match."""

    rules: tuple[Rule, ...] = ()
    regex: re.Pattern[str] | None = None
    any_regex: re.Pattern[str] | None = None  # the same without named groups: ~7x faster
    # Per anchor stem, one alternation of the rules it anchors, in order, group "r<order>",
    # and the order of the rule each of its group numbers wraps (`lastindex` of a match)
    by_anchor: Mapping[str, tuple[re.Pattern[str], tuple[int, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    by_trigger: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: MappingProxyType({}))
    always: tuple[int, ...] = ()

    def test(self, text: str) -> bool:
        """Whether any rule matches somewhere in `text`."""
        return self.any_regex is not None and self.any_regex.search(text) is not None

    def match(self, text: str, end: int) -> tuple[Rule, re.Match[str]] | None:
        """The hit that starts text[:end] (for patterns anchored at the start), or None."""
        # The same alternation without names says "no hit", the usual answer, a third faster.
        if self.any_regex is None or self.any_regex.match(text, 0, end) is None:
            return None
        regex = cast(re.Pattern[str], self.regex)  # built with any_regex
        found = cast(re.Match[str], regex.match(text, 0, end))  # the same rules: it matches
        return self.rules[int(str(found.lastgroup)[1:])], found

    def first(self, text: str, end: int) -> tuple[Rule, re.Match[str]] | None:
        """The leftmost hit in text[:end] (a subject: short, read whole), or None."""
        if self.any_regex is None or self.any_regex.search(text, 0, end) is None:
            return None
        regex = cast(re.Pattern[str], self.regex)  # built with any_regex
        found = cast(re.Match[str], regex.search(text, 0, end))  # the same rules: it matches
        return self.rules[int(str(found.lastgroup)[1:])], found

    def search(self, text: Scannable, end: int | None = None) -> list[tuple[Rule, re.Match[str]]]:
        """Every hit of the group's rules in a message's text, running only the rules that can
        match: anchored rules where an anchor occurs, triggered rules if a trigger occurs, the rest
        everywhere. Hits are taken left to right (at one position cancel rules first, then file
        order), and a hit hides the later hits that start inside it."""
        folded = text.folded
        stop = len(folded) if end is None else end
        anchors = text.anchors
        rules = self.rules
        # (start, order) -> hit. An alternation tries its rules in order, so one call per anchor
        # and place finds the first rule in order that matches there, the only one there that
        # can be taken (it hides the others); its branch matched just what the rule alone does.
        candidates: dict[tuple[int, int], re.Match[str]] = {}
        for anchor in self.by_anchor.keys() & anchors.keys():
            alternation, orders = self.by_anchor[anchor]
            for position in anchors[anchor]:  # ascending
                if position >= stop:
                    break
                found = alternation.match(folded, position, stop)
                if found is not None:
                    candidates[position, orders[found.lastindex]] = found  # type: ignore[index]
        scanned: Iterable[int] = self.always
        if self.by_trigger:
            triggered = self.by_trigger.keys() & text.triggers
            if triggered:
                scanned = {*self.always, *(o for t in triggered for o in self.by_trigger[t])}
        for order in scanned:
            for hit in rules[order].regex.finditer(folded, 0, stop):
                candidates[hit.start(), order] = hit
        hits: list[tuple[Rule, re.Match[str]]] = []
        cursor = 0
        for (position, order), hit in sorted(candidates.items()):  # the keys are distinct
            if position >= cursor:
                rule = rules[order]
                if rule.regex.groups:  # read by the caller: the rule's own numbering
                    hit = rule.regex.match(folded, position, stop)  # type: ignore[assignment]
                hits.append((rule, hit))
                cursor = max(hit.end(), position + 1)
        return hits


class Scannable(Protocol):
    """A folded text with the anchors (and where) and triggers of a RuleSet found in it."""

    @property
    def folded(self) -> str: ...
    @property
    def anchors(self) -> Mapping[str, list[int]]: ...
    @property
    def triggers(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Compiled rules from every loaded file; frozen data that `classify` only reads."""

    sources: tuple[str, ...] = ()
    negation_before: RuleGroup = field(default_factory=RuleGroup)
    negation_after: RuleGroup = field(default_factory=RuleGroup)
    urgent: RuleGroup = field(default_factory=RuleGroup)
    subject_priority: RuleGroup = field(default_factory=RuleGroup)
    explicit_severity: RuleGroup = field(default_factory=RuleGroup)
    severity_tokens: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    severity: RuleGroup = field(default_factory=RuleGroup)
    category: RuleGroup = field(default_factory=RuleGroup)
    info: Mapping[str, RuleGroup] = field(default_factory=lambda: MappingProxyType({}))
    auto_reply_subject: RuleGroup = field(default_factory=RuleGroup)
    bounce_subject: RuleGroup = field(default_factory=RuleGroup)
    auto_reply_text: RuleGroup = field(default_factory=RuleGroup)
    bounce_text: RuleGroup = field(default_factory=RuleGroup)
    challenge_text: RuleGroup = field(default_factory=RuleGroup)
    notification_subject: RuleGroup = field(default_factory=RuleGroup)
    notification_text: RuleGroup = field(default_factory=RuleGroup)
    bulk_text: RuleGroup = field(default_factory=RuleGroup)
    bulk_line: RuleGroup = field(default_factory=RuleGroup)
    report_subject: RuleGroup = field(default_factory=RuleGroup)
    # challenge_text, notification_text, bulk_text and bulk_line as one group: one pass over
    # a message's text finds them all (each hit's rule kind says which it is)
    machine_text: RuleGroup = field(default_factory=RuleGroup)
    anchor_index: AnchorIndex = field(default_factory=lambda: AnchorIndex(()))
    trigger_literals: frozenset[str] = frozenset()
    ascii_trigger_literals: frozenset[str] = frozenset()  # those an ASCII text can hold

    def anchors_in(self, folded: str) -> dict[str, list[int]]:
        """Where the rules' anchors occur in a folded text; see RuleGroup.search."""
        return self.anchor_index.find(folded)

    def triggers_in(self, folded: str) -> frozenset[str]:
        """Which of the rules' triggers occur in a folded text; see RuleGroup.search."""
        # An ASCII text holds no Chinese or Korean literal: skip scanning it for them.
        literals = self.ascii_trigger_literals if folded.isascii() else self.trigger_literals
        return frozenset(literal for literal in literals if literal in folded)
