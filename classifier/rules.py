"""The rule loader: TOML files in, a compiled RuleSet (classifier/ruleset.py) out. The only module
of the package that reads files.

A rule file holds one language's vocabulary (see rules/en.toml for the layout). Every rule has an
id; its full name in evidence is "<language>.<section>.<kind>.<id>". Files are applied in order:
the packaged ones (sorted by name), then a team's own. A later rule with the same full name
replaces the earlier one, and an empty pattern removes it, so a team can tune a packaged rule
without a release.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from classifier.folding import strip_marks
from classifier.gate import AnchorIndex, anchors, triggers
from classifier.model import MISSING_INFO, Category
from classifier.ruleset import CANCEL, Rule, RuleGroup, RuleSet

TIERS = ("urgent", "high", "medium", "low")
SEVERITY_LEVELS = ("1", "2", "3", "4")
_CATEGORIES = tuple(category.value for category in Category if category is not Category.OTHER)

# The kinds each section may hold. A "cancel" rule matches a span (a negation, a referral such
# as "for urgent matters call") inside which the section's other rules do not count.
_SECTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "negation": ("before", "after"),
        "urgent": ("markers", CANCEL),
        "subject_priority": TIERS,
        "explicit_severity": ("patterns", CANCEL),
        "severity": (*SEVERITY_LEVELS, CANCEL),
        "category": (*_CATEGORIES, CANCEL),
        "info": MISSING_INFO,
        "machine": (
            "auto_reply_subject",
            "bounce_subject",
            "auto_reply_text",
            "bounce_text",
            "challenge_text",
            "notification_subject",
            "notification_text",
            "bulk_text",
            "bulk_line",
            "report_subject",
        ),
    }
)
_TOP_LEVEL = frozenset({"language", "description", *_SECTIONS})
_SEARCHED = frozenset({"urgent", "explicit_severity", "severity", "category", "info"})
# Machine-mail kinds matched at the start of the subject, and all those read in the subject
# alone (not gated: a subject is short); the others are searched for in the text.
_SUBJECT_START = frozenset({"auto_reply_subject", "bounce_subject"})
_SUBJECT_ONLY = _SUBJECT_START | {"notification_subject", "report_subject"}

# Subject rules are written as bare words; these wrap them. Reply and forward prefixes are
# skipped because a reply in the customer's own thread keeps the priority they gave it
# ("Re: Urgent: portal down" is still urgent). A leading "[tag]" (e.g. "[EXTERNAL]") is skipped.
_SUBJECT_HEAD = (
    r"^\s*(?:\[[^\]\n]{0,30}\]\s*)?"
    r"(?:(?:re|fw|fwd|aw|wg|odp|tr|sv|vs|antw|rif|r)\s*(?:\[\d+\])?\s*:\s*"
    r"(?:\[[^\]\n]{0,30}\]\s*)?)*"
)
_PRIORITY_TAIL = r"(?:\s+(?:priority|priorita|prioritat|prio))?(?:\s*[\]):!]|\s+[-\u2013])"


class RuleFileError(ValueError):
    """A rule file is unreadable or a rule in it is invalid; the message names file and key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"rule file {source!r}, key {key!r}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


def load_rules(extra_paths: Sequence[Path] = ()) -> RuleSet:
    """Load the packaged rules/*.toml, then each extra file (or every *.toml in an extra folder)."""
    documents: list[tuple[str, Mapping[str, Any]]] = []
    packaged = resources.files("classifier") / "rules"
    entries = sorted(
        (item for item in packaged.iterdir() if item.name.endswith(".toml")),
        key=lambda item: item.name,
    )
    for entry in entries:
        documents.append(
            (f"classifier/rules/{entry.name}", _parse(entry.name, entry.read_text("utf-8")))
        )
    for path in extra_paths:
        files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
        for file in files:
            try:
                content = file.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise RuleFileError(str(file), "", f"cannot be read: {exc}") from exc
            documents.append((str(file), _parse(str(file), content)))
    return compile_rules(documents)


def _parse(source: str, content: str) -> Mapping[str, Any]:
    try:
        return tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(source, "", f"is not valid TOML: {exc}") from exc


def compile_rules(documents: Sequence[tuple[str, Mapping[str, Any]]]) -> RuleSet:
    """Build a RuleSet from parsed rule files, (source name, TOML table) in application order."""
    rules: dict[tuple[str, str], dict[str, Rule]] = {}
    tokens: dict[str, int] = {}
    for source, document in documents:
        language = _language(source, document)
        for section, kinds in _sections(source, document):
            if section == "explicit_severity":
                tokens.update(_levels(source, kinds.pop("levels", {})))
            for kind, table in _kinds(source, section, kinds):
                for rule_id, pattern in _patterns(source, f"{section}.{kind}", table):
                    name = f"{language}.{section}.{kind}.{rule_id}"
                    bucket = rules.setdefault((section, kind), {})
                    bucket.pop(name, None)
                    if pattern:
                        bucket[name] = _rule(source, section, kind, name, pattern)
    return _assemble(tuple(source for source, _ in documents), rules, tokens)


def _language(source: str, document: Mapping[str, Any]) -> str:
    unknown = set(document) - _TOP_LEVEL
    if unknown:
        raise RuleFileError(
            source, sorted(unknown)[0], f"unknown key; expected one of {sorted(_TOP_LEVEL)}"
        )
    language = document.get("language")
    if not isinstance(language, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", language):
        raise RuleFileError(source, "language", "must be a lower-case name such as 'en'")
    return language


def _sections(source: str, document: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for section in _SECTIONS:
        value = document.get(section, {})
        if not isinstance(value, dict):
            raise RuleFileError(source, section, "must be a table")
        yield section, dict(value)


def _kinds(
    source: str, section: str, kinds: Mapping[str, Any]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    allowed = _SECTIONS[section]
    for kind, table in kinds.items():
        if kind not in allowed:
            raise RuleFileError(
                source, f"{section}.{kind}", f"unknown kind; expected one of {list(allowed)}"
            )
        if not isinstance(table, dict):
            raise RuleFileError(source, f"{section}.{kind}", "must be a table of id = pattern")
        yield kind, table


def _patterns(source: str, key: str, table: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for rule_id, pattern in table.items():
        if not isinstance(pattern, str):
            raise RuleFileError(source, f"{key}.{rule_id}", "pattern must be a string")
        yield rule_id, pattern


def _levels(source: str, levels: Any) -> dict[str, int]:
    if not isinstance(levels, dict):
        raise RuleFileError(source, "explicit_severity.levels", "must be a table of token = level")
    result: dict[str, int] = {}
    for token, level in levels.items():
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 4:
            raise RuleFileError(source, f"explicit_severity.levels.{token}", "level must be 1-4")
        result[strip_marks(token).lower()] = level
    return result


def _lower(pattern: str) -> str:
    """Lower-case a pattern except what follows a backslash (\\S must stay \\S)."""
    return re.sub(
        r"\\.|[^\\]+",
        lambda part: part[0] if part[0][0] == "\\" else part[0].lower(),
        pattern,
        flags=re.S,
    )


def _rule(source: str, section: str, kind: str, name: str, pattern: str) -> Rule:
    key = name.split(".", 1)[1]
    # A group's rules are joined into one alternation with its own group names and numbers.
    if re.search(r"\(\?P[<=]|\\[1-9]", pattern):
        raise RuleFileError(source, key, "named groups and back-references are not allowed")
    folded = _lower(strip_marks(pattern))  # rules match on folded text: "Naléhavé" -> "nalehave"
    if section == "subject_priority":
        folded = rf"{_SUBJECT_HEAD}[\[(]?\s*(?:{folded}){_PRIORITY_TAIL}"
    elif kind == "before":  # a negation cue ends right where the word it negates starts
        folded = rf"(?:{folded})[\s\-]*\Z"
    elif kind == "after":  # ... or starts right after it ("eilt nicht", "naléhavé to není")
        folded = rf"\A[\s\-]*(?:{folded})"
    elif kind in _SUBJECT_START:
        folded = f"{_SUBJECT_HEAD}(?:{folded})"
    try:
        compiled = re.compile(folded, re.MULTILINE)
    except re.error as exc:
        raise RuleFileError(source, key, f"invalid regular expression: {exc}") from exc
    wanted = 1 if (section, kind) == ("explicit_severity", "patterns") else None
    if wanted is not None and compiled.groups != wanted:
        raise RuleFileError(source, key, "needs exactly one group capturing the level token")
    anchored = anchors(folded)
    return Rule(name, kind, folded, compiled, anchored, None if anchored else triggers(folded))


def _group(rules: Sequence[Rule]) -> RuleGroup:
    if not rules:
        return RuleGroup()
    ordered = tuple(sorted(rules, key=lambda rule: rule.kind != CANCEL))  # stable: cancel first
    alternation = "|".join(f"(?P<r{index}>{rule.pattern})" for index, rule in enumerate(ordered))
    by_anchor: dict[str, list[int]] = {}
    by_trigger: dict[str, list[int]] = {}
    for order, rule in enumerate(ordered):
        for stem in {AnchorIndex.stem_of(anchor) for anchor in rule.anchors or ()}:
            by_anchor.setdefault(stem, []).append(order)
        for trigger in rule.triggers or ():
            by_trigger.setdefault(trigger, []).append(order)
    return RuleGroup(
        ordered,
        re.compile(alternation, re.MULTILINE),
        re.compile(_any_of(ordered), re.MULTILINE),
        MappingProxyType({key: _alternation(ordered, orders) for key, orders in by_anchor.items()}),
        MappingProxyType({key: tuple(orders) for key, orders in by_trigger.items()}),
        tuple(
            order
            for order, rule in enumerate(ordered)
            if rule.anchors is None and rule.triggers is None
        ),
    )


def _any_of(ordered: Sequence[Rule]) -> str:
    """One alternation of the rules. When every rule is anchored, every match starts a word
    (see classifier/gate.py): saying so first lets a search skip the other places at once,
    a third faster on a negation window."""
    alternation = "|".join(f"(?:{rule.pattern})" for rule in ordered)
    if all(rule.anchors for rule in ordered):
        return rf"\b(?=\w)(?:{alternation})"
    return alternation


def _alternation(
    ordered: Sequence[Rule], orders: Sequence[int]
) -> tuple[re.Pattern[str], tuple[int, ...]]:
    """One alternation of the given rules, and the rule order behind each group number."""
    alternation = "|".join(f"(?P<r{order}>{ordered[order].pattern})" for order in orders)
    compiled = re.compile(alternation, re.MULTILINE)
    by_number = [-1] * (compiled.groups + 1)
    for name, number in compiled.groupindex.items():
        by_number[number] = int(name[1:])
    return compiled, tuple(by_number)


def _assemble(
    sources: tuple[str, ...],
    rules: Mapping[tuple[str, str], Mapping[str, Rule]],
    tokens: dict[str, int],
) -> RuleSet:
    def of(section: str, *kinds: str) -> RuleGroup:
        wanted = kinds or _SECTIONS[section]
        return _group([rule for kind in wanted for rule in rules.get((section, kind), {}).values()])

    every = [  # the sections RuleGroup.search reads whole messages with
        rule
        for (section, kind), section_rules in rules.items()
        if section in _SEARCHED or (section == "machine" and kind not in _SUBJECT_ONLY)
        for rule in section_rules.values()
    ]
    triggers = frozenset(literal for rule in every for literal in rule.triggers or ())
    return RuleSet(
        sources=sources,
        negation_before=of("negation", "before"),
        negation_after=of("negation", "after"),
        urgent=of("urgent"),
        subject_priority=of("subject_priority"),
        explicit_severity=of("explicit_severity"),
        severity_tokens=MappingProxyType(tokens),
        severity=of("severity"),
        category=of("category"),
        info=MappingProxyType({key: of("info", key) for key in MISSING_INFO}),
        auto_reply_subject=of("machine", "auto_reply_subject"),
        bounce_subject=of("machine", "bounce_subject"),
        auto_reply_text=of("machine", "auto_reply_text"),
        bounce_text=of("machine", "bounce_text"),
        challenge_text=of("machine", "challenge_text"),
        notification_subject=of("machine", "notification_subject"),
        notification_text=of("machine", "notification_text"),
        bulk_text=of("machine", "bulk_text"),
        bulk_line=of("machine", "bulk_line"),
        report_subject=of("machine", "report_subject"),
        machine_text=of("machine", "challenge_text", "notification_text", "bulk_text", "bulk_line"),
        anchor_index=AnchorIndex(literal for rule in every for literal in rule.anchors or ()),
        trigger_literals=triggers,
        ascii_trigger_literals=frozenset(literal for literal in triggers if literal.isascii()),
    )
