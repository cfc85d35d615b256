"""Folding: case and diacritics away, every character kept at its offset."""

from __future__ import annotations

import pytest

from classifier.folding import fold, normalize


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("NALÉHAVÉ", "nalehave"),
        ("Spěchá", "specha"),
        ("Grüße", "gruße"),
        ("Łódź", "lodz"),
        ("isn\u2019t", "isn't"),
        ("non\u2013urgent", "non-urgent"),
        ("\u0130stanbul", "istanbul"),
        ("plain ascii", "plain ascii"),
        ("e\u0301", "e"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded
    assert len(fold(text)) == len(normalize(text))
