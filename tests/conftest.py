"""Shared fixtures: storage on SQLite and on the machine's PostgreSQL, each test its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from reopenable import ReopenableStorage

from storage import db

# CI and every machine of this kind run PostgreSQL here (trust auth, database `test`).
POSTGRES_DSN = os.environ.get("INTAKE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _async_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ReopenableStorage]:
    """A migrated, empty database: a file for SQLite, a schema of its own on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}"
        engine = db.create_engine(url)
        await db.upgrade(engine)
        yield ReopenableStorage(engine, db.session_factory(engine), url)
        await engine.dispose()
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        options = {"connect_args": {"server_settings": {"search_path": schema}}}
        engine = db.create_engine(_async_url(POSTGRES_DSN), **options)
        try:
            await db.upgrade(engine)
            yield ReopenableStorage(
                engine, db.session_factory(engine), _async_url(POSTGRES_DSN), options
            )
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
