"""Fixtures for several nodes on one PostgreSQL: a fresh database per test, real Dovecot."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

# The Dovecot fixture lives with the channel tests; nodes poll the same kind of server.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "channels"))
from dovecot import Dovecot
from nodes import Sink, migrated_storage

from intake.cli.app import Storage

# As in tests/conftest.py: the machine's PostgreSQL, trust auth.
POSTGRES_DSN = os.environ.get("INTAKE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of its own (a subprocess selects it by URL alone), dropped afterwards."""
    name = f"intake_nodes_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
    finally:
        # FORCE: a node killed with SIGKILL may leave a session the server has not reaped yet.
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def shared_storage(database_url: str) -> AsyncIterator[Storage]:
    """The test's own view of the nodes' database, migrated as `intake serve` would."""
    async with migrated_storage(database_url) as storage:
        yield storage


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    server.start()
    yield server
    server.wait_stopped()


@pytest.fixture
def imap_env(dovecot: Dovecot) -> Callable[..., dict[str, str]]:
    def env(**more: Any) -> dict[str, str]:
        values = {
            "INTAKE_IMAP_ENABLED": "true",
            "INTAKE_IMAP_HOST": "127.0.0.1",
            "INTAKE_IMAP_PORT": str(dovecot.port),
            "INTAKE_IMAP_SSL": "false",
            "INTAKE_IMAP_USER": dovecot.user,
            "INTAKE_IMAP_PASSWORD": dovecot.password,
            "INTAKE_IMAP_IDLE_SECONDS": "2",
        }
        return values | {k: str(v) for k, v in more.items()}

    return env


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    """The nodes' outbound relay."""
    async with Sink() as relay:
        yield relay
