"""The public API: names, shapes and purity."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

import classifier
from classifier import MISSING_INFO, Category, Classification, Evidence, MachineKind, RuleSet

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)


def test_public_names() -> None:
    assert set(classifier.__all__) == {
        "MISSING_INFO",
        "PROBLEM_CATEGORIES",
        "Category",
        "Classification",
        "Evidence",
        "MachineKind",
        "RuleFileError",
        "RuleSet",
        "classify",
        "compile_rules",
        "load_rules",
        "own_text",
    }
    assert [category.value for category in Category] == [
        "outage",
        "error",
        "question",
        "feature_request",
        "account_billing",
        "service_credit",
        "other",
    ]
    assert {"auto_reply", "bounce", "list", "bulk"} <= {kind.value for kind in MachineKind}
    assert MISSING_INFO == ("when_how", "steps", "error_message", "recent_changes")


def test_results_are_frozen(run: Classify, rules: RuleSet) -> None:
    result = run("Urgent: portal down", "Production is down.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.urgent = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.urgent = rules.severity  # type: ignore[misc]
    assert all(isinstance(item, Evidence) for item in result.evidence)


def test_same_input_same_output(run: Classify) -> None:
    first: Classification = run(
        "Urgent: IAM Services Offline", "All users are locked out since 9:00."
    )
    assert run("Urgent: IAM Services Offline", "All users are locked out since 9:00.") == first


def test_the_seed_example(run: Classify) -> None:
    result = run("Urgent: IAM Services Offline", "")
    assert (result.urgent, result.subject_priority, result.severity, result.category) == (
        True,
        "urgent",
        1,
        Category.OUTAGE,
    )
    assert result.auto_generated is False


@pytest.mark.parametrize("size", [1_000, 200_000])
def test_long_input_is_read_up_to_a_limit(run: Classify, size: int) -> None:
    subject = "x" * size
    text = ("word " * size) + " urgent"
    result = run(subject, text)
    assert result.urgent is (size < 10_000)


def test_evidence_is_bounded_per_rule(run: Classify) -> None:
    # A marker repeated 10,000 times is one finding: its first few occurrences are evidence.
    result = run("", "Urgent! " * 10_000)
    assert result.urgent
    assert 1 <= len([e for e in result.evidence if e.signal == "urgent"]) <= 3
