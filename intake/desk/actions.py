"""What agents do to tickets: record the first response, resolve, reopen, hold, close, and
change priority or severity. Also the ticket views the agents' API returns.

Each action is one transaction on a locked ticket row, writing the change and a
`ticket_events` row naming the agent. The transitions themselves are pure functions
(`transition`, `change`), so the rules read, and test, without a database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.desk.agents import AgentIdentity
from intake.desk.views import iso_time, message_entry, message_json, ticket_json
from intake.errors import InputRefusedError, TransientError
from intake.pipeline.references import format_reference
from intake.policy.files import load_policy
from intake.policy.model import Policy, compute_deadlines
from storage import agents as repo
from storage import conversation, tickets
from storage.agents import TicketForUpdate

SEVERITIES = range(1, 5)


class Action(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    HOLD = "hold"
    CLOSE = "close"


# The event each action writes (past tense: what happened to the ticket).
EVENT_KINDS = {
    Action.FIRST_RESPONSE: "first_response",
    Action.RESOLVE: "resolved",
    Action.REOPEN: "reopened",
    Action.HOLD: "on_hold",
    Action.CLOSE: "closed",
}
CHANGED = "changed"


class TicketNotFoundError(InputRefusedError):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"no ticket {format_reference(ticket_id)}")


class StatusConflictError(InputRefusedError):
    """The action does not apply to the ticket as it now stands (resolve a closed ticket)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """Column changes and the event's details; None from a transition means nothing to do."""

    columns: dict[str, Any]
    details: dict[str, Any]


def transition(ticket: TicketForUpdate, action: Action, now: datetime) -> Outcome | None:
    """What `action` does to `ticket` at `now`; None when it is already done (idempotent)."""
    status = ticket.status
    if action is Action.FIRST_RESPONSE:
        if ticket.first_response_at is not None:
            return None
        return Outcome({"first_response_at": now}, {"status": status})
    if action is Action.REOPEN:
        if status == "open":
            return None
        return Outcome(
            {"status": "open", "resolved_at": None, "closed_at": None, "on_hold_at": None},
            {"from": status, "resolved_at": iso_time(ticket.resolved_at),
             "closed_at": iso_time(ticket.closed_at)},
        )  # fmt: skip
    if action is Action.CLOSE:
        if status == "closed":
            return None
        return Outcome({"status": "closed", "closed_at": now, "on_hold_at": None}, {"from": status})
    target = "resolved" if action is Action.RESOLVE else "on_hold"
    if status == target:
        return None
    if status == "closed" or (action is Action.HOLD and status == "resolved"):
        raise StatusConflictError(f"the ticket is {status}; reopen it first")
    if action is Action.RESOLVE:
        return Outcome(
            {"status": "resolved", "resolved_at": now, "on_hold_at": None}, {"from": status}
        )
    # Waiting for the customer: no policy file says when a hold is allowed, so every policy
    # allows it, and the event says so. A customer's reply reopens it (intake.pipeline.pipeline).
    return Outcome(
        {"status": "on_hold", "on_hold_at": now},
        {"from": status, "policy": ticket.policy, "rule": "hold allowed under every policy"},
    )


def _check_values(policy: Policy, priority: str | None, severity: object) -> None:
    if priority is None and severity is None:
        raise InputRefusedError("give a priority, a severity or both")
    if priority is not None:
        policy.check_priority(priority)
    if severity is not None and (
        isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES
    ):
        raise InputRefusedError(f"severity must be an integer from 1 to 4, not {severity!r}")


def change(
    ticket: TicketForUpdate,
    policy: Policy,
    *,
    priority: str | None,
    severity: int | None,
    actor: str,
    now: datetime,
) -> Outcome | None:
    """A new priority and/or severity; a new priority recomputes the deadlines from the
    original receipt, on the ticket's plan and its organization's region."""
    _check_values(policy, priority, severity)
    details: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    if severity is not None and severity != ticket.severity:
        details["severity"] = {"from": ticket.severity, "to": severity}
        columns["severity"] = severity
    decision = dict(ticket.decision)
    if priority is not None and priority != ticket.priority:
        details["priority"] = {"from": ticket.priority, "to": priority}
        columns["priority"] = priority
        # A ticket without deadlines (no SLA for an unidentified sender) keeps none.
        if ticket.clock_starts is not None and ticket.plan is not None:
            due = compute_deadlines(
                policy, ticket.plan, priority, ticket.received_at, ticket.region
            )
            for name, old, new in (
                ("first_response_due", ticket.first_response_due, due.first_response_due),
                ("resolution_due", ticket.resolution_due, due.resolution_due),
            ):
                details[name] = {"from": iso_time(old), "to": iso_time(new)}
                columns[name] = new
            columns["clock_starts"] = due.clock_starts
            flags = [f for f in ticket.flags if f != "on_call"]
            columns["flags"] = [*flags, "on_call"] if due.on_call else flags
            decision["deadlines"] = list(due.explanation)
    if not details:
        return None
    decision["changes"] = [
        *decision.get("changes", []),
        {"at": now.isoformat(), "by": actor, **details},
    ]
    columns["decision"] = decision
    return Outcome(columns, details)


@contextlib.asynccontextmanager
async def storage_errors() -> AsyncIterator[None]:
    """Database outages as TransientError: the caller may try again."""
    try:
        yield
    except (OperationalError, InterfaceError, OSError, TimeoutError) as exc:
        raise TransientError(f"storage unavailable: {type(exc).__name__}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise TransientError("storage connection lost") from exc
        raise


async def _locked(session: AsyncSession, ticket_id: int) -> TicketForUpdate:
    ticket = await repo.ticket_for_update(session, ticket_id)
    if ticket is None:
        raise TicketNotFoundError(ticket_id)
    return ticket


async def act(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    action: Action,
    agent: AgentIdentity,
    *,
    now: datetime,
) -> bool:
    """Apply `action` in one transaction; False when it was already done (no event then)."""
    async with storage_errors(), sessions.begin() as session:
        ticket = await _locked(session, ticket_id)
        outcome = transition(ticket, action, now)
        if outcome is None:
            return False
        await tickets.update_ticket(session, ticket_id, **outcome.columns)
        await repo.insert_event(
            session, ticket_id, at=now, actor=agent.email, kind=EVENT_KINDS[action],
            details=outcome.details,
        )  # fmt: skip
    return True


async def change_ticket(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    *,
    priority: str | None,
    severity: int | None,
    now: datetime,
    reason: str = "",
) -> bool:
    """Change priority and/or severity in one transaction; False when nothing changed.
    `reason`, when given, lands in the event and the decision's changes."""
    async with storage_errors(), sessions.begin() as session:
        ticket = await _locked(session, ticket_id)
        policy = load_policy(ticket.policy)
        outcome = change(
            ticket, policy, priority=priority, severity=severity, actor=agent.email, now=now
        )
        if outcome is None:
            return False
        if reason:
            outcome = _with_reason(outcome, reason)
        await tickets.update_ticket(session, ticket_id, **outcome.columns)
        if "first_response_due" in outcome.columns:
            # New deadlines: the SLA watcher may warn about them afresh.
            await repo.forget_sla_alerts(session, ticket_id)
        await repo.insert_event(
            session, ticket_id, at=now, actor=agent.email, kind=CHANGED, details=outcome.details
        )
    return True


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What an agent narrows the queue to; None means any."""

    channel: str | None = None
    organization: str | None = None  # the organization's name
    priority: str | None = None
    assignee: str | None = None  # an agent's email ("Mine"); "" for "Unassigned"


async def ticket_rows(
    sessions: async_sessionmaker[AsyncSession],
    *,
    only_open: bool,
    overdue_at: datetime | None,
    where: QueueFilter,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """The queue, soonest deadline first, as `intake tickets list --json` rows."""
    async with storage_errors(), sessions() as session:
        found = await tickets.list_tickets(
            session, only_open=only_open, overdue_at=overdue_at, limit=limit,
            where=tickets.TicketFilter(
                where.channel, where.organization, where.priority, where.assignee
            ),
            offset=offset,
        )  # fmt: skip
    return [ticket_json(t) for t in found]


async def ticket_detail(
    sessions: async_sessionmaker[AsyncSession], ticket_id: int
) -> dict[str, Any]:
    """`intake tickets show --json`'s object, plus its times and events, read in one snapshot."""
    async with storage_errors(), sessions() as session:
        found = await tickets.list_tickets(
            session, only_open=False, overdue_at=None, ticket_id=ticket_id
        )
        times = await repo.ticket_times(session, ticket_id)
        if not found or times is None:
            raise TicketNotFoundError(ticket_id)
        messages = await tickets.ticket_messages(session, ticket_id)
        decision = await tickets.ticket_decision(session, ticket_id)
        events = await repo.ticket_events(session, ticket_id)
        entries = await _message_entries(session, ticket_id, found[0].status)
        target = await conversation.reply_target(session, ticket_id)
    shown = ticket_json(found[0])
    shown.update(
        clock_starts=iso_time(times.clock_starts),
        first_response_at=iso_time(times.first_response_at),
        resolved_at=iso_time(times.resolved_at),
        on_hold_at=iso_time(times.on_hold_at),
        closed_at=iso_time(times.closed_at),
        last_message_at=iso_time(times.last_message_at),
        decision=decision,
        sender_name=target.sender_name if target else "",
    )
    shown["messages"] = [
        {**message_json(m), **_desk_fields(entry)}
        for m, entry in zip(messages, entries, strict=True)
    ]
    shown["events"] = [
        {"at": iso_time(e.at), "actor": e.actor, "kind": e.kind, "details": e.details}
        for e in events
    ]
    return shown


def _with_reason(outcome: Outcome, reason: str) -> Outcome:
    details = {**outcome.details, "reason": reason}
    columns = dict(outcome.columns)
    decision = columns.get("decision")
    if isinstance(decision, dict) and decision.get("changes"):
        changes = list(decision["changes"])
        changes[-1] = {**changes[-1], "reason": reason}
        columns["decision"] = {**decision, "changes": changes}
    return Outcome(columns, details)


_DESK_FIELDS = ("id", "direction", "kind", "author", "delivery", "delivery_reason", "files")


def _desk_fields(entry: dict[str, Any]) -> dict[str, Any]:
    return {name: entry[name] for name in _DESK_FIELDS}


async def _message_entries(
    session: AsyncSession, ticket_id: int, status: str
) -> list[dict[str, Any]]:
    """The ticket's messages as timeline entries (UTC), in `ticket_messages`' order."""
    stored = await conversation.messages(session, ticket_id)
    notices = {n.id: n for n in await conversation.notices(session, ticket_id)}
    return [message_entry(m, notices, UTC, machine=status == "machine") for m in stored]


# Agents' desk (issue 15): assignment, status from the page, merge, not a request.
TICKET_STATUSES = ("open", "on_hold", "resolved", "closed")


async def assign(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    assignee_email: str | None,
    *,
    now: datetime,
) -> bool:
    """Give the ticket to an active agent (None: unassign); False when nothing changed.
    The assignee is alerted about the ticket's SLA warnings from then on."""
    email = assignee_email.strip().lower() if assignee_email else None
    async with storage_errors(), sessions.begin() as session:
        await _locked(session, ticket_id)
        if email is not None:
            found = await repo.agent_by_email(session, email)
            if found is None or found.deactivated_at is not None:
                raise InputRefusedError(f"no active agent {email}")
            email = found.email
        before = await conversation.assignee_of(session, ticket_id)
        if before == email:
            return False
        await tickets.update_ticket(session, ticket_id, assignee=email)
        await repo.insert_event(
            session, ticket_id, at=now, actor=agent.email,
            kind="assigned" if email else "unassigned", details={"from": before, "to": email},
        )  # fmt: skip
    return True


STATUS_ACTIONS = {
    "open": Action.REOPEN,
    "on_hold": Action.HOLD,
    "resolved": Action.RESOLVE,
    "closed": Action.CLOSE,
}


async def set_status(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    status: str,
    *,
    now: datetime,
    reason: str = "",
) -> bool:
    """open (reopen), on_hold, resolved or closed; the reason lands in the event."""
    action = STATUS_ACTIONS.get(status)
    if action is None:
        raise InputRefusedError(f"status must be one of {', '.join(STATUS_ACTIONS)}")
    async with storage_errors(), sessions.begin() as session:
        ticket = await _locked(session, ticket_id)
        if ticket.status == "merged":
            raise StatusConflictError("the ticket was merged into another")
        outcome = transition(ticket, action, now)
        if outcome is None:
            return False
        await tickets.update_ticket(session, ticket_id, **outcome.columns)
        details = {**outcome.details, **({"reason": reason[:1000]} if reason else {})}
        await repo.insert_event(
            session, ticket_id, at=now, actor=agent.email, kind=EVENT_KINDS[action],
            details=details,
        )  # fmt: skip
    return True


async def merge(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    into_id: int,
    agent: AgentIdentity,
    *,
    now: datetime,
) -> bool:
    """This ticket's messages join `into_id`; this one ends `merged`, the other keeps its
    deadlines. False when it was already merged there."""
    if ticket_id == into_id:
        raise InputRefusedError("a ticket cannot be merged into itself")
    async with storage_errors(), sessions.begin() as session:
        # Both locked, the lower id first: two merges of the same pair cannot deadlock.
        locked = {i: await _locked(session, i) for i in sorted((ticket_id, into_id))}
        source, target = locked[ticket_id], locked[into_id]
        if source.status == "merged":
            if source.decision.get("merged_into") == into_id:
                return False
            raise StatusConflictError("the ticket was already merged into another")
        if target.status == "merged":
            raise StatusConflictError(f"{format_reference(into_id)} was itself merged")
        moved = await conversation.move_messages(session, ticket_id, into_id)
        decision = {**source.decision, "merged_into": into_id}
        await tickets.update_ticket(
            session, ticket_id, status="merged", closed_at=now, on_hold_at=None,
            decision=decision,
        )  # fmt: skip
        await repo.forget_sla_alerts(session, ticket_id)
        into, this = format_reference(into_id), format_reference(ticket_id)
        await repo.insert_event(
            session, ticket_id, at=now, actor=agent.email, kind="merged_into",
            details={"into": into, "from": source.status, "messages": moved},
        )  # fmt: skip
        await repo.insert_event(
            session, into_id, at=now, actor=agent.email, kind="merged",
            details={"from": this, "messages": moved},
        )  # fmt: skip
    return True


async def not_a_request(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    *,
    now: datetime,
    reason: str = "",
) -> bool:
    """A request that is not one (machine mail let through): status `machine`, no SLA,
    no more automatic mail. The way back is the action `request` (machine mail -> request)."""
    async with storage_errors(), sessions.begin() as session:
        ticket = await _locked(session, ticket_id)
        if ticket.status == "machine":
            return False
        if ticket.status == "merged":
            raise StatusConflictError("the ticket was merged into another")
        details: dict[str, Any] = {
            "from": ticket.status,
            "first_response_due": iso_time(ticket.first_response_due),
            "resolution_due": iso_time(ticket.resolution_due),
            **({"reason": reason[:1000]} if reason else {}),
        }
        decision = {**ticket.decision, "not_a_request": {"at": now.isoformat(), **details}}
        await tickets.update_ticket(
            session, ticket_id, status="machine", first_response_due=None,
            resolution_due=None, on_hold_at=None, decision=decision,
        )  # fmt: skip
        # Nothing automatic goes to it any more: acknowledgements not yet sent stay unsent.
        details["cancelled"] = await conversation.cancel_notices(
            session, ticket_id, ("ack", "endorse"), "cancelled: not a request"
        )
        await repo.forget_sla_alerts(session, ticket_id)
        await repo.insert_event(
            session, ticket_id, at=now, actor=agent.email, kind="not_a_request", details=details
        )
    return True
