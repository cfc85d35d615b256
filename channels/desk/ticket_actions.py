"""What each form of the ticket page does (issue 15): the fields it takes, their checks, and
the core's function it calls (`intake.desk.actions`, `intake.desk.conversation`). Nothing
here knows HTTP: `channels.desk.ticket_page` reads the form and answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from intake.desk import conversation
from intake.desk.actions import Action, act, assign, change_ticket, merge, not_a_request
from intake.desk.agents import AgentIdentity
from intake.desk.conversation import ReplyOptions
from intake.errors import ConfigError, InputRefusedError
from intake.messages import Attachment
from intake.pipeline import references
from intake.policy.files import load_policy

MAX_TEXT = 20_000  # characters of a reply or a note
MAX_REASON = 500
MAX_ACTION_BODY = 64 * 1024  # a form without files
MAX_FILES = 10  # on one reply

# status value -> (the action, what the page calls it)
STATUSES: dict[str, tuple[Action, str]] = {
    "on_hold": (Action.HOLD, "On hold (waiting on the customer)"),
    "resolved": (Action.RESOLVE, "Resolved"),
    "closed": (Action.CLOSE, "Closed"),
    "open": (Action.REOPEN, "Reopened"),
}
# What the page says after each action succeeded (the redirect carries only the key).
NOTICES = {
    "reply": "Your reply is queued for delivery.",
    "note": "Your note is added.",
    "assign": "The assignment is changed.",
    "status": "The status is changed.",
    "change": "The ticket is changed.",
    "merge": "The ticket is merged.",
    "request": "The ticket is changed.",
    "unchanged": "Nothing to change: the ticket already stood so.",
}
ACTIONS = ("reply", "note", "assign", "status", "change", "merge", "request")


@dataclass(frozen=True, slots=True)
class Draft:
    """What the agent typed, kept when an action is refused."""

    text: str = ""
    note: str = ""
    reason: str = ""
    after: str = ""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An action the page refused: the HTTP status, what it says, the form it belongs to."""

    status: int
    message: str
    form: str
    draft: Draft = field(default_factory=Draft)
    newer: Sequence[Mapping[str, Any]] = ()  # messages the agent had not seen


def _text(form: Mapping[str, str], name: str, limit: int) -> str:
    value = form.get(name, "").replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise InputRefusedError(f"the {name} is longer than {limit} characters")
    return value


def _severity(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) not in range(1, 5):
        raise InputRefusedError(f"severity must be 1 to 4, not {value[:10]!r}")
    return int(value)


def _after(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InputRefusedError(f"the form's newest message {value[:20]!r} is not a number")
    return int(value)


def _key(value: str) -> str | None:
    # The form's own key: the same form sent twice (a double click, a resubmission) is the
    # same reply, stored once and sent once.
    return value if re.fullmatch(r"[0-9a-f]{32}", value) else None


async def _reply(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    form: Mapping[str, str],
    now: datetime,
    desk: Desk,
) -> str:
    if desk.replies is None:
        raise InputRefusedError("replies are not configured on this server")
    text = _text(form, "text", MAX_TEXT)
    if not text:
        raise InputRefusedError("write the reply first")
    await conversation.reply(
        sessions, ticket_id, agent, text, now=now, options=desk.replies,
        files=desk.files, after=_after(form.get("after", "")), key=_key(form.get("key", "")),
    )  # fmt: skip
    if desk.wake is not None:
        desk.wake()
    return "reply"


async def _status(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    value: str,
    now: datetime,
) -> str:
    chosen = STATUSES.get(value)
    if chosen is None:
        raise InputRefusedError("choose a status: " + ", ".join(STATUSES))
    done = await act(sessions, ticket_id, chosen[0], agent, now=now)
    return "status" if done else "unchanged"


@dataclass(frozen=True, slots=True)
class Desk:
    """What a reply needs beyond the form: the configuration, its files, the deliverer."""

    replies: ReplyOptions | None = None
    files: Sequence[Attachment] = ()
    wake: Callable[[], None] | None = None


async def perform(
    sessions: async_sessionmaker[AsyncSession],
    ticket_id: int,
    agent: AgentIdentity,
    action: str,
    form: Mapping[str, str],
    now: datetime,
    desk: Desk,
) -> str:
    """Do one action of the ticket page; the key of the notice to show after it."""
    if action == "reply":
        return await _reply(sessions, ticket_id, agent, form, now, desk)
    if action == "note":
        note = _text(form, "note", MAX_TEXT)
        if not note:
            raise InputRefusedError("write the note first")
        await conversation.add_note(sessions, ticket_id, agent, note, now=now)
        return "note"
    if action == "assign":
        assignee = form.get("assignee", "").strip() or None
        done = await assign(sessions, ticket_id, agent, assignee, now=now)
        return "assign" if done else "unchanged"
    if action == "merge":
        into = references.parse_reference(form.get("into", "").strip().upper())
        if into is None:
            raise InputRefusedError("name the ticket to merge into, e.g. SUP-000010")
        done = await merge(sessions, ticket_id, into, agent, now=now)
        return "merge" if done else "unchanged"
    if action == "request":
        if form.get("request") == "yes":  # machine mail that is a request after all
            done = await act(sessions, ticket_id, Action.REQUEST, agent, now=now)
        elif form.get("request") == "no":
            done = await not_a_request(sessions, ticket_id, agent, now=now)
        else:
            raise InputRefusedError("say whether it is a request")
        return "request" if done else "unchanged"
    if action == "status":
        return await _status(sessions, ticket_id, agent, form.get("status", ""), now)
    if action == "change":
        reason = _text(form, "reason", MAX_REASON)
        if not reason:
            raise InputRefusedError("say why the priority or severity changes")
        done = await change_ticket(
            sessions, ticket_id, agent, priority=form.get("priority") or None,
            severity=_severity(form.get("severity", "")), now=now, reason=reason,
        )  # fmt: skip
        return "change" if done else "unchanged"
    raise InputRefusedError(f"no action {action[:40]!r} on a ticket")


def priorities_of(policy_name: str | None, current: str) -> list[str]:
    """The priorities the ticket's policy allows (the current one at least)."""
    try:
        order = list(load_policy(policy_name).priorities.order) if policy_name else []
    except (ConfigError, InputRefusedError, OSError, ValueError):
        order = []
    return order if current in order else [current, *order]


def draft_of(form: Mapping[str, str]) -> Draft:
    return Draft(
        text=form.get("text", "")[:MAX_TEXT],
        note=form.get("note", "")[:MAX_TEXT],
        reason=form.get("reason", "")[:MAX_REASON],
        after=form.get("after", "")[:40],
    )
