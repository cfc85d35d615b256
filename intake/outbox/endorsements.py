"""Endorsement digests: the requests that wait for an organization's nominated contact go
out as one mail per organization and period, listing at most `max_entries` of them.

300 colleagues (or 300 forged Froms) at one customer's domain then make one mail to its
nominated representative, not 300. The pipeline records the waiting requests
(`Notifier._request_endorsement`); this loop, run by `intake serve` beside the SLA watcher,
sends the digests. Several nodes may run it: a digest is claimed under a lock on the
organization's row (storage.endorsements.claim_digest).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.outbox.notices import Notifier
from storage import contacts, endorsements
from storage.models import Organization

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EndorsementDigests:
    sessions: async_sessionmaker[AsyncSession]
    notifier: Notifier
    period: timedelta = timedelta(minutes=15)
    max_entries: int = 20
    check_seconds: float = 30.0

    async def run_once(self) -> int:
        """Send the digests that are due now; how many mails were queued."""
        async with self.sessions() as session:
            waiting = await endorsements.organizations_waiting(session)
        queued = 0
        for organization_id in waiting:
            # One transaction per organization: one that fails leaves the others be.
            async with self.sessions.begin() as session:
                queued += await self._digest(session, organization_id)
        return queued

    async def _digest(self, session: AsyncSession, organization_id: int) -> int:
        now = self.notifier.clock()
        entries = await endorsements.claim_digest(
            session, organization_id, now=now, period=self.period
        )
        if not entries:
            return 0
        organization = await session.get(Organization, organization_id)
        nominees = await contacts.nominated_contacts(session, organization_id)
        listed = entries[: self.max_entries]
        queued = await self.notifier.endorsement_digest(
            session,
            organization.name if organization is not None else "",
            nominees,
            listed,
            more=len(entries) - len(listed),
            period=self.period,
        )
        log.info(
            "endorsement digest for organization %s: %d requests, %d mails",
            organization_id, len(entries), queued,
        )  # fmt: skip
        return queued

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the database may be away; keep the loop alive
                log.exception("endorsement digest pass failed")
            try:
                await asyncio.wait_for(stop.wait(), self.check_seconds)
            except TimeoutError:
                pass
