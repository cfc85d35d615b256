"""`intake serve` as separate processes on one PostgreSQL database, as a deployment runs it.

Each node is configured only through the documented `INTAKE_*` environment (CONTRACTS
section 3), in a working directory of its own without an `intake.toml`.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from serving import Relay, ServeProcess, free_port

from intake.cli.app import Storage
from storage import db

START_SECONDS = 60.0  # two nodes starting at once on a busy 2-core machine


class Node(ServeProcess):
    """One `intake serve` process with its own SMTP and web ports and its own log file."""

    def __init__(self, name: str, folder: Path, database_url: str, **env: str) -> None:
        (folder / name).mkdir()
        self.name = name
        self.smtp_port = free_port()
        self.web_port = free_port()
        settings = {
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_SMTP_HOST": "127.0.0.1",
            "INTAKE_SMTP_PORT": str(self.smtp_port),
            "INTAKE_SMTP_DOMAINS": "support.example.com",
            "INTAKE_WEB_HOST": "127.0.0.1",
            "INTAKE_WEB_PORT": str(self.web_port),
            "INTAKE_PIPELINE_SECRET": "one-secret-shared-by-every-node",
            **env,
        }
        # Only these settings: none of the machine's own INTAKE_* reach a node.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        super().__init__(f"node {name}", folder / name, inherited | settings)

    def wait_ready(self) -> None:
        """Until /healthz answers 200 (every channel is started before the web one)."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                url = f"http://127.0.0.1:{self.web_port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"node {self.name} not ready in {START_SECONDS}s:\n{self.output()}")


class Sink(Relay):
    """The nodes' outbound relay, counting each Message-ID and Subject it was given."""

    @property
    def message_ids(self) -> Counter[str]:
        return Counter(str(mail["Message-ID"]).strip().strip("<>") for _, mail in self.received)

    @property
    def subjects(self) -> Counter[str]:
        return Counter(str(mail["Subject"]) for _, mail in self.received)


@contextlib.asynccontextmanager
async def migrated_storage(url: str) -> AsyncIterator[Storage]:
    """The test's own view of the nodes' database, migrated as `intake serve` would."""
    engine = db.create_engine(url)
    try:
        await db.upgrade(engine)
        yield Storage(engine, db.session_factory(engine))
    finally:
        await engine.dispose()
