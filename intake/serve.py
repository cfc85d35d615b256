"""`intake serve`: every enabled channel and the outbox deliverer, until SIGTERM or SIGINT.

On a signal it stops accepting, lets what was accepted finish (its tickets commit, its
notices are queued), stops the deliverer after its current pass, and returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable

from channels.smtp import SmtpChannel, SmtpReplier
from intake import admin
from intake.app import Storage, build_pipeline, open_storage, utc_now
from intake.config import Settings, SmtpSettings
from intake.delivery import Deliverer
from intake.errors import ConfigError
from intake.messages import Intake, Replier

log = logging.getLogger(__name__)


def smtp_tls(settings: SmtpSettings) -> ssl.SSLContext | None:
    if settings.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("smtp.tls_cert", f"cannot load certificate: {exc}") from None
    return context


class Service:
    """The running product: channels in, deliverer out."""

    def __init__(self, settings: Settings, storage: Storage, intake: Intake) -> None:
        self.settings = settings
        self.storage = storage
        self.intake = intake
        self.channels: list[SmtpChannel] = []
        self.stopping = asyncio.Event()
        repliers: dict[str, Replier] = {
            "email": SmtpReplier(settings.outbound.smtp, clock=utc_now),
        }
        self.deliverer = Deliverer(storage.sessions, repliers)
        self._delivering: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.settings.smtp.enabled:
            smtp = self.settings.smtp
            self.channels.append(
                SmtpChannel(
                    smtp,
                    clock=utc_now,
                    tls_context=smtp_tls(smtp),
                    max_connections=smtp.max_connections,
                    timeout=smtp.timeout_seconds,
                )
            )
        for channel in self.channels:
            await channel.start(self.intake)
        self._delivering = asyncio.create_task(self.deliverer.run(self.stopping))

    async def stop(self) -> None:
        for channel in reversed(self.channels):
            await channel.stop()
        self.stopping.set()
        if self._delivering is not None:
            await self._delivering


async def serve(settings: Settings, *, on_ready: Callable[[Service], None] | None = None) -> None:
    async with open_storage(settings) as storage:
        if settings.contacts.file is not None:
            summary = await admin.import_contacts(
                storage,
                settings.contacts.file,
                default_policy=settings.policy.name,
                default_region=settings.contacts.default_region,
            )
            log.info(
                "contacts: %d organizations, %d changes", summary.organizations, summary.changed
            )
        service = Service(settings, storage, await build_pipeline(settings, storage))
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
