"""Organizations and their contacts: idempotent import, listing, and matching a sender.

Repository functions take the session first and return plain dataclasses, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Contact, Domain, Organization


@dataclass(frozen=True, slots=True)
class ContactRow:
    id: int
    name: str
    email: str | None
    phone: str | None
    telegram: str | None
    role: str


@dataclass(frozen=True, slots=True)
class OrganizationRow:
    id: int
    name: str
    plan: str
    policy: str | None
    support_start: date | None
    region: str | None
    domains: tuple[str, ...] = ()
    contacts: tuple[ContactRow, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Match:
    """A sender matched to an organization, and to one of its contacts if the address is one."""

    organization: OrganizationRow
    contact: ContactRow | None
    matched_by: str  # "email", "phone", "telegram", "domain"


def _org_row(org: Organization, domains: tuple[str, ...] = ()) -> OrganizationRow:
    return OrganizationRow(
        org.id, org.name, org.plan, org.policy, org.support_start, org.region, domains
    )


def _contact_row(contact: Contact) -> ContactRow:
    return ContactRow(
        contact.id, contact.name, contact.email, contact.phone, contact.telegram, contact.role
    )


async def upsert_organization(
    session: AsyncSession,
    *,
    name: str,
    plan: str,
    policy: str | None,
    support_start: date | None,
    region: str | None,
    domains: tuple[str, ...],
) -> tuple[int, bool]:
    """Create or update the organization named `name`; returns (id, changed)."""
    # Names match whatever their case, as the contacts file treats them.
    org = await session.scalar(
        select(Organization).where(func.lower(Organization.name) == name.lower())
    )
    changed = False
    if org is None:
        org = Organization(
            name=name, plan=plan, policy=policy, support_start=support_start, region=region
        )
        session.add(org)
        await session.flush()
        changed = True
    else:
        wanted = {"plan": plan, "policy": policy, "support_start": support_start, "region": region}
        for key, value in wanted.items():
            if getattr(org, key) != value:
                setattr(org, key, value)
                changed = True
    for domain in domains:
        row = await session.get(Domain, domain)
        if row is None:
            session.add(Domain(name=domain, organization_id=org.id))
            changed = True
        elif row.organization_id != org.id:
            row.organization_id = org.id
            changed = True
    return org.id, changed


async def upsert_contact(
    session: AsyncSession,
    organization_id: int,
    *,
    name: str,
    email: str | None,
    phone: str | None,
    telegram: str | None,
    role: str,
) -> bool:
    """Create or update the contact with this email, phone or Telegram id; True if changed.

    The same person may have been imported with fewer identifiers before, so any one of
    them finds the existing row; rows that would collide with it are merged away.
    """
    keys = [
        column == value
        for column, value in (
            (Contact.email, email),
            (Contact.phone, phone),
            (Contact.telegram, telegram),
        )
        if value is not None
    ]
    found = list(await session.scalars(select(Contact).where(or_(*keys)).order_by(Contact.id)))
    wanted = {
        "organization_id": organization_id,
        "name": name,
        "email": email,
        "phone": phone,
        "telegram": telegram,
        "role": role,
    }
    if not found:
        session.add(Contact(**wanted))
        await session.flush()
        return True
    keep, extra = found[0], found[1:]
    if extra:
        await session.execute(delete(Contact).where(Contact.id.in_([c.id for c in extra])))
        await session.flush()
    changed = bool(extra)
    if telegram is None:
        # The bot links a Telegram account when a customer shares their number; a file that
        # names no Telegram id must not undo that link.
        del wanted["telegram"]
    for key, value in wanted.items():
        if getattr(keep, key) != value:
            setattr(keep, key, value)
            changed = True
    await session.flush()
    return changed


async def list_organizations(session: AsyncSession) -> list[OrganizationRow]:
    """Every organization with its domains and contacts, by name."""
    orgs = list(await session.scalars(select(Organization).order_by(Organization.name)))
    domains: dict[int, list[str]] = {}
    for row in await session.scalars(select(Domain).order_by(Domain.name)):
        domains.setdefault(row.organization_id, []).append(row.name)
    contacts: dict[int, list[ContactRow]] = {}
    for contact in await session.scalars(select(Contact).order_by(Contact.id)):
        contacts.setdefault(contact.organization_id, []).append(_contact_row(contact))
    return [
        OrganizationRow(
            org.id,
            org.name,
            org.plan,
            org.policy,
            org.support_start,
            org.region,
            tuple(domains.get(org.id, ())),
            tuple(contacts.get(org.id, ())),
        )
        for org in orgs
    ]


async def match_sender(session: AsyncSession, column: str, value: str) -> Match | None:
    """The contact whose `column` (email, phone, telegram) is `value`, with its organization."""
    attribute = {"email": Contact.email, "phone": Contact.phone, "telegram": Contact.telegram}
    row = (
        await session.execute(
            select(Contact, Organization)
            .join(Organization, Contact.organization_id == Organization.id)
            .where(attribute[column] == value)
        )
    ).first()
    if row is None:
        return None
    contact, org = row
    return Match(_org_row(org), _contact_row(contact), column)


def _parent_domains(domain: str) -> list[str]:
    """mail.acme.cz -> [mail.acme.cz, acme.cz]: the domain and its parents, not the TLD."""
    labels = domain.lower().split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


async def match_domain(session: AsyncSession, domain: str) -> Match | None:
    """The organization owning `domain` or its nearest parent domain (mail.acme.cz -> acme.cz)."""
    return (await match_domains(session, [domain])).get(domain)


async def match_domains(session: AsyncSession, domains: list[str]) -> dict[str, Match]:
    """`match_domain` for many domains in one query; those that match none are left out."""
    wanted = {domain: _parent_domains(domain) for domain in domains}
    candidates = {name for names in wanted.values() for name in names}
    if not candidates:
        return {}
    rows = await session.execute(
        select(Domain.name, Organization)
        .join(Organization, Domain.organization_id == Organization.id)
        .where(Domain.name.in_(candidates))
    )
    owners = {name: org for name, org in rows.all()}
    found: dict[str, Match] = {}
    for domain, names in wanted.items():
        # The most specific domain wins: names run from the domain itself up to its parents.
        owner = next((owners[name] for name in names if name in owners), None)
        if owner is not None:
            found[domain] = Match(_org_row(owner), None, "domain")
    return found


async def match_senders(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Match]:
    """`match_sender` for many (column, value) keys in one query; misses are left out."""
    attribute = {"email": Contact.email, "phone": Contact.phone, "telegram": Contact.telegram}
    conditions = [
        attribute[column].in_({v for c, v in keys if c == column})
        for column in attribute
        if any(c == column for c, _ in keys)
    ]
    if not conditions:
        return {}
    rows = await session.execute(
        select(Contact, Organization)
        .join(Organization, Contact.organization_id == Organization.id)
        .where(or_(*conditions))
    )
    wanted, found = set(keys), {}
    for contact, org in rows.all():
        for column in attribute:
            key = (column, getattr(contact, column))
            if key in wanted:
                found[key] = Match(_org_row(org), _contact_row(contact), column)
    return found


async def nominated_contacts(session: AsyncSession, organization_id: int) -> list[ContactRow]:
    rows = await session.scalars(
        select(Contact)
        .where(Contact.organization_id == organization_id, Contact.role == "nominated")
        .order_by(Contact.id)
    )
    return [_contact_row(c) for c in rows]
