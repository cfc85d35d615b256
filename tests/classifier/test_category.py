"""Category: outage, error, question, feature request, account/billing, service credit, other."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from classifier import Category, Classification

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)


@pytest.mark.parametrize(
    ("subject", "text", "category"),
    [
        ("", "The portal is down.", Category.OUTAGE),
        ("", "Service unavailable: 503 on every page.", Category.OUTAGE),
        ("", "We cannot reach the site since 9:00.", Category.OUTAGE),
        ("", "Výpadek portálu od rána.", Category.OUTAGE),
        ("", "Das Portal ist nicht erreichbar.", Category.OUTAGE),
        ("", "Export fails with error 500.", Category.ERROR),
        ("", "The upload button doesn't work.", Category.ERROR),
        ("", "Chyba při ukládání dokumentu.", Category.ERROR),
        ("", "Fehler beim Speichern.", Category.ERROR),
        ("", "The dashboard has been very slow for two days.", Category.ERROR),
        ("", "All documents uploaded yesterday are gone.", Category.ERROR),
        ("", "We think one of our accounts was compromised.", Category.ERROR),
        ("", "There is a typo on the login page.", Category.ERROR),
        ("", "Printing produces blank labels.", Category.ERROR),
        ("", "Three attachments went missing from ticket 12.", Category.ERROR),
        ("", "Der Export sendet die Dateien nicht.", Category.ERROR),
        ("", "Please revoke the access of our former intern.", Category.ACCOUNT_BILLING),
        ("", "Please rename our workspace to Acme Ltd.", Category.ACCOUNT_BILLING),
        ("", "How do I configure SSO?", Category.QUESTION),
        ("", "Is the scheduled maintenance window on Sunday?", Category.QUESTION),
        ("", "Jak mohu nastavit podpis?", Category.QUESTION),
        ("", "Wie kann ich SSO einrichten?", Category.QUESTION),
        ("Feature request", "Export to PDF, please.", Category.FEATURE_REQUEST),
        ("", "It would be great if you could add dark mode.", Category.FEATURE_REQUEST),
        ("", "Es wäre schön, wenn der Export CSV könnte.", Category.FEATURE_REQUEST),
        ("", "Bylo by skvělé mít tmavý režim.", Category.FEATURE_REQUEST),
        ("", "Our invoice shows the wrong VAT.", Category.ACCOUNT_BILLING),
        ("", "Please reset my password.", Category.ACCOUNT_BILLING),
        ("", "Faktura za březen nesedí.", Category.ACCOUNT_BILLING),
        ("", "Die Rechnung ist doppelt.", Category.ACCOUNT_BILLING),
        ("", "We claim service credits for the outage on Monday.", Category.SERVICE_CREDIT),
        ("SLA breach", "Uptime was below 99.9% in May; downtime 5 hours.", Category.SERVICE_CREDIT),
        ("", "Thanks!", Category.OTHER),
        ("", "", Category.OTHER),
        # negated wording does not count
        ("", "This is not a feature request but a bug.", Category.ERROR),
    ],
)
def test_category(run: Classify, subject: str, text: str, category: Category) -> None:
    result = run(subject, text)
    assert result.category is category
    assert any(item.signal == "category" for item in result.evidence) is (
        category is not Category.OTHER
    )


def test_subject_outweighs_a_word_in_the_body(run: Classify) -> None:
    assert run("Invoice question", "error").category is Category.ACCOUNT_BILLING
