"""`intake serve` as separate processes on one PostgreSQL database, as a deployment runs it.

Each node is configured only through the documented `INTAKE_*` environment (CONTRACTS
section 3), in a working directory of its own without an `intake.toml`.
"""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from email import policy
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

START_SECONDS = 60.0  # two nodes starting at once on a busy 2-core machine


def free_port() -> int:
    """A port free now. A subprocess cannot hand back a port 0 it bound, so we probe."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Node:
    """One `intake serve` process with its own SMTP and web ports and its own log file."""

    def __init__(self, name: str, folder: Path, database_url: str, **env: str) -> None:
        self.name = name
        self.folder = folder / name
        self.folder.mkdir()
        self.log = self.folder / "serve.log"
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.env: Mapping[str, str] = {
            "INTAKE_DATABASE_URL": database_url,
            "INTAKE_SMTP_HOST": "127.0.0.1",
            "INTAKE_SMTP_PORT": str(self.smtp_port),
            "INTAKE_SMTP_DOMAINS": "support.example.com",
            "INTAKE_WEB_HOST": "127.0.0.1",
            "INTAKE_WEB_PORT": str(self.web_port),
            "INTAKE_PIPELINE_SECRET": "one-secret-shared-by-every-node",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "intake.cli", "serve"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=environment | dict(self.env),
            )

    def wait_ready(self) -> None:
        """Until /healthz answers 200 (every channel is started before the web one)."""
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"node {self.name} exited at start:\n{self.output()}")
            try:
                url = f"http://127.0.0.1:{self.web_port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"node {self.name} not ready in {START_SECONDS}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when a host dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> int | None:
        """SIGTERM and wait: the exit code (None when it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Sink:
    """The outbound relay: a real SMTP server counting each Message-ID it was given."""

    def __init__(self) -> None:
        self.message_ids: Counter[str] = Counter()
        self.subjects: Counter[str] = Counter()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        mail = email.message_from_bytes(envelope.original_content or b"", policy=policy.default)
        self.message_ids[str(mail["Message-ID"]).strip().strip("<>")] += 1
        self.subjects[str(mail["Subject"])] += 1
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, loop=loop), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
