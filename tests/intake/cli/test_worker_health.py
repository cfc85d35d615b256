"""The workers of one `intake serve --workers N` answer /healthz alike: what worker 0's
channels report (an IMAP login refused) reaches the /healthz of the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from channels.web.app import WebChannel
from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service, Worker
from intake.config import Settings
from intake.messages import Intake


class RefusedMailbox:
    """A channel of worker 0 that needs an administrator, as ImapChannel after a refused login."""

    name = "imap"
    problem = "IMAP login failed: imap.password: AUTHENTICATIONFAILED"

    async def start(self, intake: Intake) -> None:
        return None

    async def stop(self) -> None:
        return None


async def healthz(service: Service) -> str:
    [web] = [c for c in service.channels if isinstance(c, WebChannel)]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
        return (await client.get("/healthz")).text


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_worker_zeros_problems_show_on_every_workers_healthz(
    storage: Storage, tmp_path: Path
) -> None:
    settings = Settings(
        smtp={"enabled": False}, web={"enabled": True, "host": "127.0.0.1", "port": 0}
    )
    # Each binds a port of its own here: the sharing of sockets is tested with real workers
    # (tests/multinode/test_workers.py); this is about what their /healthz says.
    workers = [
        Service(
            settings,
            storage,
            await build_pipeline(settings, storage),
            worker=Worker(number, (), (), tmp_path),
        )
        for number in (0, 1)
    ]
    for service in workers:
        await service.start()
    try:
        assert [await healthz(service) for service in workers] == ["ok\n", "ok\n"]
        workers[0].channels.append(RefusedMailbox())
        deadline = asyncio.get_running_loop().time() + 30
        while "degraded" not in await healthz(workers[1]):
            assert asyncio.get_running_loop().time() < deadline, "never shared"
            await asyncio.sleep(0.1)
        said = [await healthz(service) for service in workers]
        workers[0].channels.remove(workers[0].channels[-1])  # it logs in again
        while "degraded" in await healthz(workers[1]):
            assert asyncio.get_running_loop().time() < deadline + 30, "never cleared"
            await asyncio.sleep(0.1)
    finally:
        for service in workers:
            await service.stop()
    expected = f"degraded\n{RefusedMailbox.problem}\n"
    assert said == [expected, expected]
