"""The nominated contact's inbox (issue 16, item 11): 300 mails from 300 colleagues at a
customer's domain, over real SMTP, make one endorsement digest per period, listing only
senders that passed authentication or are contacts of ours, and quoting only those that
passed. DNS is a dict (no real DNS, ever)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiosmtplib
from forgery import Zone, key, mail, seed, signed
from pipelines import make_pipeline
from sqlalchemy import select

from channels.email.sender_checks import SenderChecks
from channels.email.smtp import SmtpChannel
from intake.cli.app import Storage
from intake.config import SmtpSettings
from intake.outbox.endorsements import EndorsementDigests
from storage.models import Outbox, Ticket

START = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


async def endorsements_to_alice(storage: Storage) -> list[Outbox]:
    async with storage.sessions() as session:
        return list(
            await session.scalars(
                select(Outbox)
                .where(Outbox.recipient == "alice@acme.example", Outbox.kind == "endorse")
                .order_by(Outbox.id)
            )
        )


async def test_300_colleagues_make_a_handful_of_mails_to_the_nominated_contact(
    storage: Storage,
) -> None:
    await seed(storage)  # Acme (plus): Alice nominated, Bob a user; email needs a nominee
    zone = Zone()
    zone.publish_dkim("acme.example", key("acme"))
    # No DMARC record: unsigned mail is unproven ("none"), not failed; signed mail passes.
    now = [START]
    pipeline = make_pipeline(storage, clock=lambda: now[0], notify_emails=())
    digests = EndorsementDigests(
        storage.sessions, pipeline.notifier, period=timedelta(minutes=15), max_entries=20
    )
    channel = SmtpChannel(
        SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"]),
        clock=lambda: now[0],
        sender_checks=SenderChecks(verify_dkim=True, txt=zone.txt, spf_lookup=zone.spf_lookup),
    )
    await channel.start(pipeline)
    try:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port) as client:
            # Bob is a contact of ours, but unsigned: listed, his words not quoted.
            bob = mail("bob@acme.example", "Bob's unverified words").as_bytes()
            await client.sendmail("bob@acme.example", ["support@support.example.com"], bob)
            for n in range(300):
                sender = f"colleague{n}@acme.example"
                if n % 2 == 0:  # signed by acme.example: authenticated colleagues
                    raw = signed(mail(sender, f"Signed request {n}"), "acme.example", key("acme"))
                else:  # anyone can write these: never named to Alice
                    raw = mail(sender, f"Forged request {n} buy pills").as_bytes()
                await client.sendmail(sender, ["support@support.example.com"], raw)
        async with storage.sessions() as session:
            tickets = list(await session.scalars(select(Ticket)))
        assert len(tickets) == 301 and all("not_nominated" in t.flags for t in tickets)
        assert await endorsements_to_alice(storage) == []  # nothing per message any more

        assert await digests.run_once() == 1
        assert await digests.run_once() == 0  # the period has not passed
        [digest] = await endorsements_to_alice(storage)
        text = digest.payload["text"]
        assert "151 support requests from Acme" in digest.payload["subject"]
        assert text.count("SUP-") == 20 and "... and 131 more." in text
        assert "Signed request 0" in text  # the oldest first, quoted: it passed
        assert "Forged" not in text and "pills" not in text

        [bob_line] = [line for line in text.splitlines() if "Bob" in line]
        assert bob_line.endswith("Bob by email")  # listed, nothing he wrote quoted

        # Later, one more signed colleague: after the period, the next digest.
        now[0] = START + timedelta(minutes=5)
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=channel.port) as client:
            late = signed(mail("late@acme.example", "A late request"), "acme.example", key("acme"))
            await client.sendmail("late@acme.example", ["support@support.example.com"], late)
        assert await digests.run_once() == 0  # 5 minutes after the last digest
        now[0] = START + timedelta(minutes=15)
        assert await digests.run_once() == 1
        assert await digests.run_once() == 0
    finally:
        await channel.stop()
    first, second = await endorsements_to_alice(storage)
    assert "A late request" in second.payload["text"]
    assert second.payload["subject"].endswith("Please confirm a support request")
    # Over the flood: two mails to Alice in all, and Bob's words in neither.
    assert all("unverified words" not in o.payload["text"] for o in (first, second))
