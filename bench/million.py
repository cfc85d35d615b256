"""A database of one million tickets: intake latency, the overdue list, and memory over time.

Three databases, filled the same way in one run:
- `empty`: 500 organizations with their contacts (imported as `intake contacts import` does),
  no tickets;
- `live`: the same, plus only the tickets still open (the agents' working set);
- `full`: the same, plus two years of history: `--tickets` tickets in all, each with its
  message and its sent acknowledgement (Core bulk inserts).

Measured on each: intake latency (the pipeline on one message, in process: identify, thread,
classify, decide, store with its notices, commit), and `intake tickets list --open --overdue`
(the function the command calls, in process, without printing); printed with the ratios
full/empty and full/live (the list's output has as many rows on `live` as on `full`, none on
`empty`). Then the plan of every SELECT those ran on `full` (EXPLAIN / EXPLAIN QUERY PLAN):
any full scan of tickets, messages or outbox is reported. Last, in a fresh process on
`full`, `--rss-messages` messages through the pipeline (20 at a time, so group commit
batches them): peak RSS after a tenth of them and at the end, and their ratio.

SQLite files in a temporary folder by default; `--database-url` names a PostgreSQL database
whose name contains "bench": `<name>_empty`, `<name>_live` and `<name>_full` are created
afresh there (and dropped at the end unless `--keep`).

    python bench/million.py [--tickets 1000000] [--rss-messages 100000]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1/intake_bench] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Table, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from channels.email.inbound import inbound_from_raw
from intake.cli import admin
from intake.cli.app import Storage, build_pipeline
from intake.config import Settings
from intake.messages import InboundMessage
from intake.pipeline.pipeline import Pipeline
from storage import db, outbox, watch
from storage.models import Contact, Message, Organization, Outbox, Ticket

ORGANIZATIONS = 500
PLANS = ("standard", "plus", "premium")
CHUNK = 10_000
BIG_TABLES = ("tickets", "messages", "outbox")
LATENCY_SAMPLES = 300
LIST_RUNS = 5


# -- the databases -----------------------------------------------------------------------------


def contacts_csv(folder: Path) -> Path:
    path = folder / "contacts.csv"
    lines = ["organization,plan,support_start,domains,name,email,phone,telegram,role"]
    for org in range(ORGANIZATIONS):
        plan = PLANS[org % len(PLANS)]
        for person, role in enumerate(("nominated", "designated", "user")):
            lines.append(
                f"Org {org},{plan},2024-01-01,org{org}.example,Person {person},"
                f"p{person}@org{org}.example,,,{role}"
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def ticket_rows(
    start: int, count: int, total: int, now: datetime, people: list[tuple[int, int, str, str]]
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Tickets `start`..`start+count-1` of `total`, oldest first over two years; the same rows
    for the same arguments (a seed per chunk)."""
    rng = random.Random(start)
    span = timedelta(days=730).total_seconds()
    for number in range(start, start + count):
        org_id, contact_id, email, plan = people[rng.randrange(len(people))]
        age = timedelta(seconds=span * (1 - number / total) + rng.uniform(0, 60))
        received = now - age
        urgent = rng.random() < 0.1
        first_due = received + timedelta(hours=rng.uniform(4, 48 if urgent else 120))
        resolution_due = received + timedelta(days=rng.uniform(1, 4 if urgent else 10))
        status, answered, resolved, closed, held = "closed", True, True, True, None
        if age > timedelta(days=14):
            if rng.random() < 0.001:  # forgotten: open and long overdue
                status, answered, resolved, closed = "open", rng.random() < 0.5, False, False
        else:
            roll = rng.random()
            if roll < 0.2:
                status, resolved, closed = "open", False, False
                answered = age > timedelta(days=2) and rng.random() < 0.7
            elif roll < 0.25:
                status, resolved, closed, held = "on_hold", False, False, received
            elif roll < 0.5:
                status, closed = "resolved", False
        first_at = received + timedelta(hours=rng.uniform(0.1, 8)) if answered else None
        resolved_at = received + timedelta(days=rng.uniform(0.5, 6)) if resolved else None
        closed_at = resolved_at + timedelta(days=5) if closed and resolved_at else None
        subject = f"Export fails with error {number % 997}"
        message_id = f"hist-{number}@org.example"
        ticket = {
            "id": number + 1,
            "organization_id": org_id,
            "contact_id": contact_id,
            "channel": "email",
            "sender": email,
            "sender_name": "",
            "reply_to": email,
            "subject": subject,
            "status": status,
            "contact_status": "nominated",
            "policy": "circularo-saas",
            "plan": plan,
            "priority": "urgent" if urgent else "normal",
            "severity": 2 if urgent else 3,
            "category": "bug",
            "urgent": urgent,
            "flags": [],
            "received_at": received,
            "clock_starts": received,
            "first_response_due": first_due,
            "resolution_due": resolution_due,
            "first_response_at": first_at,
            "resolved_at": resolved_at,
            "on_hold_at": held,
            "closed_at": closed_at,
            "last_message_at": received,
            "decision": {"priority": {"rule": "default"}},
        }
        message = {
            "id": number + 1,
            "ticket_id": number + 1,
            "channel": "email",
            "channel_message_id": message_id,
            "rfc_message_id": message_id,
            "direction": "in",
            "sender": email,
            "subject": subject,
            "text": "The PDF export shows error 500 since this morning.",
            "raw": b"",
            "problems": [],
            "extra": {},
            "received_at": received,
        }
        ack = {
            "id": number + 1,
            "ticket_id": number + 1,
            "kind": "ack",
            "channel": "email",
            "recipient": email,
            "payload": {"subject": f"Re: {subject}"},
            "status": "sent",
            "attempts": 1,
            "next_attempt_at": received,
            "created_at": received,
            "sent_at": received,
        }
        yield ticket, message, ack


def sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's SQLite types store: naive UTC text, JSON text, 0/1."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


async def bulk_insert(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One chunk at the driver's speed: SQLite executemany, PostgreSQL COPY.

    Core `insert()` spends most of its time in per-value type processing here; the values
    below are what those types would have produced.
    """
    columns = list(rows[0])
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        records = [
            tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row.values())
            for row in rows
        ]
        await driver.copy_records_to_table(table.name, records=records, columns=columns)
        return
    marks = ", ".join("?" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    await conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
        [tuple(sqlite_value(v) for v in row.values()) for row in rows],
    )


async def people_of(storage: Storage) -> list[tuple[int, int, str, str]]:
    """(organization id, contact id, email, plan) of every contact."""
    async with storage.sessions() as session:
        rows = await session.execute(
            select(Contact.organization_id, Contact.id, Contact.email, Organization.plan)
            .join(Organization, Organization.id == Contact.organization_id)
            .order_by(Contact.id)
        )
        return [(org, cid, str(email), plan) for org, cid, email, plan in rows]


async def fill(storage: Storage, total: int, now: datetime, *, only_open: bool) -> int:
    """Insert the generated tickets (only the open ones with `only_open`); returns how many."""
    people = await people_of(storage)
    written = 0
    for start in range(0, total, CHUNK):
        rows = list(ticket_rows(start, min(CHUNK, total - start), total, now, people))
        if only_open:
            rows = [r for r in rows if r[0]["status"] in ("open", "on_hold")]
        if not rows:
            continue
        async with storage.engine.begin() as conn:
            for model, index in ((Ticket, 0), (Message, 1), (Outbox, 2)):
                await bulk_insert(conn, cast(Table, model.__table__), [r[index] for r in rows])
        written += len(rows)
        if not only_open and start % (10 * CHUNK) == 0:
            print(f"  {start + len(rows):>9,} tickets", file=sys.stderr, flush=True)
    async with storage.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Ids were given explicitly: move the sequences past them.
            for table in BIG_TABLES:
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT coalesce(max(id), 1) FROM {table}))"
                    )
                )
            await conn.execute(text("ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))
    return written


async def prepare(url: str, folder: Path) -> Storage:
    engine = db.create_engine(url)
    await db.upgrade(engine)
    storage = Storage(engine, db.session_factory(engine))
    await admin.import_contacts(
        storage, contacts_csv(folder), default_policy="circularo-saas", default_region=None
    )
    return storage


# -- measuring ---------------------------------------------------------------------------------


def request(number: int, now: datetime, reply_to: str | None = None) -> InboundMessage:
    org, person = number % ORGANIZATIONS, number % 3
    headers = f"In-Reply-To: <{reply_to}>\r\n" if reply_to else ""
    raw = (
        f"From: Person {person} <p{person}@org{org}.example>\r\n"
        "To: support@support.example.com\r\n"
        f"Subject: Export fails ({number})\r\n"
        f"Message-ID: <bench-{number}-{now.timestamp():.0f}@org{org}.example>\r\n"
        f"{headers}"
        "Date: Tue, 10 Mar 2026 09:00:00 +0000\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "The PDF export shows error 500 since this morning. Could you have a look?\r\n"
    ).encode()
    return inbound_from_raw(raw, received_at=now, recipients=("support@support.example.com",))


async def make_pipeline(storage: Storage, url: str) -> Pipeline:
    settings = Settings(
        database={"url": url},
        notify={"emails": ["oncall@vendor.example"]},
        pipeline={"unidentified_acks_per_hour": 10**9},  # every stranger acknowledged, as before
    )
    return await build_pipeline(settings, storage)


async def intake_latency(storage: Storage, url: str, total: int) -> list[float]:
    """Seconds per message, one at a time; every third one answers a stored message."""
    pipeline = await make_pipeline(storage, url)
    rng = random.Random(7)
    timings = []
    for number in range(LATENCY_SAMPLES + 20):
        reply = f"hist-{rng.randrange(total)}@org.example" if number % 3 == 0 else None
        message = request(number, datetime.now(UTC), reply)
        started = time.perf_counter()
        await pipeline(message)
        if number >= 20:  # the first ones warm caches and compile statements
            timings.append(time.perf_counter() - started)
    return timings


async def list_time(storage: Storage) -> tuple[float, int]:
    """Median seconds of `tickets list --open --overdue`, and how many rows it gave."""
    runs, found = [], 0
    for _ in range(LIST_RUNS):
        started = time.perf_counter()
        rows = await admin.list_ticket_rows(storage, only_open=True, overdue_at=datetime.now(UTC))
        runs.append(time.perf_counter() - started)
        found = len(rows)
    return statistics.median(runs), found


async def background_queries(storage: Storage) -> None:
    """What every node runs besides intake: the outbox deliverer's claim, the SLA watcher's
    batches (their plans are checked too)."""
    now = datetime.now(UTC)
    async with storage.sessions() as session:
        await outbox.claim_due(session, now, timedelta(minutes=5), 20)
        await session.rollback()
        for deadline in watch.Deadline:
            await watch.watched_tickets(session, deadline, after=None, limit=100)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@contextmanager
def recording(storage: Storage) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT the engine runs meanwhile, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, params))

    event.listen(storage.engine.sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(storage.engine.sync_engine, "before_cursor_execute", before)


async def full_scans(storage: Storage, statements: list[tuple[str, Any]]) -> list[str]:
    """The plans' lines that read a whole big table."""
    found: list[str] = []
    done: set[str] = set()
    async with storage.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        for statement, params in statements:
            if statement in done:
                continue
            done.add(statement)
            prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            plan = await conn.exec_driver_sql(prefix + statement, params)
            lines = [str(row[-1]) for row in plan]
            for line in lines:
                # SQLite: SCAN is a whole table or index read in order (SEARCH uses a key).
                bad = any(
                    f"Seq Scan on {t}" in line if postgres else line.strip().startswith(f"SCAN {t}")
                    for t in BIG_TABLES
                )
                if bad:
                    found.append(f"{line.strip()}  <-  {' '.join(statement.split())[:300]}")
    return found


# -- RSS in a fresh process --------------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def rss_run(url: str, count: int) -> None:
    engine = db.create_engine(url)
    storage = Storage(engine, db.session_factory(engine))
    pipeline = await make_pipeline(storage, url)
    marks: dict[int, float] = {}
    numbers = iter(range(1_000_000, 1_000_000 + count))
    done = 0
    started = time.perf_counter()

    async def client() -> None:
        nonlocal done
        for number in numbers:
            await pipeline(request(number, datetime.now(UTC)))
            done += 1
            if done in (count // 10, count):
                marks[done] = peak_rss_mib()

    await asyncio.gather(*(client() for _ in range(20)))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    tenth, last = marks[count // 10], marks[count]
    print(
        f"RSS over {count:,} messages ({count / elapsed:,.0f}/s): peak {tenth:.0f} MiB after "
        f"{count // 10:,}, {last:.0f} MiB after {count:,}; ratio {last / tenth:.2f}"
    )


# -- the run -----------------------------------------------------------------------------------


async def postgres_databases(url: str, keep: bool, *, create: bool) -> dict[str, str]:
    parsed = make_url(url)
    if "bench" not in (parsed.database or ""):
        raise SystemExit("--database-url: the database name must contain 'bench'")
    admin_dsn = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    names = {kind: f"{parsed.database}_{kind}" for kind in ("empty", "live", "full")}
    conn = await asyncpg.connect(admin_dsn)
    try:
        for name in names.values():
            if create or not keep:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return {
        k: parsed.set(database=v).render_as_string(hide_password=False) for k, v in names.items()
    }


async def run(args: argparse.Namespace, folder: Path) -> None:
    if args.database_url:
        urls = await postgres_databases(args.database_url, args.keep, create=True)
    else:
        urls = {k: f"sqlite+aiosqlite:///{folder / k}.db" for k in ("empty", "live", "full")}
    now = datetime.now(UTC)
    stores = {kind: await prepare(url, folder) for kind, url in urls.items()}
    started = time.perf_counter()
    live = await fill(stores["live"], args.tickets, now, only_open=True)
    full = await fill(stores["full"], args.tickets, now, only_open=False)
    elapsed = time.perf_counter() - started
    dialect = stores["full"].engine.dialect.name
    print(f"{dialect}: filled {full:,} tickets (live: {live:,}) in {elapsed:.0f}s "
          f"({3 * full / elapsed:,.0f} rows/s: ticket, message, acknowledgement)")  # fmt: skip

    latency: dict[str, list[float]] = {}
    listing: dict[str, tuple[float, int]] = {}
    statements: list[tuple[str, Any]] = []
    for kind in ("empty", "live", "full"):
        storage = stores[kind]
        if kind == "full":
            with recording(storage) as seen:
                latency[kind] = await intake_latency(storage, urls[kind], args.tickets)
                listing[kind] = await list_time(storage)
                await background_queries(storage)
            statements = list(seen)
        else:
            latency[kind] = await intake_latency(storage, urls[kind], args.tickets)
            listing[kind] = await list_time(storage)
    for kind in ("empty", "live", "full"):
        p50, p99 = percentile(latency[kind], 0.5), percentile(latency[kind], 0.99)
        seconds, rows = listing[kind]
        print(
            f"{kind:>5}: intake p50 {p50 * 1000:6.2f} ms, p99 {p99 * 1000:6.2f} ms; "
            f"tickets list --open --overdue {seconds * 1000:7.1f} ms ({rows:,} rows)"
        )
    for base in ("empty", "live"):
        print(
            f"full/{base}: intake p50 x{percentile(latency['full'], 0.5) / percentile(latency[base], 0.5):.2f}, "  # noqa: E501
            f"p99 x{percentile(latency['full'], 0.99) / percentile(latency[base], 0.99):.2f}; "
            f"list x{listing['full'][0] / listing[base][0]:.2f}"
        )
    scans = await full_scans(stores["full"], statements)
    print(f"plans of {len({s for s, _ in statements})} distinct SELECTs on full: "
          f"{len(scans)} full scans of {', '.join(BIG_TABLES)}")  # fmt: skip
    for line in scans:
        print("  FULL SCAN:", line)
    for storage in stores.values():
        await storage.engine.dispose()

    if args.rss_messages:
        subprocess.run(
            [sys.executable, __file__, "--rss-only", urls["full"], str(args.rss_messages)],
            check=True,
        )
    if args.database_url and not args.keep:
        await postgres_databases(args.database_url, False, create=False)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--rss-only":
        asyncio.run(rss_run(sys.argv[2], int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--rss-messages", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL databases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="intake-million-") as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    main()
