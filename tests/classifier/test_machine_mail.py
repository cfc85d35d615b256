"""Machine mail that must never be acknowledged: auto-replies, bounces, lists and bulk mail."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from classifier import Category, Classification, MachineKind

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)

AUTO, BOUNCE, LIST, BULK = (
    MachineKind.AUTO_REPLY,
    MachineKind.BOUNCE,
    MachineKind.LIST,
    MachineKind.BULK,
)
REPORT, SPAM, NOTE = MachineKind.REPORT, MachineKind.SPAM, MachineKind.NOTIFICATION
DSN = "multipart/report; report-type=delivery-status; boundary=x"


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ([("Auto-Submitted", "auto-replied")], AUTO),
        ([("Auto-Submitted", "auto-replied; owner-email=a@example.com")], AUTO),
        ([("Auto-Submitted", "auto-generated")], NOTE),
        ([("Auto-Submitted", "auto-notified")], NOTE),
        ([("Auto-Submitted", "no")], None),
        ([("Auto-Submitted", "No")], None),
        ([("X-Autoreply", "yes")], AUTO),
        ([("X-Autoreply", "no")], None),
        ([("X-Autorespond", "Out of office")], AUTO),
        ([("X-Auto-Response-Suppress", "All")], AUTO),
        ([("X-Auto-Response-Suppress", "")], None),
        ([("Precedence", "bulk")], BULK),
        ([("Precedence", "junk")], BULK),
        ([("Precedence", "list")], LIST),
        ([("Precedence", "auto_reply")], AUTO),
        ([("Precedence", "first-class")], None),
        ([("X-Precedence", "Bulk")], BULK),
        ([("List-Id", "<support.lists.example.com>")], LIST),
        ([("List-Post", "<mailto:l@example.com>")], LIST),
        ([("List-Unsubscribe", "<https://example.com/u>")], BULK),
        ([("List-Unsubscribe", "<https://example.com/u>"), ("List-Id", "<x>")], LIST),
        ([("Content-Type", DSN)], BOUNCE),
        ([("Content-Type", 'multipart/report; report-type="delivery-status"')], BOUNCE),
        ([("Content-Type", "message/delivery-status")], BOUNCE),
        ([("Content-Type", "multipart/report; report-type=disposition-notification")], REPORT),
        ([("Content-Type", "multipart/report; report-type=feedback-report")], REPORT),
        ([("Content-Type", "multipart/report")], REPORT),
        ([("Content-Type", "text/plain; charset=utf-8")], None),
        ([("X-Failed-Recipients", "a@example.com")], BOUNCE),
        ([("From", "MAILER-DAEMON@mx.example.com")], BOUNCE),
        ([("From", "Mail Delivery Subsystem <mailer@example.com>")], BOUNCE),
        ([("From", "Bob <postmaster@example.com>")], None),  # a person may write as postmaster
        ([("From", "noreply@example.com")], NOTE),
        ([("From", "Example <do-not-reply@example.com>")], NOTE),
        ([("From", "newsletter@shop.example")], NOTE),
        ([("From", "users-request@lists.example.org")], LIST),
        ([("From", "owner-users@lists.example.org")], LIST),
        ([("From", "Jana Novakova <jana@example.cz>")], None),
        ([("From", "jana@example.cz")], None),
        ([("From", "Jana")], None),
        ([("Return-Path", "<>")], BOUNCE),
        ([("Return-Path", "<bounces-main+x=example.org@lists.example.org>")], BULK),
        ([("Return-Path", "<list+jana=example.cz@lists.example.org>")], BULK),
        ([("Return-Path", "<www-data@web.example.com>")], NOTE),
        ([("Return-Path", "<MAILER-DAEMON@mx.example.com>")], BOUNCE),
        ([("Return-Path", "<jana@example.cz>")], None),
        ([("X-Spam-Flag", "YES")], SPAM),
        ([("X-Spam-Status", "Yes, score=9.1")], SPAM),
        ([("X-Spam-Status", "No, score=-1.1")], None),
        # the strongest signal names the kind
        ([("Content-Type", DSN), ("Auto-Submitted", "auto-replied")], BOUNCE),
        ([("Return-Path", "<>"), ("X-Autoreply", "yes")], AUTO),
        ([("Received", "from mx by mx"), ("Subject", "x")], None),
    ],
)
def test_machine_headers(
    run: Classify, headers: list[tuple[str, str]], kind: MachineKind | None
) -> None:
    result = run("Hello", "Hi there", headers)
    assert result.machine_kind is kind
    assert result.auto_generated is (kind is not None)
    where = {item.where for item in result.evidence if item.signal == "auto_generated"}
    assert where <= {f"header:{name}" for name, _ in headers}


@pytest.mark.parametrize(
    ("sender", "kind"),
    [
        ("", BOUNCE),
        ("<>", BOUNCE),
        ("MAILER-DAEMON@mx.example.com", BOUNCE),
        ("bounce-mc.us14_1@mail.example.net", BULK),
        ("noreply@example.com", NOTE),
        ("jana@example.cz", None),
        (None, None),
    ],
)
def test_envelope_sender(run: Classify, sender: str | None, kind: MachineKind | None) -> None:
    assert run("Hello", "Hi", envelope_sender=sender).machine_kind is kind


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Out of Office: your request", AUTO),
        ("Out of office", AUTO),
        ("Out of Office AutoReply: Ticket 123", AUTO),
        ("Automatic reply: Ticket 123", AUTO),
        ("[EXT] Automatic reply: Ticket 123", AUTO),
        ("Auto-Reply: Ticket", AUTO),
        ("Autosvar: Ticket 123", AUTO),
        ("Abwesenheitsnotiz: Ihre Anfrage", AUTO),
        ("Automatische Antwort: Ihre Anfrage", AUTO),
        ("Nepřítomnost: Váš požadavek", AUTO),
        ("Automatická odpověď: Váš požadavek", AUTO),
        ("Réponse automatique : votre demande", AUTO),
        ("Respuesta automática: su solicitud", AUTO),
        ("Automatisch antwoord: uw verzoek", AUTO),
        ("Risposta automatica: richiesta", AUTO),
        ("Automatyczna odpowiedź: zgłoszenie", AUTO),
        ("Arpus biroja atrasanas automatiska atbilde: subjecting", AUTO),
        ("Undeliverable: Hello", BOUNCE),
        ("Delivery Status Notification (Failure)", BOUNCE),
        ("Mail delivery failed: returning message to sender", BOUNCE),
        ("Returned mail: see transcript for details", BOUNCE),
        ("failure notice", BOUNCE),
        ("Undelivered Mail Returned to Sender", BOUNCE),
        ("Unzustellbar: Hallo", BOUNCE),
        ("Nedoručitelné: Dobrý den", BOUNCE),
        # customers' subjects
        ("Question about out of office settings", None),
        ("Automatic reply feature broken", None),
        ("Undeliverable invoices from your platform", None),
        ("Urgent: IAM Services Offline", None),
    ],
)
def test_machine_subjects(run: Classify, subject: str, kind: MachineKind | None) -> None:
    assert run(subject, "Hello").machine_kind is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Thank you for your email. I am out of the office until Monday 14 March.", AUTO),
        ("I'm currently on annual leave and will return on 3 June.", AUTO),
        ("This is an automated response.", AUTO),
        ("Ich bin bis 14.03. nicht im Büro.", AUTO),
        ("Jsem na dovolené do pondělí.", AUTO),
        ("Je suis absent jusqu'au 14 mars.", AUTO),
        ("Estoy fuera de la oficina hasta el lunes.", AUTO),
        ("Ik ben afwezig tot maandag.", AUTO),
        ("I will be out of office next week, please call my colleague.", None),
        ("Export is broken since the update.", None),
    ],
)
def test_auto_reply_texts(run: Classify, text: str, kind: MachineKind | None) -> None:
    assert run("Re: Ticket 123", text).machine_kind is kind


def test_chat_channels_are_never_machine_mail_by_headers(run: Classify) -> None:
    headers = [("Auto-Submitted", "auto-replied"), ("Precedence", "bulk")]
    result = run(
        "Automatic reply: x",
        "I am out of the office until Monday.",
        headers,
        channel="sms",
        envelope_sender="",
    )
    assert (result.auto_generated, result.machine_kind) == (False, None)
    assert not [item for item in result.evidence if item.signal == "auto_generated"]


def test_machine_written_mail_has_no_category_or_severity(run: Classify) -> None:
    bounce = run(
        "Undeliverable: production down",
        "Delivery has failed. The server is down, all users affected.",
        [("Content-Type", "multipart/report; report-type=delivery-status")],
    )
    assert bounce.auto_generated and bounce.machine_kind is MachineKind.BOUNCE
    assert (bounce.category, bounce.severity, bounce.missing) == (Category.OTHER, None, ())


def test_list_mail_is_still_read_for_what_a_person_asked(run: Classify) -> None:
    question = run(
        "[users] How do I configure SAML?",
        "Hi all, how do I configure SAML with the on-prem version?",
        [("List-Id", "<users.lists.example.org>")],
    )
    assert question.machine_kind is MachineKind.LIST
    assert (question.category, question.severity) == (Category.QUESTION, 4)


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ([("To", "undisclosed-recipients:;")], BULK),
        ([("To", "IETF-Announce:;")], BULK),
        ([("To", "  Customers : ; ")], BULK),
        # a group with members, or a group beside an address, names its recipients
        ([("To", "Team: jana@example.cz, petr@example.cz;")], None),
        ([("To", "support@example.com, undisclosed-recipients:;")], None),
        ([("To", "Support <support@example.com>")], None),
        ([("From", "anonymous@web.example.com")], NOTE),
        ([("From", "anonymous.coward@example.com")], None),
    ],
)
def test_recipients_and_system_senders(
    run: Classify, headers: list[tuple[str, str]], kind: MachineKind | None
) -> None:
    assert run("Hello", "Hi there", headers).machine_kind is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ('<?xml version="1.0" encoding="UTF-8"?>\n<adf><prospect/></adf>', NOTE),
        ("  <?XML version='1.0'?><feed/>", NOTE),
        ('Our export fails with this file:\n<?xml version="1.0"?><a/>', None),
        ("<?xmlish is not a declaration", None),
    ],
)
def test_machine_payload(run: Classify, text: str, kind: MachineKind | None) -> None:
    result = run("New lead", text)
    assert result.machine_kind is kind
    if kind is not None:
        assert [e.rule for e in result.evidence if e.signal == "auto_generated"] == [
            "text.xml_payload"
        ]
