"""Prometheus metrics: the product's counters on a registry of its own, and GET /metrics.

Counters and the latency histogram are per process (Prometheus sums them over the nodes);
`tickets_open{priority}` is read from the shared database at scrape time, so every node
reports the same. The workers of one `intake serve --workers N` share one port, so a scrape
reaches any one of them: they count in files of one folder (prometheus_client's multiprocess
mode, `count_in`), and each scrape reports the sums over every worker, living or dead.
This module imports only the leaves: the database is reached through the `OpenCounts`
callable the wiring passes in (`storage.watch.OpenTicketCounts`).

The SLA report's gauges (open overdue tickets by priority, each organization's quota and its
use in the current support period) come the same way, from `ReportReader`
(`intake.desk.reporting.ReportGauges`, which keeps them a few seconds between scrapes).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from intake.errors import REFUSALS_LOGGER, InputRefusedError, TransientError
from intake.messages import InboundMessage, Intake, Receipt

log = logging.getLogger(__name__)

OpenCounts = Callable[[], Awaitable[Mapping[str, int]]]
RoutesFactory = Callable[[Intake], Sequence[BaseRoute]]


class ReportFigures(Protocol):
    @property
    def open_overdue(self) -> Mapping[str, int]: ...  # by priority

    @property
    def quotas(self) -> Mapping[str, tuple[int, int]]: ...  # organization -> (quota, used)


ReportReader = Callable[[], Awaitable[ReportFigures]]

# Intake answers within a second when all is well; the upper buckets show when it is not.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def count_in(folder: Path) -> None:
    """From now on, in this process and those it forks, every metric made counts in files in
    `folder` (prometheus_client's multiprocess mode), so that one process can report them all."""
    # prometheus_client chooses how values are kept when it is imported, from this variable;
    # `intake serve` knows its workers only later, so it sets both the variable and the choice.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class _EveryProcess(Collector):
    """The counters and histograms of every process counting in `folder`, summed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterable[Metric]:
        # The gauges' files are left out: they are read from the database by the process
        # being scraped (`_Own`), and a dead worker's would linger.
        files = [str(f) for f in self.folder.glob("*.db") if not f.name.startswith("gauge_")]
        merged: Iterable[Metric] = MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
            files, accumulate=True
        )
        return merged


class _Own(Collector):
    """These metrics as this process holds them."""

    def __init__(self, metrics: Sequence[Collector]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        for metric in self.metrics:
            yield from metric.collect()


@dataclass
class Metrics:
    """Every metric the product exposes, on `registry` (not the global one: tests and several
    services in one process stay apart)."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    # Where the workers of one `intake serve` count together (`count_in`); None: alone.
    shared: Path | None = None

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "intake_messages", "Inbound messages by channel and outcome",
            ["channel", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "intake_latency_seconds", "Time from a message reaching the pipeline to its receipt",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.acknowledgements = Counter(
            "acknowledgements", "Acknowledgements delivered or given up on, by channel",
            ["channel", "result"], registry=r,
        )  # fmt: skip
        self.sla_alerts = Counter(
            "sla_alerts", "SLA alerts queued, by threshold", ["threshold"], registry=r
        )
        self.sla_breaches = Counter("sla_breaches", "SLA deadlines that passed unmet", registry=r)
        self.tickets_open = Gauge(
            "tickets_open", "Open tickets (open or on hold) by priority", ["priority"], registry=r
        )
        self.refusals = Counter(
            "intake_refusals", "Inputs refused or dropped at a channel's edge, by reason",
            ["channel", "reason"], registry=r,
        )  # fmt: skip

        self.tickets_open_overdue = Gauge(
            "tickets_open_overdue", "Open tickets past a first response or resolution deadline",
            ["priority"], registry=r,
        )  # fmt: skip
        self.organization_quota = Gauge(
            "organization_quota", "Requests the plan allows per support period",
            ["organization"], registry=r,
        )  # fmt: skip
        self.organization_quota_used = Gauge(
            "organization_quota_used", "Requests made in the current support period",
            ["organization"], registry=r,
        )  # fmt: skip

    def exposed(self) -> CollectorRegistry:
        """What a scrape reports: this registry, or every worker's sums and our gauges."""
        if self.shared is None:
            return self.registry
        gauges = (self.tickets_open, self.tickets_open_overdue, self.organization_quota,
                  self.organization_quota_used)  # fmt: skip
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_EveryProcess(self.shared))
        registry.register(_Own(gauges))
        return registry

    def count_refusals(self) -> Callable[[], None]:
        """Count every `intake.errors.log_refusal` line from now on; returns the undo."""
        handler = _RefusalCounter(self.refusals)
        logger = logging.getLogger(REFUSALS_LOGGER)
        level = logger.level
        # Counted whatever the log shows: the records must be made even if INFO is hidden.
        logger.setLevel(logging.INFO if not level or level > logging.INFO else level)
        logger.addHandler(handler)

        def undo() -> None:
            logger.removeHandler(handler)
            logger.setLevel(level)

        return undo

    def sla_alert(self, deadline: str, threshold: str) -> None:
        """`SlaWatcher.on_alert`."""
        self.sla_alerts.labels(threshold=threshold).inc()
        if threshold == "breach":
            self.sla_breaches.inc()

    def delivered(self, kind: str, channel: str, result: str) -> None:
        """`Deliverer.on_result`: only acknowledgements are counted (result sent or failed)."""
        if kind == "ack":
            self.acknowledgements.labels(channel=channel, result=result).inc()

    def set_open(self, counts: Mapping[str, int]) -> None:
        _clear(self.tickets_open)  # a priority with no open ticket left must not linger
        for priority, count in counts.items():
            self.tickets_open.labels(priority=priority).set(count)

    def set_report(self, figures: ReportFigures | None) -> None:
        """None: not read this time (the database is away); the gauges are left out."""
        for gauge in (self.tickets_open_overdue, self.organization_quota,
                      self.organization_quota_used):  # fmt: skip
            _clear(gauge)
        if figures is None:
            return
        for priority, count in figures.open_overdue.items():
            self.tickets_open_overdue.labels(priority=priority).set(count)
        for organization, (quota, used) in figures.quotas.items():
            self.organization_quota.labels(organization=organization).set(quota)
            self.organization_quota_used.labels(organization=organization).set(used)


def _clear(gauge: Gauge) -> None:
    """Forget the gauge's labels. In multiprocess mode prometheus_client warns that their
    files keep them: a scrape never reads the gauges' files (`_EveryProcess`), only what this
    process holds now (`_Own`), which the clear does empty."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Clearing labels", UserWarning)
        gauge.clear()


class _RefusalCounter(logging.Handler):
    def __init__(self, counter: Counter) -> None:
        super().__init__()
        self.counter = counter

    def emit(self, record: logging.LogRecord) -> None:
        refusal = getattr(record, "refusal", None)
        if isinstance(refusal, tuple) and len(refusal) == 2:
            self.counter.labels(channel=refusal[0], reason=refusal[1]).inc()


@dataclass(frozen=True)
class MeasuredIntake:
    """An `Intake` that times and counts every call of the one it wraps."""

    intake: Intake
    metrics: Metrics

    async def __call__(self, message: InboundMessage) -> Receipt:
        started = time.perf_counter()
        status = "error"
        try:
            receipt = await self.intake(message)
            status = str(receipt.status)
            return receipt
        except InputRefusedError:
            status = "refused"
            raise
        except TransientError:
            status = "transient"
            raise
        finally:
            self.metrics.latency.observe(time.perf_counter() - started)
            self.metrics.messages.labels(channel=str(message.channel), status=status).inc()


def metrics_routes(
    metrics: Metrics, open_counts: OpenCounts | None = None, report: ReportReader | None = None
) -> RoutesFactory:
    """The routes factory for GET /metrics (text format, or OpenMetrics if asked for)."""

    async def scrape(request: Request) -> Response:
        figures: ReportFigures | None = None
        if report is not None:
            try:
                figures = await report()
            except Exception as exc:  # as for tickets_open: the rest still matters
                log.warning("report gauges not read: %s", type(exc).__name__)
        if open_counts is not None:
            try:
                counts: Mapping[str, int] = await open_counts()
            except Exception as exc:  # the counters still matter when the database is away
                log.warning("tickets_open not read: %s", type(exc).__name__)
                counts = {}
            # No await from here on: the gauge and the rendering see one consistent state.
            metrics.set_open(counts)
        if report is not None:
            metrics.set_report(figures)
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(metrics.exposed()), headers={"Content-Type": content_type})

    def routes(_intake: Intake) -> Sequence[BaseRoute]:
        return [Route("/metrics", scrape, methods=["GET"])]

    return routes
