"""Urgent markers: the sender's own words only, in English, Czech and German."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from classifier import Classification

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)

QUOTED_EN = (
    "Thanks, works now.\n\nOn Mon, 11 Mar 2024 at 10:00, Support <s@example.com> wrote:\n"
    "> Is this urgent?\n"
)
QUOTED_OUTLOOK = (
    "Fine now.\n\nFrom: Support <s@example.com>\nSent: Monday, March 11, 2024 10:00 AM\n"
    "To: Jan <jan@example.com>\nSubject: RE: urgent\n\nURGENT reply from before\n"
)
QUOTED_CS = "Děkuji.\n\nDne 11. 3. 2024 v 10:00 Podpora <p@example.cz> napsal(a):\n> naléhavé\n"
QUOTED_DE = "Danke.\n\nAm 11.03.2024 um 10:00 schrieb Support <s@example.de>:\n> dringend\n"


@pytest.mark.parametrize(
    ("subject", "text", "urgent"),
    [
        # the word, whole, any case, anywhere in subject or own text
        ("Urgent: IAM Services Offline", "", True),
        ("", "URGENT!! the portal is down", True),
        ("", "urgent: please call back", True),
        ("", "Urgent - invoices missing", True),
        ("portal", "Hi,\nthis is urgent.", True),
        ("Re: portal", "Thanks,\nthis is URGENT, the portal is down.", True),
        ("", "No, it is urgent!", True),  # the negation belongs to another clause
        ("", "Please look at it urgently", False),  # whole word only
        ("", "", False),
        # Czech and German, case- and diacritics-insensitive
        ("", "naléhavé: nefunguje přihlášení", True),
        ("", "NALEHAVE prosim", True),
        ("Urgentní požadavek", "", True),
        ("", "Spěchá to, děkuji", True),
        ("", "Bitte dringend prüfen", True),
        ("Dringende Anfrage", "", True),
        ("", "Es ist eilig.", True),
        # negations in three languages
        ("", "This is not urgent.", False),
        ("", "non-urgent question about invoices", False),
        ("", "No urgency, just curious.", False),
        ("", "Nothing urgent here, just a question.", False),
        ("", "It isn\u2019t really urgent.", False),
        ("", "I don't think it's urgent.", False),
        ("Not urgent: question", "", False),
        ("", "Není to naléhavé.", False),
        ("", "Nic naléhavého, jen dotaz.", False),
        ("", "Naléhavé to není.", False),
        ("", "Das ist nicht dringend.", False),
        ("", "Es eilt nicht.", False),
        ("", "Nichts Dringendes.", False),
        # quoted text
        ("Re: login", QUOTED_EN, False),
        ("RE: x", QUOTED_OUTLOOK, False),
        ("", QUOTED_CS, False),
        ("", QUOTED_DE, False),
        ("", "ok\n\n-----Original Message-----\nFrom: a\nurgent", False),
        # signatures, referrals and disclaimers
        ("", "Export fails.\n\n-- \nJan Novak\nFor urgent matters call +420 123", False),
        ("", "Export fails.\n\nJan Novak\nACME\nFor urgent matters call +420 123 456", False),
        ("", "Export fails.\n\nBest regards,\nJan\nIn case of urgent issues, phone us", False),
        (
            "",
            "Export fails.\n\nThis e-mail and any attachments are confidential and intended "
            "solely for the addressee. Urgent requests should be sent to the hotline.",
            False,
        ),
        ("", "Please call me if urgent.", False),
        ("", "Urgent issues should be reported by phone.", False),
        ("", "Urgent? No, not at all.", False),
        ("", "In dringenden Fällen rufen Sie uns an.", False),
        ("", "Falls es dringend ist, bitte anrufen.", False),
        ("", "V naléhavých případech volejte +420 123.", False),
        ("", "Pokud je to naléhavé, volejte.", False),
        ("", "Here is my mobile number for urgent communication: +44 20 7946 0000.", False),
        ("", "Use the hotline for urgent cases.", False),
        # a subject a machine echoes is not the sender's own (the body still counts)
        ("Automatic reply: URGENT: invoices", "I am out of the office until Monday.", False),
        ("Undeliverable: Re: Urgent request", "Delivery has failed to these recipients.", False),
        ("Automatic reply: status", "Urgent? Call my deputy. This is urgent for me too.", True),
    ],
)
def test_urgent_marker(run: Classify, subject: str, text: str, urgent: bool) -> None:
    assert run(subject, text).urgent is urgent


def test_urgent_evidence_keeps_the_senders_spelling(run: Classify) -> None:
    result = run("Naléhavé", "URGENT!!")
    found = [
        (item.rule, item.matched, item.where) for item in result.evidence if item.signal == "urgent"
    ]
    assert found == [
        ("cs.urgent.markers.nalehave", "Naléhavé", "subject"),
        ("en.urgent.markers.urgent", "URGENT", "body"),
    ]


@pytest.mark.parametrize(
    ("subject", "tier"),
    [
        ("Urgent: IAM Services Offline", "urgent"),
        ("High: export slow", "high"),
        ("Medium: question about reports", "medium"),
        ("Low: typo on settings page", "low"),
        ("Re: Urgent: portal down", "urgent"),
        ("FW: AW: High: x", "high"),
        ("[EXTERNAL] Re: Low: x", "low"),
        ("[URGENT] portal down", "urgent"),
        ("URGENT - portal down", "urgent"),
        ("URGENT!! portal down", "urgent"),
        ("High priority: login", "high"),
        ("(Low) cosmetic issue", "low"),
        ("Naléhavé: nefunguje přihlášení", "urgent"),
        ("Nízká: překlep", "low"),
        ("Dringend: Server steht", "urgent"),
        ("Niedrig: Tippfehler", "low"),
        ("Urgent portal down", None),  # no separator: the word counts as urgent, not as a tier
        ("Not urgent: question", None),
        ("Highway exit missing on map", None),
        ("Low-code platform question", None),
        ("Question: is High: a tier?", None),
        ("", None),
    ],
)
def test_subject_priority(run: Classify, subject: str, tier: str | None) -> None:
    result = run(subject)
    assert result.subject_priority == tier
    tiers = [item.rule for item in result.evidence if item.signal == "subject_priority"]
    assert len(tiers) == (tier is not None)
