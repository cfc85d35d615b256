"""One ticket on the agents' page (issue 15): its timeline, and every action an agent takes
on it from the page (reply, note, take or assign, status, priority or severity with a reason,
merge, machine mail <-> request).

Each action is a plain HTML form posted to `/tickets/{reference}/{action}` with the page's
double-submit CSRF token (the session cookie is the nonce), answered by a 303 back to the
ticket (POST-redirect-GET), so it works without JavaScript. A refused action renders the
ticket again with the reason in a `role="alert"` box and the agent's draft kept; a reply
composed while someone else answered is never sent blindly: the page says so, shows the
newer messages and keeps the draft.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from intake.desk.actions import (
    Action,
    StatusConflictError,
    TicketNotFoundError,
    act,
    change_ticket,
    ticket_detail,
)
from intake.desk.agents import AgentIdentity, agent_named, list_agents
from intake.errors import ConfigError, InputRefusedError, TransientError
from intake.pipeline import references
from intake.policy.files import load_policy

if TYPE_CHECKING:
    from channels.desk.page import LoggedIn, QueuePage

log = logging.getLogger(__name__)

MAX_TEXT = 20_000  # characters of a reply or a note
MAX_REASON = 500
MAX_ACTION_BODY = 64 * 1024  # a form without files

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
ACTIONS = ("status", "change")


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


async def perform(
    page: QueuePage,
    ticket_id: int,
    agent: AgentIdentity,
    action: str,
    form: Mapping[str, str],
    now: datetime,
) -> str:
    """Do one action of the ticket page; the key of the notice to show after it."""
    sessions = page.sessions
    if action == "status":
        chosen = STATUSES.get(form.get("status", ""))
        if chosen is None:
            raise InputRefusedError("choose a status: " + ", ".join(STATUSES))
        done = await act(sessions, ticket_id, chosen[0], agent, now=now)
        return "status" if done else "unchanged"
    if action == "change":
        reason = _text(form, "reason", MAX_REASON)
        if not reason:
            raise InputRefusedError("say why the priority or severity changes")
        done = await change_ticket(
            sessions, ticket_id, agent, priority=form.get("priority") or None,
            severity=_severity(form.get("severity", "")), now=now,
        )  # fmt: skip
        return "change" if done else "unchanged"
    raise InputRefusedError(f"no action {action[:40]!r} on a ticket")


def _entry_time(value: str | None, zone: tzinfo) -> tuple[str, str]:
    if not value:
        return "", ""
    moment = datetime.fromisoformat(value)
    return moment.isoformat(), moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


# What the timeline calls each kind of entry.
KIND_LABELS = {
    "customer": "Customer",
    "ack": "Our acknowledgement",
    "reply": "Reply",
    "note": "Internal note",
    "alert": "Alert",
    "machine": "Machine mail",
    "event": "Event",
}


def message_entry(m: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """One message as the timeline shows it: who, which way, when, and its delivery."""
    direction = str(m.get("direction") or "in")
    kind = str(m.get("kind") or ("customer" if direction == "in" else "ack"))
    at, shown = _entry_time(m.get("at") or m.get("received_at"), zone)
    delivery = m.get("delivery")
    return {
        "id": m.get("id"),
        "kind": kind,
        "label": KIND_LABELS.get(kind, kind),
        "direction": direction,
        "way": "incoming" if direction == "in" else "internal" if kind == "note" else "outgoing",
        "author": m.get("author") or m.get("sender") or "",
        "channel": m.get("channel") or "",
        "at": at,
        "shown": shown,
        "subject": m.get("subject") or "",
        "text": m.get("text") or "",
        "delivery": delivery or "",
        "delivery_reason": m.get("delivery_reason") or m.get("error") or "",
        "files": list(m.get("files") or []),
        "attachments": list(m.get("attachments") or []),
        "problems": list(m.get("problems") or []),
    }


def event_entry(e: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    at, shown = _entry_time(e.get("at"), zone)
    details = json.dumps(e.get("details") or {}, ensure_ascii=False, sort_keys=True)
    return {
        "id": None, "kind": "event", "label": str(e.get("kind") or "event").replace("_", " "),
        "direction": "", "way": "internal", "author": e.get("actor") or "", "channel": "",
        "at": at, "shown": shown, "subject": "", "text": details, "delivery": "",
        "delivery_reason": "", "files": [], "attachments": [], "problems": [],
    }  # fmt: skip


def timeline(
    messages: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], zone: tzinfo
) -> list[dict[str, Any]]:
    """Messages and agents' events in one list, oldest first (a stable sort keeps the
    stored order of entries at the same instant)."""
    entries = [message_entry(m, zone) for m in messages] + [event_entry(e, zone) for e in events]
    return sorted(entries, key=lambda e: datetime.fromisoformat(e["at"]) if e["at"] else _EPOCH)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def newest_id(messages: Sequence[Mapping[str, Any]]) -> str:
    """The id of the newest message shown: a reply carries it as `after`."""
    ids = [m["id"] for m in messages if m.get("id") is not None]
    return str(ids[-1]) if ids else ""


def priorities_of(policy_name: str | None, current: str) -> list[str]:
    """The priorities the ticket's policy allows (the current one at least)."""
    try:
        order = list(load_policy(policy_name).priorities.order) if policy_name else []
    except (ConfigError, InputRefusedError, OSError, ValueError):
        order = []
    return order if current in order else [current, *order]


class TicketPage:
    """`/tickets/{reference}` and its actions; the queue page's sessions and CSRF."""

    def __init__(self, page: QueuePage) -> None:
        from channels.desk.page import SECURITY_HEADERS  # page.py imports this module

        self.page = page
        self.headers = SECURITY_HEADERS

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/tickets/{reference}", self.show, methods=["GET"]),
            Route("/tickets/{reference}/{action}", self.post, methods=["POST"]),
        ]

    def _redirect(self, url: str) -> Response:
        return RedirectResponse(url, status_code=303, headers=self.headers)

    async def show(self, request: Request) -> Response:
        agent = await self.page.logged_in(request)
        if agent is None:
            return self._redirect("/login")
        notice = NOTICES.get(request.query_params.get("done", ""), "")
        return await self.render(request, agent, notice=notice)

    async def render(
        self,
        request: Request,
        agent: LoggedIn,
        *,
        notice: str = "",
        refusal: Refusal | None = None,
    ) -> Response:
        from channels.desk.page import ZONE_COOKIE, page_zone, shown_time, time_left

        reference = request.path_params["reference"]
        ticket_id = references.parse_reference(reference)
        try:
            if ticket_id is None:
                raise TicketNotFoundError(0)
            shown = await ticket_detail(self.page.sessions, ticket_id)
            staff = await list_agents(self.page.sessions)
        except TicketNotFoundError:
            return self.page._problem(404, f"There is no ticket {reference}.", agent)
        except TransientError as exc:
            log.warning("page: %s", exc)
            return self.page._problem(
                503, "The database does not answer; try again shortly.", agent
            )
        zone, zone_source = page_zone(None, request.cookies.get(ZONE_COOKIE))
        now = self.page.clock()
        decision: dict[str, Any] = dict(shown["decision"] or {})
        known = ("policy", "plan", "priority", "severity", "contact", "flags", "deadlines",
                 "evidence", "changes")  # fmt: skip
        other = {k: json.dumps(v, indent=1, ensure_ascii=False) for k, v in decision.items()
                 if k not in known}  # fmt: skip
        deadlines = []
        for name, label, done in (
            ("first_response_due", "First response", "first_response_at"),
            ("resolution_due", "Resolution", "resolved_at"),
        ):
            if shown[name] is None:
                continue
            left, overdue = time_left(datetime.fromisoformat(shown[name]), now)
            if shown[done] is not None:
                left, overdue = f"done {shown_time(shown[done], zone)}", False
            deadlines.append(
                {"label": label, "due": shown_time(shown[name], zone), "left": left,
                 "overdue": overdue}
            )  # fmt: skip
        draft = refusal.draft if refusal else Draft()
        return self.page._html(
            "ticket.html.j2",
            refusal.status if refusal else 200,
            agent=agent,
            logout_token=self.page._logout_token(agent),
            csrf_token=self.page._logout_token(agent),
            t=shown,
            deadlines=deadlines,
            decision=decision,
            other=other,
            when=lambda value: shown_time(value, zone),
            zone=str(zone),
            zone_source=zone_source,
            as_json=lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True),
            entries=timeline(shown["messages"], shown["events"], zone),
            after=draft.after or newest_id(shown["messages"]),
            draft=draft,
            notice=notice,
            refusal=refusal,
            statuses=STATUSES,
            agents=[a for a in staff if a.get("active", True)],
            priorities=priorities_of(decision.get("policy"), shown["priority"]),
            actions=ACTIONS,
            canned=[],
            chosen_canned="",
            max_upload_text="",
        )

    async def _form(self, request: Request) -> dict[str, str] | None:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > MAX_ACTION_BODY:
            return None
        async with request.form(max_files=0, max_fields=12) as raw:
            return {k: v for k, v in raw.items() if isinstance(v, str)}

    async def post(self, request: Request) -> Response:
        agent = await self.page.logged_in(request)
        if agent is None:
            return self._redirect("/login")
        reference = request.path_params["reference"]
        action = request.path_params["action"]
        ticket_id = references.parse_reference(reference)
        if ticket_id is None:
            return self.page._problem(404, f"There is no ticket {reference}.", agent)
        form = await self._form(request)
        if form is None:
            return self.page._problem(413, "The form is too large or has no length.", agent)
        if not self.page.csrf_ok(agent, form.get("csrf_token", "")):
            return await self.render(
                request, agent, refusal=Refusal(403, "The form expired; please send it again.",
                                                action, _draft(form)),
            )  # fmt: skip
        try:
            identity = await agent_named(self.page.sessions, agent.email)
            done = await perform(self.page, ticket_id, identity, action, form, self.page.clock())
        except TicketNotFoundError:
            return self.page._problem(404, f"There is no ticket {reference}.", agent)
        except StatusConflictError as exc:
            return await self.render(
                request, agent, refusal=Refusal(409, str(exc), action, _draft(form))
            )
        except InputRefusedError as exc:
            return await self.render(
                request, agent, refusal=Refusal(400, str(exc), action, _draft(form))
            )
        except TransientError as exc:
            log.warning("page action %s: %s", action, exc)
            return await self.render(
                request, agent, refusal=Refusal(
                    503, "The database does not answer; nothing was changed. Try again.",
                    action, _draft(form)),
            )  # fmt: skip
        return self._redirect(f"/tickets/{reference}?done={done}#notice")


def _draft(form: Mapping[str, str]) -> Draft:
    return Draft(
        text=form.get("text", "")[:MAX_TEXT],
        note=form.get("note", "")[:MAX_TEXT],
        reason=form.get("reason", "")[:MAX_REASON],
        after=form.get("after", "")[:40],
    )
