"""Who wrote: matching a sender to a contact, or to an organization by its mail domain."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from intake.contacts.values import normalize_email, normalize_phone, normalize_telegram
from intake.messages import InboundMessage
from intake.pipeline.batch_reads import BatchReads
from intake.pipeline.decide import ContactStatus, Identity
from storage import contacts
from storage.contacts import Match


async def identify(session: AsyncSession, message: InboundMessage) -> Identity:
    """Match the sender to a contact, or to an organization by its mail domain."""
    match = await _match(session, message)
    if match is None:
        return Identity(ContactStatus.UNIDENTIFIED)
    org, contact = match.organization, match.contact
    status = ContactStatus.KNOWN
    if contact is not None and contact.role in (ContactStatus.NOMINATED, ContactStatus.DESIGNATED):
        status = contact.role
    return Identity(
        status=status,
        organization_id=org.id,
        organization=org.name,
        plan=org.plan,
        policy=org.policy,
        region=org.region,
        support_start=org.support_start,
        contact_id=contact.id if contact else None,
        contact_name=contact.name if contact else None,
        matched_by=match.matched_by,
    )


def _normalized(column: str, value: str) -> str:
    """The stored form of an identifier (E.164, IDNA mail domain), or the value as given."""
    try:
        if column == "phone":
            return normalize_phone(value)
        if column == "email":
            return normalize_email(value)
        return normalize_telegram(value)
    except ValueError:
        return value.lower()


def candidates(message: InboundMessage) -> list[tuple[str, str]]:
    """What to look the sender up by, most specific first."""
    sender = message.sender
    if sender.startswith("tg:"):
        candidates = [("telegram", sender[3:])]
        username = message.extra.get("telegram_username")
        if isinstance(username, str) and username:
            candidates.append(("telegram", username))
    elif "@" in sender:
        candidates = [("email", sender)]
    else:
        candidates = [("phone", sender)]
    for key in ("email", "phone"):  # facts a form or a shared contact card added
        value = message.extra.get(key)
        if isinstance(value, str) and value:
            candidates.append((key, value))
    return [(column, _normalized(column, value)) for column, value in candidates]


def mail_domains(keys: list[tuple[str, str]]) -> list[str]:
    """The mail domains of `candidates`, in the same order."""
    return [
        value.rpartition("@")[2] for column, value in keys if column == "email" and "@" in value
    ]


async def _match(session: AsyncSession, message: InboundMessage) -> Match | None:
    keys = candidates(message)
    reads = BatchReads.of(session)  # read up front for the whole batch, if there is one
    for column, value in keys:
        if reads is not None:
            match = reads.senders.get((column, value))
        else:
            match = await contacts.match_sender(session, column, value)
        if match is not None:
            return match
    for domain in mail_domains(keys):
        if reads is not None:
            match = reads.domains.get(domain)
        else:
            match = await contacts.match_domain(session, domain)
        if match is not None:
            return match
    return None
