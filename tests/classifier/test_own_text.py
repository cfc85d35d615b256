"""The request's own text: quotes, attributions, signatures and disclaimers removed."""

from __future__ import annotations

import pytest

from classifier import own_text
from classifier.text import split_text


@pytest.mark.parametrize(
    ("text", "own"),
    [
        ("Portal is down.", "Portal is down."),
        ("", ""),
        ("Line one\r\nline two\r", "Line one\nline two"),
        ("Cafe\u0301 broken", "Caf\u00e9 broken"),  # NFC
        # quoted replies
        ("Still broken.\n> old text\n>> older\n", "Still broken."),
        (
            "Fixed, thanks.\n\nOn Mon, 11 Mar 2024 at 10:00, Support <s@example.com> wrote:\n"
            "> Try again\n",
            "Fixed, thanks.",
        ),
        (
            "Fixed.\n\nOn Mon, 11 Mar 2024 at 10:00, Support Team <support@example.com>\n"
            "wrote:\n> x\n",
            "Fixed.",
        ),
        (
            "Answer below.\n\nOn 11 Mar 2024, S <s@x.com> wrote:\n> When?\nYesterday.\n",
            "Answer below.\n\n\nYesterday.",
        ),
        ("Reply.\n\n> On Mon, 11 Mar 2024, A <a@x.com> wrote:\n>> old\n", "Reply."),
        ("Díky.\n\nDne 11. 3. 2024 v 10:00 Podpora <p@x.cz> napsal(a):\n> text\n", "Díky."),
        ("Danke.\n\nAm 11.03.2024 um 10:00 schrieb Support <s@x.de>:\n> Text\n", "Danke."),
        ('Hello\n02.04.2012 14:20 пользователь "b@x.org" <\nb@x.org> написал:\n> x\n', "Hello"),
        ("Merci.\n\nLe 11 mars 2024 à 10:00, S <s@x.fr> a écrit :\n> texte\n", "Merci."),
        # an attribution that introduces unquoted text ends the own text
        ("See below.\n\nOn Mon, 11 Mar 2024, Bob <b@x.com> wrote:\nOld text\n", "See below."),
        # "wrote:" without a date or address is the sender's own
        ("My colleague wrote:\nthe export fails", "My colleague wrote:\nthe export fails"),
        # Outlook headers and separators
        (
            "Hi,\nportal broken.\n\nFrom: Support <s@x.com>\nSent: Monday, March 11, 2024\n"
            "To: Jan\nSubject: RE: x\n\nold",
            "Hi,\nportal broken.",
        ),
        ("Hallo.\n\nVon: Support\nGesendet: Montag\nAn: Jan\nBetreff: x\n\nalt", "Hallo."),
        (
            "Dobrý den.\n\nOd: Podpora\nOdesláno: pondělí\nKomu: Jan\nPředmět: x\n\nstaré",
            "Dobrý den.",
        ),
        ("Hi.\n\n-----Original Message-----\nFrom: a\nold", "Hi."),
        ("Hi.\n\n-------- Původní zpráva --------\nold", "Hi."),
        ("Hi.\n\n---------- Forwarded message ---------\nFrom: a\nold", "Hi."),
        ("FYI\n\nBegin forwarded message:\n\nFrom: a\nold", "FYI"),
        ("Hi.\n\n________________________________\nFrom: a\nold", "Hi."),
        # signatures and sign-offs
        ("Broken.\n\n-- \nJan Novak\nFor urgent matters call +420", "Broken."),
        ("Broken.\n\nBest regards,\nJan", "Broken."),
        ("Nefunguje to.\n\nS pozdravem\nJan", "Nefunguje to."),
        ("Geht nicht.\n\nMit freundlichen Grüßen\nHans", "Geht nicht."),
        (
            "Thanks,\nthe export is broken.",
            "Thanks,\nthe export is broken.",
        ),  # a greeting, not a sign-off
        ("Broken.\n\nSent from my iPhone", "Broken."),
        ("Nejde to.\n\nOdesláno z iPhonu", "Nejde to."),
        # disclaimers
        (
            "Broken.\n\nThis e-mail and any attachments are confidential and intended solely "
            "for the addressee.",
            "Broken.",
        ),
        ("Broken.\n\nCONFIDENTIALITY NOTICE: the information ...", "Broken."),
        ("Broken.\n\nIf you are not the intended recipient, delete this.", "Broken."),
        ("Nejde to.\n\nTento e-mail je důvěrný a je určen pouze adresátovi.", "Nejde to."),
        ("Geht nicht.\n\nDiese E-Mail enthält vertrauliche Informationen.", "Geht nicht."),
        ("This message is urgent!", "This message is urgent!"),  # not a disclaimer
        # gateway banners above the text
        (
            "CAUTION: This email originated from outside of the organization.\nPortal down.",
            "Portal down.",
        ),
    ],
)
def test_own_text(text: str, own: str) -> None:
    assert own_text(text) == own


@pytest.mark.parametrize(
    ("text", "own", "footer"),
    [
        ("Portal is down.", "Portal is down.", ""),
        # signature and disclaimer: the footer, up to quoted or forwarded mail
        (
            "Export fails.\n\nRegards\nAnna\n\nConfidentiality notice: private.\n\n"
            "-----Original Message-----\nFrom: S\nOld text",
            "Export fails.",
            "Regards\nAnna\n\nConfidentiality notice: private.",
        ),
        ("Fixed.\n--\nJan\n> quoted\nUnsubscribe", "Fixed.", "--\nJan\nUnsubscribe"),
        (
            "See below.\n\nOn Mon, 11 Mar 2024, Bob <b@x.com> wrote:\nOld text",
            "See below.",
            "",
        ),
        ("x\n\n--\n" + "y" * 5000, "x", "y" * 4096),
    ],
)
def test_split_text(text: str, own: str, footer: str) -> None:
    assert split_text(text) == (own, footer)
