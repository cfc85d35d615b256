"""Endorsement requests waiting for their organization's digest, and claiming a digest.

Repository functions take the session first and return plain dataclasses, never ORM rows.
Whether a request may be listed, and what the digest says, is `intake.outbox`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import EndorsementRequest, Organization


@dataclass(frozen=True, slots=True)
class PendingEndorsement:
    ticket_id: int
    requester: str
    channel: str
    subject: str  # "" when it must not be quoted
    created_at: datetime


async def add_request(
    session: AsyncSession,
    *,
    organization_id: int,
    ticket_id: int,
    requester: str,
    channel: str,
    subject: str,
    now: datetime,
) -> None:
    await session.execute(
        insert(EndorsementRequest).values(
            organization_id=organization_id,
            ticket_id=ticket_id,
            requester=requester[:320],
            channel=channel,
            subject=subject,
            created_at=now,
        )
    )


async def organizations_waiting(session: AsyncSession) -> list[int]:
    """Organizations with requests no digest has covered yet."""
    rows = await session.scalars(
        select(EndorsementRequest.organization_id)
        .where(EndorsementRequest.digest_at.is_(None))
        .distinct()
        .order_by(EndorsementRequest.organization_id)
    )
    return list(rows)


async def claim_digest(
    session: AsyncSession, organization_id: int, *, now: datetime, period: timedelta
) -> list[PendingEndorsement]:
    """The organization's waiting requests, oldest first, marked as covered at `now`; none
    when its last digest is less than `period` old.

    The organization's row is locked first (PostgreSQL), so nodes that run this together
    make one digest, not two; SQLite has one writer at a time anyway.
    """
    await session.execute(
        select(Organization.id).where(Organization.id == organization_id).with_for_update()
    )
    last = await session.scalar(
        select(func.max(EndorsementRequest.digest_at)).where(
            EndorsementRequest.organization_id == organization_id
        )
    )
    if last is not None and last > now - period:
        return []
    waiting = (
        await session.scalars(
            select(EndorsementRequest)
            .where(
                EndorsementRequest.organization_id == organization_id,
                EndorsementRequest.digest_at.is_(None),
            )
            .order_by(EndorsementRequest.id)
        )
    ).all()
    if not waiting:
        return []
    await session.execute(
        update(EndorsementRequest)
        .where(EndorsementRequest.id.in_([w.id for w in waiting]))
        .values(digest_at=now)
    )
    return [
        PendingEndorsement(w.ticket_id, w.requester, w.channel, w.subject, w.created_at)
        for w in waiting
    ]
