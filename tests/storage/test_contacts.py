"""The contacts repository: re-importing a file keeps what the bots learned."""

from __future__ import annotations

from sqlalchemy import select

from intake.cli.app import Storage
from storage import contacts
from storage.models import Contact


async def test_reimport_keeps_a_telegram_link_the_file_does_not_name(storage: Storage) -> None:
    async with storage.sessions.begin() as session:
        org, _ = await contacts.upsert_organization(
            session,
            name="Acme",
            plan="plus",
            policy=None,
            support_start=None,
            region=None,
            domains=("acme.example",),
        )
        await contacts.upsert_contact(
            session,
            org,
            name="Bob",
            email="bob@acme.example",
            phone="+420601123456",
            telegram=None,
            role="user",
        )
    async with storage.sessions.begin() as session:  # the bot links Bob's Telegram account
        bob = await session.scalar(select(Contact))
        assert bob is not None
        bob.telegram = "777"
    async with storage.sessions.begin() as session:  # the file, imported again at start
        changed = await contacts.upsert_contact(
            session,
            org,
            name="Bob",
            email="bob@acme.example",
            phone="+420601123456",
            telegram=None,
            role="user",
        )
    async with storage.sessions() as session:
        bob = await session.scalar(select(Contact))
    assert bob is not None and bob.telegram == "777" and not changed
