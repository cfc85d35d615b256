"""The transactional outbox: notices written with their ticket, delivered afterwards.

A deliverer claims due rows under a short lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
`BEGIN IMMEDIATE` write lock on SQLite) that it renews while it works on them (`renew`), so
several nodes never pick the same row, and the rows of a deliverer that died are taken over
as soon as its lease runs out; a row is sent again only if its deliverer died mid-send.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Outbox

TABLE = cast(Table, Outbox.__table__)  # Core statements: no ORM unit of work
_C = TABLE.c
ITEM_COLUMNS = (_C.id, _C.ticket_id, _C.kind, _C.channel, _C.recipient, _C.payload, _C.attempts)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    ticket_id: int | None
    kind: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    attempts: int


async def enqueue(
    session: AsyncSession,
    *,
    ticket_id: int | None,
    kind: str,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    row = Outbox(
        **outbox_row(
            ticket_id=ticket_id,
            kind=kind,
            channel=channel,
            recipient=recipient,
            payload=payload,
            now=now,
        )
    )
    session.add(row)
    await session.flush()
    return row.id


def outbox_row(
    *,
    ticket_id: int | None,
    kind: str,
    channel: str,
    recipient: str,
    payload: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The values of a new pending notice, as `enqueue` writes it."""
    return {
        "ticket_id": ticket_id,
        "kind": kind,
        "channel": channel,
        "recipient": recipient,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def enqueue_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write many `outbox_row`s in one executemany (no ids needed back)."""
    if rows:
        await session.execute(insert(TABLE), rows)  # Core: no ORM bulk bookkeeping


async def enqueue_leased(
    session: AsyncSession, rows: list[dict[str, Any]], leased_until: datetime
) -> list[OutboxItem]:
    """Write `outbox_row`s already claimed by the caller (leased until `leased_until`, one
    attempt counted, as `claim_due` leaves a row): one executemany, the ids RETURNING."""
    if not rows:
        return []
    leased = [{**row, "leased_until": leased_until, "attempts": 1} for row in rows]
    ids = await session.scalars(
        insert(TABLE).returning(_C.id, sort_by_parameter_order=True), leased
    )
    return [
        OutboxItem(i, r["ticket_id"], r["kind"], r["channel"], r["recipient"], r["payload"], 1)
        for i, r in zip(ids.all(), leased, strict=True)
    ]


async def set_payload(session: AsyncSession, outbox_id: int, payload: dict[str, Any]) -> None:
    await session.execute(update(Outbox).where(Outbox.id == outbox_id).values(payload=payload))


async def claim_due(
    session: AsyncSession, now: datetime, lease: timedelta, limit: int
) -> list[OutboxItem]:
    """Lease up to `limit` due rows to the caller; commit the session to hold the lease.

    One statement (UPDATE ... WHERE id IN (the due rows) RETURNING): PostgreSQL skips rows
    another node is claiming (`FOR UPDATE SKIP LOCKED`); SQLite's write lock serializes.
    """
    due = (
        select(_C.id)
        .where(
            _C.status == "pending",
            _C.next_attempt_at <= now,
            or_(_C.leased_until.is_(None), _C.leased_until < now),
        )
        .order_by(_C.next_attempt_at, _C.id)
        .limit(limit)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = await session.execute(
        update(TABLE)
        .where(_C.id.in_(due.scalar_subquery()))
        .values(leased_until=now + lease, attempts=_C.attempts + 1)
        .returning(*ITEM_COLUMNS, _C.next_attempt_at)
    )
    # RETURNING promises no order: the oldest due first, as claimed.
    found = sorted(rows.all(), key=lambda r: (r.next_attempt_at, r.id))
    return [OutboxItem(*row[:7]) for row in found]


async def renew(
    session: AsyncSession, outbox_ids: list[int], held: Collection[datetime], until: datetime
) -> set[int]:
    """Extend the lease of rows still held (leased until one of `held`) to `until`; the ids
    renewed.

    A row whose lease changed meanwhile (recorded, or taken over by another deliverer after
    it ran out) is not touched and not returned: it is no longer the caller's.
    """
    if not outbox_ids:
        return set()
    rows = await session.execute(
        update(TABLE)
        .where(
            _C.id.in_(outbox_ids),
            _C.status == "pending",
            _C.leased_until.in_(held),
        )
        .values(leased_until=until)
        .returning(_C.id)
    )
    return {outbox_id for (outbox_id,) in rows.all()}


async def mark_sent(session: AsyncSession, outbox_ids: list[int], now: datetime) -> None:
    """The channel accepted these rows' notices (one statement for a pass's worth)."""
    if outbox_ids:
        await session.execute(
            update(TABLE)
            .where(_C.id.in_(outbox_ids))
            .values(status="sent", sent_at=now, leased_until=None, last_error=None)
        )


async def release(session: AsyncSession, outbox_ids: list[int], held: Collection[datetime]) -> None:
    """Give back claimed rows that were not attempted: due again at once, not one try more.
    Only rows still held (leased until one of `held`): one whose lease ran out may be
    another's now."""
    if outbox_ids:
        await session.execute(
            update(TABLE)
            .where(_C.id.in_(outbox_ids), _C.leased_until.in_(held))
            .values(leased_until=None, attempts=_C.attempts - 1)
        )


async def mark_retry(session: AsyncSession, retries: list[tuple[int, datetime, str]]) -> None:
    """(id, when, error) per row to try again later: one executemany."""
    if retries:
        await session.execute(
            update(TABLE)
            .where(_C.id == bindparam("row_id"))
            .values(
                next_attempt_at=bindparam("at"), leased_until=None, last_error=bindparam("error")
            ),
            [{"row_id": i, "at": at, "error": error[:2000]} for i, at, error in retries],
        )


async def mark_failed(session: AsyncSession, outbox_id: int, error: str) -> None:
    await session.execute(
        update(TABLE)
        .where(_C.id == outbox_id)
        .values(status="failed", leased_until=None, last_error=error[:2000])
    )


async def notices_to(session: AsyncSession, recipient: str, since: datetime) -> int:
    """How many automatic notices went (or are going) to `recipient` since `since`."""
    count = await session.scalar(
        select(func.count(Outbox.id)).where(
            Outbox.recipient == recipient,
            Outbox.kind.in_(("ack", "endorse")),
            Outbox.created_at >= since,
        )
    )
    return count or 0


async def notices_to_each(
    session: AsyncSession, recipients: list[str], since: datetime
) -> dict[str, int]:
    """`notices_to` for many recipients in one query; those with none are left out."""
    if not recipients:
        return {}
    rows = await session.execute(
        select(Outbox.recipient, func.count(Outbox.id))
        .where(
            Outbox.recipient.in_(set(recipients)),
            Outbox.kind.in_(("ack", "endorse")),
            Outbox.created_at >= since,
        )
        .group_by(Outbox.recipient)
    )
    return {recipient: count for recipient, count in rows.all()}


async def outbox_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Outbox.status, func.count(Outbox.id)).group_by(Outbox.status)
    )
    return {status: count for status, count in rows.all()}
