"""The operator's first hour (issue 18): the real `intake` command, its errors and its text."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake.cli.app import build_pipeline, open_storage
from intake.config import load_settings
from intake.messages import Attachment, ChannelKind, InboundMessage

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery"
SUBJECT = "Export selhává \N{EN DASH} chyba"


def intake(
    workdir: Path,
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
    merged: bool = False,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *args],
        input=stdin, capture_output=not merged, text=True, timeout=120, cwd=workdir,
        stdout=subprocess.PIPE if merged else None,
        stderr=subprocess.STDOUT if merged else None,
        # This checkout's code, whichever copy the package was installed from.
        env={**os.environ, **(env or {}),
             "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The process failed with exactly one error line on stderr, and no traceback (log lines
    may come before it: CONTRACTS section 2 additions)."""
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    logged = (" INFO ", " WARNING ")  # e.g. the default policy's own warnings at start
    errors = [line for line in done.stderr.splitlines() if not any(k in line for k in logged)]
    assert len(errors) == 1, done.stderr
    return errors[0]


@pytest.fixture
def held() -> Iterator[int]:
    """A loopback port another process (here: this one) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("section", ["smtp", "web"])
def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path: Path, held: int, section: str) -> None:
    ports = {"smtp": free_port(), "web": free_port(), section: held}
    (tmp_path / "intake.toml").write_text(
        f"[smtp]\nport = {ports['smtp']}\n[web]\nport = {ports['web']}\n", encoding="utf-8"
    )
    line = one_error_line(intake(tmp_path, "serve"))
    assert f"{section}.port: cannot listen on 127.0.0.1:{held}: address already in use" in line


@pytest.mark.parametrize(
    "command", [("tickets", "list"), ("tickets", "show", "SUP-000001"), ("contacts", "list")]
)
def test_read_only_commands_never_create_a_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    line = one_error_line(intake(tmp_path, *command))  # no intake.toml: the built-in default
    assert f"no database at {tmp_path / 'intake.db'}" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("variable", "value"), [("INTAKE_WEB_PORT", "abc"), ("INTAKE_SMTP_ENABLED", "maybe")]
)
def test_a_bad_environment_variable_is_named(tmp_path: Path, variable: str, value: str) -> None:
    line = one_error_line(intake(tmp_path, "serve", env={variable: value}))
    assert line.startswith(f"intake: environment variable {variable}: "), line


async def _seed(workdir: Path) -> str:
    settings = load_settings(workdir / "intake.toml", env={})
    async with open_storage(settings) as storage:
        pipeline = await build_pipeline(settings, storage)
        message = InboundMessage(
            channel=ChannelKind.EMAIL, channel_message_id="a@x", rfc_message_id="a@x",
            received_at=datetime.now(UTC), sender="jan@else.example",
            subject=SUBJECT, text="Line one.\nLine two.",
            attachments=(Attachment(filename="log.txt", content_type="text/plain", data=b"x"),),
        )  # fmt: skip
        receipt = await pipeline(message)
    return receipt.reference


def test_tickets_and_agents_speak_text_to_people(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "intake.toml").write_text(
        '[database]\nurl = "sqlite+aiosqlite:///intake.db"\n', encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    reference = asyncio.run(_seed(tmp_path))
    shown = intake(tmp_path, "tickets", "show", reference)
    assert shown.returncode == 0, shown.stderr
    assert not shown.stdout.lstrip().startswith("{")  # text, not JSON
    lines = shown.stdout.splitlines()
    assert lines[0] == f"{reference}  {SUBJECT}"
    assert "  status:             open" in lines and "  assignee:           -" in lines
    assert "Attachments: log.txt" in lines and lines[-2:] == ["Line one.", "Line two."]
    listed = intake(tmp_path, "tickets", "list").stdout.splitlines()
    assert len(listed) == 1 and listed[0].startswith(f"{reference}  open ")
    [row] = map(json.loads, intake(tmp_path, "tickets", "list", "--json").stdout.splitlines())
    assert row["status"] == "open" and row["assignee"] is None
    added = intake(tmp_path, "agents", "add", "ann@vendor.example", "--password-stdin",
                   stdin=PASSWORD + "\n", merged=True)  # fmt: skip
    assert added.returncode == 0, added.stdout
    first = added.stdout.splitlines()[0]
    assert first.startswith("API token: ") and len(first.removeprefix("API token: ")) >= 43
    # A script capturing stdout alone still gets the bare token.
    again = intake(tmp_path, "agents", "token", "ann@vendor.example")
    assert again.stdout.count("\n") == 1 and " " not in again.stdout.strip()
    assert "API token: " in again.stderr
    zoned = intake(tmp_path, "agents", "zone", "ann@vendor.example", "Europe/Prague")
    assert zoned.returncode == 0 and "page times in Europe/Prague" in zoned.stderr
    assert "is not a time zone" in one_error_line(
        intake(tmp_path, "agents", "zone", "ann@vendor.example", "Mars/Base")
    )


def test_contacts_import_reads_phones_in_the_region_and_hints_at_separators(
    tmp_path: Path,
) -> None:
    header = "organization,plan,support_start,domains,name,email,phone,telegram,role,policy,region"
    good = tmp_path / "good.csv"
    row = "Acme,standard,,acme.example,Al,,(415) 555-0199,,user,scalr,America/Los_Angeles"
    good.write_text(f"{header}\n{row}\n", encoding="utf-8")
    assert intake(tmp_path, "contacts", "import", str(good)).returncode == 0
    [org] = map(json.loads, intake(tmp_path, "contacts", "list", "--json").stdout.splitlines())
    assert org["contacts"][0]["phone"] == "+14155550199"
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f'{header}\nBeta,standard,,"b.example,c.example",Bo,bo@b.example,,,user,,\n', "utf-8"
    )
    line = one_error_line(intake(tmp_path, "contacts", "import", str(bad)))
    assert "line 2" in line and "domains are separated by spaces, not commas" in line


def test_a_read_only_command_on_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://intake:hunter2@127.0.0.1:{free_port()}/intake"
    done = intake(tmp_path, "tickets", "list", env={"INTAKE_DATABASE_URL": url})
    line = one_error_line(done)
    assert "database.url: cannot reach postgresql+asyncpg://intake:***@127.0.0.1:" in line
    assert "hunter2" not in done.stderr
