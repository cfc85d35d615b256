"""Explicit markers (headers, "Sev1", "P2") and severity 1-4 from the policies' definitions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from classifier import Classification

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)


@pytest.mark.parametrize(
    ("headers", "high"),
    [
        ([("X-Priority", "1 (Highest)")], True),
        ([("X-Priority", "2 (High)")], True),
        ([("x-priority", "1")], True),
        ([("X-Priority", "3 (Normal)")], False),
        ([("X-Priority", "")], False),
        ([("Priority", "urgent")], True),
        ([("Priority", "Urgent")], True),
        ([("Priority", "non-urgent")], False),
        ([("Importance", "high")], True),
        ([("Importance", "HIGH")], True),
        ([("Importance", "normal")], False),
        ([("X-MSMail-Priority", "High")], True),
        ([("Subject", "Importance: high")], False),
        ([], False),
    ],
)
def test_header_priority(run: Classify, headers: list[tuple[str, str]], high: bool) -> None:
    result = run("Export", "It fails.", headers)
    assert result.header_priority is high
    assert any(item.signal == "header_priority" for item in result.evidence) is high


def test_chat_channels_ignore_header_priority(run: Classify) -> None:
    assert run("", "hi", [("X-Priority", "1")], channel="whatsapp").header_priority is False


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("Sev1: portal", 1),
        ("SEV 2 - exports fail", 2),
        ("sev-3", 3),
        ("Severity 1", 1),
        ("severity: 3", 3),
        ("Severity-4 question", 4),
        ("Severity level 2", 2),
        ("Severity one", 1),
        ("Severity: critical", 1),
        ("Severity: low", 4),
        ("P1 incident", 1),
        ("this is a p-2", 2),
        ("P5 ticket", None),
        ("HP1 printer", None),
        ("Priority 1", 1),
        ("Prio 2", 2),
        ("Level 1 issue", 1),
        ("Level 2 support told us", None),
        ("This is not a P1.", None),
        ("Was P2, now P1!", 1),
        ("Závažnost 2", 2),
        ("Priorita 3", 3),
        ("Úroveň 1", 1),
        ("Schweregrad 1", 1),
        ("Schweregrad: hoch", 2),
        ("Priorität 3", 3),
        ("Stufe 2", 2),
        ("no marker here", None),
    ],
)
def test_explicit_severity(run: Classify, text: str, level: int | None) -> None:
    assert run("", text).explicit_severity == level


@pytest.mark.parametrize(
    ("subject", "text", "level"),
    [
        # 1: production stopped, everyone, outage, data loss, security breach
        ("", "Production is down since 9:00.", 1),
        ("", "The site is down for everyone.", 1),
        ("", "All our users are locked out.", 1),
        ("", "Nobody can log in.", 1),
        ("", "We lost all our data after the import.", 1),
        ("Security breach", "Our account was hacked.", 1),
        ("", "Our mission-critical workflow is offline.", 1),
        ("Urgent: IAM Services Offline", "", 1),
        ("", "Produkce stojí, nic nefunguje.", 1),
        ("", "Totalausfall des Portals.", 1),
        ("", "Since the update, 40 documents have vanished from the archive.", 1),
        ("", "Our contracts were all deleted overnight.", 1),
        ("", "Po aktualizaci zmizely všechny smlouvy.", 1),
        ("", "How long are files kept after a user is deleted?", 4),  # no loss: a question
        # a negation inside the phrase is no outage
        ("", "Production is not down, just slow.", 3),
        ("", "Production isn't down.", None),
        ("", "Everyone is not affected, only me.", None),
        # 2: major feature unavailable without workaround, many users, severely degraded
        ("", "Many users cannot open documents.", 2),
        ("", "Signing fails and there is no workaround.", 2),
        ("", "The app is extremely slow.", 2),
        ("", "Performance is severely degraded.", 2),
        ("", "Mnoho uživatelů nemůže podepisovat.", 2),
        ("", "Die Suche ist stark eingeschränkt.", 2),
        # 3: partial loss with a workaround, an inconvenience
        ("", "Export fails, but we found a workaround.", 3),
        ("", "Minor issue: a typo on the settings page.", 3),
        ("", "It is an inconvenience for us.", 3),
        ("", "Export to PDF fails.", 3),  # an error report with no stated impact
        ("", "Export funguje jen částečně.", 3),
        ("", "The report totals are off; we correct them by hand for now.", 3),
        ("", "Sync is stuck, I re-enter the orders manually.", 3),
        # 4: questions, how-to, enhancements, documentation
        ("", "How do I configure SSO?", 4),
        ("Feature request", "Please add dark mode for all users.", 4),
        ("", "Is there documentation for the API?", 4),
        ("", "Export fails, no rush, low priority.", 4),
        # no evidence: the policy's channel default applies
        ("Hello", "Thanks for the call today.", None),
        # negations do not fire
        ("", "The site is not down, just slow.", 3),
        ("", "No data loss occurred, but the export fails.", 3),
        # the sender's own severity wins over the text
        ("Sev3", "Production is down.", 3),
        # a credit claim is about a past outage
        ("", "We would like to claim service credits for the outage on Monday.", 4),
    ],
)
def test_severity(run: Classify, subject: str, text: str, level: int | None) -> None:
    assert run(subject, text).severity == level


def test_severity_evidence_names_the_rule_and_text(run: Classify) -> None:
    result = run("", "Production is down.")
    found = [(item.rule, item.matched) for item in result.evidence if item.signal == "severity"]
    assert ("en.severity.1.production_stopped", "Production is down") in found


def test_implied_severity_says_so(run: Classify) -> None:
    result = run("", "How do I configure SSO?")
    assert next(item for item in result.evidence if item.signal == "severity").where == "category"
