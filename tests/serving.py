"""What the suites that run `intake serve` for real share: the child process, the outbound SMTP
relay it delivers to, free ports and waiting on conditions."""

from __future__ import annotations

import asyncio
import email
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from email import policy
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Self

from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    """A port free now. A subprocess cannot hand back a port 0 it bound, so we probe."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts(port: int) -> bool:
    """Whether something listens on `port` of loopback."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


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


class ServeProcess:
    """`intake serve ARGS` as a child process run in `folder` with exactly `env`; its output
    is appended to `folder/serve.log` across restarts."""

    def __init__(
        self, label: str, folder: Path, env: Mapping[str, str], args: Sequence[str] = ()
    ) -> None:
        self.label = label
        self.folder = folder
        self.log = folder / "serve.log"
        self.env = env
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Spawn it; it is not ready until its own readiness check says so."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "intake.cli", "serve", *self.args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.folder, env=dict(self.env),
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def assert_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"{self.label} exited:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or finished, as when a host dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> int | None:
        """SIGTERM, as an operator stops it, and wait: the exit status; None when it was never
        started or did not stop and had to be killed."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


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
        """Listen on `port`, else on the port it had before (a restart), else on a free one."""
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

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
