"""`intake config check` (issue 18): the real command against loopback servers it must reach,
a relay (aiosmtpd) and an IMAP mailbox (Dovecot), and shapes it can only judge."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from serving import Relay, free_port

from intake.cli.app import open_storage
from intake.config import load_settings

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "channels"))  # the Dovecot harness lives there

from dovecot import Dovecot  # noqa: E402

TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
TG_TOKEN = "123456789:AAHk5Zq8x0Qv1yq2Zr3s4t5u6v7w8x9y0zA"


async def check(folder: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "intake.cli", "config", "check",
        cwd=folder, env={**os.environ, **(env or {}), "PYTHONPATH": path},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(child.communicate(), 120)
    return await child.wait(), out.decode()


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    async with Relay() as server:
        yield server


@pytest.fixture
def imap() -> Iterator[Dovecot]:
    server = Dovecot()
    server.start()
    yield server
    server.stop()
    server.wait_stopped()


def write(folder: Path, text: str) -> None:
    (folder / "intake.toml").write_text(text, encoding="utf-8")


async def test_all_is_well(tmp_path: Path, relay: Relay, imap: Dovecot) -> None:
    write(
        tmp_path,
        f"""
[database]
url = "sqlite+aiosqlite:///{tmp_path / "intake.db"}"
[outbound.smtp]
port = {relay.port}
[imap]
enabled = true
host = "127.0.0.1"
port = {imap.port}
ssl = false
user = "{imap.user}"
password = "{imap.password}"
[notify]
emails = ["oncall@vendor.example"]
[twilio]
enabled = true
account_sid = "AC{"1" * 32}"
auth_token = "{TWILIO_TOKEN}"
whatsapp_from = "+14155550100"
[telegram]
token = "{TG_TOKEN}"
""",
    )
    async with open_storage(load_settings(tmp_path / "intake.toml", env={})):
        pass  # the database exists, as after a first start
    status, out = await check(tmp_path)
    assert status == 0, out
    lines = out.splitlines()
    assert all(line.startswith("ok   ") for line in lines), out
    assert f"ok   outbound.smtp 127.0.0.1:{relay.port} answers EHLO" in lines
    assert any(line.startswith(f"ok   imap {imap.user} at 127.0.0.1:{imap.port}") for line in lines)
    assert any(line.startswith("ok   database ") and "answers" in line for line in lines)
    assert TWILIO_TOKEN not in out and TG_TOKEN not in out and imap.password not in out


async def test_each_problem_is_one_line(tmp_path: Path, imap: Dovecot) -> None:
    closed = free_port()
    write(
        tmp_path,
        f"""
[database]
url = "postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
[outbound.smtp]
port = {closed}
[imap]
enabled = true
host = "127.0.0.1"
port = {imap.port}
ssl = false
user = "{imap.user}"
password = "wrong password"
[twilio]
enabled = true
account_sid = "AC123"
auth_token = "not-a-token"
sms_from = "12"
[telegram]
enabled = true
mode = "webhook"
token = "nonsense"
""",
    )
    status, out = await check(tmp_path)
    assert status == 1, out
    failed = {line.split(":")[0].removeprefix("FAIL ") for line in out.splitlines()
              if line.startswith("FAIL ")}  # fmt: skip
    assert {
        "database", "outbound.smtp 127.0.0.1", f"imap {imap.user} at 127.0.0.1",
        "twilio.account_sid", "twilio.auth_token", "twilio.sms_from", "telegram.token",
        "telegram.secret_token",
    } <= failed, out  # fmt: skip
    assert "the server refused the login" in out
    assert "notify: no target" in out and "wrong password" not in out and "nonsense" not in out
    assert "Traceback" not in out


async def test_a_configuration_that_cannot_load_is_one_line(tmp_path: Path) -> None:
    status, out = await check(tmp_path, env={"INTAKE_WEB_PORT": "abc"})
    assert status == 1 and out.count("\n") == 1, out
    assert out.startswith("FAIL environment variable INTAKE_WEB_PORT: web.port:")
