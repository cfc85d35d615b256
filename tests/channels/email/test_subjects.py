"""Subjects arrive as written (issue 18): our acknowledgement, sent through a real SMTP relay
on loopback, parsed on arrival. The standard library's folding dropped the space between
two encoded words ("selhává \u2013 chyba" arrived as "selhává\u2013 chyba")."""

from __future__ import annotations

from datetime import UTC, datetime

from serving import Relay

from channels.email.smtp import SmtpReplier
from intake.config import OutboundSmtpSettings
from intake.messages import Ack, ChannelKind

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
WORDS = "Export dokumentu do PDF selhává \N{EN DASH} chyba při generování náhledu a podpisu"
# Every length of padding moves the fold to another place among the words.
SUBJECTS = [
    "[SUP-000001] Re: Export selhává \N{EN DASH} chyba",
    *(f"[SUP-000001] Re: {'x' * n} {WORDS}" for n in range(1, 70, 3)),
    f"[SUP-000002] Re: {'Žluťoučký kůň úpěl ďábelské ódy ' * 6}".strip(),
    "[SUP-000003] Re: ASCII only, but long enough to be folded by the generator at some space",
]


async def test_subjects_arrive_as_written() -> None:
    async with Relay() as relay:
        settings = OutboundSmtpSettings(host="127.0.0.1", port=relay.port)
        replier = SmtpReplier(settings, clock=lambda: NOW)
        try:
            for number, subject in enumerate(SUBJECTS, 1):
                await replier.send(
                    Ack(outbox_id=number, kind="ack", channel=ChannelKind.EMAIL,
                        to="jan@acme.example", subject=subject, text="Thank you.")
                )  # fmt: skip
        finally:
            await replier.aclose()
    arrived = [str(mail["Subject"]) for _, mail in relay.received]
    assert arrived == SUBJECTS
    for _, mail in relay.received:
        assert all(len(line) <= 78 for line in mail.as_bytes().split(b"\n"))
