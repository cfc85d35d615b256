"""Twilio's delivery status callbacks, kept on the outbox row of the notice they report on.

Our status callback URL names the outbox row (`?outbox=ID`); Twilio signs that URL, so the id
is ours. The row's payload keeps the provider's message SID, the latest status by rank (the
callbacks may arrive out of order) and a short history; a final failure (`undelivered`,
`failed`) after the deliverer marked the row sent turns it `failed`, with the error code in
`last_error`, where the agents already look for notices that did not arrive.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Outbox

log = logging.getLogger(__name__)

_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "read": 5,
    "undelivered": 6,
    "failed": 6,
    "canceled": 6,
}
FAILED = frozenset({"undelivered", "failed", "canceled"})
TWILIO_CHANNELS = frozenset({"whatsapp", "sms", "voice"})
HISTORY = 20


async def record_message_status(
    session: AsyncSession,
    outbox_id: int,
    *,
    message_sid: str,
    status: str,
    error_code: str,
    at: datetime,
) -> bool:
    """Keep one status report on its outbox row; False when there is no such Twilio notice."""
    row = await session.get(Outbox, outbox_id, with_for_update=True)
    if row is None or row.channel not in TWILIO_CHANNELS:
        return False
    payload = dict(row.payload)
    twilio: dict[str, Any] = dict(payload.get("twilio") or {})
    entry = {"sid": message_sid, "status": status, "error_code": error_code, "at": at.isoformat()}
    twilio["history"] = [*twilio.get("history", []), entry][-HISTORY:]
    if _RANK.get(status, 0) >= _RANK.get(str(twilio.get("status")), -1):
        twilio.update(sid=message_sid, status=status, error_code=error_code or None)
    payload["twilio"] = twilio
    values: dict[str, Any] = {"payload": payload}
    if status in FAILED and row.status == "sent":
        # Only a row the deliverer has finished with: a pending one would be marked sent
        # over it; its history still shows the failure.
        error = f"twilio {status}" + (f" error {error_code}" if error_code else "")
        values.update(status="failed", last_error=error)
    await session.execute(update(Outbox).where(Outbox.id == outbox_id).values(**values))
    return True


class OutboxStatuses:
    """The status recorder `channels.twilio.messaging.twilio_routes` takes: a transaction each."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def __call__(
        self,
        *,
        outbox_id: int | None,
        message_sid: str,
        status: str,
        error_code: str,
        at: datetime,
    ) -> None:
        if outbox_id is None:
            log.info("twilio status %r for %s names no notice", status, message_sid)
            return
        async with self.sessions.begin() as session:
            found = await record_message_status(
                session,
                outbox_id,
                message_sid=message_sid,
                status=status,
                error_code=error_code,
                at=at,
            )
        if not found:
            log.info("twilio status %r for unknown notice %d", status, outbox_id)
