"""Agents' accounts and their actions on tickets: the CLI, the stored secrets, each action's
event, and priority changes recomputing deadlines from the original receipt."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from classifier import load_rules
from intake.cli.app import Storage, build_pipeline, open_storage
from intake.cli.main import main
from intake.config import load_settings
from intake.desk import actions as agent_actions
from intake.desk import agents
from intake.desk.actions import Action, StatusConflictError, TicketNotFoundError
from intake.errors import InputRefusedError
from intake.messages import ChannelKind, InboundMessage
from intake.outbox import acks
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline.pipeline import Pipeline, PipelineOptions
from intake.policy.files import load_policy
from intake.policy.model import compute_deadlines
from storage import contacts, tickets
from storage.agents import TicketForUpdate
from storage.models import Agent, ApiToken, SlaAlert, Ticket, TicketEvent

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday; London is on GMT until 29 March
LATER = NOW + timedelta(hours=3)
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[3]


def intake(workdir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=120, cwd=workdir,
        # This checkout's code, whichever copy the package was installed from.
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},  # noqa: E501
    )  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "intake.toml").write_text(
        '[database]\nurl = "sqlite+aiosqlite:///intake.db"\n[policy]\nname = "circularo-saas"\n',
        encoding="utf-8",
    )
    return tmp_path


def test_agents_add_prints_a_token_and_refuses_bad_input(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = intake(workdir, "agents", "add", "Ann@Vendor.example", "--name", "Ann",
                   "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert len(token) >= 43 and added.stdout.count("\n") == 1
    again = intake(workdir, "agents", "add", "ann@vendor.example", "--password-stdin",
                   stdin=PASSWORD + "\n")  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr, again.stderr
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    assert again.stdout == ""
    # The rest in this process: a subprocess costs seconds of imports.
    monkeypatch.chdir(workdir)  # the configured SQLite path is relative to it
    runner = CliRunner()
    second = runner.invoke(main, ["agents", "token", "ann@vendor.example"])
    assert second.exit_code == 0 and second.output.strip() != token
    listed = runner.invoke(main, ["agents", "list", "--json"])
    nobody = runner.invoke(main, ["agents", "token", "zed@vendor.example"])
    no_flag = runner.invoke(main, ["agents", "add", "cy@vendor.example"])
    for short in ("", "short", "nine char"):
        refused = runner.invoke(
            main, ["agents", "add", "bob@vendor.example", "--password-stdin"], input=short + "\n"
        )
        assert refused.exit_code == 2 and refused.stdout == ""
        assert refused.stderr == "intake: the password must be at least 10 characters long\n"
    [row] = [json.loads(line) for line in listed.output.splitlines()]
    assert (row["email"], row["name"], row["tokens"]) == ("ann@vendor.example", "Ann", 2)
    reference = asyncio.run(_seed_ticket(workdir))
    update = ["agents", "update", reference, "--as", "ann@vendor.example"]
    resolved = runner.invoke(main, [*update, "--action", "resolve"])
    assert resolved.exit_code == 0, resolved.output
    shown = json.loads(resolved.stdout)
    assert shown["status"] == "resolved" and shown["events"][0]["actor"] == "ann@vendor.example"
    wrong = runner.invoke(main, [*update, "--priority", "critical"])
    assert wrong.exit_code == 2 and "no priority 'critical'" in wrong.stderr
    gone = runner.invoke(main, ["agents", "update", "SUP-999999", "--as", "ann@vendor.example",
                                "--action", "close"])  # fmt: skip
    assert gone.exit_code == 2 and gone.stderr == "intake: no ticket SUP-999999\n"
    assert nobody.exit_code == 2 and "no agent zed@vendor.example" in nobody.output
    assert no_flag.exit_code == 2 and "--password-stdin is required" in no_flag.output


async def _seed_ticket(workdir: Path) -> str:
    settings = load_settings(workdir / "intake.toml", env={})
    async with open_storage(settings) as storage:
        pipeline = await build_pipeline(settings, storage)
        receipt = await pipeline(
            InboundMessage(
                channel=ChannelKind.WEB, channel_message_id="form-1", received_at=NOW,
                sender="someone@customer.example", subject="Export", text="It fails.",
            )
        )  # fmt: skip
    return receipt.reference


# --- accounts on both databases ------------------------------------------------------------


async def test_secrets_are_stored_only_hashed(storage: Storage) -> None:
    token = await agents.add_agent(storage.sessions, "ann@vendor.example", PASSWORD,
                                   name=None, now=NOW)  # fmt: skip
    async with storage.sessions() as session:
        agent = (await session.scalars(select(Agent))).one()
        stored = (await session.scalars(select(ApiToken))).one()
    assert agent.name == "ann" and agent.password_hash.startswith("$argon2id$")
    assert PASSWORD not in agent.password_hash
    assert stored.token_hash != token and token not in stored.token_hash
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.last_used_at is None
    found = await agents.agent_for_token(storage.sessions, token, now=LATER)
    assert found is not None and found.email == "ann@vendor.example"
    assert await agents.agent_for_token(storage.sessions, token + "x", now=LATER) is None
    async with storage.sessions() as session:
        assert (await session.scalars(select(ApiToken))).one().last_used_at == LATER
    assert await agents.agent_for_password(storage.sessions, "ANN@vendor.example", PASSWORD)
    assert await agents.agent_for_password(storage.sessions, "ann@vendor.example", "wrong") is None
    with pytest.raises(agents.DuplicateAgentError):
        await agents.add_agent(storage.sessions, "Ann@Vendor.example", PASSWORD, name=None, now=NOW)


# --- actions ---------------------------------------------------------------------------------


def make_pipeline(storage: Storage) -> Pipeline:
    notifier = Notifier(
        options=NoticeOptions(mailbox="support@support.example.com"),
        secret=b"a" * 32, templates=acks.environment(), clock=lambda: NOW,
    )  # fmt: skip
    return Pipeline(
        sessions=storage.sessions, rules=load_rules(),
        options=PipelineOptions(default_policy="circularo-saas"), notifier=notifier,
    )  # fmt: skip


async def new_ticket(storage: Storage, subject: str, sender: str = "jo@fourco.example") -> int:
    async with storage.sessions.begin() as session:
        org_id, _ = await contacts.upsert_organization(
            session, name="Fourco", plan="standard", policy="four-tier", support_start=None,
            region="Europe/London", domains=("fourco.example",),
        )  # fmt: skip
        await contacts.upsert_contact(session, org_id, name="Jo", email="jo@fourco.example",
                                      phone=None, telegram=None, role="user")  # fmt: skip
    receipt = await make_pipeline(storage)(
        InboundMessage(
            channel=ChannelKind.EMAIL, channel_message_id=f"<{subject}@x>",
            rfc_message_id=f"{subject}@x", received_at=NOW, sender=sender, subject=subject,
            text="The export fails.",
        )
    )  # fmt: skip
    return receipt.ticket_id


async def reply(storage: Storage, ticket_id: int) -> None:
    await make_pipeline(storage)(
        InboundMessage(
            channel=ChannelKind.EMAIL, channel_message_id="<reply@x>", rfc_message_id="reply@x",
            received_at=LATER, sender="jo@fourco.example",
            subject=f"Re: [SUP-{ticket_id:06d}] Question", text="Here is the log.",
        )
    )  # fmt: skip


ANN = agents.AgentIdentity(1, "ann@vendor.example", "Ann")


async def events(storage: Storage, ticket_id: int) -> list[tuple[str, str]]:
    async with storage.sessions() as session:
        rows = await session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id))
        return [(e.kind, e.actor) for e in rows]


async def row(storage: Storage, ticket_id: int) -> Ticket:
    async with storage.sessions() as session:
        found = await session.get(Ticket, ticket_id)
        assert found is not None
        return found


async def test_each_action_writes_its_columns_and_one_event(storage: Storage) -> None:
    ticket_id = await new_ticket(storage, "Low: export fails")
    sessions = storage.sessions
    assert await agent_actions.act(sessions, ticket_id, Action.FIRST_RESPONSE, ANN, now=NOW)
    # Recording it again keeps the first time and writes no second event.
    assert not await agent_actions.act(sessions, ticket_id, Action.FIRST_RESPONSE, ANN, now=LATER)
    assert (await row(storage, ticket_id)).first_response_at == NOW
    await agent_actions.act(sessions, ticket_id, Action.HOLD, ANN, now=NOW)
    held = await row(storage, ticket_id)
    assert (held.status, held.on_hold_at) == ("on_hold", NOW)
    await reply(storage, ticket_id)  # the customer answers: back in the queue (the pipeline)
    answered = await row(storage, ticket_id)
    assert (answered.status, answered.on_hold_at) == ("open", None)
    await agent_actions.act(sessions, ticket_id, Action.HOLD, ANN, now=NOW)
    await agent_actions.act(sessions, ticket_id, Action.RESOLVE, ANN, now=LATER)
    resolved = await row(storage, ticket_id)
    assert (resolved.status, resolved.resolved_at, resolved.on_hold_at) == (
        "resolved", LATER, None)  # fmt: skip
    await agent_actions.act(sessions, ticket_id, Action.REOPEN, ANN, now=LATER)
    reopened = await row(storage, ticket_id)
    assert (reopened.status, reopened.resolved_at) == ("open", None)
    await agent_actions.act(sessions, ticket_id, Action.CLOSE, ANN, now=LATER)
    closed = await row(storage, ticket_id)
    assert (closed.status, closed.closed_at) == ("closed", LATER)
    with pytest.raises(StatusConflictError, match="reopen it first"):
        await agent_actions.act(sessions, ticket_id, Action.RESOLVE, ANN, now=LATER)
    with pytest.raises(TicketNotFoundError, match="SUP-999999"):
        await agent_actions.act(sessions, 999999, Action.CLOSE, ANN, now=LATER)
    assert await events(storage, ticket_id) == [
        (kind, "ann@vendor.example")
        for kind in ("first_response", "on_hold", "on_hold", "resolved", "reopened", "closed")
    ]


async def test_new_deadlines_may_be_warned_about_again(storage: Storage) -> None:
    ticket_id = await new_ticket(storage, "Low: export fails")
    async with storage.sessions.begin() as session:
        session.add(SlaAlert(ticket_id=ticket_id, deadline="first_response", threshold="75%",
                             at=NOW))  # fmt: skip
    await agent_actions.change_ticket(
        storage.sessions, ticket_id, ANN, priority="high", severity=None, now=LATER
    )
    async with storage.sessions() as session:
        assert list(await session.scalars(select(SlaAlert))) == []


async def test_priority_change_recomputes_deadlines_from_the_original_receipt(
    storage: Storage,
) -> None:
    ticket_id = await new_ticket(storage, "Low: export fails")
    before = await row(storage, ticket_id)
    assert before.priority == "low"
    changed = await agent_actions.change_ticket(
        storage.sessions, ticket_id, ANN, priority="high", severity=2, now=LATER
    )
    after = await row(storage, ticket_id)
    expected = compute_deadlines(load_policy("four-tier"), "standard", "high", NOW, "Europe/London")
    assert changed and (after.priority, after.severity) == ("high", 2)
    assert after.first_response_due == expected.first_response_due == NOW + timedelta(hours=4)
    assert after.resolution_due == expected.resolution_due
    [entry] = after.decision["changes"]
    assert entry["by"] == "ann@vendor.example" and entry["priority"] == {
        "from": "low",
        "to": "high",
    }
    assert entry["first_response_due"]["from"] == before.first_response_due.isoformat()  # type: ignore[union-attr]
    assert after.decision["deadlines"] == list(expected.explanation)
    # The same values again change nothing and record nothing.
    assert not await agent_actions.change_ticket(
        storage.sessions, ticket_id, ANN, priority="high", severity=None, now=LATER
    )
    await agent_actions.change_ticket(
        storage.sessions, ticket_id, ANN, priority="urgent", severity=None, now=LATER
    )
    assert "on_call" in (await row(storage, ticket_id)).flags  # four-tier urgent is on call
    assert await events(storage, ticket_id) == [("changed", "ann@vendor.example")] * 2
    with pytest.raises(InputRefusedError, match="no priority 'critical'"):
        await agent_actions.change_ticket(
            storage.sessions, ticket_id, ANN, priority="critical", severity=None, now=LATER
        )


# --- the pure transitions -------------------------------------------------------------------

BASE = TicketForUpdate(
    id=1, status="open", policy="four-tier", plan="standard", priority="low", severity=None,
    flags=(), received_at=NOW, clock_starts=None, first_response_due=None, resolution_due=None,
    first_response_at=None, resolved_at=None, on_hold_at=None, closed_at=None, decision={},
    region=None,
)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "action", "becomes"),
    [
        ("open", Action.RESOLVE, "resolved"), ("on_hold", Action.RESOLVE, "resolved"),
        ("resolved", Action.RESOLVE, None), ("closed", Action.RESOLVE, "conflict"),
        ("open", Action.HOLD, "on_hold"), ("on_hold", Action.HOLD, None),
        ("resolved", Action.HOLD, "conflict"), ("closed", Action.HOLD, "conflict"),
        ("open", Action.REOPEN, None), ("closed", Action.REOPEN, "open"),
        ("resolved", Action.CLOSE, "closed"), ("closed", Action.CLOSE, None),
        ("closed", Action.FIRST_RESPONSE, "closed"),
    ],
)  # fmt: skip
def test_transitions(status: str, action: Action, becomes: str | None) -> None:
    ticket = replace(BASE, status=status)
    if becomes == "conflict":
        with pytest.raises(StatusConflictError):
            agent_actions.transition(ticket, action, NOW)
        return
    outcome = agent_actions.transition(ticket, action, NOW)
    if becomes is None:
        assert outcome is None
    else:
        assert outcome is not None and outcome.columns.get("status", status) == becomes


@pytest.mark.parametrize(
    ("priority", "severity", "says"),
    [(None, None, "give a priority"), ("nope", None, "no priority 'nope'"),
     (None, 5, "from 1 to 4"), (None, True, "from 1 to 4"), (None, "2", "from 1 to 4")],
)  # fmt: skip
def test_invalid_changes_are_refused(priority: str | None, severity: object, says: str) -> None:
    with pytest.raises(InputRefusedError, match=says):
        agent_actions.change(
            BASE, load_policy("four-tier"), priority=priority, severity=severity,  # type: ignore[arg-type]
            actor="a", now=NOW,
        )  # fmt: skip


def test_a_ticket_without_an_sla_keeps_no_deadlines() -> None:
    outcome = agent_actions.change(
        BASE, load_policy("four-tier"), priority="high", severity=None, actor="a", now=NOW
    )
    assert outcome is not None and "first_response_due" not in outcome.columns


async def test_the_queue_counts_down_to_the_next_open_deadline(storage: Storage) -> None:
    answered = await new_ticket(storage, "High: answered")
    waiting = await new_ticket(storage, "Low: waiting")
    await agent_actions.act(storage.sessions, answered, Action.FIRST_RESPONSE, ANN, now=NOW)
    async with storage.sessions() as session:
        rows = await tickets.list_tickets(session, only_open=True, overdue_at=None)
    # The answered one has no resolution target (four-tier), so it sorts after the waiting one.
    assert [r.id for r in rows] == [waiting, answered]
    assert rows[1].first_response_at == NOW
