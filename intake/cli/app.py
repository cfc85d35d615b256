"""The wiring: builds storage, the pipeline and the deliverer from the settings.

The only module that imports every package; everything else receives what it needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from classifier import load_rules
from intake.config import Settings
from intake.outbox import acks
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline.pipeline import Pipeline, PipelineOptions
from intake.spam.checker import SpamChecker
from storage import db
from storage.keys import thread_secret


@dataclass(frozen=True)
class Storage:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@asynccontextmanager
async def open_storage(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Storage]:
    """The database, migrated to the current schema (as every start of the product does)."""
    engine = db.create_engine(settings.database.url)
    try:
        if migrate:
            await db.upgrade(engine)
        yield Storage(engine, db.session_factory(engine))
    finally:
        await engine.dispose()


def utc_now() -> datetime:
    return datetime.now(UTC)


def notice_options(settings: Settings) -> NoticeOptions:
    return NoticeOptions(
        mailbox=settings.outbound.smtp.from_address.lower(),
        our_domains=frozenset(d.lower() for d in settings.smtp.domains),
        acks_per_sender_per_hour=settings.pipeline.acks_per_sender_per_hour,
        unidentified_acks_per_hour=settings.pipeline.unidentified_acks_per_hour,
        notify_emails=tuple(settings.notify.emails),
        notify_telegram=tuple(settings.notify.telegram_chat_ids),
    )


async def build_pipeline(
    settings: Settings, storage: Storage, *, clock: Callable[[], datetime] = utc_now
) -> Pipeline:
    secret_text = settings.pipeline.secret.get_secret_value()
    if secret_text:
        secret = secret_text.encode()
    else:
        async with storage.sessions.begin() as session:
            secret = await thread_secret(session)
    notifier = Notifier(
        options=notice_options(settings),
        secret=secret,
        templates=acks.environment(settings.pipeline.templates_dir),
        clock=clock,
    )
    return Pipeline(
        sessions=storage.sessions,
        rules=load_rules(settings.classifier.rules),
        options=PipelineOptions(
            default_policy=settings.policy.name,
            follow_up_window=timedelta(hours=settings.pipeline.follow_up_window_hours),
            suppress_after_bounce=timedelta(days=settings.pipeline.suppress_after_bounce_days),
            require_authentication=settings.authentication.require_authentication,
        ),
        notifier=notifier,
        spam=spam_checker(settings),
    )


def spam_checker(settings: Settings) -> SpamChecker | None:
    """The configured spam engine (`[spam] engine`), or None."""
    spam = settings.spam
    if spam.engine == "spamassassin":
        from intake.spam.spamassassin import SpamAssassin  # aiospamc: only with the engine

        return SpamAssassin(
            spam.host, spam.port, spam.threshold, spam.timeout_seconds, max_bytes=spam.max_bytes
        )
    return None
