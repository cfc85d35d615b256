"""The web channel: uvicorn in our loop on port 0, /healthz reflecting the database."""

from __future__ import annotations

import httpx

from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.cli.serve import Service
from intake.config import Settings, WebSettings
from storage import db


async def refuse(message: object) -> object:
    raise AssertionError("no intake expected")


async def test_healthz_follows_the_database(storage: Storage) -> None:
    settings = Settings(web={"host": "127.0.0.1", "port": 0}, smtp={"enabled": False})
    service = Service(settings, storage, refuse)  # type: ignore[arg-type]
    await service.start()
    try:
        [web] = service.channels
        assert isinstance(web, WebChannel)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            ok = await client.get("/healthz")
            assert (ok.status_code, ok.text) == (200, "ok\n")
            assert (await client.get("/nowhere")).status_code == 404
    finally:
        await service.stop()


async def test_healthz_503_when_the_database_is_gone() -> None:
    engine = db.create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    gone = Storage(engine, db.session_factory(engine))
    service = Service(Settings(web={"port": 0}, smtp={"enabled": False}), gone, refuse)  # type: ignore[arg-type]
    await service.start()
    try:
        port = service.channels[0].port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            down = await client.get("/healthz")
        assert down.status_code == 503 and "unavailable" in down.text
    finally:
        await service.stop()
        await engine.dispose()


async def test_a_taken_port_fails_to_start() -> None:
    first = WebChannel(WebSettings(port=0), [])
    await first.start(refuse)  # type: ignore[arg-type]
    try:
        second = WebChannel(WebSettings(port=first.port), [])
        try:
            await second.start(refuse)  # type: ignore[arg-type]
        except OSError:
            pass
        else:  # pragma: no cover - the failure message
            await second.stop()
            raise AssertionError("a second server bound the same port")
    finally:
        await first.stop()
