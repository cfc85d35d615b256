"""What the fault tests share beyond tests/serving.py: `intake serve` configured by a file,
a TCP proxy that can cut the database away, and the service's database seen from the test."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

from fake_twilio import load
from serving import ServeProcess, accepts, wait_until
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
    """`intake serve --config PATH` as a child process; its log goes to a file beside PATH."""

    def __init__(self, config: Path, *, smtp_port: int, web_port: int | None = None) -> None:
        self.config = config
        self.smtp_port = smtp_port
        self.web_port = web_port
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.child = ServeProcess(
            "intake serve", config.parent, environment, ["--config", str(config)]
        )
        self.log = self.child.log
        self.starts = 0

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.child.process

    def log_text(self) -> str:
        return self.child.output()

    async def start(self) -> None:
        """Start it and wait until it says it serves (each start says so once) and listens."""
        self.starts += 1
        with self.log.open("a", encoding="utf-8") as out:
            out.write(f"---- start {self.starts}\n")
        self.child.start()
        ports = [self.smtp_port] + ([self.web_port] if self.web_port else [])

        def ready() -> bool:
            self.child.assert_running()
            return self.log_text().count("serving; policy") >= self.starts and all(
                map(accepts, ports)
            )

        await wait_until(ready, "intake serve to start")

    async def kill(self) -> None:
        """kill -9: no handler runs, nothing is flushed or finished."""
        await asyncio.to_thread(self.child.kill)

    async def stop(self) -> int:
        """SIGTERM, as an operator stops it; returns the exit status."""
        if self.process is None:
            return 0
        status = await asyncio.to_thread(self.child.stop)
        if status is None:
            raise AssertionError("intake serve did not stop on SIGTERM")
        return status


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
