"""The call-back form over real HTTP: no JavaScript needed, CSRF, rate limit, escaping."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from pipelines import make_pipeline as build_pipeline
from sqlalchemy import select

from channels.web.app import WebChannel
from channels.web.callback import CallbackForm, RateLimiter, csrf_token, csrf_valid
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.pipeline.pipeline import Pipeline
from storage.models import Outbox, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
SECRET = b"f" * 32


def make_pipeline(storage: Storage) -> Pipeline:
    return build_pipeline(storage, secret=SECRET, our_domains=frozenset(), notify_emails=())


@pytest.fixture
async def client(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    form = CallbackForm(SECRET, clock=lambda: NOW, per_hour=4, secure_cookie=False)
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [form.routes])
    await web.start(make_pipeline(storage))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
        yield http
    await web.stop()


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name}"
    return match[1]


async def filled(client: httpx.AsyncClient, **fields: str) -> dict[str, str]:
    page = (await client.get("/callback")).text
    values = {
        "csrf_token": hidden(page, "csrf_token"),
        "submission": hidden(page, "submission"),
        "name": "Alice Novak",
        "organization": "Acme",
        "phone": "+420 601 123 456",
        "email": "alice@acme.example",
        "window_from": "09:00",
        "window_to": "11:00",
        "zone": "Europe/Prague",
        "description": "The export stopped working after the update.",
        "urgent": "no",
    }
    return values | fields


async def test_the_form_is_accessible_html_without_scripts(client: httpx.AsyncClient) -> None:
    page = await client.get("/callback")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text
    assert "intake_csrf" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    for field in re.findall(r'<(?:input|textarea|select) id="([^"]+)"', page.text):
        assert f'<label for="{field}">' in page.text, f"{field} has no label"


async def test_a_request_becomes_a_web_ticket_acknowledged_by_email(
    client: httpx.AsyncClient, storage: Storage
) -> None:
    answer = await client.post("/callback", data=await filled(client))
    assert answer.status_code == 200 and "Request received" in answer.text
    reference = re.search(r"SUP-\d{6}", answer.text)
    assert reference
    async with storage.sessions() as session:
        ticket = await session.scalar(select(Ticket))
        ack = await session.scalar(select(Outbox).where(Outbox.kind == "ack"))
    assert ticket is not None and (ticket.channel, ticket.sender) == ("web", "+420601123456")
    assert "between 09:00 and 11:00 (Europe/Prague)" in answer.text
    assert ticket.priority == "normal"
    assert ack is not None and (ack.channel, ack.recipient) == ("email", "alice@acme.example")


async def test_urgent_choice_makes_it_urgent(client: httpx.AsyncClient, storage: Storage) -> None:
    await client.post("/callback", data=await filled(client, urgent="yes", email=""))
    async with storage.sessions() as session:
        ticket = await session.scalar(select(Ticket))
        ack = await session.scalar(select(Outbox).where(Outbox.kind == "ack"))
    assert ticket is not None and ticket.priority == "urgent" and ticket.urgent
    assert ack is not None and (ack.channel, ack.recipient) == ("sms", "+420601123456")


async def test_sending_the_same_form_twice_is_one_request(
    client: httpx.AsyncClient, storage: Storage
) -> None:
    data = await filled(client)
    first = await client.post("/callback", data=data)
    again = await client.post("/callback", data=data)
    ref = re.findall(r"SUP-\d{6}", first.text)
    assert ref and ref == re.findall(r"SUP-\d{6}", again.text)
    async with storage.sessions() as session:
        assert len(list(await session.scalars(select(Ticket)))) == 1


async def test_without_the_csrf_cookie_or_token_nothing_is_taken(
    client: httpx.AsyncClient, storage: Storage
) -> None:
    data = await filled(client)
    client.cookies.clear()
    assert (await client.post("/callback", data=data)).status_code == 403
    page = await client.get("/callback")
    forged = data | {"csrf_token": "1.deadbeef"}
    assert page.status_code == 200
    assert (await client.post("/callback", data=forged)).status_code == 403
    async with storage.sessions() as session:
        assert list(await session.scalars(select(Ticket))) == []


async def test_bad_fields_are_explained_and_escaped(client: httpx.AsyncClient) -> None:
    data = await filled(client, phone="12", name="<script>alert(1)</script>", description="")
    answer = await client.post("/callback", data=data)
    assert answer.status_code == 400
    assert 'aria-invalid="true"' in answer.text and 'role="alert"' in answer.text
    assert "with its country code" in answer.text
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;script&gt;" in answer.text


async def test_rate_limited_per_address(client: httpx.AsyncClient) -> None:
    statuses = [
        (await client.post("/callback", data=await filled(client, description=f"n{n}"))).status_code
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    data = await filled(client, description="x" * 40_000)
    assert (await client.post("/callback", data=data)).status_code == 413


def assert_page_headers(answer: httpx.Response) -> None:
    """The agents' page's protections (issue 16, item 8): no framing, no sniffing, no
    referrer, and no script or style but the page's own, pinned by its hash."""
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "form-action 'self'" in policy and "unsafe-inline" not in policy
    assert "script-src" not in policy  # default-src 'none': no script at all
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    for style in re.findall(r"<style>(.*?)</style>", answer.text, re.S):
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"style-src 'sha256-{digest}'" in policy  # what a browser checks


async def test_every_answer_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    form = await client.get("/callback")
    assert "<style>" in form.text
    answers = [form]
    answers.append(await client.post("/callback", data=await filled(client)))  # 200, taken
    answers.append(await client.post("/callback", data=await filled(client, phone="12")))  # 400
    big = await filled(client, description="x" * 40_000)
    answers.append(await client.post("/callback", data=big))  # 413
    answers.append(await client.post("/callback", data={"csrf_token": "x"}))  # 403
    answers.append(await client.post("/callback", data=await filled(client)))  # 5th: 429
    assert [a.status_code for a in answers] == [200, 200, 400, 413, 403, 429]
    for answer in answers:
        assert_page_headers(answer)


def test_tokens_expire_and_bind_to_their_nonce() -> None:
    token = csrf_token(SECRET, "n1", 1000)
    assert csrf_valid(SECRET, "n1", token, 1000 + 60, 7200)
    assert not csrf_valid(SECRET, "n2", token, 1000 + 60, 7200)
    assert not csrf_valid(SECRET, "n1", token, 1000 + 7201, 7200)
    assert not csrf_valid(b"other" * 8, "n1", token, 1060, 7200)


def test_rate_limiter_window_slides() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    assert limiter.retry_after("a") is None and limiter.retry_after("a") is None
    assert limiter.retry_after("a") == 60
    assert limiter.retry_after("b") is None
    now[0] = 60.5
    assert limiter.retry_after("a") is None
