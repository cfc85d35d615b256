"""`intake serve`: every enabled channel and the outbox deliverer, until SIGTERM or SIGINT.

On a signal it stops accepting, lets what was accepted finish (its tickets commit, its
notices are queued), lets the deliverer send what is due within its grace period (the
acknowledgement of a message confirmed just before the signal goes out now), and returns.

With `--workers N` each worker process runs one `Service` on sockets its parent bound
(`intake.cli.workers`); only one of them has the duties one process per host must do alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from channels.desk.api import api_routes
from channels.desk.page import page_routes
from channels.desk.reports import report_routes
from channels.email.posts import mail_post_routes
from channels.email.sender_checks import sender_checks, with_upstream_verdict
from channels.email.smtp import SmtpChannel, SmtpReplier, server_name
from channels.web.app import RoutesFactory, WebChannel
from channels.web.callback import CallbackForm
from channels.web.metrics import MeasuredIntake, Metrics, metrics_routes
from intake.cli import admin
from intake.cli.app import Storage, build_pipeline, notice_options, open_storage, utc_now
from intake.cli.demo.sink import PrintingSink
from intake.config import NotifySettings, Settings, SmtpSettings, WebSettings
from intake.desk.conversation import ReplyOptions
from intake.desk.reporting import ReportGauges
from intake.desk.watch import SlaWatcher
from intake.errors import ConfigError
from intake.messages import Channel, Intake, Replier
from intake.outbox import acks
from intake.outbox.delivery import Deliverer
from intake.outbox.endorsements import EndorsementDigests
from intake.outbox.notices import Notifier
from intake.policy.check import inconsistencies
from intake.policy.files import load_policy
from intake.ratelimit import RateLimiter, limited
from intake.redact import redact_logs, secrets_of
from storage.locks import leadership
from storage.twilio_status import OutboxStatuses
from storage.watch import OpenTicketCounts
from storage.webhook_tokens import SeenTokens

if TYPE_CHECKING:
    from channels.telegram.channel import TelegramReplier
    from channels.twilio.replier import TwilioReplier

log = logging.getLogger(__name__)

PROBLEMS_EVERY_SECONDS = 2.0  # how soon the other workers' /healthz shows worker 0's problems


@dataclass(frozen=True)
class Worker:
    """What a worker of `intake serve --workers N` has from its parent (intake.cli.workers)."""

    number: int  # 0 .. N-1; a restarted worker keeps its number
    smtp: tuple[socket.socket, ...]  # listening sockets, bound and shared by the parent
    web: tuple[socket.socket, ...]
    folder: Path  # the workers' own: their counters, worker 0's problems

    @property
    def duties(self) -> bool:
        """The work one process per host does alone is worker 0's."""
        return self.number == 0

    @property
    def metrics(self) -> Path:
        """Where every worker's counters are kept for /metrics (`Metrics.shared`)."""
        return self.folder / "metrics"

    @property
    def problems(self) -> Path:
        """Worker 0's problems, one per line, for the /healthz of every worker."""
        return self.folder / "problems"


def smtp_tls(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("smtp.tls_cert", f"cannot load certificate: {exc}") from None
    return context


def reply_options(settings: Settings, secret: bytes) -> ReplyOptions:
    """What agents' replies need (the API's and the page's): our address, the threading
    secret, the WhatsApp template, the files' limit."""
    return ReplyOptions(
        mailbox=settings.outbound.smtp.from_address,
        secret=secret,
        whatsapp_template_sid=settings.twilio.whatsapp_template_sid.strip(),
        max_attachment_bytes=settings.web.reply_attachments_max_bytes,
    )


def web_routes(
    settings: Settings,
    secret: bytes,
    storage: Storage,
    metrics: Metrics | None = None,
    wake: Callable[[], None] | None = None,
) -> list[RoutesFactory]:
    """The routes each enabled wire adds to the web app."""
    form = CallbackForm(
        secret,
        clock=utc_now,
        default_region=settings.contacts.default_region,
        per_hour=settings.web.callback_per_hour,
        secure_cookie=settings.web.public_url.startswith("https://"),
    )
    api = api_routes(
        storage.sessions, utc_now, replies=reply_options(settings, secret),
        templates_dir=settings.pipeline.templates_dir, wake=wake,
    )  # fmt: skip
    routes: list[RoutesFactory] = [form.routes, api]
    routes.append(
        page_routes(
            storage.sessions,
            secret,
            secure_cookie=form.secure_cookie,
            failures_before_delay=settings.limits.login_failures_before_delay,
            delay_cap_seconds=settings.limits.login_delay_cap_seconds,
            priorities=load_policy(settings.policy.name).priorities.order,
            account_failures_before_delay=settings.limits.login_account_failures_before_delay,
            account_delay_cap_seconds=settings.limits.login_account_delay_cap_seconds,
            reply_options=reply_options(settings, secret),
            canned_dir=settings.pipeline.templates_dir,
            wake=wake,
        )
    )
    routes.append(
        report_routes(storage.sessions, secret, default_policy=settings.policy.name, clock=utc_now)
    )
    if settings.twilio.enabled:
        # Imported here, as the other optional channels are: twilio, aiohttp, telegram and
        # imapclient cost about 40 MB of resident memory, which a default node never uses.
        from channels.twilio.messaging import twilio_routes

        routes.append(
            twilio_routes(
                settings.twilio,
                settings.web.public_url,
                clock=utc_now,
                media_limit_bytes=settings.twilio.media_limit_bytes,
                statuses=OutboxStatuses(storage.sessions),
            )
        )
    routes.append(
        mail_post_routes(
            mailgun=settings.mailgun,
            postmark=settings.postmark,
            sendgrid=settings.sendgrid,
            ses=settings.ses,
            clock=utc_now,
            tokens=SeenTokens(storage.sessions),
        )
    )
    if metrics is not None:
        report = ReportGauges(storage.sessions, settings.policy.name, utc_now)
        routes.append(metrics_routes(metrics, OpenTicketCounts(storage.sessions), report))
    return routes


class Service:
    """The running product: channels in, deliverer out."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        intake: Intake,
        *,
        secret: bytes = b"",
        metrics: Metrics | None = None,
        worker: Worker | None = None,
    ) -> None:
        # The work one process per host does alone: polling IMAP and Telegram (on SQLite
        # nothing else keeps a second poller off; Telegram refuses two), the SLA watcher and
        # the endorsement digests (safe twice over, but each pass would be done N times).
        self.worker = worker
        self.duties = worker is None or worker.duties
        # The shared secret signs form tokens; without one they are valid on this node only.
        self.secret = secret or secrets.token_bytes(32)
        self.settings = settings
        self.storage = storage
        self.metrics = metrics or Metrics(shared=worker.metrics if worker is not None else None)
        limit = settings.limits.messages_per_sender_per_hour
        checked = with_upstream_verdict(intake, settings.authentication)  # IMAP's mail
        self.intake: Intake = MeasuredIntake(limited(checked, limit), self.metrics)
        self.channels: list[Channel] = []
        self.stopping = asyncio.Event()
        self.smtp_replier = SmtpReplier(
            settings.outbound.smtp, clock=utc_now, local_hostname=server_name(settings.smtp)
        )
        repliers: dict[str, Replier] = {"email": self.smtp_replier}
        self.twilio_replier: TwilioReplier | None = None
        if settings.twilio.enabled:
            from channels.twilio.replier import TwilioReplier

            twilio = self.twilio_replier = TwilioReplier(
                settings.twilio,
                whatsapp_from=settings.twilio.whatsapp_from,
                sms_from=settings.twilio.sms_from,
                public_url=settings.web.public_url,
            )
            repliers.update({"whatsapp": twilio, "sms": twilio, "voice": twilio})
        self.telegram_replier: TelegramReplier | None = None
        if settings.telegram.token.get_secret_value():  # the bot, or only agents' alerts
            from channels.telegram.channel import TelegramReplier

            self.telegram_replier = TelegramReplier(settings.telegram)
            repliers["telegram"] = self.telegram_replier
        alert_to = [("email", e) for e in settings.notify.emails] + [
            ("telegram", str(chat)) for chat in settings.notify.telegram_chat_ids
        ]
        self.deliverer = Deliverer(
            storage.sessions, repliers, on_result=self.metrics.delivered, alert_to=alert_to
        )
        self._delivering: asyncio.Task[None] | None = None
        # Its defaults stand until settings name warn_share, check_seconds and the close rule.
        self.watcher = SlaWatcher(
            storage.sessions,
            notice_options(settings),
            acks.environment(settings.pipeline.templates_dir),
            utc_now,
            warn_share=settings.sla.warn_share,
            check_seconds=settings.sla.check_seconds,
            inactivity_close_days=settings.sla.inactivity_close_days,
            inactivity_policies=tuple(settings.sla.inactivity_policies),
            on_alert=self.metrics.sla_alert,
        )
        self._watching: asyncio.Task[None] | None = None
        # Endorsement requests go out as one digest per organization and period.
        pipeline = settings.pipeline
        self.digests = EndorsementDigests(
            storage.sessions,
            Notifier(
                notice_options(settings),
                self.secret,
                acks.environment(pipeline.templates_dir),
                utc_now,
            ),
            period=timedelta(minutes=pipeline.endorsement_digest_minutes),
            max_entries=pipeline.endorsement_digest_entries,
        )
        self._digesting: asyncio.Task[None] | None = None
        self._sharing: asyncio.Task[None] | None = None
        self._unredact: Callable[[], None] | None = None
        self._uncount: Callable[[], None] | None = None

    async def start(self) -> None:
        # Before any channel can log: no configured secret ever reaches a log line.
        self._unredact = redact_logs(secrets_of(self.settings, self.secret))
        self._uncount = self.metrics.count_refusals()  # intake_refusals_total in /metrics
        if self.settings.smtp.enabled:
            smtp = self.settings.smtp
            self.channels.append(
                SmtpChannel(
                    smtp,
                    clock=utc_now,
                    tls_context=smtp_tls(smtp),
                    max_connections=smtp.max_connections,
                    timeout=smtp.timeout_seconds,
                    spool_threshold=smtp.spool_threshold_bytes,
                    sender_checks=sender_checks(self.settings.authentication),
                    client_limiter=RateLimiter.optional(
                        self.settings.limits.smtp_connections_per_client_per_minute, 60
                    ),
                    trusted_relays=self.settings.authentication.trusted_relays,
                    sockets=self.worker.smtp if self.worker is not None else (),
                )
            )
        if self.settings.imap.enabled and self.duties:
            # One poller per mailbox across the nodes sharing the database (an advisory lock).
            from channels.email.imap import ImapChannel, mailbox_key

            imap = self.settings.imap
            lock = leadership(self.storage.engine, f"imap {mailbox_key(imap)}")
            self.channels.append(ImapChannel(imap, self.storage.sessions, utc_now, leadership=lock))
        factories = web_routes(
            self.settings, self.secret, self.storage, self.metrics, wake=self.deliverer.wake
        )
        if self.settings.telegram.enabled:
            from channels.telegram.channel import TelegramChannel

            telegram = TelegramChannel(
                self.settings.telegram,
                self.storage.sessions,
                utc_now,
                public_url=self.settings.web.public_url,
                poll_timeout=self.settings.telegram.poll_timeout_seconds,
                max_file_bytes=self.settings.telegram.max_file_bytes,
                max_body_bytes=self.settings.telegram.max_update_bytes,
            )
            if self.settings.telegram.mode == "webhook":
                factories.append(telegram.routes)
                self.channels.append(telegram)  # every worker takes webhook requests
            elif self.duties:
                self.channels.append(telegram)
        if self.settings.web.enabled:
            per_client = self.settings.limits.web_requests_per_client_per_minute
            self.channels.append(
                WebChannel(
                    self.settings.web,
                    factories,
                    health_check=self.ping,
                    client_limiter=RateLimiter.optional(per_client, 60),
                    problems=self.problems,
                    sockets=self.worker.web if self.worker is not None else (),
                )
            )
        for channel in self.channels:
            await self._listen(channel)
        self._delivering = asyncio.create_task(self.deliverer.run(self.stopping))
        if self.duties:
            self._watching = asyncio.create_task(self.watcher.run(self.stopping))
            self._digesting = asyncio.create_task(self.digests.run(self.stopping))
        if self.worker is not None and self.duties:
            self._sharing = asyncio.create_task(self._share_problems(self.worker.problems))

    def problems(self) -> list[str]:
        """What /healthz names beside the database: channels that need an administrator."""
        found = (getattr(channel, "problem", None) for channel in self.channels)
        own = [problem for problem in found if isinstance(problem, str) and problem]
        if self.duties or self.worker is None:
            return own
        # Any worker may answer /healthz: it tells what worker 0's channels (IMAP) report.
        try:
            return own + self.worker.problems.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return own

    async def _share_problems(self, path: Path) -> None:
        """Worker 0: keep `path` saying what `problems` says, for the other workers."""
        written: str | None = None
        while not self.stopping.is_set():
            lines = "".join(f"{problem}\n" for problem in self.problems())
            if lines != written:
                path.with_suffix(".new").write_text(lines, encoding="utf-8")
                path.with_suffix(".new").replace(path)  # readers never see half of it
                written = lines
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), PROBLEMS_EVERY_SECONDS)

    async def _listen(self, channel: Channel) -> None:
        """Start `channel`; a listener that cannot bind is one ConfigError naming the address
        (CONTRACTS section 2 additions), not a traceback."""
        try:
            await channel.start(self.intake)
        except OSError as exc:
            if channel.name not in ("smtp", "web"):
                raise
            raise listen_error(self.settings, channel.name, exc) from None

    async def ping(self) -> None:
        """What /healthz asks: does the database answer?"""
        async with self.storage.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def stop(self) -> None:
        for channel in reversed(self.channels):
            await channel.stop()
        self.stopping.set()
        if self._delivering is not None:
            await self._delivering
        if self._watching is not None:
            await self._watching
        if self._digesting is not None:
            await self._digesting
        if self._sharing is not None:
            await self._sharing
        await self.smtp_replier.aclose()
        if self.twilio_replier is not None:
            await self.twilio_replier.aclose()
        if self.telegram_replier is not None:
            await self.telegram_replier.aclose()
        if self._unredact is not None:
            self._unredact()
        if self._uncount is not None:
            self._uncount()


def listen_error(settings: Settings, name: str, exc: OSError) -> ConfigError:
    """The one line naming the address that `name` ("smtp" or "web") cannot listen on."""
    listens: dict[str, SmtpSettings | WebSettings] = {"smtp": settings.smtp, "web": settings.web}
    section = listens[name]
    address = f"[{section.host}]" if ":" in section.host else section.host
    problem = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        problem = "address already in use (another process holds the port)"
    return ConfigError(f"{name}.port", f"cannot listen on {address}:{section.port}: {problem}")


DEMO_HINT = """Demo: SMTP for {domains} on {host}:{port}; acknowledgements print here.
From another terminal, send a request as a demo customer:
  python3 -m intake.cli.demo.send --port {port} "Urgent: export fails" "It shows error 500."
  intake tickets list
Urgent alerts go to {notify} and print here too.
The agents' page is {page}; create an agent to log in (and an API token) with:
  echo 'a long password' | intake agents add you@vendor.example --name You --password-stdin
Ctrl-C stops."""
# The demo's on-call address when the configuration names none: its alerts print here.
DEMO_NOTIFY = "oncall@vendor.example"


async def serve(settings: Settings, *, demo: bool = False) -> None:
    """Run until SIGTERM/SIGINT. `demo`: demo contacts, and a printing sink as the relay."""
    if not demo:
        await run_service(settings)
        return
    sink = PrintingSink(sys.stdout)
    await sink.start()
    try:
        outbound = settings.outbound.smtp.model_copy(
            update={"host": "127.0.0.1", "port": sink.port}
        )
        with resources.as_file(resources.files("intake.cli.demo") / "contacts.toml") as contacts:
            settings = settings.model_copy(
                update={
                    "outbound": settings.outbound.model_copy(update={"smtp": outbound}),
                    "contacts": settings.contacts.model_copy(update={"file": contacts}),
                    "notify": _demo_notify(settings),
                }
            )
            await run_service(settings, on_ready=lambda service: print(_hint(settings, service)))
    finally:
        await sink.stop()


def _demo_notify(settings: Settings) -> NotifySettings:
    notify = settings.notify
    if notify.emails or notify.telegram_chat_ids:
        return notify
    return notify.model_copy(update={"emails": [DEMO_NOTIFY]})


def _hint(settings: Settings, service: Service) -> str:
    domains = settings.smtp.domains
    smtp = [c for c in service.channels if isinstance(c, SmtpChannel)]
    port = smtp[0].port if smtp else settings.smtp.port
    web = [c for c in service.channels if isinstance(c, WebChannel)]
    host = settings.web.host if ":" not in settings.web.host else f"[{settings.web.host}]"
    page = f"http://{host}:{web[0].port}/" if web else "off ([web] enabled = false)"
    notify = ", ".join(settings.notify.emails + [str(c) for c in settings.notify.telegram_chat_ids])
    return DEMO_HINT.format(
        domains=", ".join(domains), host=settings.smtp.host, port=port, page=page, notify=notify
    )


async def prepare(settings: Settings, storage: Storage) -> None:
    """What one `intake serve` does once before taking anything, however many workers it
    runs: the contacts file, the policy's warnings (the schema: `open_storage`)."""
    if settings.contacts.file is not None:
        summary = await admin.import_contacts(
            storage,
            settings.contacts.file,
            default_policy=settings.policy.name,
            default_region=settings.contacts.default_region,
        )
        log.info("contacts: %d organizations, %d changes", summary.organizations, summary.changed)
    for line in inconsistencies(load_policy(settings.policy.name)):
        log.warning("policy %s: %s", settings.policy.name, line)


async def run_service(
    settings: Settings,
    *,
    on_ready: Callable[[Service], None] | None = None,
    worker: Worker | None = None,
) -> None:
    """One service until SIGTERM/SIGINT. A `worker`'s parent has prepared the database
    already; a process of its own (None) prepares it here."""
    async with open_storage(settings, migrate=worker is None) as storage:
        if worker is None:
            await prepare(settings, storage)
        pipeline = await build_pipeline(settings, storage)
        service = Service(
            settings,
            storage,
            pipeline,
            secret=pipeline.notifier.secret,
            worker=worker,
        )
        # A batch's notices go to the deliverer as it commits, leased to it: no claim.
        pipeline.notifier.handover.attach(service.deliverer)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await service.start()
            log.info("serving; policy %s", settings.policy.name)
            if on_ready is not None:
                on_ready(service)
            await stop.wait()
            log.info("stopping: finishing what was accepted")
        finally:
            await service.stop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    log.info("stopped")
