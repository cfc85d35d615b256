"""Machine mail without the classic headers: bulk mail, notices, delivery reports dressed as
replies and challenge-response requests, found by general traits; and the people's mail that
looks like them and must stay a request."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from classifier import Classification, MachineKind

Classify = Callable[..., Classification]  # the `run` fixture (conftest.py)

AUTO, BOUNCE, BULK, LIST, NOTE = (
    MachineKind.AUTO_REPLY,
    MachineKind.BOUNCE,
    MachineKind.BULK,
    MachineKind.LIST,
    MachineKind.NOTIFICATION,
)
HTML = ("Content-Type", "text/html; charset=utf-8")


def machine_rules(result: Classification) -> list[str]:
    return [item.rule for item in result.evidence if item.signal == "auto_generated"]


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        # mass-mailing software, trackers and monitors name themselves; an application's mail
        # library (a web form) is only a hint
        ([("X-Mailer", "Mass Mailer Pro 4.2")], BULK),
        ([("User-Agent", "phpList v3.6")], BULK),
        ([("X-Mailer", "Redmine")], NOTE),
        ([("X-Mailer", "PHPMailer 6.8 (https://github.com/PHPMailer/PHPMailer)")], None),
        ([("X-Mailer", "Microsoft Outlook 16.0")], None),
        ([("X-Mailer", "PHPMailer 6.8"), ("X-Loop", "helpdesk@example.com")], NOTE),
        ([("X-Loop", "helpdesk@example.com")], None),
        # bulk mailers' own headers decide; an ESP's (also on CRM-sent mail) only hint, and
        # several of them are one hint
        ([("X-Campaign-Id", "cyber-week")], BULK),
        ([("X-Mailjet-Campaign", "42")], BULK),
        ([("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")], BULK),
        ([("X-CSA-Complaints", "csa-complaints@eco.de")], BULK),
        ([("Feedback-ID", "1.eu-west-1.x:AmazonSES")], None),
        ([("Feedback-ID", "1:x"), ("X-SES-Outgoing", "2026.12.01")], None),
        ([("X-Mailgun-Sid", "abc")], None),
        ([("X-Mailgun-Storage-Url", "https://x"), ("X-Loop", "x")], BULK),
        ([("Feedback-ID", "1:x"), ("X-Loop", "x@example.com")], BULK),
        # an ESP's header beside an HTML-only body: an application's notice or a campaign (a
        # person's client sends neither through an ESP)
        ([("Feedback-ID", "1:x:AmazonSES"), HTML], BULK),
        ([("X-SG-EID", "abc"), ("Content-Type", 'multipart/related; type="text/html"')], BULK),
        # list managers' own headers: the list server relayed it
        ([("X-BeenThere", "users@lists.example.org")], LIST),
        ([("X-Mailman-Version", "2.1.39")], LIST),
        ([("Mailing-List", "contact users-help@example.org; run by ezmlm")], LIST),
        ([("X-ML-Name", "users"), ("X-ML-Count", "1042")], LIST),
        ([("List-Help", "<mailto:users-request@example.org?subject=help>")], LIST),
        ([("X-Redmine-Project", "integrations")], NOTE),
        ([("X-Cron-Env", "<SHELL=/bin/sh>")], NOTE),
        ([("X-Something-Else", "1")], None),
        # who writes, and where replies should go
        ([("Reply-To", "No Reply <noreply@shop.example>")], NOTE),
        ([("Reply-To", "Jana <jana@example.cz>")], None),
        ([("From", "noreply-dmarc-support@google.com")], NOTE),
        ([("From", "no-reply+billing@shop.example")], NOTE),
        ([("From", "norelly.jana@example.cz")], None),
        ([("Sender", "<bounces+123@mailer.example>")], BULK),
        ([("Sender", "jana@example.cz")], None),
        ([("From", "Cron Daemon <root@backup01.example.com>")], NOTE),
        ([("From", "Fax Gateway <faxserver@example.com>")], NOTE),
        ([("From", "reports@example.com")], None),  # a team may write from a role address
        ([("From", "reports@example.com"), ("X-Loop", "x")], NOTE),
        ([("From", "Bob <postmaster@example.com>"), HTML], None),
        ([("Return-Path", "<a1b2c3@bounce.mailer.example>")], BULK),
        ([("Return-Path", "<news-bounces@lists.example.org>")], BULK),
        ([("Return-Path", "<jana.novakova@example.cz>")], None),
        # an HTML-only body alone is how some people's Outlook writes
        ([HTML], None),
        ([("Content-Type", 'multipart/related; type="text/html"; boundary=x')], None),
    ],
)
def test_header_traits(
    run: Classify, headers: list[tuple[str, str]], kind: MachineKind | None
) -> None:
    result = run("Hello", "Hi there, the export fails.", headers)
    assert result.machine_kind is kind
    if kind is None:
        assert not machine_rules(result)  # a lone hint leaves no machine evidence


@pytest.mark.parametrize(
    ("subject", "headers", "kind"),
    [
        ("[AUTO GENERATED] Job 'Nightly backup' failed on DB01", [], NOTE),
        ("Nightly report (automated message)", [], NOTE),
        ("[Automatická zpráva] Záloha dokončena", [], NOTE),
        ("Cron <root@backup01> /usr/local/bin/export.sh", [], NOTE),
        ("** PROBLEM Service Alert: gw01/HTTPS is CRITICAL **", [], NOTE),
        # RFC 7489's and RFC 8460's aggregate report subject
        ("Report domain: example.cz Submitter: google.com Report-ID: 1234567890", [], NOTE),
        ("Report domain example.cz missing in our DMARC setup?", [], None),
        ("Re: 配信不能 (見積)", [], BOUNCE),
        ("【自動送信】ご注文確認", [], NOTE),
        # a report's subject is a hint: customers write them too
        ("Backup job failed after update", [], None),
        ("Your licence expires in 14 days", [], None),
        ("Fax from +420 212 345 678", [], None),
        ("Weekly digest emails", [HTML], None),
        ("Backup job failed on DB01", [("From", "reports@example.com")], NOTE),
        ("Ticket #88213 was updated", [("X-Loop", "helpdesk@example.com")], NOTE),
        ("Automation of our approvals", [], None),
        ("[Success] Daily Backup Job (3 VMs)", [], None),
        ("[Success] Daily Backup Job (3 VMs)", [("X-Loop", "x")], NOTE),
        # a person forwards a machine's mail: its subject is not ours to read
        ("Fwd: Undeliverable: Order 5512", [], None),
        ("Re: Virus alert", [], BOUNCE),
        ("Message blocked: Invoice 2026", [], BOUNCE),
        ("Virus alert in your PDF?", [], None),
        ("[Bug 12345] New: crash on export", [("X-Loop", "bugzilla@example.org")], NOTE),
        ("[EXT] WG: Automatische Antwort: Ihre Anfrage", [], None),
        ("FW: [AUTO GENERATED] Job failed", [], None),
        ("配信エラーについて", [], None),  # "about delivery errors": a customer's subject
    ],
)
def test_subject_traits(
    run: Classify, subject: str, headers: list[tuple[str, str]], kind: MachineKind | None
) -> None:
    assert run(subject, "Details inside.", headers).machine_kind is kind


@pytest.mark.parametrize(
    "text",
    [
        "Your message did not reach some or all of the intended recipients.\n\n  Subject: Re: x",
        "Delivery has failed to these recipients or groups:\n\njana@example.cz",
        "This is the mail system at host mx.example.com.\n\nI'm sorry to have to inform you",
        "Hi. This is the qmail-send program at mx.example.com.\nI'm afraid I wasn't able to"
        " deliver your message to the following addresses.",
        "** Address not found **\n\nYour message wasn't delivered to jana@example.cz",
        "Message not delivered\n\nThere was a problem delivering your message.",
        "VIRUS ALERT\n\nOur content checker found\n    virus: Eicar\nin an email to you",
        "The message you sent to records@example.org was quarantined because it contains a"
        " banned attachment.",
        "Votre message n'a pas pu être remis à un ou plusieurs destinataires.",
        "Ihre Nachricht konnte nicht an alle Empfänger zugestellt werden.",
        "Su mensaje no pudo ser entregado a los siguientes destinatarios:",
        "Vaše zpráva nemohla být doručena následujícím příjemcům:",
        "Il tuo messaggio non è stato recapitato a jana@example.it",
        "Uw bericht kon niet worden afgeleverd bij jan@example.nl",
        "Twoja wiadomość nie mogła zostać dostarczona do odbiorcy.",
        "お客様が送信されたメールは、以下の理由により配信できませんでした。",
        "Your message\n\n  Subject: Re: Offer\n\nwas not delivered to:\n\n  jan@example.cz",
        "Error al entregar el mensaje a estos destinatarios o grupos:",
        "La remise à ces destinataires ou groupes a échoué :",
        "Fehler bei der Zustellung der Nachricht an folgende Empfänger:",
        "Doručení těmto příjemcům nebo skupinám se nezdařilo:",
        "Recapito non riuscito a questi destinatari o gruppi:",
        "Dostarczenie do tych adresatów lub grup nie powiodło się:",
        "Ihre Nachricht hat einige oder alle Empfänger nicht erreicht.",
        "Votre message n'est pas parvenu à certains ou à l'ensemble de ses destinataires.",
        "Su mensaje no llegó a algunos o a todos los destinatarios.",
        "Vaše zpráva nedorazila k některým nebo všem příjemcům.",
        "Il messaggio non ha raggiunto alcuni o tutti i destinatari.",
        "Uw bericht heeft sommige of alle geadresseerden niet bereikt.",
        "Wiadomość nie dotarła do niektórych lub wszystkich adresatów.",
        "Toto je poštovní systém na serveru mail.example.cz.\n\nVaši zprávu nebylo možné doručit.",
        "Virenwarnung\n\nIn einer von Ihnen gesendeten Nachricht wurde ein Virus gefunden.",
        "A message that you sent contained a virus and was not delivered.",
        # the recipient's address inside the sentence: its dots do not end it (Office 365)
        "Your message to sales@example.com couldn't be delivered.",
        "Ihre Nachricht an vertrieb@example.de konnte nicht zugestellt werden.",
        "Votre message à ventes@example.fr n'a pas pu être remis.",
    ],
)
def test_delivery_reports_dressed_as_replies(run: Classify, text: str) -> None:
    result = run("Re: Your invoice 2026-1188", text, [("From", "IT <it@example.org>")])
    assert result.machine_kind is BOUNCE
    assert any(".machine.bounce_text." in rule for rule in machine_rules(result))


@pytest.mark.parametrize(
    "text",
    [
        # a person introduces a pasted report, or retells it in a sentence of their own
        "Hi,\nwhen I send the order I get this back:\n\nDelivery has failed to these recipients",
        "Hello, our accountant says your message could not be delivered to her new address.",
        "Hello. Our accountant says your message to ap@example.com could not be delivered.",
        "Hi, the export fails.\n" + "Steps and details follow. " * 20 + "\n"
        "Your message did not reach some or all of the intended recipients.",
        "Our IT says the notices you sent were quarantined by our filter. Which servers?",
        "Mein Paket konnte nicht zugestellt werden, bitte prüfen.",
        "メールが送れません。配信エラーについて教えてください。",
    ],
)
def test_people_talking_about_delivery_reports(run: Classify, text: str) -> None:
    assert run("Mail to your billing address bounces", text).machine_kind is None


def test_delivery_status_fields_in_the_text(run: Classify) -> None:
    text = (
        "Delivery report attached.\n\nReporting-MTA: dns; gw01.example.org\n\n"
        "Final-Recipient: rfc822; legal@example.org\nAction: failed\nStatus: 5.7.1"
    )
    result = run("Re: Contract", text)
    assert result.machine_kind is BOUNCE
    assert "text.delivery_status" in machine_rules(result)
    # untyped look-alikes are a person's words
    plain = "Our status page says:\nFinal-Recipient: the legal team\nReporting-MTA is down"
    assert run("Re: Contract", plain).machine_kind is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "I protect my mailbox against junk mail. Please confirm that you are a person so"
            " that\nyour message can be delivered to me: https://verify.example/c/1",
            AUTO,
        ),
        ("Your message is held until you verify your address at https://x.example/v", AUTO),
        ("This is an automated challenge. Click the link to continue.", AUTO),
        ("Bitte bestätigen Sie Ihre Absenderadresse,\ndamit Ihre Nachricht zugestellt wird.", AUTO),
        ("Merci de confirmer votre adresse afin que votre message soit remis.", AUTO),
        ("Confirme su dirección para que su mensaje sea entregado.", AUTO),
        ("Potvrďte prosím adresu, aby Vaše zpráva mohla být doručena.", AUTO),
        ("I'm using a spam-filtering service. Click the link.", AUTO),
        ("Para evitar el correo no deseado, confirme que es usted una persona.", AUTO),
        ("Confirmez que vous êtes une personne en cliquant ici.", AUTO),
        ("Bitte bestätigen Sie, dass Sie ein Mensch sind.", AUTO),
        ("Potvrďte, že jste člověk, kliknutím na odkaz.", AUTO),
        ("Vaše zpráva bude doručena, jakmile potvrdíte, že nejste robot.", AUTO),
        ("Please confirm that you are not a robot: https://x.example/c", AUTO),
        ("Your message will be delivered once you click the link below.", AUTO),
        ("Ihre Nachricht wird zugestellt, sobald Sie Ihre Adresse bestätigen.", AUTO),
        ("Votre message sera remis dès que vous aurez confirmé votre adresse.", AUTO),
        ("Before I can receive your email, please click the link below.", AUTO),
        ("Before I can receive your emails, our IT must allow your domain.", None),
        # onto the recipient's list of allowed senders first
        ("Click the link below to have your address added to the recipient's allowed list.", AUTO),
        ("Please add yourself to my Guest List so your messages go to my Inbox.", AUTO),
        ("How do I get my address added to your allowed list? Our mails land in spam.", None),
        # people who cannot verify their own account
        ("I cannot verify my email address, the confirmation link expired.", None),
        ("Please confirm the order before Friday.", None),
    ],
)
def test_challenge_response(run: Classify, text: str, kind: MachineKind | None) -> None:
    assert run("Re: Your request", text).machine_kind is kind


@pytest.mark.parametrize(
    ("text", "kind", "where"),
    [
        (
            "Your order 10245 has shipped.\n\nThis is an automatically generated email.",
            NOTE,
            "body",
        ),
        ("Order shipped. Please do not reply to this email.", NOTE, "body"),
        ("*** DO NOT REPLY ***\nYour statement is ready.", NOTE, "body"),
        ("Replies to this address are not monitored.", NOTE, "body"),
        ("Ihre Lizenz läuft ab.\n\nDies ist eine automatisch generierte E-Mail.", NOTE, "body"),
        ("Bitte antworten Sie nicht auf diese E-Mail.", NOTE, "body"),
        ("Ce message a été généré automatiquement, merci de ne pas y répondre.", NOTE, "body"),
        ("Este es un mensaje automático, por favor no responda a este correo.", NOTE, "body"),
        ("Toto je automaticky generovaná zpráva, neodpovídejte na ni.", NOTE, "body"),
        ("Questo messaggio è stato generato automaticamente.", NOTE, "body"),
        ("Dit is een automatisch gegenereerd bericht.", NOTE, "body"),
        ("Ta wiadomość została wygenerowana automatycznie.", NOTE, "body"),
        ("Jan commented on SUP-1.\n\n--\nThis message was sent by Atlassian Jira", NOTE, "footer"),
        ("Sorry! This message was sent by mistake, please ignore it.", None, ""),
        # why the reader gets it, a transactional notice's disclaimer, scan-to-mail
        ("I can reproduce it.\n\nYou are receiving this because you were mentioned.", NOTE, "body"),
        ("You're getting this email because you have notifications turned on.", NOTE, "body"),
        (
            "Reset link: https://x.example/r\n\nIf you did not request a password reset, you can"
            " safely ignore this email.",
            NOTE,
            "body",
        ),
        ("If you didn't create an account, please ignore this email.", NOTE, "body"),
        (
            "Falls Sie dies nicht angefordert haben, können Sie diese E-Mail ignorieren.",
            NOTE,
            "body",
        ),
        ("Pokud jste o změnu hesla nežádali, tento e-mail ignorujte.", NOTE, "body"),
        (
            "Please open the attachment. It was scanned and sent to you using a copier.",
            NOTE,
            "body",
        ),
        ("Our survey is sent automatically.\n\nThis survey was sent automatically.", NOTE, "body"),
        # a person explaining, asking, or retelling in their own sentence
        ("I think you are receiving this because our admin added you by mistake.", None, ""),
        ("Why am I receiving this? I never signed up.", None, ""),
        ("The reset mail says to ignore it if I did not request it, but I did. Help?", None, ""),
        (
            "ご注文ありがとうございます。※このメールは送信専用アドレスから自動送信されています。",
            NOTE,
            "body",
        ),
        # after the signature: the footer is read for a machine's words
        (
            "Your document is ready.\n\nBest regards\nThe Portal\n\n"
            "Please do not reply to this e-mail.",
            NOTE,
            "footer",
        ),
        # quoted in a person's sentence, or in quoted history
        (
            'Your reminder says "This is an automatically generated message" but I must reply.',
            None,
            "",
        ),
        ("Do not reply to the customer before we talk, please call me.", None, ""),
        # a person redirects the answer
        ("Please do not reply to this email, but call me on 123.", None, ""),
        ("Bitte antworten Sie nicht auf diese E-Mail, sondern rufen Sie mich an.", None, ""),
        ("Merci de ne pas répondre à ce message, mais appelez-moi.", None, ""),
        ("Por favor, no responda a este correo, sino llámeme.", None, ""),
        ("Prosím neodpovídejte na tento e-mail, ale zavolejte mi.", None, ""),
        ("Na tuto zprávu prosím neodpovídejte, ale zavolejte mi.", None, ""),
        (
            "Where can I answer?\n\n-----Original Message-----\nPlease do not reply to this email.",
            None,
            "",
        ),
        ("Where can I answer?\n\n> Please do not reply to this email.", None, ""),
    ],
)
def test_notices_in_their_own_words(
    run: Classify, text: str, kind: MachineKind | None, where: str
) -> None:
    result = run("Your statement", text)
    assert result.machine_kind is kind
    notices = [e for e in result.evidence if ".machine.notification_text." in e.rule]
    assert [e.where for e in notices] == ([where] if kind else [])


@pytest.mark.parametrize(
    ("text", "headers", "kind"),
    [
        # two different bulk traits, or one beside an HTML-only body, in the own text
        (
            "View this email in your browser\n\nOur news.\n\nUnsubscribe | Manage preferences",
            [],
            BULK,
        ),
        (
            "Our news.\n\nYou are receiving this email because you subscribed.\nUnsubscribe",
            [],
            BULK,
        ),
        ("Winter sale!\n\n[Unsubscribe]", [HTML], BULK),
        ("Winter sale!\nClick here to unsubscribe.", [HTML], BULK),
        ("Online-Version\n\nPressemitteilung ...\n\nAbmelden", [], BULK),
        ("Voir la version en ligne\n\nMeilleurs voeux !\n\nSe désinscrire", [], BULK),
        (
            "Ver en el navegador\n\nOfertas.\n\nSi no desea recibir más correos, darse de baja.",
            [],
            BULK,
        ),
        ("Zobrazit v prohlížeči\n\nAkce!\n\nOdhlásit odběr", [], BULK),
        (
            "Nouveautés.\n\nVous recevez cet e-mail car vous êtes inscrit.\n"
            "Pour ne plus recevoir nos communications, cliquez ici.",
            [],
            BULK,
        ),
        ("セール開催中\n\nブラウザで表示\n\n配信停止はこちら", [], BULK),
        # one trait alone, a person asking to unsubscribe, a trait in a legal footer
        ("Winter sale!\n\nUnsubscribe", [], None),
        ("Please unsubscribe me from your newsletter.", [HTML], None),
        ("I want to unsubscribe from this list, how?", [], None),
        ("How can I view online the signed contract?", [HTML], None),
        (
            "The export fails.\n\nKind regards\nAnna\n\nTo stop marketing mails, manage your email"
            " preferences at example.com.",
            [HTML],
            None,
        ),
        (
            "Where is it?\n\nOn Mon, 2 Mar 2026, News <n@x.example> wrote:\n> View this email in"
            " your browser\n> Unsubscribe | Manage your email preferences",
            [HTML],
            None,
        ),
    ],
)
def test_bulk_traits(
    run: Classify, text: str, headers: list[tuple[str, str]], kind: MachineKind | None
) -> None:
    assert run("December news", text, headers).machine_kind is kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # below a sign-off, "why you get this" counts; a lone "Unsubscribe" line does not
        # (people's signatures carry them too)
        ("Our news.\n\nBest regards\nThe Team\n\nUnsubscribe", None),
        ("Can we?\n\nBest regards\nPiotr\n\nUnsubscribe from our mailing list: reply STOP", None),
        ("Our news.\n\nUnsubscribe", BULK),
        # a tracker's "why you get this" opening its own line names a notice
        ("Jan commented.\n\n--\nYou have received this notification because you watch it.", NOTE),
        ("Jan commented.\n\n--\nYou are receiving this mail because: you are the assignee.", NOTE),
        # a legal footer's sentence does not
        (
            "The export fails.\n\nRegards\nAnna\n\nIf you no longer wish to receive our news,"
            " write to us.",
            None,
        ),
    ],
)
def test_html_only_with_a_footer(run: Classify, text: str, kind: MachineKind | None) -> None:
    assert run("News", text, [HTML]).machine_kind is kind


def test_a_bulk_word_in_the_subject_is_not_a_body_trait(run: Classify) -> None:
    # "manage your email preferences" in the subject is a customer's topic
    result = run("How do I manage your email preferences?", "Winter sale!", [HTML])
    assert result.machine_kind is None


def test_a_machine_phrase_in_the_subject_is_a_customer_topic(run: Classify) -> None:
    subject = "Please do not reply to this email: is that text configurable?"
    assert run(subject, "We would like to change it.").machine_kind is None
    assert run("Unsubscribe", "Unsubscribe", [HTML]).machine_kind is None


def test_a_lone_link_text_must_open_its_line(run: Classify) -> None:
    text = "Sale!\n\nYou can opt out any time\nView in browser"
    assert run("News", text, [HTML]).machine_kind is BULK
    mid = "Sale! I tried to opt out of it but nothing. Whatever, read online later."
    assert run("News", mid, [HTML]).machine_kind is None


def test_every_finding_is_evidence(run: Classify) -> None:
    result = run(
        "[AUTO GENERATED] Backup failed",
        "JOB RUN: Nightly\nSTATUS: Failed\n\nPlease do not reply to this email.",
        [("X-Mailer", "Veeam Backup & Replication"), HTML],
    )
    assert result.machine_kind is NOTE
    rules = machine_rules(result)
    assert {
        "header.x_mailer.notifier",
        "header.content_type.html_only",
        "en.machine.notification_subject.auto_tag",
        "en.machine.report_subject.job",
        "en.machine.notification_text.do_not_reply",
    } <= set(rules)
    matched = {e.rule: e.matched for e in result.evidence}
    assert matched["en.machine.notification_subject.auto_tag"] == "[AUTO GENERATED]"
