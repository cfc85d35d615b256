"""The set-based reads of a group-commit batch answer what the one-at-a-time reads answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intake.cli.app import Storage
from intake.messages import ChannelKind, InboundMessage
from storage import contacts, outbox, suppressions, tickets

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


async def seed(storage: Storage) -> None:
    async with storage.sessions.begin() as session:
        for name, domains in (("Acme", ("acme.example",)), ("Acme Mail", ("mail.acme.example",))):
            org, _ = await contacts.upsert_organization(
                session, name=name, plan="plus", policy=None, support_start=None, region=None,
                domains=domains,
            )  # fmt: skip
        await contacts.upsert_contact(
            session, org, name="Bob", email="bob@acme.example", phone="+420601123456",
            telegram="777", role="user",
        )  # fmt: skip


async def test_senders_and_domains_match_as_one_at_a_time(storage: Storage) -> None:
    await seed(storage)
    keys = [
        ("email", "bob@acme.example"),
        ("phone", "+420601123456"),
        ("telegram", "777"),
        ("telegram", "+420601123456"),  # a phone is not a Telegram id
        ("email", "nobody@acme.example"),
    ]
    domains = ["acme.example", "mail.acme.example", "eu.mail.acme.example", "other.example", "x"]
    async with storage.sessions() as session:
        many = await contacts.match_senders(session, keys)
        one = {k: await contacts.match_sender(session, *k) for k in keys}
        assert {k: v for k, v in one.items() if v is not None} == many
        assert set(many) == set(keys[:3])
        by_domain = await contacts.match_domains(session, domains)
        for domain in domains:
            assert by_domain.get(domain) == await contacts.match_domain(session, domain)
        # The most specific domain wins.
        assert by_domain["eu.mail.acme.example"].organization.name == "Acme Mail"
        assert set(by_domain) == set(domains[:3])


async def test_message_keys_threads_suppressions_and_counts(storage: Storage) -> None:
    await seed(storage)
    async with storage.sessions.begin() as session:
        first = await tickets.insert_ticket(
            session, channel="email", sender="bob@acme.example", reply_to="bob@acme.example",
            subject="One", status="open", contact_status="known", policy="circularo-saas",
            priority="normal", category="other", urgent=False, flags=[], received_at=NOW,
            last_message_at=NOW, decision={},
        )  # fmt: skip
        second = await tickets.insert_ticket(
            session, channel="email", sender="bob@acme.example", reply_to="bob@acme.example",
            subject="Two", status="open", contact_status="known", policy="circularo-saas",
            priority="normal", category="other", urgent=False, flags=[], received_at=NOW,
            last_message_at=NOW, decision={},
        )  # fmt: skip
        for ticket_id, key in ((first, "a@x"), (second, "b@x")):
            message = InboundMessage(
                channel=ChannelKind.EMAIL, channel_message_id=key, rfc_message_id="same@x",
                received_at=NOW, sender="bob@acme.example",
            )  # fmt: skip
            await tickets.insert_message(session, ticket_id, message)
        await suppressions.suppress(
            session, "Bob@Acme.example", "5.1.1", until=NOW + timedelta(days=1), now=NOW
        )
        for minutes in (90, 30, 10):
            await outbox.enqueue(
                session, ticket_id=first, kind="ack", channel="email",
                recipient="bob@acme.example", payload={}, now=NOW - timedelta(minutes=minutes),
            )  # fmt: skip
    async with storage.sessions() as session:
        keys = [("email", "a@x"), ("email", "b@x"), ("sms", "a@x"), ("email", "c@x")]
        assert await tickets.tickets_of_messages(session, keys) == {
            ("email", "a@x"): first,
            ("email", "b@x"): second,
        }
        newest = await tickets.newest_tickets_by_message_ids(session, ["same@x", "none@x"])
        assert newest == {"same@x": second}
        one = await tickets.ticket_by_message_ids(session, ["same@x"])
        assert one is not None and one.id == second
        until = await suppressions.suppressed_until(session, ["BOB@acme.example", "eve@x"])
        assert set(until) == {"bob@acme.example"}
        since = NOW - timedelta(hours=1)
        counts = await outbox.notices_to_each(session, ["bob@acme.example", "eve@x"], since)
        assert counts == {"bob@acme.example": 2}
        assert await outbox.notices_to(session, "bob@acme.example", since) == 2
