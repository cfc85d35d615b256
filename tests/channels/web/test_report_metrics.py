"""/metrics' SLA report gauges over real HTTP: open overdue tickets by priority, and each
organization's quota and its use (tests/sla_history.py, on SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
from pipelines import make_pipeline
from prometheus_client.parser import text_string_to_metric_families
from sla_history import REPORT_NOW, seed_history

from channels.web.app import WebChannel
from channels.web.metrics import Metrics, ReportFigures, ReportReader, metrics_routes
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk.reporting import Gauges, ReportGauges


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def scrape(storage: Storage, metrics: Metrics, reader: ReportReader) -> str:
    web = WebChannel(WebSettings(port=0), [metrics_routes(metrics, None, reader)])
    await web.start(make_pipeline(storage))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            response = await client.get("/metrics")
    finally:
        await web.stop()
    assert response.status_code == 200
    return response.text


async def test_open_overdue_and_quotas(storage: Storage) -> None:
    await seed_history(storage)
    metrics = Metrics()
    gauges = ReportGauges(storage.sessions, "circularo-saas", lambda: REPORT_NOW)
    found = samples(await scrape(storage, metrics, gauges))
    overdue = {labels: v for (name, labels), v in found.items() if name == "tickets_open_overdue"}
    assert overdue == {
        (("priority", "normal"),): 2, (("priority", "urgent"),): 1, (("priority", "level-3"),): 2
    }  # fmt: skip
    # Only organizations with a quota: Initech's plan allows 100 and it made 2.
    assert found["organization_quota", (("organization", "Initech"),)] == 100
    assert found["organization_quota_used", (("organization", "Initech"),)] == 2
    assert not [k for k in found if k[0].startswith("organization_") and "Acme" in str(k)]


async def test_report_gauges_are_left_out_when_the_database_is_away(storage: Storage) -> None:
    metrics = Metrics()

    async def once() -> ReportFigures:
        return Gauges({"urgent": 3}, {"Initech": (100, 7)})

    async def gone() -> ReportFigures:
        raise OSError("connection refused")

    assert "tickets_open_overdue{" in await scrape(storage, metrics, once)
    text = await scrape(storage, metrics, gone)
    assert "tickets_open_overdue{" not in text and "organization_quota{" not in text
    assert "intake_latency_seconds" in text  # the rest is still served
