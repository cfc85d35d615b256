"""Loading rule files: the packaged languages, a team's own files, and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from classifier import Category, RuleFileError, RuleSet, classify, compile_rules, load_rules


def test_packaged_languages(rules: RuleSet) -> None:
    names = {Path(source).name for source in rules.sources}
    assert {"en.toml", "cs.toml", "de.toml"} <= names


def test_a_team_file_adds_overrides_and_removes_rules(tmp_path: Path) -> None:
    team = tmp_path / "team.toml"
    team.write_text(
        'language = "en"\n'
        "[urgent.markers]\n"
        "urgent = ''\n"  # removes the packaged English marker
        "[category.outage]\n"
        "outage = '\\bkaput\\b'\n",  # replaces the packaged rule of that name
        encoding="utf-8",
    )
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "pl.toml").write_text(
        'language = "acme"\n[urgent.markers]\nasap = "\\\\bASAP\\\\b"\n', encoding="utf-8"
    )
    rules = load_rules([team, extra])
    assert rules.sources[-2:] == (str(team), str(extra / "pl.toml"))
    assert classify("", "urgent", (), rules).urgent is False
    assert classify("", "please fix asap", (), rules).urgent is True
    assert classify("", "all kaput", (), rules).category is Category.OUTAGE
    assert classify("", "an outage", (), rules).category is not Category.OUTAGE


def test_an_empty_rule_set_finds_nothing() -> None:
    rules = compile_rules([])
    result = classify(
        "Urgent: down", "Production is down!", [("Auto-Submitted", "auto-replied")], rules
    )
    assert (result.urgent, result.subject_priority, result.severity, result.category) == (
        False,
        None,
        None,
        Category.OTHER,
    )
    assert result.machine_kind is not None  # header rules are protocol, not rule files


def test_a_level_token_without_a_level_is_ignored() -> None:
    rules = compile_rules(
        [
            (
                "team.toml",
                {"language": "xx", "explicit_severity": {"patterns": {"s": r"\bsev (\w+)"}}},
            )
        ]
    )
    assert classify("", "sev 1 and sev huge", (), rules).explicit_severity == 1


def _document(**sections: Any) -> dict[str, Any]:
    return {"language": "xx", **sections}


@pytest.mark.parametrize(
    ("document", "key", "problem"),
    [
        ({"language": "xx", "colour": {}}, "colour", "unknown key"),
        ({"urgent": {}}, "language", "lower-case name"),
        ({"language": "EN"}, "language", "lower-case name"),
        (_document(urgent=[]), "urgent", "must be a table"),
        (_document(urgent={"words": {}}), "urgent.words", "unknown kind"),
        (_document(urgent={"markers": "x"}), "urgent.markers", "table of id = pattern"),
        (_document(urgent={"markers": {"a": 1}}), "urgent.markers.a", "must be a string"),
        (
            _document(urgent={"markers": {"a": "("}}),
            "urgent.markers.a",
            "invalid regular expression",
        ),
        (_document(urgent={"markers": {"a": "(?P<x>a)"}}), "urgent.markers.a", "named groups"),
        (_document(urgent={"markers": {"a": "(a)\\1"}}), "urgent.markers.a", "back-references"),
        (
            _document(explicit_severity={"patterns": {"p": "p1"}}),
            "explicit_severity.patterns.p",
            "one group",
        ),
        (_document(explicit_severity={"levels": []}), "explicit_severity.levels", "token = level"),
        (_document(explicit_severity={"levels": {"x": 5}}), "explicit_severity.levels.x", "1-4"),
        (_document(explicit_severity={"levels": {"x": True}}), "explicit_severity.levels.x", "1-4"),
    ],
)
def test_invalid_rules_name_file_and_key(document: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(RuleFileError) as raised:
        compile_rules([("team.toml", document)])
    assert (raised.value.source, raised.value.key) == ("team.toml", key)
    assert problem in raised.value.problem
    assert "team.toml" in str(raised.value)


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("language = ", encoding="utf-8")
    with pytest.raises(RuleFileError, match="not valid TOML"):
        load_rules([bad])


@pytest.mark.parametrize("content", [None, b"\xff\xfe\x00"])
def test_a_file_that_cannot_be_read(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "team.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RuleFileError, match="cannot be read"):
        load_rules([path])
