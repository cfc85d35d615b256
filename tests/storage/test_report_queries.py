"""The SLA report reads its window by the index on `received_at`, not the whole table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from intake.cli.app import Storage
from storage.reports import tickets_received

SINCE, UNTIL = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize("organization", [None, "Acme"])
async def test_the_window_is_read_by_an_index(storage: Storage, organization: str | None) -> None:
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(storage.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with storage.sessions() as session:
            await tickets_received(session, SINCE, UNTIL, organization)
    finally:
        event.remove(storage.engine.sync_engine, "before_cursor_execute", record)
    [(statement, params)] = [s for s in seen if s[0].lstrip().upper().startswith("SELECT")]
    async with storage.engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # An empty table is cheapest to scan; the question is whether an index can serve.
            await conn.exec_driver_sql("SET enable_seqscan = off")
        prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        rows = await conn.exec_driver_sql(prefix + statement, params)
        plan = " ".join(str(row[-1]) for row in rows)
    assert "Seq Scan on tickets" not in plan and "SCAN tickets" not in plan, plan
    assert "ix_tickets_received_at" in plan or "ix_tickets_organization_received" in plan, plan
