"""`intake contacts` and `intake tickets` as outside scripts call them (a real process)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from intake.cli.app import build_pipeline, open_storage
from intake.config import load_settings
from intake.messages import Attachment, ChannelKind, InboundMessage

DATA = Path(__file__).resolve().parents[2] / "data" / "contacts"
TICKET_KEYS = {"id", "reference", "channel", "sender", "subject", "organization",
               "contact_status", "plan", "priority", "severity", "received_at",
               "first_response_due", "resolution_due", "flags", "message_count"}  # fmt: skip


def intake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *args],
        capture_output=True, text=True, timeout=120, cwd=workdir,
    )  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "intake.toml").write_text(
        '[database]\nurl = "sqlite+aiosqlite:///intake.db"\n[policy]\nname = "circularo-saas"\n',
        encoding="utf-8",
    )
    return tmp_path


def test_contacts_import_is_idempotent_and_lists_as_json(workdir: Path) -> None:
    first = intake(workdir, "contacts", "import", str(DATA / "contacts.csv"))
    assert first.returncode == 0, first.stderr
    assert "6 organizations, 12 contacts" in first.stderr
    listed = intake(workdir, "contacts", "list", "--json").stdout
    again = intake(workdir, "contacts", "import", str(DATA / "contacts.csv"))
    assert again.returncode == 0 and again.stderr.strip().endswith("0 changes")
    as_toml = intake(workdir, "contacts", "import", str(DATA / "contacts.toml"))
    assert as_toml.stderr.strip().endswith("0 changes")
    assert intake(workdir, "contacts", "list", "--json").stdout == listed
    orgs = [json.loads(line) for line in listed.splitlines()]
    gulf = next(o for o in orgs if o["organization"] == "Gulf Document Authority")
    assert gulf["policy"] == "circularo-onprem" and gulf["support_start"] == "2024-03-01"
    assert {
        "name": "Omar Haddad",
        "email": "omar.haddad@gda.example",
        "phone": "+971501234567",
        "telegram": None,
        "role": "nominated",
    } in gulf["contacts"]


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (["Acme,gold,,acme.example,Al,al@acme.example,,,user"], "line 2: plan 'gold' is not in"),
        (["Acme,plus,,acme.example,Al,al@acme.example,12,,user"], "line 2: phone '12'"),
        ([f"Scal,standard,,scal.example,P{n},p{n}@scal.example,,,designated,scalr,"
          for n in range(3)], "would have 3 designated contacts; plan standard allows 2"),
    ],
)  # fmt: skip
def test_bad_contacts_file_is_refused_with_its_line(
    workdir: Path, rows: list[str], says: str
) -> None:
    header = "organization,plan,support_start,domains,name,email,phone,telegram,role,policy,region"
    path = workdir / "bad.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    done = intake(workdir, "contacts", "import", str(path))
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    # Nothing of a refused file is kept.
    assert intake(workdir, "contacts", "list", "--json").stdout == ""


async def _seed_tickets(workdir: Path) -> None:
    settings = load_settings(workdir / "intake.toml", env={})
    now = datetime.now(UTC)
    async with open_storage(settings) as storage:
        intake_ = await build_pipeline(settings, storage)
        overdue = InboundMessage(
            channel=ChannelKind.EMAIL, channel_message_id="old@x", rfc_message_id="old@x",
            received_at=now - timedelta(days=30), sender="jan.dvorak@pekarna-dvorak.example",
            subject="Old problem", text="It broke a month ago.",
            attachments=(Attachment(filename="log.txt", content_type="text/plain", data=b"x"),),
        )  # fmt: skip
        fresh = InboundMessage(
            channel=ChannelKind.EMAIL, channel_message_id="new@x", rfc_message_id="new@x",
            received_at=now, sender="someone@else.example", subject="New question",
        )  # fmt: skip
        for message in (overdue, fresh):
            await intake_(message)


def test_tickets_list_and_show(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert intake(workdir, "contacts", "import", str(DATA / "contacts.csv")).returncode == 0
    monkeypatch.chdir(workdir)  # the configured SQLite path is relative to it
    asyncio.run(_seed_tickets(workdir))
    rows = [json.loads(x) for x in intake(workdir, "tickets", "list", "--json").stdout.splitlines()]
    assert len(rows) == 2 and all(TICKET_KEYS <= set(r) for r in rows)
    assert rows[0]["first_response_due"] < rows[1]["first_response_due"]  # soonest first
    old = rows[0]
    # (Not an expired organization's: a ticket under support_expired owes no deadline.)
    assert (old["organization"], old["contact_status"], old["plan"]) == (
        "Pekárna Dvořák s.r.o.", "nominated", "plus")  # fmt: skip
    assert old["flags"] == [] and old["message_count"] == 1
    overdue = intake(workdir, "tickets", "list", "--json", "--open", "--overdue").stdout
    assert [json.loads(x)["reference"] for x in overdue.splitlines()] == [old["reference"]]
    shown = json.loads(intake(workdir, "tickets", "show", old["reference"], "--json").stdout)
    assert shown["messages"][0]["text"] == "It broke a month ago."
    assert shown["messages"][0]["attachments"] == ["log.txt"]
    assert shown["decision"]["contact"]["matched_by"] == "email"
    missing = intake(workdir, "tickets", "show", "SUP-999999", "--json")
    assert missing.returncode == 2 and "no ticket SUP-999999" in missing.stderr
