"""SLA reports: the pure figures, and the whole report over tickets made by the pipeline and
agents' actions on SQLite and PostgreSQL, checked against hand-computed support hours
(tests/sla_history.py works every figure out)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sla_history import (
    ORGANIZATION_ROWS,
    PRIORITY_ROWS,
    REPORT_NOW,
    SINCE,
    UNTIL,
    seed_history,
    utc,
)

from intake.cli.app import Storage
from intake.cli.report import json_rows, text_lines
from intake.desk.reporting import ReportGauges, clocks_for, sla_report, window
from intake.desk.reports import (
    SHARE_LABELS,
    Clocks,
    is_overdue,
    measure,
    priority_rows,
    response_distribution,
    share_bucket,
    verdict,
    week_of,
    weekly_attainment,
)
from intake.errors import InputRefusedError
from intake.policy.calendar import TWENTY_FOUR_SEVEN
from storage.reports import ReportTicket

DUE = utc(2026, 3, 10, 12)


def ticket(**fields: object) -> ReportTicket:
    values: dict[str, object] = {
        "organization": "Acme", "region": None, "policy": "circularo-saas", "plan": "premium",
        "priority": "normal", "status": "open", "received_at": utc(2026, 3, 10, 4),
        "first_response_due": DUE, "resolution_due": None, "first_response_at": None,
        "resolved_at": None,
    }  # fmt: skip
    return ReportTicket(**(values | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("done", "now", "expected"),
    [
        (DUE, DUE + timedelta(days=1), True),  # exactly at the deadline is in time
        (DUE + timedelta(seconds=1), DUE, False),  # late, whenever asked
        (None, DUE, None),  # due now, not passed: no verdict yet
        (None, DUE + timedelta(seconds=1), False),  # not done and past: breached
    ],
)
def test_verdict(done: datetime | None, now: datetime, expected: bool | None) -> None:
    assert verdict(done, DUE, now) is expected
    assert verdict(done, None, now) is None


def test_overdue_only_while_open() -> None:
    late = DUE + timedelta(hours=1)
    assert is_overdue(ticket(), late)
    assert is_overdue(ticket(status="on_hold"), late)
    assert not is_overdue(ticket(status="resolved"), late)
    assert not is_overdue(ticket(first_response_at=DUE), late)
    assert is_overdue(ticket(first_response_at=DUE, resolution_due=DUE), late)
    assert not is_overdue(ticket(), DUE)


@pytest.mark.parametrize(
    ("share", "bucket"), [(0.0, 0), (0.25, 0), (0.26, 1), (1.0, 3), (1.01, 4), (2.0, 5), (9, 6)]
)
def test_share_bucket(share: float, bucket: int) -> None:
    assert share_bucket(share) == bucket
    assert len(SHARE_LABELS) == 7


def test_week_starts_monday() -> None:
    assert week_of(utc(2026, 3, 8, 23, 59)) == date(2026, 3, 2)  # a Sunday
    assert week_of(utc(2026, 3, 9)) == date(2026, 3, 9)


def test_window_defaults_to_thirty_days_and_refuses_an_empty_period() -> None:
    now = utc(2026, 4, 30, 12)
    assert window(None, None, now) == (now - timedelta(days=30), now)
    assert window(date(2026, 3, 1), date(2026, 3, 31), now) == (utc(2026, 3, 1), utc(2026, 4, 1))
    assert window(date(2026, 4, 1), None, now) == (utc(2026, 4, 1), now)
    with pytest.raises(InputRefusedError, match="period is empty"):
        window(date(2026, 4, 2), date(2026, 4, 1), now)


def test_a_policy_gone_counts_wall_time() -> None:
    clocks = clocks_for(("/no/such/policy.toml", "standard", "normal", None), DUE)
    assert clocks == Clocks(TWENTY_FOUR_SEVEN, TWENTY_FOUR_SEVEN, None, None)


def test_rows_weeks_and_distribution_on_24x7() -> None:
    clocks = {("circularo-saas", "premium", "normal", None): Clocks(
        TWENTY_FOUR_SEVEN, TWENTY_FOUR_SEVEN, 8.0, 48.0)}  # fmt: skip
    received = utc(2026, 3, 10, 4)  # response due 8 h later
    tickets = [
        ticket(first_response_at=received + timedelta(hours=1)),  # 1/8 of its time: <= 25%
        ticket(first_response_at=received + timedelta(hours=9), status="resolved"),  # late
        ticket(
            organization=None,
            received_at=utc(2026, 3, 16, 4),
            first_response_due=utc(2026, 3, 16, 12),
        ),
    ]
    now = utc(2026, 3, 20)
    rows, measured = priority_rows(tickets, clocks, now)
    assert [(r.organization, r.requests, r.response_met, r.response_breached) for r in rows] == [
        (None, 1, 0, 1),
        ("Acme", 2, 1, 1),
    ]
    assert rows[1].average_response_hours == 5.0 and rows[1].open_overdue == 0
    assert (rows[1].resolved, rows[1].resolution_met, rows[1].average_resolution_hours) == (
        0, 0, None)  # fmt: skip
    assert rows[0].open_overdue == 1
    weeks = weekly_attainment(measured)
    assert [(w.week, w.response_share, w.resolution_share) for w in weeks["Acme"]] == [
        (date(2026, 3, 9), 0.5, None)
    ]
    assert weeks[""][0].response_share == 0.0
    assert response_distribution(measured) == {"Acme": [1, 0, 0, 0, 1, 0, 0]}  # 9 of 8 h
    untargeted = measure(ticket(first_response_due=None, first_response_at=DUE), clocks[
        ("circularo-saas", "premium", "normal", None)], now)  # fmt: skip
    assert response_distribution([untargeted]) == {}
    assert weekly_attainment([untargeted]) == {}


async def test_report_against_hand_computed_support_hours(storage: Storage) -> None:
    await seed_history(storage)
    report = await sla_report(
        storage.sessions, default_policy="circularo-saas", now=REPORT_NOW, since=SINCE,
        until=UNTIL,
    )  # fmt: skip
    rows = list(json_rows(report))
    assert [r for r in rows if r["kind"] == "priority"] == [
        {"kind": "priority", **row} for row in PRIORITY_ROWS
    ]
    assert [r for r in rows if r["kind"] == "organization"] == [
        {"kind": "organization", **row} for row in ORGANIZATION_ROWS
    ]
    # Weekly attainment: Acme's weekend ticket (week of 2 Mar) met both of its deadlines.
    acme = {w.week: w for w in report.weeks["Acme"]}
    assert (acme[date(2026, 3, 2)].response_share, acme[date(2026, 3, 2)].resolution_share) == (
        1.0, 1.0)  # fmt: skip
    assert (acme[date(2026, 3, 23)].response_met, acme[date(2026, 3, 23)].resolution_met) == (1, 0)
    # Globex: 4 of 8 h (50%) and 10 of 8 h (125%).
    assert report.distribution["Globex"] == [0, 1, 0, 0, 1, 0, 0]
    table = "\n".join(text_lines(report))
    assert "Initech" in table and "2026-06-01" in table and "14.00" in table


async def test_report_of_one_organization_and_refusals(storage: Storage) -> None:
    await seed_history(storage)
    report = await sla_report(
        storage.sessions, default_policy="circularo-saas", now=REPORT_NOW, since=SINCE,
        until=UNTIL, organization="Globex",
    )  # fmt: skip
    assert [r.organization for r in report.priorities] == ["Globex"]
    assert [o.organization for o in report.organizations] == ["Globex"]
    with pytest.raises(InputRefusedError, match="no organization named 'Nobody'"):
        await sla_report(storage.sessions, default_policy="circularo-saas", now=REPORT_NOW,
                         organization="Nobody")  # fmt: skip
    # The default window (the 30 days to now: from 31 March 12:00) holds April's tickets.
    recent = await sla_report(storage.sessions, default_policy="circularo-saas", now=REPORT_NOW)
    assert [(r.organization, r.priority, r.requests) for r in recent.priorities] == [
        ("Acme", "normal", 1), ("Acme", "urgent", 1), ("Globex", "normal", 1),
        ("Initech", "level-3", 1),
    ]  # fmt: skip


async def test_gauges_are_read_then_kept_briefly(storage: Storage) -> None:
    await seed_history(storage)
    ticks = iter([0.0, 10.0, 31.0, 31.0])  # read at 0; asked at 10 and 31
    gauges = ReportGauges(
        storage.sessions, "circularo-saas", lambda: REPORT_NOW, ttl=30,
        monotonic=lambda: next(ticks),
    )  # fmt: skip
    first = await gauges()
    # Acme: the summer-time ticket's resolution, the urgent one and February's; Initech's two
    # questions of 2025 (level-3: every on-premise email starts there, 12.3), never resolved.
    assert first.open_overdue == {"normal": 2, "urgent": 1, "level-3": 2}
    assert first.quotas == {"Initech": (100, 2)}
    assert await gauges() is first  # 10 s later: kept
    assert await gauges() is not first  # 31 s later: read again
