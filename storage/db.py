"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL (several nodes).

SQLite runs in WAL mode with `synchronous=FULL` (a committed ticket survives power loss: the
sender has been told it was received), foreign keys on, a busy timeout, and `BEGIN IMMEDIATE`
so that concurrent writers queue for the lock instead of failing to upgrade a read lock.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000  # unless the URL says `?timeout=SECONDS`
# Any constant shared by every node: only one of them migrates at a time.
MIGRATION_LOCK_ID = 0x1A7A_0001


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite") and ":memory:" not in url:
        # SQLite has one writer at a time. One pooled connection makes writers queue in
        # asyncio (immediate hand-over) instead of sleeping in SQLite's busy handler, whose
        # back-off put seconds on the tail under concurrent intake.
        kwargs = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60, **kwargs}
    elif url.startswith("postgresql"):
        # A pooled connection may have died with the server (a restart, a failover, a cut
        # network): test it at checkout, so that the first message after the database is
        # back is stored instead of answered "try again later".
        kwargs = {"pool_pre_ping": True, **kwargs}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        # How long a writer waits for another's lock before the channel answers "try again
        # later" (SMTP 451, HTTP 503): `?timeout=SECONDS` in the URL, as sqlite3 spells it.
        timeout = make_url(url).query.get("timeout")
        busy_ms = round(float(str(timeout)) * 1000) if timeout else SQLITE_BUSY_TIMEOUT_MS
        event.listen(engine.sync_engine, "connect", partial(_sqlite_connect, busy_ms=busy_ms))
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    # Take transaction control from the driver so that "begin" below decides how to start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=FULL",
        "foreign_keys=ON",
        f"busy_timeout={busy_ms}",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "storage:migrations")
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every migration (`alembic upgrade head`); safe when several nodes start at once."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
