"""Guessing agents' passwords and API tokens is slowed: after a few failures the guessing
address must wait, and the wait doubles; guessing one account from many addresses meets a
bounded delay, and the real agent is never locked out (issue 16, item 9). Over real HTTP from
several loopback addresses; the backoff's clock is a counter."""

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
from intake.ratelimit import FailureBackoff, LoginBackoff

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
                     failures_before_delay=3, account_failures_before_delay=6,
                     account_delay_cap_seconds=8)  # fmt: skip
    page.logins.clock = clock
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


def from_address(where: str, address: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any of loopback's 127/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=where.split("|")[0], transport=transport)


@SQLITE_ONLY
async def test_guessing_from_one_address_holds_back_that_address_only(
    desk: tuple[QueuePage, AgentApi, str], clock: Clock
) -> None:
    _, _, where = desk
    async with from_address(where, "127.0.0.2") as guesser:
        statuses = [(await login(guesser, ANN, "guess")).status_code for _ in range(3)]
        assert statuses == [400, 400, 400]  # the first failures cost nothing
        wrong = await login(guesser, ANN, "guess 4")
        assert wrong.status_code == 400  # the 4th is checked, then this address waits 1 s
        locked = await login(guesser, ANN.upper(), PASSWORD)  # right password, any spelling
        assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
        assert SESSION_COOKIE not in locked.cookies and "Too many failed logins" in locked.text
        clock.now += 1.5
        assert (await login(guesser, ANN, "guess 5")).status_code == 400
        assert (await login(guesser, ANN, PASSWORD)).headers["retry-after"] == "2"  # doubled
    # Six wrong passwords from one address once locked the account everywhere: not any more.
    async with from_address(where, "127.0.0.3") as agent:
        ok = await login(agent, ANN, PASSWORD)
        assert ok.status_code == 303 and SESSION_COOKIE in ok.cookies
    async with from_address(where, "127.0.0.2") as guesser:
        clock.now += 2.5
        assert (await login(guesser, ANN, PASSWORD)).status_code == 303  # its wait is over


@SQLITE_ONLY
async def test_many_addresses_meet_a_bounded_delay_and_the_agent_still_gets_in(
    desk: tuple[QueuePage, AgentApi, str], clock: Clock
) -> None:
    _, _, where = desk
    async with from_address(where, "127.0.0.1") as usual:  # where Ann works
        assert (await login(usual, ANN, PASSWORD)).status_code == 303
    answers = []
    for n in range(2, 14):  # 12 addresses, 2 guesses each: under the per-address threshold
        async with from_address(where, f"127.0.1.{n}") as guesser:
            answers += [await login(guesser, ANN, "guess") for _ in range(2)]
    # Past 6 failures on the account, addresses it has not seen are held back (the clock
    # stands still here, so every later guess is refused unchecked).
    assert [a.status_code for a in answers] == [400] * 7 + [429] * 17
    # Guessing on as each delay ends: the delay doubles, but never past the cap (8 s).
    waits = []
    for n in range(6):
        clock.now += 8.5
        async with from_address(where, f"127.0.3.{n}") as guesser:
            assert (await login(guesser, ANN, "guess")).status_code == 400
            waits.append(int((await login(guesser, ANN, PASSWORD)).headers["retry-after"]))
    assert waits == [2, 4, 8, 8, 8, 8]
    # Meanwhile Ann, from her usual address, goes through after her own mistakes' delay only.
    async with from_address(where, "127.0.0.1") as usual:
        for _ in range(4):
            assert (await login(usual, ANN, "typo")).status_code == 400
        assert (await login(usual, ANN, PASSWORD)).headers["retry-after"] == "1"
        clock.now += 1.5
        assert (await login(usual, ANN, PASSWORD)).status_code == 303
    async with from_address(where, "127.0.2.1") as fresh:  # a new address: a bounded wait
        held = await login(fresh, ANN, PASSWORD)
        assert held.status_code == 429 and int(held.headers["retry-after"]) <= 8
        clock.now += 8
        assert (await login(fresh, ANN, PASSWORD)).status_code == 303


@SQLITE_ONLY
async def test_a_client_guessing_many_accounts_is_slowed(
    desk: tuple[QueuePage, AgentApi, str], clock: Clock
) -> None:
    _, _, where = desk
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
    remembering = FailureBackoff(free=0, base=1, cap=2, clock=clock, forget=100)
    remembering.failed("k")
    clock.now += 50
    remembering.failed("k")
    assert remembering.wait("k") == 2  # remembered past the cap: the second failure doubled


def test_login_backoff_keeps_few_usual_addresses_and_its_ceiling_bounded() -> None:
    clock = Clock()
    logins = LoginBackoff(free=100, cap=900, account_free=0, account_cap=4, clock=clock)
    for n in range(LoginBackoff.USUAL_PER_ACCOUNT + 1):
        logins.succeeded("ann", f"10.0.0.{n}")
    for _ in range(10):
        logins.failed("ann", "192.0.2.1")
    assert logins.wait("ann", "192.0.2.9") == 4  # the ceiling: bounded, whatever the count
    assert logins.wait("ann", "10.0.0.10") is None  # a usual address is not held back
    assert logins.wait("ann", "10.0.0.0") == 4  # the oldest of 11 was forgotten
