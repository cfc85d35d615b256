"""What `intake report sla` costs over a million tickets, against what its window holds.

One database filled as bench/million.py fills its `full` one (500 organizations, two years of
history, `--tickets` tickets). Measured in the same run, in turns, median of `--runs`:
- `count(window)`: `SELECT count(*)` of the tickets received in the window (the baseline:
  what the window holds, read by the index);
- `fetch(window)`: the report's own query alone (the window's rows, with their organization);
- `report(window)`: those rows measured and added up in support hours (the pure part);
- `quotas`: every organization's quota use in its current support period;
- `intake report sla`: the whole function the command calls (window, quotas, figures);
- `count(table)`: `SELECT count(*) FROM tickets`, what reading the whole table costs.
For windows of 7 and 30 days to the fill's `now`. On PostgreSQL the tickets table is vacuumed
after the fill, as autovacuum would. Then the plan (EXPLAIN / EXPLAIN QUERY PLAN)
of every SELECT the report ran: any whole-table read of tickets is reported.

    python bench/report.py [--tickets 1000000] [--runs 5]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/intake_bench_report]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from million import fill, full_scans, prepare, recording
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from intake.cli.app import Storage
from intake.desk.reporting import clocks_of, organization_rows, sla_report
from intake.desk.reports import build_report
from storage import reports
from storage.models import Ticket

POLICY = "circularo-saas"


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def measure(storage: Storage, now: datetime, days: int, runs: int) -> dict[str, float]:
    since, until = now - timedelta(days=days), now
    sessions = storage.sessions
    rows: list[reports.ReportTicket] = []

    async def count_window() -> None:
        async with sessions() as session:
            await session.scalar(
                select(func.count(Ticket.id)).where(
                    Ticket.received_at >= since, Ticket.received_at < until
                )
            )

    async def fetch_window() -> None:
        nonlocal rows
        async with sessions() as session:
            rows = await reports.tickets_received(session, since, until)

    async def figures() -> None:
        build_report(since, until, now, rows, clocks_of(rows), [])

    async def quotas() -> None:
        async with sessions() as session:
            await organization_rows(session, POLICY, now)

    async def whole() -> None:
        await sla_report(sessions, default_policy=POLICY, now=now,
                         since=since.date(), until=(until - timedelta(days=1)).date())  # fmt: skip

    async def count_table() -> None:
        async with sessions() as session:
            await session.scalar(select(func.count(Ticket.id)))

    steps = {
        "count(window)": count_window, "fetch(window)": fetch_window, "report(window)": figures,
        "quotas": quotas, "intake report sla": whole, "count(table)": count_table,
    }  # fmt: skip
    await fetch_window()  # warm: caches, the policy's calendars
    await whole()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(runs):
        for name, step in steps.items():
            times[name].append(await timed(step))
    print(f"  {days}-day window: {len(rows):,} tickets")
    found = {name: statistics.median(values) for name, values in times.items()}
    return found | {"tickets": float(len(rows))}


async def postgres_database(url: str, *, create: bool) -> None:
    parsed = make_url(url)
    if "bench" not in (parsed.database or ""):
        raise SystemExit("--database-url: the database name must contain 'bench'")
    admin = parsed.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await conn.close()


async def run(args: argparse.Namespace, folder: Path) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{folder / 'report.db'}"
    if args.database_url:
        await postgres_database(url, create=True)
    storage = await prepare(url, folder)
    now = datetime.now(UTC)
    started = time.perf_counter()
    total = await fill(storage, args.tickets, now, only_open=False)
    dialect = storage.engine.dialect.name
    print(f"{dialect}: filled {total:,} tickets in {time.perf_counter() - started:.0f}s")
    if dialect == "postgresql":
        # What autovacuum does after a bulk insert (PostgreSQL 13+): the visibility map that
        # lets a count be answered from the index alone. This machine's server has it off.
        async with storage.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM ANALYZE tickets")
    async with storage.sessions() as session:
        counted = sum(o.quota_used for o in await organization_rows(session, POLICY, now))
    print(f"the organizations' current support periods hold {counted:,} tickets (quotas)")
    results = {}
    for days in (7, 30):
        found = results[days] = await measure(storage, now, days, args.runs)
        base, tickets = found.pop("count(window)"), found.pop("tickets")
        print(f"    {'count(window)':<18} {base * 1000:9.1f} ms")
        for name, seconds in found.items():
            print(f"    {name:<18} {seconds * 1000:9.1f} ms  x{seconds / base:7.2f} count(window)"
                  f"  {seconds / tickets * 1e6:6.1f} us/ticket")  # fmt: skip
    week, month = results[7], results[30]
    print("30 days / 7 days: " + ", ".join(
        f"{name} x{month[name] / week[name]:.2f}" for name in ("fetch(window)", "report(window)",
                                                              "intake report sla", "count(table)")
    ))  # fmt: skip
    with recording(storage) as seen:
        await sla_report(storage.sessions, default_policy=POLICY, now=now)
    statements = list(seen)
    scans = await full_scans(storage, statements)
    print(f"plans of {len({s for s, _ in statements})} distinct SELECTs of the report: "
          f"{len(scans)} full scans of tickets, messages, outbox")  # fmt: skip
    for line in scans:
        print("  FULL SCAN:", line)
    await explain_window(storage, now)
    await storage.engine.dispose()
    if args.database_url and not args.keep:
        await postgres_database(url, create=False)


async def explain_window(storage: Storage, now: datetime) -> None:
    """The window query's plan, printed whole."""
    since = now - timedelta(days=30)
    with recording(storage) as seen:
        async with storage.sessions() as session:
            rows = await reports.tickets_received(session, since, now)
    print(f"the window query's plan ({len(rows):,} rows):")
    async with storage.engine.connect() as conn:
        prefix = "EXPLAIN " if conn.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        for statement, params in seen:
            for row in await conn.exec_driver_sql(prefix + statement, params):
                print("   ", row[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="intake-report-") as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    sys.exit(main())
