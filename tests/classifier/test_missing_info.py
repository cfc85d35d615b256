"""The necessary information (Circularo SaaS 11, on-premise 13.2) a problem report lacks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from classifier import Classification

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)

ALL = ("when_how", "steps", "error_message", "recent_changes")
COMPLETE = (
    'Since yesterday 10:00 when I click Save the page shows "Error 500: internal". '
    "Steps: 1. open a document 2. click Save. We upgraded to 4.2 last week."
)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("Export is broken.", ALL),
        (COMPLETE, ()),
        ("Export fails since this morning.", ("steps", "error_message", "recent_changes")),
        ("Export fails. Nothing changed on our side.", ("when_how", "steps", "error_message")),
        ("Export fails, the error says access denied.", ("when_how", "steps", "recent_changes")),
        (
            "Upload fails.\n1. log in\n2. open a folder",
            ("when_how", "error_message", "recent_changes"),
        ),
        ("Export nefunguje od včera, po aktualizaci.", ("steps", "error_message")),
        ("Nejde nahrát dokument, píše to chybu 500.", ("when_how", "steps", "recent_changes")),
        ("Export is slow for the past two days.", ("steps", "error_message", "recent_changes")),
        (
            "Export geht nicht, Fehlermeldung: Zugriff verweigert.",
            ("when_how", "steps", "recent_changes"),
        ),
        # only problem reports are asked for more
        ("How do I export invoices?", ()),
        ("Feature request: dark mode.", ()),
    ],
)
def test_missing_information(run: Classify, text: str, missing: tuple[str, ...]) -> None:
    result = run("", text)
    assert result.missing == missing
    assert [item.rule for item in result.evidence if item.signal == "missing"] == [
        f"info.{key}" for key in missing
    ]
