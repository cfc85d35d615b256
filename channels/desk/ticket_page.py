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
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from channels.desk.ticket_actions import (
    ACTIONS,
    MAX_ACTION_BODY,
    MAX_FILES,
    NOTICES,
    STATUSES,
    Desk,
    Draft,
    Refusal,
    draft_of,
    perform,
    priorities_of,
)
from intake.desk import conversation
from intake.desk.actions import (
    StatusConflictError,
    TicketNotFoundError,
    ticket_detail,
)
from intake.desk.agents import agent_named, list_agents
from intake.desk.canned import list_canned, render_canned
from intake.desk.conversation import NewerMessagesError
from intake.errors import InputRefusedError, TransientError
from intake.messages import Attachment
from intake.pipeline import references

if TYPE_CHECKING:
    from channels.desk.page import LoggedIn, QueuePage

log = logging.getLogger(__name__)


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
    event = kind == "event"  # an agent's action: its kind is the entry's subject
    label = str(m.get("subject") or kind).replace("_", " ").capitalize() if event else ""
    return {
        "id": m.get("id"),
        "kind": kind,
        "label": label or KIND_LABELS.get(kind, kind),
        "direction": direction,
        "way": "incoming"
        if direction == "in"
        else "internal"
        if kind in ("note", "event")
        else "outgoing",
        "author": m.get("author") or m.get("sender") or "",
        "channel": m.get("channel") or "",
        "at": at,
        "shown": shown,
        "subject": "" if event else m.get("subject") or "",
        "text": m.get("text") or "",
        "delivery": delivery or "",
        "delivery_reason": m.get("reason") or m.get("delivery_reason") or "",
        "files": list(m.get("files") or []),
        "attachments": list(m.get("attachments") or []),
        "problems": list(m.get("problems") or []),
    }


def newest_id(messages: Sequence[Mapping[str, Any]]) -> str:
    """The id of the newest message shown: a reply carries it as `after`."""
    # Messages have integer ids; notices and events string ones ("event-3").
    ids = [m["id"] for m in messages if isinstance(m.get("id"), int)]
    return str(ids[-1]) if ids else ""


class TicketPage:
    """`/tickets/{reference}`, its actions and its attachments; the queue page's sessions and
    CSRF tokens."""

    def __init__(self, page: QueuePage) -> None:
        from channels.desk.page import SECURITY_HEADERS  # page.py imports this module

        self.page = page
        self.headers = SECURITY_HEADERS

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/tickets/{reference}", self.show, methods=["GET"]),
            Route("/tickets/{reference}/{action}", self.post, methods=["POST"]),
            Route(
                "/tickets/{reference}/attachments/{attachment:int}",
                self.download,
                methods=["GET"],
            ),
        ]

    def _redirect(self, url: str) -> Response:
        return RedirectResponse(url, status_code=303, headers=self.headers)

    async def show(self, request: Request) -> Response:
        agent = await self.page.logged_in(request)
        if agent is None:
            return self._redirect("/login")
        notice = NOTICES.get(request.query_params.get("done", ""), "")
        return await self.render(request, agent, notice=notice)

    async def _canned(self, name: str, shown: dict[str, Any], agent: LoggedIn) -> str:
        if not name:
            return ""
        if name not in list_canned(self.page.canned_dir):
            raise InputRefusedError(f"no canned reply {name[:60]!r}")
        identity = await agent_named(self.page.sessions, agent.email)
        return render_canned(name, shown, identity, self.page.canned_dir)

    async def _entries(self, ticket_id: int, zone: tzinfo) -> list[dict[str, Any]]:
        found = await conversation.timeline(self.page.sessions, ticket_id, zone=str(zone))
        return [message_entry(m, zone) for m in found]

    async def render(
        self,
        request: Request,
        agent: LoggedIn,
        *,
        notice: str = "",
        refusal: Refusal | None = None,
    ) -> Response:
        from channels.desk.page import shown_time, time_left

        reference = request.path_params["reference"]
        ticket_id = references.parse_reference(reference)
        chosen_canned = request.query_params.get("canned", "")[:100]
        try:
            if ticket_id is None:
                raise TicketNotFoundError(0)
            shown = await ticket_detail(self.page.sessions, ticket_id)
            # The agent's own zone, else the one their browser reported (issue 18).
            zone, zone_source = await self.page._zone(request, agent)
            staff = await list_agents(self.page.sessions)
            entries = await self._entries(ticket_id, zone)
            canned_text = await self._canned(chosen_canned, shown, agent) if not refusal else ""
        except TicketNotFoundError:
            return self.page._problem(404, f"There is no ticket {reference}.", agent)
        except InputRefusedError as exc:
            return self.page._problem(400, str(exc), agent)
        except TransientError as exc:
            log.warning("page: %s", exc)
            return self.page._problem(
                503, "The database does not answer; try again shortly.", agent
            )
        now = self.page.clock()
        decision: dict[str, Any] = dict(shown["decision"] or {})
        known = ("policy", "plan", "priority", "severity", "contact", "flags", "deadlines",
                 "evidence", "changes", "suggested_priority")  # fmt: skip
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
        draft = refusal.draft if refusal else Draft(text=canned_text)
        options = self.page.reply_options
        limit = options.max_attachment_bytes if options else 0
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
            entries=entries,
            after=draft.after or newest_id(entries),
            draft=draft,
            notice=notice,
            refusal=refusal,
            newer=[message_entry(m, zone) for m in (refusal.newer if refusal else [])],
            statuses=STATUSES,
            agents=[a for a in staff if a.get("active", True)],
            priorities=priorities_of(decision.get("policy"), shown["priority"]),
            actions=ACTIONS if options else tuple(a for a in ACTIONS if a != "reply"),
            canned=list_canned(self.page.canned_dir) if options else [],
            chosen_canned=chosen_canned,
            reply_key=secrets.token_hex(16),
            max_upload_text=_size(limit),
        )

    async def _form(
        self, request: Request, action: str
    ) -> tuple[dict[str, str], list[Attachment]] | None:
        """The posted fields and, for a reply, its files; None when the body is too large."""
        declared = request.headers.get("content-length", "")
        options = self.page.reply_options
        files_allowed = action == "reply" and options is not None
        limit = MAX_ACTION_BODY + (options.max_attachment_bytes if files_allowed and options else 0)
        if not declared.isdigit() or int(declared) > limit:
            return None
        fields: dict[str, str] = {}
        files: list[Attachment] = []
        max_files = MAX_FILES if files_allowed else 0
        async with request.form(max_files=max_files, max_fields=12) as raw:
            for name, value in raw.multi_items():
                if isinstance(value, str):
                    fields.setdefault(name, value)
                elif value.filename:  # an empty file input sends a part with no name
                    files.append(Attachment(
                        filename=value.filename[:255],
                        content_type=value.content_type or "application/octet-stream",
                        data=await value.read(),
                    ))  # fmt: skip
        return fields, files

    async def post(self, request: Request) -> Response:
        agent = await self.page.logged_in(request)
        if agent is None:
            return self._redirect("/login")
        reference = request.path_params["reference"]
        action = request.path_params["action"]
        ticket_id = references.parse_reference(reference)
        if ticket_id is None:
            return self.page._problem(404, f"There is no ticket {reference}.", agent)
        try:
            posted = await self._form(request, action)
        except MultiPartException as exc:
            return self.page._problem(400, f"The form could not be read: {exc.message}", agent)
        if posted is None:
            return self.page._problem(
                413, "The form is too large (or has no length); nothing was changed.", agent
            )
        form, files = posted
        draft = draft_of(form)

        def refused(status: int, message: str, **more: Any) -> Refusal:
            return Refusal(status, message, action, draft, **more)

        if not self.page.csrf_ok(agent, form.get("csrf_token", "")):
            return await self.render(
                request, agent, refusal=refused(403, "The form expired; please send it again.")
            )
        try:
            identity = await agent_named(self.page.sessions, agent.email)
            desk = Desk(self.page.reply_options, files, self.page.wake)
            done = await perform(
                self.page.sessions, ticket_id, identity, action, form, self.page.clock(), desk
            )
        except TicketNotFoundError:
            return self.page._problem(404, f"There is no ticket {reference}.", agent)
        except NewerMessagesError as exc:
            # Two agents, one ticket: show what came meanwhile, keep the draft, send nothing.
            message = (
                "Someone wrote on this ticket meanwhile: read the newer messages below, then "
                "send your reply again. Your draft is kept; nothing was sent."
            )
            newer = Draft(draft.text, draft.note, draft.reason, after="")
            return await self.render(
                request, agent, refusal=Refusal(409, message, action, newer, exc.newer)
            )
        except (StatusConflictError, conversation.ConversationError) as exc:
            return await self.render(request, agent, refusal=refused(409, str(exc)))
        except InputRefusedError as exc:
            return await self.render(request, agent, refusal=refused(400, str(exc)))
        except TransientError as exc:
            log.warning("page action %s: %s", action, exc)
            message = "The database does not answer; nothing was changed. Try again."
            return await self.render(request, agent, refusal=refused(503, message))
        return self._redirect(f"/tickets/{reference}?done={done}#notice")

    async def download(self, request: Request) -> Response:
        """An attachment as a download: never rendered inline from our origin."""
        agent = await self.page.logged_in(request)
        if agent is None:
            return self._redirect("/login")
        reference = request.path_params["reference"]
        ticket_id = references.parse_reference(reference)
        try:
            if ticket_id is None:
                raise TicketNotFoundError(0)
            name, _kind, data = await conversation.attachment(
                self.page.sessions, ticket_id, request.path_params["attachment"]
            )
        except (TicketNotFoundError, conversation.AttachmentNotFoundError):
            return self.page._problem(404, f"There is no such attachment on {reference}.", agent)
        except TransientError as exc:
            log.warning("page attachment: %s", exc)
            return self.page._problem(503, "The database does not answer; try again.", agent)
        headers = self.headers | {"Content-Disposition": content_disposition(name)}
        # Whatever the sender called it, the browser gets bytes to save, not to render.
        return Response(data, media_type="application/octet-stream", headers=headers)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"


def content_disposition(name: str) -> str:
    """`attachment` with the file's name (RFC 6266: an ASCII fallback and the UTF-8 name)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in name)[:150] or "attachment"  # fmt: skip
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name[:200], safe='')}"
