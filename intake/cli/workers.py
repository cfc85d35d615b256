"""`intake serve --workers N`: N processes serving one host's ports, under one parent.

The parent prepares the database once (migrations, the contacts file), binds the SMTP and web
listening sockets, and forks the workers, which inherit them: the kernel hands each new
connection to whichever worker accepts it first. Not SO_REUSEPORT, although it spreads
connections more evenly: any socket of the same user that sets it joins the port, so a
second, separate `intake serve` would silently share the port instead of refusing to start
(CONTRACTS section 2). An inherited socket is shared within one `intake serve` only.

Worker 0 has the duties one process per host does alone (`Service.duties`). A worker that dies
after it was serving is restarted under its number (at most MAX_RESTARTS in RESTART_WINDOW
seconds; then the whole serve stops, with a line saying so); one that fails before serving (a
bad setting, a database away at start) stops the whole serve, as one process would have
stopped. SIGTERM or SIGINT to the parent goes to every worker, which stops as a single process
does (drain, the deliverer's last passes); the parent exits 0 when every worker did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections import deque
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType

from channels.web.app import bind as bind_web
from channels.web.metrics import count_in
from intake.cli.app import open_storage
from intake.cli.root import EXIT_BAD_INPUT, refusals
from intake.cli.serve import Worker, listen_error, prepare, run_service
from intake.config import Settings

log = logging.getLogger(__name__)

MAX_RESTARTS = 5  # in RESTART_WINDOW seconds, over all workers; one more stops the serve
RESTART_WINDOW = 300.0
BACKLOG = 100  # asyncio's default, which a single process listens with


def worker_count(configured: int) -> int:
    """`[serve] workers` or `--workers`: 0 means one per core this process may run on."""
    return configured or len(os.sched_getaffinity(0)) or 1


def run_workers(settings: Settings, count: int) -> int:
    """Serve with `count` worker processes until SIGTERM or SIGINT; the exit status."""
    asyncio.run(_prepare(settings))
    smtp, web = _bind(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="intake-workers-") as folder:
            shared = Path(folder)
            (shared / "metrics").mkdir()
            count_in(shared / "metrics")
            return _Pool(settings, smtp, web, shared).run(count)
    finally:
        for sock in (*smtp, *web):
            sock.close()


async def _prepare(settings: Settings) -> None:
    async with open_storage(settings) as storage:
        await prepare(settings, storage)


def _bind(settings: Settings) -> tuple[tuple[socket.socket, ...], tuple[socket.socket, ...]]:
    """The listening sockets every worker shares: SMTP on every address of its host (as
    asyncio binds it for one process), web on the first (as `channels.web.app.bind`)."""
    smtp: list[socket.socket] = []
    web: list[socket.socket] = []
    name = "smtp"
    try:
        if settings.smtp.enabled:
            smtp.extend(_bind_every(settings.smtp.host, settings.smtp.port))
        name = "web"
        if settings.web.enabled:
            web.append(bind_web(settings.web.host, settings.web.port))
    except OSError as exc:
        for sock in (*smtp, *web):
            sock.close()
        raise listen_error(settings, name, exc) from None
    for sock in (*smtp, *web):
        sock.listen(BACKLOG)  # connections queue while the workers start
    return tuple(smtp), tuple(web)


def _bind_every(host: str, port: int) -> list[socket.socket]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio: "::" does not take IPv4 as well
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError:
        for sock in bound:
            sock.close()
        raise
    return bound


def _work(settings: Settings, worker: Worker, ready: Event) -> None:
    """A worker's life, in the forked child: one service until SIGTERM or SIGINT."""
    # The parent's handlers only wake the parent: until the service installs its own, a
    # signal ends a worker that has accepted nothing yet.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with refusals():  # the CLI's one line and exit status 2, as one process would say it
        asyncio.run(run_service(settings, worker=worker, on_ready=lambda _service: ready.set()))


class _Pool:
    """The parent's side: start the workers, replace the ones that die, stop them all."""

    def __init__(
        self,
        settings: Settings,
        smtp: tuple[socket.socket, ...],
        web: tuple[socket.socket, ...],
        folder: Path,
    ) -> None:
        self.settings = settings
        self.smtp = smtp
        self.web = web
        self.folder = folder  # Worker.folder
        # Fork: the workers inherit the bound sockets and need not import everything again.
        self.context = multiprocessing.get_context("fork")
        self.processes: dict[int, BaseProcess] = {}
        self.ready: dict[int, Event] = {}
        self.restarts: deque[float] = deque()
        self.stopping = False

    def start(self, number: int) -> None:
        worker = Worker(number, self.smtp, self.web, self.folder)
        ready = self.context.Event()
        process = self.context.Process(
            target=_work, args=(self.settings, worker, ready), name=f"worker {number}"
        )
        process.start()
        self.processes[number], self.ready[number] = process, ready
        log.info("worker %d started (pid %s)", number, process.pid)

    def run(self, count: int) -> int:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        previous = signal.set_wakeup_fd(wake_write)  # a signal wakes the wait below at once
        handlers = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        status = 0
        try:
            for number in range(count):
                self.start(number)
            while not self.stopping:
                wait([wake_read, *(p.sentinel for p in self.processes.values())])
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 512)  # the signals' bytes: their handler has run
                for number, process in list(self.processes.items()):
                    if process.exitcode is not None and not self.stopping:
                        status = self._replace(number, process)
            return self._stop_all(status)
        finally:
            signal.set_wakeup_fd(previous)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            os.close(wake_read)
            os.close(wake_write)

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("%s: stopping %d workers", signal.Signals(signum).name, len(self.processes))
        self.stopping = True

    def _replace(self, number: int, process: BaseProcess) -> int:
        """Restart a worker that died; the exit status of the serve when it must stop instead."""
        code = process.exitcode
        del self.processes[number]  # said here: `_stop_all` need not say it again
        if not self.ready[number].is_set():
            # Status 2: the worker said why in the CLI's one error line; this is the sequel.
            level = logging.INFO if code == EXIT_BAD_INPUT else logging.ERROR
            log.log(level, "worker %d exited with status %s before serving: stopping", number, code)
            self.stopping = True
            return EXIT_BAD_INPUT if code == EXIT_BAD_INPUT else 1
        now = time.monotonic()
        while self.restarts and self.restarts[0] < now - RESTART_WINDOW:
            self.restarts.popleft()
        if len(self.restarts) >= MAX_RESTARTS:
            log.error(
                "worker %d exited with status %s, the %d restarts of the last %d s spent: "
                "stopping", number, code, MAX_RESTARTS, RESTART_WINDOW,
            )  # fmt: skip
            self.stopping = True
            return 1
        self.restarts.append(now)
        log.error("worker %d (pid %s) exited with status %s: restarting", number, process.pid, code)
        self.start(number)
        return 0

    def _stop_all(self, status: int) -> int:
        """SIGTERM to every worker still running, and wait for them all to finish."""
        for sock in (*self.smtp, *self.web):
            sock.close()  # the workers' own copies keep listening until each stops
        for process in self.processes.values():
            if process.exitcode is None:
                process.terminate()
        for number, process in self.processes.items():
            process.join()
            # A worker already done when our SIGTERM came ends by it: it had stopped cleanly.
            if process.exitcode not in (0, -signal.SIGTERM):
                log.error("worker %d ended with status %s", number, process.exitcode)
                status = status or 1
        log.info("stopped")
        return status
