"""What the administrative commands do: import and list contacts, list and show tickets.

Each function takes an open `Storage` and returns plain data; `intake.cli.main` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from intake.cli.app import Storage
from intake.contacts.file import ContactsFileError, OrganizationRecord, read_contacts_file
from intake.desk.views import message_json, ticket_json
from intake.errors import InputRefusedError
from intake.pipeline import references
from intake.policy.files import load_policy
from storage import contacts, tickets
from storage.models import Contact


@dataclass(frozen=True, slots=True)
class ImportSummary:
    organizations: int
    contacts: int
    changed: int


def check_against_policies(
    records: tuple[OrganizationRecord, ...], source: str, default_policy: str
) -> None:
    """Each organization's plan must exist in its policy (a policy file is loaded here)."""
    for org in records:
        policy = load_policy(org.policy or default_policy)
        if org.plan not in policy.plans:
            known = ", ".join(policy.plans)
            raise ContactsFileError(
                source, org.line, f"plan {org.plan!r} is not in policy {policy.name!r} ({known})"
            )


async def import_contacts(
    storage: Storage, path: Path, *, default_policy: str, default_region: str | None
) -> ImportSummary:
    """Import a contacts file in one transaction; importing it again changes nothing."""
    records = read_contacts_file(path, default_region=default_region)
    check_against_policies(records, str(path), default_policy)
    changed = 0
    async with storage.sessions.begin() as session:
        for org in records:
            org_id, org_changed = await contacts.upsert_organization(
                session,
                name=org.name,
                plan=org.plan,
                policy=org.policy,
                support_start=org.support_start,
                region=org.region,
                domains=org.domains,
            )
            changed += org_changed
            for person in org.contacts:
                changed += await contacts.upsert_contact(
                    session,
                    org_id,
                    name=person.name,
                    email=person.email,
                    phone=person.phone,
                    telegram=person.telegram,
                    role=str(person.role),
                )
            await _check_designated_limit(session, org, org_id, str(path), default_policy)
    return ImportSummary(len(records), sum(len(o.contacts) for o in records), changed)


async def _check_designated_limit(
    session: Any, org: OrganizationRecord, org_id: int, source: str, default_policy: str
) -> None:
    # Counted in the database, so contacts imported earlier count too (Scalr: 2 or 8).
    plan = load_policy(org.policy or default_policy).plans[org.plan]
    if plan.designated_limit is None:
        return
    count = await session.scalar(
        select(func.count(Contact.id)).where(
            Contact.organization_id == org_id, Contact.role == "designated"
        )
    )
    if count > plan.designated_limit:
        raise ContactsFileError(
            source,
            org.line,
            f"{org.name} would have {count} designated contacts; plan {org.plan} allows "
            f"{plan.designated_limit}",
        )


async def list_contacts(storage: Storage) -> list[dict[str, Any]]:
    async with storage.sessions() as session:
        rows = await contacts.list_organizations(session)
    return [
        {
            "organization": org.name,
            "plan": org.plan,
            "policy": org.policy,
            "support_start": org.support_start.isoformat() if org.support_start else None,
            "region": org.region,
            "domains": list(org.domains),
            "contacts": [
                {
                    "name": c.name,
                    "email": c.email,
                    "phone": c.phone,
                    "telegram": c.telegram,
                    "role": c.role,
                }
                for c in org.contacts
            ],
        }
        for org in rows
    ]


async def list_ticket_rows(
    storage: Storage, *, only_open: bool, overdue_at: datetime | None
) -> list[dict[str, Any]]:
    async with storage.sessions() as session:
        found = await tickets.list_tickets(session, only_open=only_open, overdue_at=overdue_at)
    return [ticket_json(t) for t in found]


async def show_ticket(storage: Storage, reference: str) -> dict[str, Any]:
    ticket_id = references.parse_reference(reference)
    if ticket_id is None:
        raise InputRefusedError(f"{reference!r} is not a ticket reference like SUP-000123")
    async with storage.sessions() as session:
        found = await tickets.list_tickets(
            session, only_open=False, overdue_at=None, ticket_id=ticket_id
        )
        if not found:
            raise InputRefusedError(f"no ticket {reference}")
        messages = await tickets.ticket_messages(session, ticket_id)
        decision = await tickets.ticket_decision(session, ticket_id)
    shown = ticket_json(found[0])
    shown["decision"] = decision
    shown["messages"] = [message_json(m) for m in messages]
    return shown
