"""/metrics over real HTTP after real intake, deliveries and SLA alerts (SQLite, PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from channels.web.app import WebChannel
from channels.web.metrics import MeasuredIntake, Metrics, metrics_routes
from classifier import load_rules
from intake.cli.app import Storage
from intake.cli.serve import Service
from intake.config import Settings, WebSettings
from intake.desk.watch import SlaWatcher
from intake.errors import InputRefusedError, PermanentChannelError, TransientError
from intake.messages import Ack, ChannelKind, InboundMessage, Receipt, ReceiptStatus
from intake.outbox import acks
from intake.outbox.delivery import Deliverer
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline.pipeline import Pipeline, PipelineOptions
from storage import contacts
from storage.watch import OpenTicketCounts

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
OPTIONS = NoticeOptions(mailbox="support@support.example.com", notify_emails=("on@v.example",))
RULES = load_rules()
TEMPLATES = acks.environment()
_ids = itertools.count(1)


def mail(sender: str, subject: str) -> InboundMessage:
    return InboundMessage(
        channel=ChannelKind.EMAIL,
        channel_message_id=f"metrics{next(_ids)}@example.org",
        received_at=NOW,
        sender=sender,
        subject=subject,
        text="It fails.",
    )


class Replier:
    def __init__(self, fail_for: str = "") -> None:
        self.fail_for = fail_for

    async def send(self, ack: Ack) -> None:
        if ack.to == self.fail_for:
            raise PermanentChannelError("550 no such user")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def seed(storage: Storage) -> None:
    async with storage.sessions.begin() as session:
        org_id, _ = await contacts.upsert_organization(
            session, name="Globex", plan="plus", policy=None, support_start=None,
            region=None, domains=("globex.example",),
        )  # fmt: skip
        for name in ("bob", "carol", "dave"):
            await contacts.upsert_contact(
                session, org_id, name=name, email=f"{name}@globex.example", phone=None,
                telegram=None, role="nominated",
            )  # fmt: skip


async def test_metrics_after_intake_delivery_and_alerts(storage: Storage) -> None:
    await seed(storage)
    metrics = Metrics()
    notifier = Notifier(OPTIONS, b"s" * 32, TEMPLATES, lambda: NOW)
    pipeline = Pipeline(storage.sessions, RULES, PipelineOptions("circularo-saas"), notifier)
    intake = MeasuredIntake(pipeline, metrics)
    message = mail("bob@globex.example", "Urgent: export fails")
    await intake(message)
    await intake(message)  # the same message again: a duplicate
    await intake(mail("carol@globex.example", "A question"))
    await intake(mail("dave@globex.example", "Another question"))
    deliverer = Deliverer(
        storage.sessions,
        {"email": Replier(fail_for="dave@globex.example")},
        clock=lambda: NOW,
        on_result=metrics.delivered,
    )
    await deliverer.run_once()
    watcher = SlaWatcher(
        storage.sessions,
        OPTIONS,
        TEMPLATES,
        lambda: NOW + timedelta(days=30),
        on_alert=metrics.sla_alert,
    )
    report = await watcher.run_once()
    assert report.breaches == 6  # three tickets, two deadlines each

    web = WebChannel(
        WebSettings(port=0), [metrics_routes(metrics, OpenTicketCounts(storage.sessions))]
    )
    await web.start(intake)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            response = await client.get("/metrics")
            openmetrics = await client.get(
                "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            )
    finally:
        await web.stop()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    found = samples(response.text)
    email = ("channel", "email")
    assert found["intake_messages_total", (email, ("status", "accepted"))] == 3
    assert found["intake_messages_total", (email, ("status", "duplicate"))] == 1
    assert found["intake_latency_seconds_count", ()] == 4
    assert found["intake_latency_seconds_sum", ()] > 0
    assert found["intake_latency_seconds_bucket", (("le", "+Inf"),)] == 4
    assert found["acknowledgements_total", (email, ("result", "sent"))] == 2
    assert found["acknowledgements_total", (email, ("result", "failed"))] == 1
    assert found["sla_alerts_total", (("threshold", "breach"),)] == report.breaches
    assert found["sla_breaches_total", ()] == report.breaches
    priorities = {
        dict(labels)["priority"]: value
        for (name, labels), value in found.items()
        if name == "tickets_open"
    }
    assert priorities == {"urgent": 1, "normal": 2}


class Fixed:
    def __init__(self, outcome: Receipt | Exception) -> None:
        self.outcome = outcome

    async def __call__(self, message: InboundMessage) -> Receipt:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Receipt(ReceiptStatus.FOLLOW_UP, 1, "SUP-000001"), "follow_up"),
        (InputRefusedError("oversize"), "refused"),
        (TransientError("database locked"), "transient"),
        (RuntimeError("bug"), "error"),
    ],
)
async def test_measured_intake_counts_every_outcome(
    outcome: Receipt | Exception, status: str
) -> None:
    metrics = Metrics()
    intake = MeasuredIntake(Fixed(outcome), metrics)
    message = mail("x@example.org", "s")
    if isinstance(outcome, Exception):
        with pytest.raises(type(outcome)):
            await intake(message)
    else:
        assert await intake(message) is outcome
    value = metrics.registry.get_sample_value(
        "intake_messages_total", {"channel": "email", "status": status}
    )
    assert value == 1
    assert metrics.registry.get_sample_value("intake_latency_seconds_count") == 1


async def test_tickets_open_is_left_out_when_the_database_is_away() -> None:
    metrics = Metrics()
    metrics.set_open({"p1": 2})

    async def gone() -> dict[str, int]:
        raise OSError("connection refused")

    web = WebChannel(WebSettings(port=0), [metrics_routes(metrics, gone)])
    await web.start(Fixed(RuntimeError()))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            response = await client.get("/metrics")
    finally:
        await web.stop()
    assert response.status_code == 200
    assert "tickets_open{" not in response.text and "sla_breaches_total 0.0" in response.text


async def test_the_service_serves_metrics_and_counts_its_intake(storage: Storage) -> None:
    settings = Settings(web={"host": "127.0.0.1", "port": 0}, smtp={"enabled": False})
    accepted = Receipt(ReceiptStatus.ACCEPTED, 1, "SUP-000001")
    service = Service(settings, storage, Fixed(accepted))
    await service.start()
    try:
        await service.intake(mail("x@example.org", "s"))
        [web] = service.channels
        assert isinstance(web, WebChannel)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            response = await client.get("/metrics")
    finally:
        await service.stop()
    found = samples(response.text)
    assert found["intake_messages_total", (("channel", "email"), ("status", "accepted"))] == 1
    assert found["sla_breaches_total", ()] == 0
