"""Shared fixtures for the classifier tests: the packaged rule set (loaded once) and a
classify() with the tests' defaults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import pytest

from classifier import Classification, RuleSet, classify, load_rules

Classify: TypeAlias = Callable[..., Classification]


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="session")
def run(rules: RuleSet) -> Classify:
    """classify(subject, text, headers) on the email channel with the packaged rules."""

    def classify_message(
        subject: str = "",
        text: str = "",
        headers: Sequence[tuple[str, str]] = (),
        channel: str = "email",
        envelope_sender: str | None = None,
    ) -> Classification:
        return classify(
            subject, text, headers, rules, channel=channel, envelope_sender=envelope_sender
        )

    return classify_message
