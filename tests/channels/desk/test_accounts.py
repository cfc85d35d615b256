"""Ending an agent's access (issue 15, accounts): revoked tokens and a deactivated agent stop at
once, over real HTTP on the page and the API, on both databases; and the same by the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pipelines import make_pipeline

from channels.desk.api import api_routes
from channels.desk.page import SESSION_COOKIE, QueuePage
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.desk import agents
from intake.errors import InputRefusedError

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
EMAIL, PASSWORD = "ann@vendor.example", "correct horse battery"


@pytest.fixture
async def client(storage: Storage) -> AsyncIterator[httpx.AsyncClient]:
    page = QueuePage(storage.sessions, b"s" * 32, clock=lambda: NOW, secure_cookie=False)
    web = WebChannel(
        WebSettings(host="127.0.0.1", port=0),
        [page.routes, api_routes(storage.sessions, lambda: NOW)],
    )
    await web.start(make_pipeline(storage))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
        yield http
    await web.stop()


async def log_in(client: httpx.AsyncClient) -> httpx.Response:
    form = await client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert found, form.text
    data = {"csrf_token": found.group(1), "email": EMAIL, "password": PASSWORD}
    return await client.post("/login", data=data)


async def test_revoked_tokens_and_a_deactivated_agent_stop_at_once(
    client: httpx.AsyncClient, storage: Storage
) -> None:
    token = await agents.add_agent(storage.sessions, EMAIL, PASSWORD, name="Ann", now=NOW)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/tickets", headers=bearer)).status_code == 200
    assert (await log_in(client)).status_code == 303
    assert (await client.get("/")).status_code == 200

    assert await agents.revoke_tokens(storage.sessions, EMAIL) == 1
    assert (await client.get("/api/tickets", headers=bearer)).status_code == 401
    assert (await client.get("/")).status_code == 200  # the page session is not a token

    second = await agents.issue_token(storage.sessions, EMAIL, now=NOW)
    assert (
        await client.get("/api/tickets", headers={"Authorization": f"Bearer {second}"})
    ).status_code == 200
    await agents.deactivate_agent(storage.sessions, EMAIL, now=NOW)
    refused = await client.get("/api/tickets", headers={"Authorization": f"Bearer {second}"})
    assert refused.status_code == 401
    gone = await client.get("/")
    assert (gone.status_code, gone.headers["location"]) == (303, "/login")
    again = await log_in(client)  # the right password, but no agent any more
    assert again.status_code == 400 and SESSION_COOKIE not in again.cookies
    with pytest.raises(InputRefusedError, match="deactivated"):
        await agents.issue_token(storage.sessions, EMAIL, now=NOW)
    [listed] = await agents.list_agents(storage.sessions)
    assert (listed["email"], listed["active"], listed["tokens"]) == (EMAIL, False, 0)


def intake(workdir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *args], input=stdin, capture_output=True,
        text=True, timeout=120, cwd=workdir,
    )  # fmt: skip


def test_the_cli_revokes_tokens_and_deactivates(tmp_path: Path) -> None:
    added = intake(tmp_path, "agents", "add", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert intake(tmp_path, "agents", "token", EMAIL).returncode == 0
    revoked = intake(tmp_path, "agents", "tokens", "revoke", EMAIL)
    assert (revoked.returncode, revoked.stdout) == (0, f"revoked 2 tokens of {EMAIL}\n")
    done = intake(tmp_path, "agents", "deactivate", EMAIL.upper())
    assert (done.returncode, done.stdout) == (0, f"deactivated {EMAIL}\n")
    listed = intake(tmp_path, "agents", "list", "--json")
    assert json.loads(listed.stdout)["active"] is False
    assert "deactivated" in intake(tmp_path, "agents", "list").stdout
    refused = intake(tmp_path, "agents", "token", EMAIL)
    assert refused.returncode == 2 and refused.stderr == f"intake: agent {EMAIL} is deactivated\n"
    nobody = intake(tmp_path, "agents", "deactivate", "zed@vendor.example")
    assert nobody.returncode == 2 and nobody.stderr == "intake: no agent zed@vendor.example\n"
