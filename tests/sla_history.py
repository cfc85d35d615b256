"""Tickets with known times for the SLA report's tests: made by the real pipeline, answered
and resolved by an agent's actions (`intake.desk.actions.act`), with every figure worked out
by hand below.

Acme: Circularo SaaS Standard, Europe/Prague Mon-Fri 08:30-16:30 minus Czech holidays;
normal 32 h / 5 days (40 h), urgent 48 h capped to 4 days (32 h) / 32 h.
- weekend: Fri 6 Mar 15:00 CET -> answered Mon 9 Mar 09:00 (1.5 + 0.5 = 2 h), resolved
  Tue 10 Mar 10:30 (1.5 + 8 + 2 = 11.5 h): both met.
- summer time: Fri 27 Mar 16:00 CET -> answered Mon 30 Mar 09:00 CEST (0.5 + 0.5 = 1 h; a
  fixed CET offset would say 0.5 h); not resolved: its resolution was due Tue 7 Apr 16:00
  CEST (0.5 + Mon-Thu 32 + Good Friday and Easter Monday off + Tue 7.5 = 40 h): breached,
  open and overdue.
- Czech holiday: Thu 2 Apr 16:00 CEST -> answered Tue 7 Apr 09:30 (0.5 + Good Friday,
  weekend, Easter Monday off + 1 = 1.5 h), resolved Wed 8 Apr 16:30 (0.5 + 8 + 8 = 16.5 h).
- urgent: Mon 20 Apr 10:00 CEST, never answered: both due Fri 24 Apr 10:00 CEST; breached,
  overdue.
- before the window (Fri 20 Feb): in no row.
Acme normal: 3 requests, 3 responded, 3 met, avg 1.5 h; 2 resolved, 2 met, 1 breached,
avg 14 h; 1 open overdue. Acme urgent: 1 request, none responded, 1 breached each; 1 overdue.

Globex: Circularo SaaS Premium, 24x7; normal 8 h / 2 days (48 h).
- Sat 28 Mar 23:00 UTC -> answered Sun 29 Mar 03:00 UTC: 4 h of real time across the
  spring-forward night (the Prague wall clock moved 5 h); resolved Mon 30 Mar 09:00 UTC: 34 h.
- Tue 14 Apr 10:00 UTC -> answered 20:00 (10 h, breached), resolved Fri 17 Apr 10:00 (72 h,
  breached).
Globex normal: 2 requests, 1 met, 1 breached, avg 7 h; resolution 1 met, 1 breached, avg 53 h.

Fourco: four-tier Standard, Europe/London Mon-Fri 08:00-22:00; high 4 h, no resolution target.
- "High:" Fri 6 Mar 21:00 GMT -> answered Mon 9 Mar 09:00 (1 + 1 = 2 h, met), resolved
  12:00 (1 + 4 = 5 h; no target: neither met nor breached).

Initech: Circularo on-premise Plus from 1 Jun 2025 (quota 100 per 12 months); level-3 (email)
24 h on Dubai daily 08:00-20:00, resolution 48 h on Prague daily 08:00-20:00.
- Fri 10 Apr 10:00 Dubai (06:00 UTC) -> answered Sat 11 Apr 10:00 Dubai (10 + 2 = 12 h on
  the Dubai calendar), resolved Mon 13 Apr 12:00 CEST (12 + 12 + 12 + 4 = 40 h on Prague's).
- 1 Jul 2025 and 15 May 2025: outside the window; the first counts in the quota's period
  (1 Jun 2025 - 1 Jun 2026), the second does not. Quota used on 30 Apr 2026: 2 of 100.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from pipelines import make_pipeline

from intake.cli.app import Storage
from intake.desk import agents
from intake.desk.actions import Action, act
from intake.messages import ChannelKind, InboundMessage
from intake.pipeline.references import parse_reference
from storage import contacts

REPORT_NOW = datetime(2026, 4, 30, 12, 0, tzinfo=UTC)
SINCE, UNTIL = date(2026, 3, 1), date(2026, 4, 30)
AGENT = "ann@vendor.example"
_ids = itertools.count(1)

ORGANIZATIONS = (
    # name, policy, plan, support start, sender
    ("Acme", None, "standard", None, "al@acme.example"),
    ("Globex", None, "premium", None, "gil@globex.example"),
    ("Fourco", "four-tier", "standard", None, "jo@fourco.example"),
    ("Initech", "circularo-onprem", "plus", date(2025, 6, 1), "ivy@initech.example"),
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# sender, subject, received, first response, resolved (all UTC)
HISTORY: tuple[tuple[str, str, datetime, datetime | None, datetime | None], ...] = (
    ("al@acme.example", "Export fails", utc(2026, 3, 6, 14), utc(2026, 3, 9, 8),
     utc(2026, 3, 10, 9, 30)),
    ("al@acme.example", "Import fails", utc(2026, 3, 27, 15), utc(2026, 3, 30, 7), None),
    ("al@acme.example", "Print fails", utc(2026, 4, 2, 14), utc(2026, 4, 7, 7, 30),
     utc(2026, 4, 8, 14, 30)),
    ("al@acme.example", "Urgent: login fails", utc(2026, 4, 20, 8), None, None),
    ("al@acme.example", "Old question", utc(2026, 2, 20, 9), None, None),
    ("gil@globex.example", "Sync fails", utc(2026, 3, 28, 23), utc(2026, 3, 29, 3),
     utc(2026, 3, 30, 9)),
    ("gil@globex.example", "Search fails", utc(2026, 4, 14, 10), utc(2026, 4, 14, 20),
     utc(2026, 4, 17, 10)),
    ("jo@fourco.example", "High: exports slow", utc(2026, 3, 6, 21), utc(2026, 3, 9, 9),
     utc(2026, 3, 9, 12)),
    ("ivy@initech.example", "Report is slow", utc(2026, 4, 10, 6), utc(2026, 4, 11, 6),
     utc(2026, 4, 13, 10)),
    ("ivy@initech.example", "Question", utc(2025, 7, 1, 9), utc(2025, 7, 1, 10), None),
    ("ivy@initech.example", "Earlier question", utc(2025, 5, 15, 9), None, None),
)  # fmt: skip

PRIORITY_ROWS: list[dict[str, Any]] = [
    {"organization": "Acme", "policy": "circularo-saas", "plan": "standard",
     "priority": "normal", "requests": 3, "responded": 3, "response_met": 3,
     "response_breached": 0, "average_response_hours": 1.5, "resolved": 2,
     "resolution_met": 2, "resolution_breached": 1, "average_resolution_hours": 14.0,
     "open_overdue": 1, "response_target_hours": 32.0, "resolution_target_hours": 40.0},
    {"organization": "Acme", "policy": "circularo-saas", "plan": "standard",
     "priority": "urgent", "requests": 1, "responded": 0, "response_met": 0,
     "response_breached": 1, "average_response_hours": None, "resolved": 0,
     "resolution_met": 0, "resolution_breached": 1, "average_resolution_hours": None,
     "open_overdue": 1, "response_target_hours": 32.0, "resolution_target_hours": 32.0},
    {"organization": "Fourco", "policy": "four-tier", "plan": "standard", "priority": "high",
     "requests": 1, "responded": 1, "response_met": 1, "response_breached": 0,
     "average_response_hours": 2.0, "resolved": 1, "resolution_met": None,
     "resolution_breached": None, "average_resolution_hours": 5.0, "open_overdue": 0,
     "response_target_hours": 4.0, "resolution_target_hours": None},
    {"organization": "Globex", "policy": "circularo-saas", "plan": "premium",
     "priority": "normal", "requests": 2, "responded": 2, "response_met": 1,
     "response_breached": 1, "average_response_hours": 7.0, "resolved": 2,
     "resolution_met": 1, "resolution_breached": 1, "average_resolution_hours": 53.0,
     "open_overdue": 0, "response_target_hours": 8.0, "resolution_target_hours": 48.0},
    {"organization": "Initech", "policy": "circularo-onprem", "plan": "plus",
     "priority": "level-3", "requests": 1, "responded": 1, "response_met": 1,
     "response_breached": 0, "average_response_hours": 12.0, "resolved": 1,
     "resolution_met": 1, "resolution_breached": 0, "average_resolution_hours": 40.0,
     "open_overdue": 0, "response_target_hours": 24.0, "resolution_target_hours": 48.0},
]  # fmt: skip

ORGANIZATION_ROWS: list[dict[str, Any]] = [
    {"organization": "Acme", "policy": "circularo-saas", "plan": "standard", "quota": None,
     "quota_used": 5, "support_period_ends": None},
    {"organization": "Fourco", "policy": "four-tier", "plan": "standard", "quota": None,
     "quota_used": 1, "support_period_ends": None},
    {"organization": "Globex", "policy": "circularo-saas", "plan": "premium", "quota": None,
     "quota_used": 2, "support_period_ends": None},
    {"organization": "Initech", "policy": "circularo-onprem", "plan": "plus", "quota": 100,
     "quota_used": 2, "support_period_ends": "2026-06-01"},
]  # fmt: skip


async def seed_organizations(storage: Storage) -> None:
    async with storage.sessions.begin() as session:
        for name, policy, plan, start, sender in ORGANIZATIONS:
            org_id, _ = await contacts.upsert_organization(
                session, name=name, plan=plan, policy=policy, support_start=start,
                region=None, domains=(sender.split("@")[1],),
            )  # fmt: skip
            await contacts.upsert_contact(
                session, org_id, name=name, email=sender, phone=None, telegram=None,
                role="nominated",
            )  # fmt: skip


async def seed_history(storage: Storage) -> dict[str, str]:
    """Every ticket of HISTORY, with its agent's actions; returns subject -> reference."""
    await seed_organizations(storage)
    await agents.add_agent(storage.sessions, AGENT, "correct horse battery", name="Ann",
                           now=REPORT_NOW)  # fmt: skip
    agent = await agents.agent_named(storage.sessions, AGENT)
    pipeline = make_pipeline(storage)
    refs = {}
    for sender, subject, received, answered, resolved in HISTORY:
        receipt = await pipeline(
            InboundMessage(
                channel=ChannelKind.EMAIL, channel_message_id=f"<report{next(_ids)}@x>",
                received_at=received, sender=sender, subject=subject,
                text="It does not work as it should.",
            )
        )  # fmt: skip
        ticket_id = parse_reference(receipt.reference)
        assert ticket_id is not None
        refs[subject] = receipt.reference
        if answered is not None:
            await act(storage.sessions, ticket_id, Action.FIRST_RESPONSE, agent, now=answered)
        if resolved is not None:
            await act(storage.sessions, ticket_id, Action.RESOLVE, agent, now=resolved)
    return refs
