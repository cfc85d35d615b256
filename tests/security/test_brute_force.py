"""Guessing agents' passwords and API tokens is slowed: after a few failures an account, and a
client, must wait, and the wait doubles. Over real HTTP; the backoff's clock is a counter."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pipelines import make_pipeline

from channels.desk.api import AgentApi
from channels.desk.page import SESSION_COOKIE, QueuePage
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk import agents
from intake.ratelimit import FailureBackoff

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
ANN, BOB, PASSWORD = "ann@vendor.example", "bob@vendor.example", "correct horse battery"
SQLITE_ONLY = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def desk(storage: Storage, clock: Clock) -> AsyncIterator[tuple[QueuePage, AgentApi, str]]:
    token = await agents.add_agent(storage.sessions, ANN, PASSWORD, name="Ann", now=NOW)
    await agents.add_agent(storage.sessions, BOB, PASSWORD, name="Bob", now=NOW)
    page = QueuePage(storage.sessions, b"k" * 32, secure_cookie=False, logins_per_window=1000,
                     failures_before_delay=3)  # fmt: skip
    page.accounts.clock = page.clients.clock = clock
    api = AgentApi(storage.sessions, lambda: NOW)
    api.failures.clock = clock
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [page.routes, api.routes])
    await web.start(make_pipeline(storage))
    try:
        yield page, api, f"http://127.0.0.1:{web.port}|{token}"
    finally:
        await web.stop()


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    form = await client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found
    return await client.post(
        "/login", data={"csrf_token": found.group(1), "email": email, "password": password}
    )


@SQLITE_ONLY
async def test_an_account_is_locked_after_failures_and_the_wait_doubles(
    desk: tuple[QueuePage, AgentApi, str], clock: Clock
) -> None:
    page, _, where = desk
    page.clients = FailureBackoff(1000)  # this test is about the account
    async with httpx.AsyncClient(base_url=where.split("|")[0]) as client:
        statuses = [(await login(client, ANN, "guess")).status_code for _ in range(3)]
        assert statuses == [400, 400, 400]  # the first failures cost nothing
        wrong = await login(client, ANN, "guess 4")
        assert wrong.status_code == 400  # the 4th is checked, then the account waits 1 s
        locked = await login(client, ANN.upper(), PASSWORD)  # right password, any spelling
        assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
        assert SESSION_COOKIE not in locked.cookies and "Too many failed logins" in locked.text
        assert (await login(client, BOB, PASSWORD)).status_code == 303  # others are not locked
        client.cookies.clear()
        clock.now += 1.5
        assert (await login(client, ANN, "guess 5")).status_code == 400
        assert (await login(client, ANN, PASSWORD)).headers["retry-after"] == "2"  # doubled
        clock.now += 2.5
        ok = await login(client, ANN, PASSWORD)
        assert ok.status_code == 303 and SESSION_COOKIE in ok.cookies
        assert page.accounts.wait(ANN) is None  # a success starts over


@SQLITE_ONLY
async def test_a_client_guessing_many_accounts_is_slowed(
    desk: tuple[QueuePage, AgentApi, str], clock: Clock
) -> None:
    page, _, where = desk
    page.accounts = FailureBackoff(1000)  # this test is about the client
    async with httpx.AsyncClient(base_url=where.split("|")[0]) as client:
        for n in range(4):
            assert (await login(client, f"user{n}@vendor.example", "guess")).status_code == 400
        assert (await login(client, BOB, PASSWORD)).status_code == 429
        clock.now += 1.5
        assert (await login(client, BOB, PASSWORD)).status_code == 303


@SQLITE_ONLY
async def test_guessing_api_tokens_is_slowed(
    desk: tuple[QueuePage, AgentApi, str], clock: Clock
) -> None:
    base, token = desk[2].split("|")
    async with httpx.AsyncClient(base_url=base) as client:
        for n in range(11):  # 10 free, then the client waits 1 s
            answer = await client.get("/api/tickets", headers={"Authorization": f"Bearer g{n}"})
            assert answer.status_code == 401
        good = {"Authorization": f"Bearer {token}"}
        waiting = await client.get("/api/tickets", headers=good)
        assert waiting.status_code == 429 and waiting.headers["retry-after"] == "1"
        assert waiting.json()["error"].startswith("too many invalid tokens")
        clock.now += 1.5
        assert (await client.get("/api/tickets", headers=good)).status_code == 200


def test_failure_backoff_doubles_caps_and_forgets() -> None:
    clock = Clock()
    backoff = FailureBackoff(free=2, base=1, cap=8, clock=clock)
    backoff.failed("k")
    backoff.failed("k")
    assert backoff.wait("k") is None  # free
    waits = []
    for _ in range(6):
        backoff.failed("k")
        waits.append(backoff.wait("k"))
        clock.now += 100 if len(waits) == 6 else 0
    assert waits == [1, 2, 4, 8, 8, 8]
    assert backoff.wait("k") is None  # quiet for longer than the cap: forgotten
    backoff.failed("k")
    assert backoff.wait("k") is None  # counting starts over
    backoff.succeeded("k")
    assert backoff.wait("other") is None
