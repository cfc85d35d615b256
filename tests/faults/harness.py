"""What the fault tests share: `intake serve` as a real process that can be killed, a relay
that can refuse, a TCP proxy that can cut the database away, and waiting on conditions."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from email import policy
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from fake_twilio import load
from sqlalchemy import select

from storage import db

ACCOUNT = "AC11111111111111111111111111111111"
TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://support.example.com"
MESSAGING = "/webhooks/twilio/messaging"


def whatsapp(n: int) -> dict[str, str]:
    sid = f"SM{n:032x}"
    number = f"+420601{n:06d}"
    return load("whatsapp_inbound.json") | {
        "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid,
        "From": f"whatsapp:{number}", "WaId": number[1:], "ProfileName": f"Customer {n}",
        "Body": f"Request {n}: the PDF export fails with error 500.",
    }  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until(
    condition: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = 60.0
) -> None:
    """Poll `condition` until it holds; fail naming `what` after a generous `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in keys.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Served:
    """`intake serve --config PATH` as a child process; its log goes to a file."""

    def __init__(self, config: Path, *, smtp_port: int, web_port: int | None = None) -> None:
        self.config = config
        self.smtp_port = smtp_port
        self.web_port = web_port
        self.log = config.with_name("serve.log")
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("a", encoding="utf-8") as out:
            out.write(f"---- start {self.starts}\n")
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "intake.cli", "serve", "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.config.parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        ports = [self.smtp_port] + ([self.web_port] if self.web_port else [])
        marker = "serving; policy"

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_text()
            return self.log_text().count(marker) >= self.starts and all(map(_accepts, ports))

        await wait_until(ready, "intake serve to start")

    async def kill(self) -> None:
        """kill -9: no handler runs, nothing is flushed or finished."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, 30)

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.process.wait, 60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("intake serve did not stop on SIGTERM") from None


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


class Relay:
    """The outbound SMTP relay (aiosmtpd on loopback) that keeps what it is given.

    `refuse` holds the next RCPT replies to give instead of 250 (e.g. "451 4.3.0 later").
    """

    def __init__(self) -> None:
        self.received: list[tuple[Envelope, Message]] = []
        self.peers: list[object] = []  # the client address of each message (its connection)
        self.quits = 0
        self.sessions: list[SMTP] = []
        self.refuse: list[str] = []
        self.refused: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse:
            reply = self.refuse.pop(0)
            self.refused.append(reply)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        self.received.append((envelope, email.message_from_bytes(raw, policy=policy.default)))
        self.peers.append(session.peer)
        self.sessions.append(server)
        return "250 OK"

    async def handle_QUIT(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.quits += 1
        return "221 Bye"

    def hang_up(self) -> None:
        """Close every client connection from the relay's side (a restart, an idle timeout)."""
        for server in self.sessions:
            if server.transport is not None:
                server.transport.close()

    def recipients(self) -> list[str]:
        return [rcpt for envelope, _ in self.received for rcpt in envelope.rcpt_tos]

    async def start(self, port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: SMTP(self, loop=loop), "127.0.0.1", port or self.port, reuse_address=True
        )
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


class Proxy:
    """A TCP proxy on loopback to `target`: `cut` closes every connection and refuses new
    ones (as a database that went away), `restore` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._connected, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()
        self.server = None

    restore = start

    async def stop(self) -> None:
        if self.server is not None:
            await self.cut()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self.writers.difference_update((writer, up_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


class Database:
    """Looks at what `intake serve` stored, from the test's side (SQLite file or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        engine = db.create_engine(self.url)
        try:
            async with db.session_factory(engine)() as session:
                return list(await session.scalars(select(model).where(*where)))
        finally:
            await engine.dispose()

    async def execute(self, statement: Any) -> None:
        engine = db.create_engine(self.url)
        try:
            async with engine.begin() as conn:
                await conn.execute(statement)
        finally:
            await engine.dispose()
