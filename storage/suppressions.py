"""Addresses that get no automatic mail for a while (they bounced hard)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Suppression


async def suppress(
    session: AsyncSession, address: str, reason: str, *, until: datetime, now: datetime
) -> None:
    row = await session.get(Suppression, address.lower())
    if row is None:
        session.add(
            Suppression(address=address.lower(), reason=reason[:2000], until=until, created_at=now)
        )
    elif row.until < until:
        row.until, row.reason = until, reason[:2000]
    await session.flush()


async def is_suppressed(session: AsyncSession, address: str, now: datetime) -> bool:
    until = await session.scalar(
        select(Suppression.until).where(Suppression.address == address.lower())
    )
    return until is not None and until > now


async def suppressed_until(session: AsyncSession, addresses: list[str]) -> dict[str, datetime]:
    """Until when each of these (lower-cased) addresses is suppressed; others are left out."""
    if not addresses:
        return {}
    rows = await session.execute(
        select(Suppression.address, Suppression.until).where(
            Suppression.address.in_({a.lower() for a in addresses})
        )
    )
    return {address: until for address, until in rows.all()}
