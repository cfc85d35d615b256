"""Write the synthetic half of the classifier evaluation corpus.

Run from anywhere: `python tests/data/classify/make_synthetic.py`. It rewrites
`synthetic/*.eml` and the `synthetic/` rows of `labels.tsv`, and keeps every other row (the
hand-labelled real mail) as it is. Stdlib only, and deterministic: fixed dates, Message-IDs and
MIME boundaries, so a rerun yields the same bytes.

Every message is labelled by the rules in README.md, never by what a classifier might say.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "synthetic"
LABELS = HERE / "labels.tsv"
COLUMNS = [
    "path",
    "channel",
    "urgent",
    "subject_priority",
    "severity",
    "category",
    "auto_generated",
    "notes",
]
SUPPORT = "Support <support@support.example.com>"
START = datetime(2024, 9, 2, 8, 3, tzinfo=timezone(timedelta(hours=2)))


@dataclass(frozen=True)
class Labels:
    urgent: str = "no"
    prio: str = "-"
    sev: str = "-"
    cat: str = "other"
    auto: str = "no"
    notes: str = ""


ROWS: list[list[str]] = []
FILES: dict[str, bytes] = {}


def _emit(name: str, raw: bytes, labels: Labels, channel: str = "email") -> None:
    assert name not in FILES, name
    path = f"synthetic/{name}.eml"
    FILES[name] = raw
    ROWS.append(
        [
            path,
            channel,
            labels.urgent,
            labels.prio,
            labels.sev,
            labels.cat,
            labels.auto,
            labels.notes,
        ]
    )


def _when() -> str:
    return format_datetime(START + timedelta(minutes=41 * len(FILES)))


def _base(
    name: str,
    sender: str,
    subject: str | None,
    to: str = SUPPORT,
    extra: tuple[tuple[str, str], ...] = (),
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if subject is not None:
        msg["Subject"] = subject
    msg["Date"] = _when()
    msg["Message-ID"] = f"<{name}@synthetic.corpus.example>"
    for key, value in extra:
        msg[key] = value
    return msg


def _finish(name: str, msg: EmailMessage) -> bytes:
    # as_bytes() would draw random boundaries; fixed ones keep the corpus reproducible.
    for number, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_{name}_{number}")
    return msg.as_bytes(policy=SMTP)


def mail(
    name: str,
    sender: str,
    subject: str,
    body: str,
    labels: Labels,
    *,
    extra: tuple[tuple[str, str], ...] = (),
    html: str | None = None,
    attach: tuple[tuple[str, str, bytes], ...] = (),
) -> None:
    """A human message: text/plain, or text plus an HTML alternative, plus attachments."""
    msg = _base(name, sender, subject, extra=extra)
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attach:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    _emit(name, _finish(name, msg), labels)


def html_only(
    name: str,
    sender: str,
    subject: str,
    html: str,
    labels: Labels,
    extra: tuple[tuple[str, str], ...] = (),
) -> None:
    msg = _base(name, sender, subject, extra=extra)
    msg.set_content(html, subtype="html")
    _emit(name, _finish(name, msg), labels)


def forward(
    name: str,
    sender: str,
    subject: str,
    own: str,
    inner_from: str,
    inner_subject: str,
    inner_body: str,
    labels: Labels,
    *,
    attached: bool,
) -> None:
    """A forward: the original as a message/rfc822 part, or inline below a separator."""
    if attached:
        inner = _base(f"{name}-inner", inner_from, inner_subject, to=sender)
        inner.set_content(inner_body)
        msg = _base(name, sender, subject)
        msg.set_content(own)
        msg.add_attachment(inner)
        _emit(name, _finish(name, msg), labels)
        return
    body = (
        f"{own}\n\n---------- Forwarded message ---------\nFrom: {inner_from}\n"
        f"Date: Fri, 30 Aug 2024 16:12:09 +0200\nSubject: {inner_subject}\n"
        f"To: {sender}\n\n{inner_body}\n"
    )
    mail(name, sender, subject, body, labels)


def chat(name: str, channel: str, handle: str, text: str, labels: Labels) -> None:
    """A chat line wrapped in the smallest mail: no Subject, the text as the body."""
    msg = _base(name, f"<{handle}@{channel}.channel.invalid>", None)
    msg.set_content(text)
    _emit(name, _finish(name, msg), labels, channel=channel)


def raw(name: str, text: str, labels: Labels) -> None:
    """Machine mail whose exact layout matters (DSNs): written as it goes on the wire."""
    body = text.replace("{date}", _when()).replace("{mid}", f"<{name}@synthetic.corpus.example>")
    _emit(name, body.lstrip("\n").replace("\n", "\r\n").encode("utf-8"), labels)


# ---- people -----------------------------------------------------------------------------------
JANA = "Jana Dvořáková <jana.dvorakova@stavby-brno.example>"
PETR = "Petr Svoboda <petr.svoboda@logistika-ostrava.example>"
KLAUS = "Klaus Becker <k.becker@maschinenbau-koeln.example>"
ANNA = "Anna Schmidt <anna.schmidt@stadtwerke-ulm.example>"
MARK = "Mark Thompson <mark.thompson@northwind-freight.example>"
PRIYA = "Priya Raman <priya.raman@contoso-health.example>"
LUCY = "Lucy Hughes <lucy@hughes-legal.example>"
OMAR = "Omar Haddad <omar.haddad@gulf-trading.example>"
TOMAS = "Tomáš Černý <tomas.cerny@mestskyurad-tabor.example>"
SOPHIE = "Sophie Martin <sophie.martin@atelier-lyon.example>"
CARLOS = "Carlos Ruiz <carlos.ruiz@ventas-madrid.example>"
FINANCE = "Accounts Payable <ap@northwind-freight.example>"

SIG_MARK = "\n\n-- \nMark Thompson\nIT Operations Lead, Northwind Freight\n+44 20 7946 0101\n"
SIG_URGENT = (
    "\n\n-- \nLucy Hughes | Practice Manager\nHughes Legal LLP\n"
    "For urgent matters outside office hours please call +44 20 7946 0958.\n"
)
DISCLAIMER = (
    "\n\n________________________________\nCONFIDENTIALITY NOTICE: This e-mail and any attachments "
    "are confidential and intended solely for the addressee. If you have received it in error, "
    "please notify the sender urgently and delete it. Any unauthorised use is prohibited.\n"
)
DISCLAIMER_DE = (
    "\n\n--\nStadtwerke Ulm GmbH, Sitz Ulm, HRB 1234\nDiese E-Mail ist vertraulich. Falls Sie "
    "nicht der richtige Adressat sind, informieren Sie bitte dringend den Absender und "
    "löschen Sie diese E-Mail.\n"
)
L = Labels


def urgent_markers() -> None:
    """Markers in the customer's own subject or text: these are urgent=yes."""
    mail(
        "seed003-iam-offline",
        MARK,
        "Urgent: IAM Services Offline",
        "Hi team,\n\nSince 07:40 UTC our IAM services are offline: nobody in the company can "
        "sign in to the platform, production is stopped.\nPlease call me back as soon as "
        "possible." + SIG_MARK,
        L("yes", "urgent", "1", "outage", notes="seed 003's own example subject"),
    )
    mail(
        "urgent-caps-subject-prod-down",
        PRIYA,
        "URGENT - production down",
        "The web app returns 502 for every user since 09:05. All clinics are affected and "
        "cannot open patient consent forms.\n\nPriya",
        L(
            "yes",
            "-",
            "1",
            "outage",
            notes="URGENT without a colon: marker yes, no subject priority",
        ),
    )
    mail(
        "urgent-lowercase-leading-login",
        LUCY,
        "urgent: cannot log in since password change",
        "Hello,\n\nafter changing my password this morning I cannot log in any more, the page "
        "just reloads. My colleagues can work normally. I can use the mobile app meanwhile.\n\n"
        "Thanks, Lucy",
        L("yes", "urgent", "3", "error", notes="one user, workaround via mobile app"),
    )
    mail(
        "urgent-in-body-finance-reports",
        OMAR,
        "Finance reports failing",
        "Dear support,\n\nnone of the 40 people in our finance team can generate the monthly "
        "reports, the job ends with 'Report generation failed (code 17)'. There is no other way "
        "to get the numbers and the quarter closes on Friday. This is urgent.\n\nBest regards,\n"
        "Omar Haddad",
        L("yes", "-", "2", "error", notes="marker only in body"),
    )
    mail(
        "urgent-bangs-in-body",
        MARK,
        "Invoices stuck in 'sending'",
        "URGENT!! Since last night none of our invoices leave the system, they stay in "
        "'sending'. Customers are waiting for them and the whole billing team is blocked."
        + SIG_MARK,
        L("yes", "-", "2", "error"),
    )
    mail(
        "urgent-end-of-sentence",
        PRIYA,
        "Template editor lost changes",
        "Hi,\nthe template editor discarded all edits two of us made this morning after "
        "saving. We have re-typed them for now. Please look at it, it is urgent.\nPriya",
        L("yes", "-", "3", "error", notes="data lost but re-typed: workaround"),
    )
    mail(
        "cs-nalehave-subject",
        JANA,
        "Naléhavé: nefunguje podepisování smluv",
        "Dobrý den,\n\nod 8:15 nelze podepsat žádnou smlouvu, u všech uživatelů se po kliknutí "
        "na Podepsat zobrazí chyba 'Podpis se nezdařil'. Obchodní oddělení nemůže pracovat a "
        "žádné náhradní řešení nemáme.\n\nDěkuji,\nJana Dvořáková",
        L(
            "yes",
            "-",
            "1",
            "error",
            notes="Czech marker naléhavé; signing (the core function) down for all, no workaround",
        ),
    )
    mail(
        "cs-urgentni-body",
        TOMAS,
        "Nelze nahrát přílohy",
        "Dobrý den,\n\nna podatelně od rána nejde nahrát žádnou přílohu větší než 1 MB, "
        "nahrávání skončí na 99 %. Menší soubory projdou. Je to urgentní, máme dnes uzávěrku."
        "\n\nS pozdravem\nTomáš Černý",
        L("yes", "-", "3", "error", notes="Czech marker urgentní; smaller files work"),
    )
    mail(
        "de-dringend-subject-outage",
        KLAUS,
        "Dringend: Anmeldung funktioniert nicht",
        "Guten Morgen,\n\nseit 6 Uhr kann sich niemand bei uns anmelden, die Plattform ist "
        "komplett nicht erreichbar. Die Produktion steht.\n\nMit freundlichen Grüßen\n"
        "Klaus Becker",
        L("yes", "-", "1", "outage", notes="German marker dringend"),
    )
    mail(
        "de-dringend-body",
        ANNA,
        "Export der Zählerstände",
        "Hallo,\n\nder Export der Zählerstände bricht bei allen Sachbearbeitern mit einem "
        "Zeitüberschreitungsfehler ab. Bitte prüfen Sie das dringend, wir haben keinen anderen "
        "Weg, die Daten zu übermitteln.\n\nViele Grüße\nAnna Schmidt",
        L("yes", "-", "2", "error", notes="German marker dringend in body"),
    )
    mail(
        "urgent-not-leading-reply-subject",
        MARK,
        "Re: Urgent: API errors after upgrade",
        "Still failing: every call to /v2/shipments returns 500 since your upgrade, which "
        "blocks all of our warehouse scanners." + SIG_MARK,
        L("yes", "-", "1", "error", notes="Urgent in a Re: subject: marker yes, not leading"),
    )
    mail(
        "urgent-caps-leading-colon",
        PRIYA,
        "URGENT: consent forms show other clinic's patients",
        "We just noticed that users of one clinic can open consent forms of patients of "
        "another clinic. That is a data protection breach. We have disabled access for now.",
        L("yes", "urgent", "1", "error", notes="security breach"),
    )
    mail(
        "urgent-brackets-subject",
        OMAR,
        "[URGENT] Sync with ERP stopped",
        "The nightly sync with our ERP has not run for two nights. Orders are not reaching "
        "the warehouse and all order processing is now manual.\nOmar",
        L("yes", "-", "2", "error", notes="[URGENT] is not a leading 'Urgent:'"),
    )
    mail(
        "urgent-subject-tail",
        LUCY,
        "Password reset emails not arriving - urgent",
        "None of our staff receive the password reset emails, we checked spam folders too. "
        "Three people are locked out today." + SIG_URGENT,
        L(
            "yes",
            "-",
            "2",
            "error",
            notes="marker in subject; signature also says urgent; reset unavailable, no workaround",
        ),
    )
    mail(
        "urgent-leading-howto",
        SOPHIE,
        "Urgent: how do I export the audit log?",
        "Hello,\n\nour auditors arrive tomorrow morning. How can I export the full audit log "
        "for 2023 as CSV? I cannot find the option.\n\nMerci,\nSophie",
        L("yes", "urgent", "4", "question", notes="urgent priority, but the request is a how-to"),
    )
    html_only(
        "urgent-html-only",
        PRIYA,
        "Booking page broken",
        "<html><head><style>body{font-family:Arial}</style></head><body>"
        "<p>Hi team,</p><p><b>URGENT</b>: the public booking page shows a blank screen "
        "for every visitor since the 10:00 deployment. Patients cannot book at all.</p>"
        "<p>Priya Raman<br>Contoso Health</p></body></html>",
        L("yes", "-", "1", "outage", notes="HTML-only"),
    )
    forward(
        "urgent-above-forward",
        MARK,
        "Fwd: Delivery notes missing",
        "Urgent - see below. Our depot in Leeds cannot print any delivery notes since this "
        "morning, trucks are waiting.",
        "Depot Leeds <depot.leeds@northwind-freight.example>",
        "Delivery notes missing",
        "Hi Mark, the print button does nothing for delivery notes, all four PCs. Can you "
        "raise it with the vendor?",
        L("yes", "-", "2", "error"),
        attached=False,
    )
    mail(
        "urgent-own-and-quoted",
        JANA,
        "Re: Chyba při exportu",
        "Dobrý den,\nstále to nefunguje, export do PDF padá všem v účtárně. Je to naléhavé.\n\n"
        "Dne 30. 8. 2024 v 14:02 Support napsal(a):\n> Dobrý den, prosíme o zaslání "
        "snímku obrazovky.\n>\n> Původní zpráva: Je to naléhavé, export padá.\n",
        L("yes", "-", "2", "error", notes="marker in own text and in the quote"),
    )
    mail(
        "urgent-question-mark-subject",
        CARLOS,
        "Urgent question about invoice 2024-0815",
        "Hello,\n\nthe invoice 2024-0815 shows 25 seats but we only have 20. Could you send a "
        "corrected invoice? Our accounting closes tomorrow.\n\nCarlos Ruiz",
        L("yes", "-", "4", "account_billing"),
    )


def priorities() -> None:
    """Leading 'High:' / 'Low:' / 'Medium:' subjects (four-tier), no urgent word."""
    mail(
        "high-reports-slow",
        MARK,
        "High: dashboards take minutes to load",
        "Since Monday every dashboard takes 2-3 minutes to load for all 60 dispatchers. They "
        "can still work but very slowly." + SIG_MARK,
        L("no", "high", "2", "error", notes="severely degraded for many users"),
    )
    mail(
        "high-api-500-bulk",
        OMAR,
        "High: API returns 500 for bulk upload",
        "POST /v2/orders/bulk fails with HTTP 500 for any batch over 100 orders. Batches of "
        "100 or fewer work fine, so we split the files for now.\nOmar",
        L("no", "high", "3", "error", notes="easy workaround: smaller batches"),
    )
    mail(
        "low-typo-french",
        SOPHIE,
        "Low: typo in the French interface",
        "Bonjour,\n\nsmall thing: the button on the signature page says 'Signé le document' "
        "instead of 'Signer le document'.\n\nSophie",
        L("no", "low", "4", "error", notes="cosmetic defect"),
    )
    mail(
        "low-dark-mode",
        CARLOS,
        "Low: feature idea - dark mode",
        "Hi, would it be possible to add a dark mode to the web app? Several of our night "
        "shift people asked for it. Thanks!",
        L("no", "low", "4", "feature_request"),
    )
    mail(
        "medium-sso-question",
        PRIYA,
        "Medium: SSO configuration with Azure AD",
        "Hello,\n\nwe want to connect the platform to Azure AD. Which redirect URI do we enter "
        "on the Azure side, and do you support group claims?\n\nThanks, Priya",
        L("no", "medium", "4", "question"),
    )
    mail(
        "high-lowercase-leading",
        LUCY,
        "high: documents stuck in review",
        "Around a third of our documents stay in 'review' after both parties signed. We "
        "complete them by hand in the admin screen, a few seconds each." + SIG_URGENT,
        L(
            "no",
            "high",
            "3",
            "error",
            notes="leading marker in lower case; signature mentions urgent matters",
        ),
    )
    mail(
        "low-docs-link",
        KLAUS,
        "Low: broken link in the API documentation",
        "Hallo, the link 'Authentication' on the API docs start page returns 404. Regards, Klaus",
        L("no", "low", "4", "error", notes="documentation defect"),
    )


def quoted_and_signatures() -> None:
    """'Urgent' only where it does not count: quotes, signatures, disclaimers."""
    mail(
        "quote-gmail-urgent",
        PRIYA,
        "Re: Booking page broken",
        "Thanks, it works again for us. You can close the ticket.\n\nPriya\n\n"
        "On Mon, 2 Sep 2024 at 10:14, Priya Raman <priya.raman@contoso-health.example> wrote:\n"
        "> URGENT: the public booking page shows a blank screen for every visitor.\n",
        L("no", notes="urgent only in the quoted original"),
    )
    mail(
        "quote-outlook-urgent",
        MARK,
        "RE: export to PDF fails",
        "Hi, any news on this? The export still fails for all of our planners and there is no "
        "other way to send the route sheets."
        + SIG_MARK
        + "\n________________________________\nFrom: Mark Thompson <mark.thompson@northwind-"
        "freight.example>\nSent: Friday, August 30, 2024 4:40 PM\nTo: Support <support@"
        "support.example.com>\nSubject: export to PDF fails\n\nHello, this is urgent: "
        "exporting route sheets to PDF fails with 'Render error'.\n",
        L("no", "-", "2", "error", notes="urgent only below an Outlook From:/Sent: header"),
    )
    mail(
        "quote-original-message-urgent",
        OMAR,
        "RE: Sync with ERP",
        "Hello, the sync ran fine last night, thank you for the quick fix.\n\nOmar\n\n"
        "-----Original Message-----\nFrom: Omar Haddad\nSent: Tuesday, 3 September 2024 07:55\n"
        "To: Support\nSubject: [URGENT] Sync with ERP stopped\n\nThe nightly sync has not run "
        "for two nights. Urgent please.\n",
        L("no", notes="thanks; urgent only in the quoted original"),
    )
    mail(
        "quote-german-schrieb",
        ANNA,
        "AW: Export der Zählerstände",
        "Hallo,\n\ndanke, der Export läuft wieder.\n\nViele Grüße\nAnna Schmidt\n\n"
        "Am 02.09.2024 um 09:31 schrieb Anna Schmidt:\n> Bitte prüfen Sie das dringend.\n",
        L("no", notes="dringend only in the quote"),
    )
    mail(
        "quote-czech-napsal",
        TOMAS,
        "Re: Nelze nahrát přílohy",
        "Dobrý den, děkuji, už to funguje.\nTomáš Černý\n\n"
        "Dne 2. 9. 2024 v 9:12 Tomáš Černý napsal(a):\n> Je to urgentní, máme dnes uzávěrku.\n",
        L("no", notes="urgentní only in the quote"),
    )
    mail(
        "signature-urgent-matters",
        LUCY,
        "Question about retention settings",
        "Hello,\n\nhow long are signed documents kept after a user is deleted? Can we set the "
        "retention period ourselves?\n\nKind regards" + SIG_URGENT,
        L("no", "-", "4", "question", notes="urgent only in the signature"),
    )
    mail(
        "disclaimer-urgently",
        MARK,
        "New user for our Leeds depot",
        "Hi, please create an account for our new depot manager, Sarah Cole "
        "(sarah.cole@northwind-freight.example), with the dispatcher role." + SIG_MARK + DISCLAIMER,
        L("no", "-", "4", "account_billing", notes="disclaimer says 'notify the sender urgently'"),
    )
    mail(
        "disclaimer-de-dringend",
        ANNA,
        "Frage zur Schnittstelle",
        "Hallo,\n\nunterstützt die REST-Schnittstelle auch Webhooks für neue Dokumente? In der "
        "Dokumentation finde ich dazu nichts.\n\nViele Grüße\nAnna Schmidt" + DISCLAIMER_DE,
        L("no", "-", "4", "question", notes="dringend only in the legal footer"),
    )
    mail(
        "signature-and-quote-no-own",
        LUCY,
        "Re: Invoice address",
        "Thank you, the corrected invoice arrived."
        + SIG_URGENT
        + "\nOn Fri, 30 Aug 2024 at 11:02, Support <support@support.example.com> wrote:\n"
        "> We have issued a corrected invoice. If it is urgent, reply to this e-mail.\n",
        L("no", notes="urgent in signature and in quoted support text only"),
    )
    forward(
        "forward-quoted-urgent",
        KLAUS,
        "WG: Wartungsfenster",
        "Zur Info, bitte bestätigen Sie das Wartungsfenster am Samstag.",
        "IT Betrieb <it@maschinenbau-koeln.example>",
        "URGENT: Wartungsfenster Samstag",
        "Urgent: wir brauchen ein Wartungsfenster am Samstag 8-10 Uhr.",
        L("no", "-", "4", "question", notes="urgent only inside the forwarded original"),
        attached=True,
    )
    mail(
        "quote-hotmail-style",
        CARLOS,
        "RE: Seats",
        "Perfect, thank you.\n\n> Subject: Seats\n> From: Carlos Ruiz\n> Date: Mon, 2 Sep 2024\n>"
        "\n> Urgent: please add 5 seats before Monday.\n",
        L("no", notes="urgent only in a '>' quoted header block"),
    )


def negations() -> None:
    """Negated markers: urgent=no."""
    mail(
        "neg-not-urgent",
        PRIYA,
        "Small question about exports",
        "Hi, not urgent at all: can the CSV export use semicolons instead of commas?",
        L("no", "-", "4", "question"),
    )
    mail(
        "neg-this-is-not-urgent",
        MARK,
        "Report footer",
        "Hello, this is not urgent, but the footer of the weekly report still shows last "
        "year's logo." + SIG_MARK,
        L("no", "-", "4", "error", notes="cosmetic"),
    )
    mail(
        "neg-non-urgent",
        LUCY,
        "Non-urgent: rename our organisation",
        "Hello, please rename our organisation from 'Hughes Legal' to 'Hughes Legal LLP'. "
        "Thank you.",
        L(
            "no",
            "-",
            "4",
            "account_billing",
            notes="'Non-urgent:' is negated and not a leading 'Urgent:'",
        ),
    )
    mail(
        "neg-no-urgency",
        OMAR,
        "Question on API limits",
        "There is no urgency on this. What is the rate limit for the /v2/orders endpoint and "
        "is it per key or per account?",
        L("no", "-", "4", "question", notes="'urgency' is not the word"),
    )
    mail(
        "neg-nothing-urgent",
        SOPHIE,
        "Feedback",
        "Nothing urgent here, just feedback: the new document list is much faster, thank you!",
        L("no", notes="praise, no request"),
    )
    mail(
        "neg-nicht-dringend",
        KLAUS,
        "Nicht dringend: Frage zur Rechnung",
        "Hallo, nicht dringend, aber warum steht auf der Rechnung für August die alte "
        "Adresse? Gruß, Klaus Becker",
        L("no", "-", "4", "account_billing"),
    )
    mail(
        "neg-neni-nalehave",
        JANA,
        "Dotaz k archivaci",
        "Dobrý den,\nnení to naléhavé, jen by mě zajímalo, jestli lze archivované smlouvy "
        "hromadně stáhnout jako ZIP.\nDěkuji, Jana",
        L("no", "-", "4", "question"),
    )
    mail(
        "neg-neni-urgentni",
        TOMAS,
        "Požadavek na novou funkci",
        "Dobrý den,\nnení to urgentní, ale uvítali bychom možnost nastavit vlastní číslování "
        "dokumentů.\nS pozdravem, Tomáš Černý",
        L("no", "-", "4", "feature_request"),
    )
    mail(
        "neg-not-an-urgent-matter",
        ANNA,
        "Training dates",
        "Hello, not an urgent matter: do you offer online training sessions in October?",
        L("no", "-", "4", "question"),
    )
    mail(
        "neg-urgently-adverb",
        CARLOS,
        "Need the contract copy",
        "Hi, could you please send me a copy of our signed service agreement? We need it "
        "urgently for a tender.",
        L("no", "-", "4", "account_billing", notes="'urgently' is not the whole word Urgent"),
    )
    mail(
        "neg-asap-emergency",
        MARK,
        "Emergency - trackers offline",
        "All GPS trackers show 'offline' in the portal since 13:00, so nobody can see where "
        "the trucks are. Please help ASAP." + SIG_MARK,
        L(
            "no",
            "-",
            "2",
            "outage",
            notes="emergency/ASAP are not the word urgent; tracking down for all, rest works",
        ),
    )
    mail(
        "neg-not-urgent-de-dringend-not",
        ANNA,
        "Kein dringender Fall",
        "Hallo, ist nicht dringend: wie ändere ich die Sprache der Benachrichtigungen auf Deutsch?",
        L(
            "no",
            "-",
            "4",
            "question",
            notes="'dringender' in subject is an inflection, 'nicht dringend' negated",
        ),
    )


def severity_levels() -> None:
    """Each severity level in English, Czech and German, with and without written markers."""
    mail(
        "sev1-en-data-loss",
        PRIYA,
        "Documents deleted",
        "Hi, about 3,000 signed consent forms disappeared from our archive overnight. They "
        "are gone from search and from the folders. We need them restored.",
        L("no", "-", "1", "error", notes="data loss"),
    )
    mail(
        "sev1-en-sev1-written",
        MARK,
        "Sev1 - API completely unavailable",
        "Sev1: the API answers nothing since 02:10 (connection timeouts on every endpoint). "
        "Our warehouses are stopped." + SIG_MARK,
        L("no", "-", "1", "outage", notes="Sev1 written by the customer"),
    )
    mail(
        "sev1-en-p1",
        OMAR,
        "P1 outage",
        "P1. Platform down for all users in the Dubai office and in Prague, login page "
        "times out.\nOmar",
        L("no", "-", "1", "outage", notes="P1 written"),
    )
    mail(
        "sev1-en-security",
        LUCY,
        "Possible breach - strange logins",
        "We see successful logins to our admin account from an IP address in another country "
        "that none of us used, and two users were created that we do not know. We have "
        "changed the passwords. Please investigate.",
        L("no", "-", "1", "error", notes="security breach"),
    )
    mail(
        "sev1-cs-vypadek",
        TOMAS,
        "Výpadek celé aplikace",
        "Dobrý den,\n\naplikace je od 7:30 úplně nedostupná, nikdo z úřadu se nepřihlásí a "
        "podatelna stojí.\n\nTomáš Černý",
        L("no", "-", "1", "outage"),
    )
    mail(
        "sev1-cs-ztrata-dat",
        JANA,
        "Zmizely dokumenty",
        "Dobrý den, po včerejší aktualizaci zmizely všechny dokumenty projektu Hotel Brno, "
        "asi 800 souborů. Nikde je nevidíme.\nJana Dvořáková",
        L("no", "-", "1", "error", notes="data loss"),
    )
    mail(
        "sev1-de-ausfall",
        ANNA,
        "Totalausfall",
        "Hallo,\n\ndas System ist komplett ausgefallen, kein Benutzer kann arbeiten. Die "
        "Abrechnung steht.\n\nAnna Schmidt",
        L("no", "-", "1", "outage"),
    )
    mail(
        "sev1-de-severity-1",
        KLAUS,
        "Severity 1: Produktion steht",
        "Severity 1. Seit dem Update heute Nacht startet der Dienst nicht mehr, die "
        "Produktion steht komplett.\nKlaus Becker",
        L("no", "-", "1", "outage", notes="Severity 1 written"),
    )
    mail(
        "sev2-en-half-users",
        PRIYA,
        "Signing fails for many users",
        "Since this morning signing fails for about half of our users with 'Certificate "
        "error'. There is no workaround, the other half can sign.",
        L("no", "-", "2", "error"),
    )
    mail(
        "sev2-en-severity-2",
        MARK,
        "Severity 2 - route planner very slow",
        "Severity 2: the route planner is severely degraded, calculating a route takes "
        "10 minutes instead of seconds. Planners are working but far behind." + SIG_MARK,
        L("no", "-", "2", "error", notes="Severity 2 written"),
    )
    mail(
        "sev2-en-level-2",
        OMAR,
        "Level 2 issue: reports module unavailable",
        "Level 2: the reports module is unavailable for everyone; the rest of the product "
        "works. We have no other way to produce the reports.",
        L("no", "-", "2", "error", notes="Level 2 written (Circularo on-prem wording)"),
    )
    mail(
        "sev2-cs-podpisy",
        JANA,
        "Nejde podepisovat",
        "Dobrý den,\nvětšině uživatelů od rána nejde podepisovat dokumenty, systém je navíc "
        "velmi pomalý. Náhradní řešení nemáme.\nDěkuji, Jana",
        L("no", "-", "2", "error"),
    )
    mail(
        "sev2-de-export",
        KLAUS,
        "Export funktioniert nicht",
        "Hallo,\n\nder Export funktioniert bei vielen Benutzern nicht, es gibt keinen "
        "Workaround. Die übrigen Funktionen laufen.\n\nKlaus Becker",
        L("no", "-", "2", "error"),
    )
    mail(
        "sev3-en-date-format",
        MARK,
        "CSV dates in US format",
        "The CSV export writes dates as MM/DD/YYYY although our locale is UK. We fix them in "
        "Excel for now." + SIG_MARK,
        L("no", "-", "3", "error", notes="workaround"),
    )
    mail(
        "sev3-en-one-user",
        LUCY,
        "One user cannot upload",
        "One of our paralegals gets 'Upload failed' for every file; everyone else can upload. "
        "She sends the files to a colleague meanwhile.",
        L("no", "-", "3", "error"),
    )
    mail(
        "sev3-en-severity-3",
        PRIYA,
        "Severity 3: notification emails delayed",
        "Severity 3 - notification emails arrive 20-30 minutes late. Not blocking, but "
        "annoying for the front desk.",
        L("no", "-", "3", "error", notes="Severity 3 written"),
    )
    mail(
        "sev3-cs-nahled",
        TOMAS,
        "Náhled dokumentu",
        "Dobrý den,\nnáhled dokumentu se občas nenačte, po obnovení stránky to jde.\n"
        "S pozdravem Tomáš Černý",
        L("no", "-", "3", "error"),
    )
    mail(
        "sev3-de-suche",
        ANNA,
        "Suche findet Dokumente nicht",
        "Hallo,\n\ndie Suche findet manche Dokumente nicht; über die Ordneransicht kommen wir "
        "aber an alles heran.\n\nAnna Schmidt",
        L("no", "-", "3", "error"),
    )
    mail(
        "sev4-en-howto-template",
        SOPHIE,
        "How do I create a template?",
        "Hello, how do I create a document template with fields that the signer fills in? "
        "Thank you, Sophie",
        L("no", "-", "4", "question"),
    )
    mail(
        "sev4-en-docs",
        OMAR,
        "Documentation for on-prem upgrade",
        "Where can I find the upgrade guide for the on-premise version 5.2 to 5.3? The link "
        "in the release notes is missing.",
        L("no", "-", "4", "question"),
    )
    mail(
        "sev4-cs-jak",
        JANA,
        "Jak přidat nového uživatele",
        "Dobrý den, jak přidám nového uživatele s rolí účetní? Děkuji, Jana Dvořáková",
        L("no", "-", "4", "question"),
    )
    mail(
        "sev4-de-wie",
        KLAUS,
        "Wie kann ich den Export planen?",
        "Hallo, wie kann ich den monatlichen Export automatisch planen? Gibt es dafür eine "
        "Einstellung? Danke, Klaus",
        L("no", "-", "4", "question"),
    )
    mail(
        "sev4-de-feature",
        ANNA,
        "Funktionswunsch: Serienbriefe",
        "Hallo,\n\nwir würden uns eine Serienbrief-Funktion wünschen, um 500 Verträge auf "
        "einmal zu versenden.\n\nViele Grüße\nAnna Schmidt",
        L("no", "-", "4", "feature_request"),
    )
    mail(
        "sev4-cs-feature",
        TOMAS,
        "Návrh na vylepšení",
        "Dobrý den, navrhuji přidat do aplikace export do formátu ODT. Děkuji.",
        L("no", "-", "4", "feature_request"),
    )


def categories() -> None:
    """Feature requests, billing, service credits, account and other mail."""
    mail(
        "feature-en-api-webhooks",
        OMAR,
        "Feature request: webhooks for signed documents",
        "Hi, it would help us a lot if the API could call a webhook when a document is fully "
        "signed, instead of us polling every minute.",
        L("no", "-", "4", "feature_request"),
    )
    mail(
        "feature-en-enhancement",
        PRIYA,
        "Enhancement: bulk reminders",
        "Could you add a button to send reminders to all pending signers at once?",
        L("no", "-", "4", "feature_request"),
    )
    mail(
        "billing-en-invoice-vat",
        FINANCE,
        "Invoice INV-2024-0932 missing VAT number",
        "Hello,\n\nour VAT number GB123456789 is missing on invoice INV-2024-0932. Please "
        "reissue it.\n\nAccounts Payable\nNorthwind Freight",
        L("no", "-", "4", "account_billing"),
    )
    mail(
        "billing-en-upgrade",
        CARLOS,
        "Upgrade to Premium",
        "Hi, we would like to upgrade from Plus to Premium from October. What will the price "
        "be for 25 users?",
        L("no", "-", "4", "account_billing"),
    )
    mail(
        "billing-en-card-declined",
        LUCY,
        "Payment failed",
        "We got an email that our card payment failed. The card was replaced last week; how "
        "do we update the card details?",
        L("no", "-", "4", "account_billing"),
    )
    mail(
        "billing-cs-faktura",
        JANA,
        "Faktura za srpen",
        "Dobrý den, prosím o zaslání faktury za srpen ještě jednou, původní nám nedorazila. "
        "Děkuji, Jana Dvořáková",
        L("no", "-", "4", "account_billing"),
    )
    mail(
        "billing-de-kuendigung",
        KLAUS,
        "Kündigung von 3 Lizenzen",
        "Hallo,\n\nwir möchten zum Monatsende 3 Lizenzen kündigen. Bitte bestätigen Sie die "
        "Kündigung.\n\nKlaus Becker",
        L("no", "-", "4", "account_billing"),
    )
    mail(
        "account-unlock",
        PRIYA,
        "Account locked",
        "Hi, my colleague's account (d.jones@contoso-health.example) is locked after too many "
        "attempts. Can you unlock it? She can use a shared workstation until then.",
        L("no", "-", "3", "account_billing", notes="one user blocked, workaround"),
    )
    mail(
        "account-remove-leaver",
        LUCY,
        "Remove access for former employee",
        "Please remove the access of Tom Baker (tom.baker@hughes-legal.example), he left the "
        "firm yesterday.",
        L("no", "-", "4", "account_billing"),
    )
    mail(
        "credit-en-999",
        MARK,
        "Service credit claim for August",
        "Hello,\n\nyour status page shows 6 hours of downtime on 14 August, which puts "
        "August below the 99.9% uptime guarantee. Under the SLA we request the service "
        "credits of 7 days. Screenshots of the error page with timestamps are attached.\n\n"
        "Mark Thompson",
        L(
            "no",
            "-",
            "4",
            "service_credit",
            notes="past outage; the claim itself has no production impact",
        ),
        attach=(("error-2024-08-14.png", "image/png", b"\x89PNG\r\n\x1a\nsynthetic"),),
    )
    mail(
        "credit-en-99",
        OMAR,
        "SLA breach - credits",
        "Dear team, according to our calculation uptime in July was 98.7%, so below 99%. "
        "Please issue the 14 days of service credits the SLA provides.",
        L("no", "-", "4", "service_credit"),
    )
    mail(
        "credit-de-gutschrift",
        ANNA,
        "Gutschrift wegen Ausfall",
        "Hallo,\n\nwegen des Ausfalls am 20. August lag die Verfügbarkeit unter 99,9 %. Wir "
        "bitten um die vereinbarte Gutschrift (service credits).\n\nAnna Schmidt",
        L("no", "-", "4", "service_credit"),
    )
    mail(
        "credit-cs-kompenzace",
        TOMAS,
        "Kompenzace za výpadek",
        "Dobrý den, dostupnost služby v srpnu nesplnila garantovaných 99,9 %. Žádáme o "
        "kompenzaci formou service credits dle SLA.\nTomáš Černý",
        L("no", "-", "4", "service_credit"),
    )
    mail(
        "credit-urgent",
        CARLOS,
        "Urgent: service credits for the 3 September outage",
        "Hello, following the outage on 3 September uptime fell below 99.9%. Please confirm "
        "the service credits before our renewal on Friday.",
        L("yes", "urgent", "4", "service_credit", notes="urgent marker on a credit claim"),
    )
    mail(
        "other-thanks",
        SOPHIE,
        "Merci!",
        "Thank you for the quick help yesterday, everything works now.",
        L("no"),
    )
    mail(
        "other-meeting",
        MARK,
        "Quarterly review meeting",
        "Hi, can we move our quarterly review call to Thursday 14:00 UK time?" + SIG_MARK,
        L("no"),
    )
    mail(
        "other-close-ticket",
        KLAUS,
        "Ticket kann geschlossen werden",
        "Hallo, das Problem ist gelöst, Sie können das Ticket schließen. Danke!",
        L("no"),
    )
    mail(
        "other-sales",
        CARLOS,
        "Partnership",
        "Hello, we are a reseller in Spain and would like to talk about a partnership.",
        L("no"),
    )


def headers_and_html() -> None:
    """Priority headers without the word, HTML-only mail, forwarded threads, attachments."""
    mail(
        "xpriority-1-no-word",
        OMAR,
        "Printer connector error",
        "The print connector logs 'Spooler not reachable' for the Abu Dhabi office. The "
        "other offices print fine.",
        L("no", "-", "3", "error", notes="X-Priority: 1 header only"),
        extra=(("X-Priority", "1 (Highest)"), ("X-MSMail-Priority", "High")),
    )
    mail(
        "importance-high-no-word",
        LUCY,
        "Calendar sync",
        "The Outlook calendar sync has not updated since Friday. We re-enter deadlines "
        "manually for now.",
        L("no", "-", "3", "error", notes="Importance: high header only"),
        extra=(("Importance", "high"),),
    )
    mail(
        "priority-urgent-header",
        PRIYA,
        "Label printing",
        "Label printing produces blank labels in one of our five clinics.",
        L(
            "no",
            "-",
            "3",
            "error",
            notes="Priority: urgent header only; the word is not in the text",
        ),
        extra=(("Priority", "urgent"), ("X-Priority", "1")),
    )
    mail(
        "importance-high-and-word",
        MARK,
        "Urgent: depot scanners offline",
        "All handheld scanners at every depot show 'server offline'. Loading has stopped."
        + SIG_MARK,
        L("yes", "urgent", "1", "outage"),
        extra=(("Importance", "High"), ("X-Priority", "1")),
    )
    html_only(
        "html-only-question",
        SOPHIE,
        "Question sur les signatures",
        "<html><body><div dir='ltr'>Bonjour,<br><br>Can a signer delegate the signature "
        "to a colleague? I did not find it in the <a href='https://docs.example.com'>"
        "documentation</a>.<br><br>Merci,<br>Sophie</div></body></html>",
        L("no", "-", "4", "question"),
    )
    html_only(
        "html-only-outlook-error",
        KLAUS,
        "Fehler beim Speichern",
        "<html xmlns:o='urn:schemas-microsoft-com:office:office'><head><meta "
        "http-equiv='Content-Type' content='text/html; charset=utf-8'><style>"
        "p.MsoNormal{margin:0cm;font-family:Calibri}</style></head><body lang=DE>"
        "<div class=WordSection1><p class=MsoNormal>Hallo,<o:p></o:p></p><p class="
        "MsoNormal>beim Speichern eines Vertrags erscheint bei mir der Fehler &quot;Error "
        "409: Conflict&quot;. Kollegen können speichern.<o:p></o:p></p><p class=MsoNormal>"
        "Gruß<br>Klaus Becker</p></div></body></html>",
        L("no", "-", "3", "error", notes="HTML-only, Outlook markup"),
    )
    html_only(
        "html-only-script-urgent",
        MARK,
        "Status",
        "<html><head><script>var s='urgent';</script><style>.urgent{color:red}</style>"
        "</head><body><p class='urgent'>The tracking map loads again, thanks.</p>"
        "</body></html>",
        L("no", notes="'urgent' only in script and CSS, not in readable text"),
    )
    html_only(
        "html-only-cs-outage",
        TOMAS,
        "Nedostupnost",
        "<html><body><p>Dobrý den,</p><p>portál pro občany je <b>nedostupný</b> pro "
        "všechny uživatele, stránka se nenačte.</p><p>Tomáš Černý</p></body></html>",
        L("no", "-", "1", "outage", notes="HTML-only, Czech"),
    )
    mail(
        "alt-html-feature",
        PRIYA,
        "Suggestion: SMS reminders",
        "Hi, could you add SMS reminders for signers? Many patients ignore emails.",
        L("no", "-", "4", "feature_request"),
        html="<p>Hi, could you add <b>SMS reminders</b> for signers? Many patients ignore "
        "emails.</p>",
    )
    forward(
        "fwd-attached-error",
        OMAR,
        "Fwd: Error in integration log",
        "Please see the log excerpt below from our integration team.",
        "Integration Team <integration@gulf-trading.example>",
        "Error in integration log",
        "Hi Omar, since Tuesday about 5% of the order imports fail with 'Duplicate key "
        "ORD-REF'. We retry them manually.",
        L("no", "-", "3", "error"),
        attached=True,
    )
    forward(
        "fwd-inline-billing",
        FINANCE,
        "Fwd: Your invoice",
        "Forwarding this: the amount is double what we agreed. Please check.",
        "Billing <billing@vendor.example>",
        "Your invoice INV-2024-1001",
        "Please find attached your invoice for September.",
        L("no", "-", "4", "account_billing"),
        attached=False,
    )
    forward(
        "fwd-customer-complaint-de",
        ANNA,
        "WG: Störung Kundenportal",
        "Dringend! Unser Kundenportal ist laut unserem Team nicht erreichbar.",
        "Kundenservice <service@stadtwerke-ulm.example>",
        "Störung Kundenportal",
        "Seit 8 Uhr ist das Kundenportal für alle Kunden nicht erreichbar.",
        L("yes", "-", "1", "outage", notes="marker in own text above the forward"),
        attached=False,
    )
    mail(
        "attachment-log",
        KLAUS,
        "Logdatei zum Absturz",
        "Hallo, anbei die Logdatei. Der Client stürzt beim Öffnen großer PDFs ab, kleinere "
        "gehen.\nKlaus",
        L("no", "-", "3", "error"),
        attach=(("client.log", "text/plain", b"2024-09-02 10:01:12 ERROR OutOfMemory\n"),),
    )


def out_of_office() -> None:
    """Auto-replies in several languages and header styles: auto_generated=yes."""
    auto = (("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"))
    mail(
        "ooo-en-outlook",
        MARK,
        "Automatic reply: Ticket #4411 received",
        "Thank you for your email. I am out of the office until 9 September with limited "
        "access to email. For urgent issues please contact ops@northwind-freight.example.",
        L("no", auto="yes", notes="Outlook auto-reply; urgent only in its referral text"),
        extra=auto,
    )
    mail(
        "ooo-en-gmail-vacation",
        SOPHIE,
        "Re: Your request",
        "Hi, I'm on vacation until Monday and will reply when I'm back.",
        L("no", auto="yes", notes="Gmail vacation responder style: Auto-Submitted only"),
        extra=(("Auto-Submitted", "auto-replied"), ("Precedence", "bulk")),
    )
    mail(
        "ooo-en-subject-only",
        LUCY,
        "Out of Office: Re: Invoice address",
        "I am currently out of the office and will return on 10 September.",
        L("no", auto="yes", notes="no auto headers: only the subject tells"),
    )
    mail(
        "ooo-en-echo-urgent",
        PRIYA,
        "Automatic reply: URGENT: consent forms",
        "I am out of the office today. Your message will not be forwarded.",
        L("no", auto="yes", notes="subject echoes someone else's URGENT: not this sender's marker"),
        extra=auto,
    )
    mail(
        "ooo-cs-automaticka",
        JANA,
        "Automatická odpověď: Dotaz k archivaci",
        "Dobrý den, do 6. 9. jsem na dovolené. V naléhavých případech kontaktujte "
        "kolegyni Petru Malou.",
        L("no", auto="yes", notes="Czech; naléhavých in its referral text"),
        extra=(("Auto-Submitted", "auto-replied"),),
    )
    mail(
        "ooo-cs-nepritomnost",
        TOMAS,
        "Nepřítomnost: Re: Nelze nahrát přílohy",
        "Jsem mimo kancelář do pondělí.",
        L("no", auto="yes", notes="Czech, subject only"),
    )
    mail(
        "ooo-de-abwesenheit",
        KLAUS,
        "Abwesenheitsnotiz: Ihre Anfrage",
        "Vielen Dank für Ihre Nachricht. Ich bin bis 13.09. nicht im Büro. In dringenden "
        "Fällen wenden Sie sich bitte an info@maschinenbau-koeln.example.",
        L("no", auto="yes", notes="German; 'dringenden' in referral text"),
        extra=(("X-Autoreply", "yes"), ("Auto-Submitted", "auto-replied")),
    )
    mail(
        "ooo-de-automatische-antwort",
        ANNA,
        "Automatische Antwort: Export der Zählerstände",
        "Ich bin derzeit nicht erreichbar.",
        L("no", auto="yes", notes="German Outlook"),
        extra=auto,
    )
    mail(
        "ooo-fr",
        SOPHIE,
        "Réponse automatique : Question sur les signatures",
        "Bonjour, je suis absente du bureau jusqu'au 9 septembre. En cas d'urgence, "
        "contactez le 04 72 00 00 00.",
        L("no", auto="yes", notes="French"),
        extra=(("Auto-Submitted", "auto-replied"),),
    )
    mail(
        "ooo-fr-absence",
        SOPHIE,
        "Absence du bureau",
        "Je suis en congés.",
        L("no", auto="yes", notes="French, X-Autorespond only"),
        extra=(("X-Autorespond", "yes"),),
    )
    mail(
        "ooo-es",
        CARLOS,
        "Respuesta automática: Upgrade to Premium",
        "Estoy fuera de la oficina hasta el lunes. Para asuntos urgentes, escriba a "
        "soporte@ventas-madrid.example.",
        L("no", auto="yes", notes="Spanish; 'urgentes' is not the English word"),
        extra=(("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")),
    )
    mail(
        "ooo-es-fuera",
        CARLOS,
        "Fuera de la oficina: Seats",
        "Fuera de la oficina.",
        L("no", auto="yes", notes="Spanish, subject only"),
    )
    mail(
        "autoreply-ticket-system",
        "Helpdesk <helpdesk@gulf-trading.example>",
        "[#GT-5521] We received your message",
        "This is an automated response. Your request has been logged as GT-5521.",
        L("no", auto="yes", notes="another helpdesk's auto-acknowledgement (loop risk)"),
        extra=(("Auto-Submitted", "auto-generated"), ("X-Loop", "helpdesk@gulf-trading.example")),
    )


POSTFIX = """
Return-Path: <>
From: MAILER-DAEMON@mx1.northwind-freight.example (Mail Delivery System)
To: support@support.example.com
Subject: Undelivered Mail Returned to Sender
Date: {date}
Message-ID: {mid}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.northwind-freight.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{rcpt}>: host mailstore.northwind-freight.example[10.0.0.5] said: 550 5.1.1
    <{rcpt}>: Recipient address rejected: User unknown

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.northwind-freight.example
Arrival-Date: {date}

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B1
Content-Type: message/rfc822

From: Support <support@support.example.com>
To: {rcpt}
Subject: {orig}
Auto-Submitted: auto-replied

Thank you, we have received your request.

--B1--
"""

EXIM = """
Return-Path: <>
From: Mail Delivery System <Mailer-Daemon@mail.gulf-trading.example>
To: support@support.example.com
Subject: Mail delivery failed: returning message to sender
Date: {date}
Message-ID: {mid}
X-Failed-Recipients: {rcpt}
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {rcpt}
    host mx.gulf-trading.example [192.0.2.25]
    SMTP error from remote mail server after RCPT TO:<{rcpt}>:
    550 5.7.1 Mailbox disabled

------ This is a copy of the message, including all the headers. ------

Subject: {orig}
From: Support <support@support.example.com>

We have received your request.
"""

EXCHANGE = """
From: Microsoft Outlook <postmaster@contoso-health.example>
To: support@support.example.com
Subject: Undeliverable: {orig}
Date: {date}
Message-ID: {mid}
Auto-Submitted: auto-replied
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B2"

--B2
Content-Type: text/plain; charset=utf-8

Your message to {rcpt} couldn't be delivered.
{rcpt} wasn't found at contoso-health.example.

Diagnostic information for administrators:
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound;
Recipient not found by SMTP address lookup'

--B2
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com

Final-recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound

--B2
Content-Type: text/rfc822-headers

From: Support <support@support.example.com>
To: {rcpt}
Subject: {orig}

--B2--
"""

GMAIL = """
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: support@support.example.com
Subject: Delivery Status Notification (Failure)
Date: {date}
Message-ID: {mid}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B3"

--B3
Content-Type: text/plain; charset=UTF-8

** Address not found **

Your message wasn't delivered to {rcpt} because the address couldn't be found,
or is unable to receive mail.

The response from the remote server was:
550 5.1.1 The email account that you tried to reach does not exist.

--B3
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1

--B3--
"""

SENDMAIL = """
Return-Path: <>
From: Mail Delivery Subsystem <MAILER-DAEMON@relay.hughes-legal.example>
To: <support@support.example.com>
Subject: Returned mail: see transcript for details
Date: {date}
Message-ID: {mid}
Auto-Submitted: auto-generated (failure)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B4"

--B4

The original message was received at {date}
from support.example.com [198.51.100.7]

   ----- The following addresses had permanent fatal errors -----
<{rcpt}>
    (reason: 552 5.2.2 Mailbox full)

--B4
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.hughes-legal.example

Final-Recipient: RFC822; {rcpt}
Action: failed
Status: 5.2.2

--B4
Content-Type: message/rfc822

From: Support <support@support.example.com>
Subject: {orig}

We have received your request.

--B4--
"""

QMAIL = """
Return-Path: <>
From: MAILER-DAEMON@mail.atelier-lyon.example
To: support@support.example.com
Subject: failure notice
Date: {date}
Message-ID: {mid}

Hi. This is the qmail-send program at mail.atelier-lyon.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Subject: {orig}

We have received your request.
"""

DELAY = """
Return-Path: <>
From: MAILER-DAEMON@mx1.logistika-ostrava.example (Mail Delivery System)
To: support@support.example.com
Subject: Delayed Mail (still being retried)
Date: {date}
Message-ID: {mid}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B5"

--B5
Content-Type: text/plain

This is the mail system at host mx1.logistika-ostrava.example.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

<{rcpt}>: connect to mail.logistika-ostrava.example[203.0.113.9]:25: Connection timed out

--B5
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.logistika-ostrava.example

Final-Recipient: rfc822; {rcpt}
Action: delayed
Status: 4.4.1

--B5--
"""


def bounces() -> None:
    """Delivery reports from several MTAs: auto_generated=yes."""
    for name, template, rcpt, orig, note in (
        (
            "dsn-postfix",
            POSTFIX,
            "j.doe@northwind-freight.example",
            "[T-1001] Re: Invoices",
            "Postfix multipart/report, Return-Path <>",
        ),
        (
            "dsn-postfix-urgent-orig",
            POSTFIX,
            "ops@northwind-freight.example",
            "[T-1002] Re: URGENT: depot scanners offline",
            "Postfix; the returned original's subject says URGENT: not this sender's marker",
        ),
        (
            "dsn-exim",
            EXIM,
            "omar.h@gulf-trading.example",
            "[T-1003] Re: Sync with ERP",
            "Exim plain-text bounce, X-Failed-Recipients",
        ),
        (
            "dsn-exchange",
            EXCHANGE,
            "d.jones@contoso-health.example",
            "[T-1004] Re: Account locked",
            "Exchange/Outlook NDR, From postmaster, no Return-Path",
        ),
        (
            "dsn-exchange-urgent",
            EXCHANGE,
            "p.raman@contoso-health.example",
            "[T-1005] Re: Urgent: booking page",
            "Exchange NDR 'Undeliverable: ...Urgent...': echo of the original subject",
        ),
        (
            "dsn-gmail",
            GMAIL,
            "carlos.ruiz.madrid@gmail.example",
            "[T-1006] Re: Seats",
            "Gmail DSN from mailer-daemon@googlemail.com",
        ),
        (
            "dsn-sendmail",
            SENDMAIL,
            "lucy@hughes-legal.example",
            "[T-1007] Re: Payment failed",
            "Sendmail 'Returned mail: see transcript', mailbox full",
        ),
        (
            "dsn-qmail",
            QMAIL,
            "sophie@atelier-lyon.example",
            "[T-1008] Re: Merci!",
            "qmail 'failure notice', no multipart/report, no Auto-Submitted",
        ),
        (
            "dsn-delay-warning",
            DELAY,
            "petr.svoboda@logistika-ostrava.example",
            "[T-1009] Re: Faktura",
            "Postfix delay warning (4.4.1), not a failure",
        ),
    ):
        raw(
            name,
            template.replace("{rcpt}", rcpt).replace("{orig}", orig),
            L("no", auto="yes", notes=note),
        )


def bulk_and_machines() -> None:
    """Lists, newsletters and machine notifications: auto_generated=yes."""
    mail(
        "list-id-newsletter",
        "Cloud Weekly <news@cloudweekly.example>",
        "Cloud Weekly #212: Kubernetes costs, SLAs and more",
        "This week: how to read an SLA, 99.9% vs 99.99% uptime, and service credits.\n\n"
        "Unsubscribe: https://cloudweekly.example/u/abc",
        L(
            "no",
            auto="yes",
            notes="newsletter mentioning uptime/service credits; List-Id, List-Unsubscribe",
        ),
        extra=(
            ("List-Id", "Cloud Weekly <weekly.cloudweekly.example>"),
            ("List-Unsubscribe", "<https://cloudweekly.example/u/abc>"),
            ("Precedence", "bulk"),
        ),
    )
    mail(
        "list-mailman-question",
        "Jiri Horak <jiri@opensource.example>",
        "[users] How do I configure SAML?",
        "Hi all, how do I configure SAML with the on-prem version? Thanks.\n\n"
        "_______________________________________________\nusers mailing list\n"
        "users@lists.opensource.example",
        L(
            "no",
            "-",
            "4",
            "question",
            auto="yes",
            notes="a real question, but list traffic: auto_generated by List-Id",
        ),
        extra=(
            ("List-Id", "<users.lists.opensource.example>"),
            ("Precedence", "list"),
            ("List-Post", "<mailto:users@lists.opensource.example>"),
        ),
    )
    mail(
        "bulk-vendor-urgent-update",
        "Security Team <security@vendor-updates.example>",
        "Urgent security update available for your firewall",
        "A critical vulnerability affects firmware 7.2. Please update your devices.",
        L(
            "yes",
            auto="yes",
            notes="bulk mail with the word Urgent in its own subject: marker yes, machine mail",
        ),
        extra=(
            ("Precedence", "bulk"),
            ("List-Unsubscribe", "<mailto:unsub@vendor-updates.example>"),
        ),
    )
    mail(
        "machine-monitoring-critical",
        "Nagios <nagios@monitor.northwind-freight.example>",
        "** PROBLEM Service Alert: api-gw/HTTP is CRITICAL **",
        "***** Nagios *****\n\nNotification Type: PROBLEM\nService: HTTP\nHost: api-gw\n"
        "State: CRITICAL\nInfo: HTTP CRITICAL - Socket timeout after 10 seconds\n",
        L("no", auto="yes", notes="machine alert about an outage; no human request"),
        extra=(("Auto-Submitted", "auto-generated"),),
    )
    mail(
        "machine-jira",
        "Jira <jira@northwind-freight.example>",
        "[JIRA] (OPS-881) Export to PDF fails",
        "Mark Thompson updated OPS-881: Status changed from Open to In Progress.",
        L("no", auto="yes", notes="issue-tracker notification"),
        extra=(("Auto-Submitted", "auto-generated"), ("Precedence", "bulk")),
    )
    mail(
        "machine-noreply-receipt",
        "Payments <no-reply@payments.example>",
        "Your receipt from Vendor s.r.o. #2041-7731",
        "Receipt #2041-7731\nAmount paid: EUR 1,200.00\nDate paid: 2 September 2024",
        L("no", auto="yes", notes="payment processor receipt, X-Mailer bulk"),
        extra=(("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")),
    )
    mail(
        "spam-urgent-transfer",
        "Mr. James Okoro <j.okoro@lottery-winner.example>",
        "URGENT BUSINESS PROPOSAL",
        "Dear friend, I have an urgent and confidential business proposal worth USD 15M. "
        "Reply with your bank details.",
        L("yes", auto="yes", notes="spam with the marker in its own text"),
        extra=(("X-Spam-Flag", "YES"), ("X-Spam-Status", "Yes, score=14.2")),
    )
    mail(
        "spam-seo",
        "SEO Expert <rank@seo-top.example>",
        "Page 1 of Google in 30 days",
        "Hi, your website is not ranking. We can get you to page 1 of Google.",
        L("no", auto="yes", notes="spam"),
        extra=(("Precedence", "junk"),),
    )
    mail(
        "machine-github",
        "GitHub <notifications@github.example>",
        "[acme/sdk] Fix retry on 503 (PR #88)",
        "@omar requested your review on: acme/sdk#88.\n\nReply to this email directly or "
        "view it on GitHub.",
        L("no", auto="yes", notes="code-host notification with List-Id"),
        extra=(
            ("List-Id", "acme/sdk <sdk.acme.github.example>"),
            ("List-Unsubscribe", "<mailto:unsub@github.example>"),
            ("Precedence", "list"),
        ),
    )
    mail(
        "machine-calendar",
        "Calendar <calendar-notification@calendar.example>",
        "Reminder: Quarterly review @ Thu 5 Sep 2024 14:00",
        "This is a reminder for the event: Quarterly review.",
        L("no", auto="yes", notes="calendar reminder"),
        extra=(("Auto-Submitted", "auto-generated"),),
    )


def chats() -> None:
    """One-liners from chat channels, wrapped in the smallest mail (see README)."""
    for name, channel, handle, text, labels in (
        (
            "chat-app-down-urgent",
            "whatsapp",
            "420777123456",
            "app down!!! urgent",
            L("yes", "-", "1", "outage"),
        ),
        (
            "chat-reset-password",
            "telegram",
            "tg-5512093",
            "hi how do i reset my password",
            L("no", "-", "4", "question"),
        ),
        (
            "chat-cant-login-all",
            "whatsapp",
            "447700900123",
            "is the system down? none of us can login since 9",
            L("no", "-", "1", "outage"),
        ),
        (
            "chat-invoice-vat",
            "sms",
            "971501234567",
            "invoice 2024-0932 has wrong VAT number pls fix",
            L("no", "-", "4", "account_billing"),
        ),
        ("chat-thanks", "telegram", "tg-7781", "thx all good now 👍", L("no")),
        (
            "chat-de-dringend",
            "whatsapp",
            "4915112345678",
            "Dringend: Server antwortet nicht",
            L("yes", "-", "1", "outage"),
        ),
        (
            "chat-cs-nalehave",
            "whatsapp",
            "420603111222",
            "nejde mi přihlášení, je to naléhavé",
            L("yes", "-", "3", "error", notes="single user"),
        ),
        (
            "chat-dark-mode",
            "telegram",
            "tg-99001",
            "can you add dark mode pls",
            L("no", "-", "4", "feature_request"),
        ),
        (
            "chat-outage-lost-work",
            "web",
            "web-form-3341",
            "when will the outage be fixed?? we lost 2 hours of work already",
            L("no", "-", "1", "outage"),
        ),
        (
            "chat-not-urgent",
            "sms",
            "420777000111",
            "not urgent - can u call me tomorrow about our contract renewal",
            L("no", "-", "4", "account_billing"),
        ),
        (
            "chat-urgent-caps-call",
            "telegram",
            "tg-4410",
            "URGENT pls call me back, invoices not sending for whole team",
            L("yes", "-", "2", "error"),
        ),
        (
            "chat-slow",
            "whatsapp",
            "447700900555",
            "dashboard slow today but works",
            L("no", "-", "3", "error"),
        ),
        ("chat-hello", "web", "web-form-3342", "hello?", L("no")),
        (
            "chat-sev1",
            "web",
            "web-form-3343",
            "Sev1 - signing service offline for everyone",
            L("no", "-", "1", "outage", notes="Sev1 written"),
        ),
        (
            "chat-credit",
            "telegram",
            "tg-1200",
            "we had 5h downtime last month, below 99.9% uptime - how do we claim service credits?",
            L("no", "-", "4", "service_credit"),
        ),
    ):
        chat(name, channel, handle, text, labels)


def main() -> None:
    for section in (
        urgent_markers,
        priorities,
        quoted_and_signatures,
        negations,
        severity_levels,
        categories,
        headers_and_html,
        out_of_office,
        bounces,
        bulk_and_machines,
        chats,
    ):
        section()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    for name, data in FILES.items():
        (OUT / f"{name}.eml").write_bytes(data)
    lines = LABELS.read_text(encoding="utf-8").splitlines()[1:]
    kept = [line.split("\t") for line in lines if not line.startswith("synthetic/")]
    rows = kept + ROWS
    for row in rows:  # a TSV without quoting: no field may hold a TAB or a line break
        assert len(row) == len(COLUMNS) and not any(set(f) & {"\t", "\n", "\r"} for f in row)
    text = "".join("\t".join(row) + "\n" for row in [COLUMNS, *rows])
    LABELS.write_text(text, encoding="utf-8", newline="")
    print(f"wrote {len(FILES)} synthetic messages; labels.tsv has {len(rows)} rows")


if __name__ == "__main__":
    main()
