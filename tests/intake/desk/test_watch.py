"""The SLA watcher and the inactivity close, on SQLite and PostgreSQL.

Tickets are made by the real pipeline at a controlled time; the watcher's clock is moved.
Acme is on Circularo SaaS, plan Plus: support 08:00-20:00 Prague daily, first response 24
support hours, resolution 3 days of 12 hours. A mail at Tuesday 10 March 2026 11:00 Prague
(10:00 UTC, winter time) is due for a first response Thursday 11:00 Prague, and 75 % of its
24 support hours are used Wednesday 17:00 Prague (wall clock: only 62.5 % by then).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from reopenable import ReopenableStorage
from sqlalchemy import select, update

from classifier import load_rules
from intake.cli.app import Storage
from intake.desk.watch import (
    SlaWatcher,
    deadline_calendar,
    elapsed_share,
    render_sla_alert,
    share_used,
    threshold_due,
    warn_label,
)
from intake.messages import ChannelKind, InboundMessage
from intake.outbox import acks
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline.pipeline import Pipeline, PipelineOptions
from intake.policy.calendar import TWENTY_FOUR_SEVEN
from storage import contacts, db, suppressions
from storage.models import Outbox, SlaAlert, Ticket, TicketEvent
from storage.watch import Deadline, WatchedTicket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # Tuesday 11:00 in Prague
RESPONSE_WARN = datetime(2026, 3, 11, 16, 0, tzinfo=UTC)  # 18 of 24 support hours
RESPONSE_DUE = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
RESOLUTION_WARN = datetime(2026, 3, 12, 13, 0, tzinfo=UTC)  # 27 of 36 support hours
RESOLUTION_DUE = datetime(2026, 3, 13, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
NOTIFY = {"notify_emails": ("oncall@vendor.example",), "notify_telegram": (4242,)}
OPTIONS = NoticeOptions(mailbox="support@support.example.com", **NOTIFY)  # type: ignore[arg-type]
RULES = load_rules()
TEMPLATES = acks.environment()
_ids = itertools.count(1)

ORGS = [
    ("Acme", "plus", None, "acme.example", "alice@acme.example"),
    ("Initech", "plus", "circularo-onprem", "initech.example", "grace@initech.example"),
    ("Globex", "standard", "scalr", "globex.example", "eve@globex.example"),
]


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def seeded(storage: Storage) -> Storage:
    async with storage.sessions.begin() as session:
        for name, plan, policy, domain, email in ORGS:
            org_id, _ = await contacts.upsert_organization(
                session, name=name, plan=plan, policy=policy, support_start=None, region=None,
                domains=(domain,),
            )  # fmt: skip
            await contacts.upsert_contact(
                session, org_id, name=name, email=email, phone=None, telegram=None,
                role="nominated" if policy != "scalr" else "designated",
            )  # fmt: skip
    return storage


async def open_ticket(storage: Storage, sender: str = "alice@acme.example", **fields: Any) -> int:
    notifier = Notifier(OPTIONS, b"s" * 32, TEMPLATES, Clock())
    pipeline = Pipeline(storage.sessions, RULES, PipelineOptions("circularo-saas"), notifier)
    receipt = await pipeline(
        InboundMessage(
            channel=ChannelKind.EMAIL,
            channel_message_id=f"w{next(_ids)}@acme.example",
            received_at=fields.pop("received_at", NOW),
            sender=sender,
            subject=fields.pop("subject", "Export fails"),
            text="The PDF export shows error 500.",
        )
    )
    return receipt.ticket_id


def watcher(storage: Storage, clock: Clock, **options: Any) -> SlaWatcher:
    return SlaWatcher(storage.sessions, OPTIONS, TEMPLATES, clock, **options)


async def alert_rows(storage: Storage) -> list[Outbox]:
    async with storage.sessions() as session:
        query = select(Outbox).where(Outbox.kind == "alert").order_by(Outbox.id)
        return list(await session.scalars(query))


async def claimed(storage: Storage) -> set[tuple[int, str, str]]:
    async with storage.sessions() as session:
        rows = await session.execute(
            select(SlaAlert.ticket_id, SlaAlert.deadline, SlaAlert.threshold)
        )
        return {tuple(r) for r in rows.all()}  # type: ignore[misc]


async def events(storage: Storage, kind: str) -> list[TicketEvent]:
    async with storage.sessions() as session:
        query = select(TicketEvent).where(TicketEvent.kind == kind).order_by(TicketEvent.id)
        return list(await session.scalars(query))


async def set_ticket(storage: Storage, ticket_id: int, **values: Any) -> None:
    async with storage.sessions.begin() as session:
        await session.execute(update(Ticket).where(Ticket.id == ticket_id).values(**values))


async def get_ticket(storage: Storage, ticket_id: int) -> Ticket:
    async with storage.sessions() as session:
        row = await session.get(Ticket, ticket_id)
        assert row is not None
        return row


# --- pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "now", "alerted", "expected"),
    [
        (0.5, NOW, frozenset(), None),
        (0.7499, NOW, frozenset(), None),
        (0.75, NOW, frozenset(), "75%"),
        (0.9, NOW, frozenset({"75%"}), None),
        (0.9, NOW, frozenset({"80%"}), "75%"),  # another warn_share is another threshold
        (1.0, RESPONSE_DUE, frozenset(), "breach"),  # past due: the breach only
        (1.0, RESPONSE_DUE + MINUTE, frozenset({"75%"}), "breach"),
        (1.0, RESPONSE_DUE, frozenset({"75%", "breach"}), None),
    ],
)
def test_threshold_due(
    share: float, now: datetime, alerted: frozenset[str], expected: str | None
) -> None:
    assert threshold_due(share, now, RESPONSE_DUE, 0.75, alerted) == expected


@pytest.mark.parametrize(
    ("spent", "total", "share"),
    [(0, 24, 0.0), (18, 24, 0.75), (30, 24, 1.25), (5, 0, 1.0), (-1, 24, 0.0)],
)
def test_elapsed_share(spent: int, total: int, share: float) -> None:
    assert elapsed_share(timedelta(hours=spent), timedelta(hours=total)) == share


@pytest.mark.parametrize(("warn", "label"), [(0.75, "75%"), (0.8, "80%"), (0.905, "90.5%")])
def test_warn_label(warn: float, label: str) -> None:
    assert warn_label(warn) == label


def _watched(**fields: Any) -> WatchedTicket:
    values: dict[str, Any] = {
        "id": 1, "deadline": Deadline.FIRST_RESPONSE, "due": NOW + timedelta(hours=8),
        "received_at": NOW, "clock_starts": NOW, "policy": "nowhere/gone.toml", "plan": "x",
        "priority": "normal", "severity": None, "region": None, "organization": None,
        "sender": "a@b.example", "contact_status": "unidentified", "channel": "email",
        "subject": "s", "alerted": frozenset(),
    }  # fmt: skip
    return WatchedTicket(**(values | fields))


def test_share_falls_back_to_wall_clock_from_clock_start() -> None:
    ticket = _watched(clock_starts=NOW + timedelta(hours=2))
    assert share_used(ticket, NOW + timedelta(hours=6.5), None) == 0.75
    assert share_used(ticket, NOW + timedelta(hours=5), TWENTY_FOUR_SEVEN) == 5 / 8


def test_a_bad_warn_share_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        SlaWatcher(None, OPTIONS, TEMPLATES, warn_share=1.5)  # type: ignore[arg-type]


# --- SLA alerts ---------------------------------------------------------------------------


async def test_warning_then_breach_each_once_to_every_target(seeded: Storage) -> None:
    ticket_id = await open_ticket(seeded)
    row = await get_ticket(seeded, ticket_id)
    assert (row.first_response_due, row.resolution_due) == (RESPONSE_DUE, RESOLUTION_DUE)
    clock = Clock(RESPONSE_WARN - MINUTE)
    watch = watcher(seeded, clock)
    assert (await watch.run_once()).alerts == 0  # wall clock says 62 %; support time 74.9 %
    clock.now = RESPONSE_WARN
    assert (await watch.run_once()).alerts == 1
    assert (await watch.run_once()).alerts == 0
    alerts = await alert_rows(seeded)
    assert [(a.channel, a.recipient) for a in alerts] == [
        ("email", "oncall@vendor.example"),
        ("telegram", "4242"),
    ]
    subject, text = alerts[0].payload["subject"], alerts[0].payload["text"]
    assert subject == "[SUP-000001] SLA first response deadline 75% used: Export fails"
    assert "75 % of the time to the first response deadline is used" in text
    assert "Thursday 12 March 2026, 11:00 CET" in text and "Acme" in text
    assert alerts[0].payload["reference"] == "SUP-000001"

    clock.now = RESPONSE_DUE
    report = await watch.run_once()
    assert (report.alerts, report.breaches) == (1, 1)
    clock.now = RESOLUTION_WARN
    assert (await watch.run_once()).alerts == 1
    clock.now = RESOLUTION_DUE + timedelta(days=3)
    assert (await watch.run_once()).breaches == 1
    assert (await watch.run_once()).alerts == 0
    assert await claimed(seeded) == {
        (ticket_id, "first_response", "75%"),
        (ticket_id, "first_response", "breach"),
        (ticket_id, "resolution", "75%"),
        (ticket_id, "resolution", "breach"),
    }
    assert len(await alert_rows(seeded)) == 8
    breach = (await alert_rows(seeded))[2].payload
    assert breach["subject"].startswith("[SUP-000001] SLA first response deadline passed")
    assert [e.details for e in await events(seeded, "sla_breach")] == [
        {"deadline": "first_response", "due": RESPONSE_DUE.isoformat()},
        {"deadline": "resolution", "due": RESOLUTION_DUE.isoformat()},
    ]
    assert {e.actor for e in await events(seeded, "sla_breach")} == {"system"}


async def test_a_restarted_watcher_sends_nothing_again(seeded: ReopenableStorage) -> None:
    await open_ticket(seeded)
    clock = Clock(RESPONSE_DUE)
    assert (await watcher(seeded, clock).run_once()).alerts == 1
    await seeded.engine.dispose()  # the process is gone
    engine = seeded.reopen()
    try:
        again = SlaWatcher(db.session_factory(engine), OPTIONS, TEMPLATES, clock)
        assert (await again.run_once()).alerts == 0
    finally:
        await engine.dispose()
    assert len(await alert_rows(seeded)) == 2  # one breach, to the email and the chat


async def test_first_seen_past_due_gets_only_the_breach(seeded: Storage) -> None:
    ticket_id = await open_ticket(seeded)
    await watcher(seeded, Clock(RESPONSE_DUE + timedelta(hours=1))).run_once()
    assert await claimed(seeded) == {(ticket_id, "first_response", "breach")}


async def test_no_alerts_for_answered_resolved_or_held_tickets(seeded: Storage) -> None:
    answered, resolved, held, idle = [await open_ticket(seeded) for _ in range(4)]
    await set_ticket(seeded, answered, first_response_at=NOW + MINUTE)
    await set_ticket(seeded, resolved, status="resolved", resolved_at=NOW + MINUTE)
    await set_ticket(seeded, held, status="on_hold", on_hold_at=NOW + MINUTE)
    await set_ticket(seeded, idle, status="closed", closed_at=NOW + MINUTE)
    await watcher(seeded, Clock(RESOLUTION_DUE)).run_once()
    # The answered ticket still has a resolution to reach.
    assert await claimed(seeded) == {(answered, "resolution", "breach")}


async def test_an_answer_between_read_and_claim_stops_the_alert(seeded: Storage) -> None:
    ticket_id = await open_ticket(seeded)
    clock = Clock(RESPONSE_DUE)
    watch = watcher(seeded, clock, batch=1)

    original = watch._alert

    async def answer_then_alert(*args: Any) -> bool:
        # An agent's answer commits after the watcher read the ticket, before it claims.
        await set_ticket(seeded, ticket_id, first_response_at=RESPONSE_DUE - MINUTE)
        return await original(*args)

    watch._alert = answer_then_alert  # type: ignore[method-assign,assignment]
    assert (await watch.run_once()).alerts == 0
    assert await alert_rows(seeded) == []


async def test_two_watchers_at_once_alert_once(seeded: ReopenableStorage) -> None:
    tickets = [await open_ticket(seeded, subject=f"Problem {n}") for n in range(5)]
    clock = Clock(RESPONSE_DUE)
    engine = seeded.reopen()  # a second node: its own connections to the same database
    try:
        first = watcher(seeded, clock, batch=2)
        second = SlaWatcher(db.session_factory(engine), OPTIONS, TEMPLATES, clock, batch=2)
        reports = await asyncio.gather(first.run_once(), second.run_once(), first.run_once())
    finally:
        await engine.dispose()
    assert sum(r.breaches for r in reports) == 5
    assert await claimed(seeded) == {(t, "first_response", "breach") for t in tickets}
    assert len(await alert_rows(seeded)) == 10
    assert len(await events(seeded, "sla_breach")) == 5


async def test_a_suppressed_notify_address_gets_no_mail(seeded: Storage) -> None:
    await open_ticket(seeded)
    async with seeded.sessions.begin() as session:
        await suppressions.suppress(
            session, "oncall@vendor.example", "5.1.1", until=NOW + timedelta(days=30), now=NOW
        )
    await watcher(seeded, Clock(RESPONSE_DUE)).run_once()
    assert [a.channel for a in await alert_rows(seeded)] == ["telegram"]


async def test_on_alert_hears_each_committed_alert(seeded: Storage) -> None:
    await open_ticket(seeded)
    heard: list[tuple[str, str]] = []
    await watcher(seeded, Clock(RESPONSE_WARN), on_alert=lambda *a: heard.append(a)).run_once()
    assert heard == [("first_response", "75%")]


# --- inactivity close ---------------------------------------------------------------------


async def hold(storage: Storage, sender: str) -> int:
    ticket_id = await open_ticket(storage, sender)
    await set_ticket(storage, ticket_id, status="on_hold", on_hold_at=NOW + timedelta(hours=1))
    return ticket_id


async def statuses(storage: Storage, *ids: int) -> list[str]:
    return [(await get_ticket(storage, i)).status for i in ids]


async def test_inactive_on_hold_circularo_tickets_close_after_five_days(seeded: Storage) -> None:
    saas = await hold(seeded, "alice@acme.example")
    onprem = await hold(seeded, "grace@initech.example")
    scalr = await hold(seeded, "eve@globex.example")
    still_open = await open_ticket(seeded)
    assert (await get_ticket(seeded, onprem)).policy == "circularo-onprem"
    clock = Clock(NOW + timedelta(days=5, hours=1) - MINUTE)
    watch = watcher(seeded, clock)
    assert (await watch.run_once()).closed == 0
    clock.now += MINUTE
    assert (await watch.run_once()).closed == 2
    assert await statuses(seeded, saas, onprem, scalr, still_open) == [
        "closed", "closed", "on_hold", "open",
    ]  # fmt: skip
    assert (await get_ticket(seeded, saas)).closed_at == clock.now
    closing = await events(seeded, "closed_inactive")
    assert [(e.ticket_id, e.actor) for e in closing] == [(saas, "system"), (onprem, "system")]
    assert (await watch.run_once()).closed == 0


async def test_an_agent_action_or_a_late_message_restarts_the_count(seeded: Storage) -> None:
    acted = await hold(seeded, "alice@acme.example")
    wrote = await hold(seeded, "grace@initech.example")
    async with seeded.sessions.begin() as session:
        session.add(
            TicketEvent(
                ticket_id=acted, at=NOW + timedelta(days=2), actor="agent@vendor.example",
                kind="note", details={},
            )
        )  # fmt: skip
    await set_ticket(seeded, wrote, last_message_at=NOW + timedelta(days=3))
    clock = Clock(NOW + timedelta(days=6))
    watch = watcher(seeded, clock)
    assert (await watch.run_once()).closed == 0
    clock.now = NOW + timedelta(days=7)
    assert (await watch.run_once()).closed == 1
    clock.now = NOW + timedelta(days=8)
    assert (await watch.run_once()).closed == 1
    assert await statuses(seeded, acted, wrote) == ["closed", "closed"]


async def test_the_inactivity_close_is_configurable(seeded: Storage) -> None:
    saas = await hold(seeded, "alice@acme.example")
    scalr = await hold(seeded, "eve@globex.example")
    later = Clock(NOW + timedelta(days=30))
    assert (await watcher(seeded, later, inactivity_close_days=0).run_once()).closed == 0
    only_scalr = watcher(seeded, later, inactivity_policies=("scalr",), inactivity_close_days=10)
    assert (await only_scalr.run_once()).closed == 1
    assert await statuses(seeded, saas, scalr) == ["on_hold", "closed"]


def test_sla_alerts_name_the_priority_as_the_policy_does() -> None:
    ticket = _watched(policy="circularo-onprem", plan="plus", priority="level-3")
    text = render_sla_alert(TEMPLATES, ticket, "75%", 0.75).text
    assert "Priority: Level 3 (Medium)" in text
    gone = render_sla_alert(TEMPLATES, _watched(), "75%", 0.75).text
    assert "Priority: normal" in gone  # a policy that no longer loads: its own label


INVERTED_POLICY = """
name = "inverted"
[priorities]
order = ["urgent"]
default = "urgent"
[calendars.office]
zone = "Europe/Prague"
windows = [{ days = "mon-fri", start = "09:00", end = "17:00" }]
[calendars.always]
always = true
[plans.basic]
response_calendar = "always"
resolution_calendar = "office"
[plans.basic.targets]
urgent = { response = { hours = 100 }, resolution = { hours = 8 } }
"""


def test_a_capped_first_response_runs_on_the_resolution_calendar(tmp_path: Path) -> None:
    # A team's policy: response on a 24x7 clock, resolution in office hours, and inverted,
    # so the first response is due at the resolution deadline, on office hours.
    path = tmp_path / "inverted.toml"
    path.write_text(INVERTED_POLICY, encoding="utf-8")
    ticket = _watched(policy=str(path), plan="basic", priority="urgent")
    cal = deadline_calendar(ticket)
    assert cal is not None and cal.zone == "Europe/Prague" and not cal.always
