"""The call-back form's CSRF cases the channel tests do not cover: a token field missing with
the cookie present, and a token captured from one visitor replayed by another (with no cookie
or with a cookie of their own). tests/channels/test_callback.py covers a missing cookie, a
forged token, expiry, and the same form sent twice (one ticket)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pipelines import make_pipeline
from sqlalchemy import func, select

from channels.web.app import WebChannel
from channels.web.callback import COOKIE, CallbackForm
from intake.cli.app import Storage
from intake.config import WebSettings
from storage.models import Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)


@pytest.fixture
async def base(storage: Storage) -> AsyncIterator[str]:
    form = CallbackForm(b"f" * 32, clock=lambda: NOW, per_hour=100, secure_cookie=False)
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [form.routes])
    await web.start(make_pipeline(storage, notify_emails=()))
    yield f"http://127.0.0.1:{web.port}"
    await web.stop()


async def filled(client: httpx.AsyncClient) -> dict[str, str]:
    page = (await client.get("/callback")).text
    found = {name: re.findall(rf'name="{name}" value="([^"]*)"', page)[0]
             for name in ("csrf_token", "submission")}  # fmt: skip
    return found | {"name": "Al", "phone": "+420 601 123 456", "description": "Call me",
                    "zone": "Europe/Prague"}  # fmt: skip


@SQLITE_ONLY
async def test_missing_and_replayed_tokens_are_refused(base: str, storage: Storage) -> None:
    async with (
        httpx.AsyncClient(base_url=base) as victim,
        httpx.AsyncClient(base_url=base) as attacker,
    ):
        captured = await filled(victim)
        without = {k: v for k, v in captured.items() if k != "csrf_token"}
        assert (await victim.post("/callback", data=without)).status_code == 403
        # Another client replays the victim's token: without the cookie it is bound to ...
        assert (await attacker.post("/callback", data=captured)).status_code == 403
        # ... and with a cookie of its own (a fresh nonce), the token does not match it.
        await attacker.get("/callback")
        assert attacker.cookies.get(COOKIE) not in (None, victim.cookies.get(COOKIE))
        assert (await attacker.post("/callback", data=captured)).status_code == 403
        # A token with a forged timestamp but the old MAC is not ours either.
        issued, _, mac = captured["csrf_token"].partition(".")
        later = captured | {"csrf_token": f"{int(issued) + 3600}.{mac}"}
        assert (await victim.post("/callback", data=later)).status_code == 403
        async with storage.sessions() as session:
            assert await session.scalar(select(func.count(Ticket.id))) == 0
        # The victim's own submission still works, once.
        assert (await victim.post("/callback", data=captured)).status_code == 200
        assert (await victim.post("/callback", data=captured)).status_code == 200
    async with storage.sessions() as session:
        assert await session.scalar(select(func.count(Ticket.id))) == 1
