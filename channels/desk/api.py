"""The agents' JSON API under /api/ (CONTRACTS section 4), on FastAPI: list, show and update
tickets.

A FastAPI app mounted at /api in the web channel's Starlette app. Requests and answers are
pydantic models, and the OpenAPI document at /api/openapi.json is generated from them, so it
cannot drift from the code. Every route but the document needs `Authorization: Bearer TOKEN`
(`intake agents add` prints one). Everything a sender wrote is returned as JSON data, never as
HTML: escaping is the page's job. Errors keep one shape, `{"error": "...", "field": ...}`, and
are mapped from the product's exceptions in one place (`_handlers`); what the actions do is
`intake.desk.actions`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intake.desk.actions import (
    Action,
    QueueFilter,
    StatusConflictError,
    TicketNotFoundError,
    act,
    assign,
    change_ticket,
    merge,
    not_a_request,
    set_status,
    storage_errors,
    ticket_detail,
    ticket_rows,
)
from intake.desk.agents import AgentIdentity, agent_for_token
from intake.desk.canned import CannedNotFoundError, list_canned, render_canned
from intake.desk.conversation import (
    AttachmentNotFoundError,
    ConversationError,
    NewerMessagesError,
    ReplyOptions,
    add_note,
    attachment,
    reply,
    timeline,
)
from intake.errors import InputRefusedError, TransientError
from intake.messages import Attachment, ChannelKind, Intake
from intake.pipeline import references
from intake.ratelimit import FailureBackoff

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

MAX_BODY_BYTES = 16 * 1024  # an update is a few dozen bytes
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
_LIST_PARAMS = frozenset(
    {"open", "overdue", "channel", "organization", "priority", "limit", "offset"}
)
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_BEARER = HTTPBearer(
    auto_error=False,
    description="A token printed by `intake agents add` or `intake agents token`.",
)

# Times are the ISO 8601 strings the CLI prints (with their offset), kept as written.
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
MaybeTime = Annotated[str | None, Field(json_schema_extra={"format": "date-time"})]


class Problem(BaseModel):
    """Every refusal: what is wrong, and the field it is about when there is one."""

    error: str
    field: str | None = None


class Ticket(BaseModel):
    """One ticket as `intake tickets list --json` prints it. New fields may be added."""

    model_config = ConfigDict(extra="allow")

    id: int
    reference: str = Field(examples=["SUP-000123"])
    channel: str = Field(description=" | ".join(c.value for c in ChannelKind))
    sender: str
    subject: str
    organization: str | None
    contact_status: str = Field(description="nominated | designated | known | unidentified")
    plan: str | None
    priority: str
    severity: int | None = Field(ge=1, le=4)
    category: str
    status: str = Field(description="open | on_hold | resolved | closed (and later additions)")
    received_at: Time
    first_response_due: MaybeTime
    resolution_due: MaybeTime
    flags: list[str]
    message_count: int
    first_response_at: MaybeTime
    resolved_at: MaybeTime
    assignee: str | None = Field(default=None, description="The agent who has it (email).")


class TicketList(BaseModel):
    tickets: list[Ticket]


Delivery = Literal["queued", "sent", "failed"]


class FileView(BaseModel):
    """One attachment: download it from `/api/tickets/{reference}/attachments/{id}`."""

    id: int
    name: str
    size: int
    content_type: str


class MessageView(BaseModel):
    """One message of a ticket. Text a sender wrote is plain data: escape it to show it."""

    model_config = ConfigDict(extra="allow")

    channel: str
    direction: str
    sender: str
    subject: str
    text: str
    received_at: Time
    attachments: list[str]
    problems: list[str]
    extra: dict[str, Any]
    id: int | None = None
    kind: str | None = Field(default=None, description="customer | reply | note | machine")
    author: str | None = Field(default=None, description="An agent's email for replies, notes")
    delivery: Delivery | None = None
    delivery_reason: str | None = None
    files: list[FileView] = []


class Event(BaseModel):
    """What happened to a ticket after intake, by whom (an agent's email, or `system`)."""

    model_config = ConfigDict(extra="allow")

    at: Time
    actor: str
    kind: str = Field(examples=["first_response", "resolved", "on_hold", "changed"])
    details: dict[str, Any]


class TicketDetail(Ticket):
    """One ticket with its times, decision record, messages and events."""

    clock_starts: MaybeTime
    on_hold_at: MaybeTime
    closed_at: MaybeTime
    last_message_at: Time
    decision: dict[str, Any] = Field(
        description="How the ticket was decided: rules, evidence, deadlines' basis, and "
        "`changes` made by agents."
    )
    messages: list[MessageView]
    events: list[Event]


class TicketUpdate(BaseModel):
    """An action alone, or any of a new priority and/or severity (deadlines are recomputed
    from the original receipt), an assignee, a status; `reason` goes into the events."""

    model_config = ConfigDict(extra="forbid")

    action: Action | None = None
    priority: str | None = Field(default=None, description="A priority of the ticket's policy.")
    severity: int | None = Field(default=None, ge=1, le=4)
    assignee: str | None = Field(
        default=None, max_length=320, description="An active agent's email, or null: nobody."
    )
    status: Literal["open", "on_hold", "resolved", "closed"] | None = None
    reason: str = Field(default="", max_length=1000, description="Why; kept in the events.")

    @model_validator(mode="after")
    def _one_kind(self) -> TicketUpdate:
        changes = {"priority", "severity", "assignee", "status"} & self.model_fields_set
        if self.action is not None and changes:
            raise ValueError("an action goes alone; change priority separately")
        if self.action is None and not changes:
            raise ValueError("give a priority, a severity, an assignee, a status or an action")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        return self


class FileUpload(BaseModel):
    """A file to send with a reply, its bytes in base64."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=255)
    data: str = Field(description="The file's bytes, base64 (RFC 4648).")


class ReplyIn(BaseModel):
    """An agent's answer to the customer: `text`, or a canned reply by name."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=50_000)
    canned: str | None = Field(default=None, description="A name from GET /api/canned.")
    after: int | None = Field(
        default=None,
        description="The id of the newest message the agent saw: a newer customer message "
        "or another agent's reply makes this a 409 that returns them.",
    )
    key: str | None = Field(
        default=None, max_length=200, description="Idempotency key: the same key, one reply."
    )
    files: list[FileUpload] = Field(default=[], max_length=10)

    @model_validator(mode="after")
    def _text_or_canned(self) -> ReplyIn:
        if (self.text is None) == (self.canned is None):
            raise ValueError("give text or canned, not both")
        return self


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=50_000)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    into: str = Field(examples=["SUP-000010"], description="The ticket this one joins.")


class NotRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


class Entry(BaseModel):
    """One item of a ticket's timeline. Messages have an integer id, notices and events a
    string one."""

    model_config = ConfigDict(extra="allow")

    id: int | str
    at: Time
    direction: Literal["in", "out"]
    kind: Literal["customer", "ack", "reply", "note", "alert", "machine", "event"]
    author: str | None
    channel: str | None
    subject: str
    text: str
    delivery: Delivery | None
    delivery_reason: str | None
    files: list[FileView]


class Timeline(BaseModel):
    entries: list[Entry]


class NewerProblem(Problem):
    """A reply not sent: these messages came after the one the agent saw."""

    newer: list[Entry]


class CannedList(BaseModel):
    canned: list[str]


class CannedText(BaseModel):
    name: str
    text: str


def _now() -> datetime:
    return datetime.now(UTC)


def _problem(
    status: int, message: str, headers: dict[str, str] | None = None, field: str | None = None
) -> JSONResponse:
    body = Problem(error=message, field=field).model_dump()
    return JSONResponse(body, status_code=status, headers=_HEADERS | (headers or {}))


def _bearer(header: str) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header (the scheme is case-insensitive)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(had_token: bool) -> HTTPException:
    # RFC 6750 section 3: say which scheme, and whether the token given was the problem.
    challenge = 'Bearer realm="intake"' + (', error="invalid_token"' if had_token else "")
    message = "invalid bearer token" if had_token else "an Authorization: Bearer token is needed"
    return HTTPException(401, message, {"WWW-Authenticate": challenge})


def _ticket_id(reference: str) -> int:
    ticket_id = references.parse_reference(reference)
    if ticket_id is None:
        raise TicketNotFoundError(0)
    return ticket_id


def _validation_problem(exc: RequestValidationError) -> JSONResponse:
    """The first problem, naming its field ("limit: ...", "severity: ...")."""
    error = exc.errors()[0]
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    field = ".".join(location) or None
    kind = error.get("type", "")
    if kind == "json_invalid":
        return _problem(400, "the body is not valid JSON")
    if kind in ("model_attributes_type", "dict_type") and field is None:
        return _problem(400, "the body must be a JSON object")
    if kind == "extra_forbidden":
        return _problem(400, f"unknown field {field!r}", field=field)
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return _problem(400, f"{field}: {message}" if field else message, field=field)


def _handlers() -> dict[Any, Callable[..., Any]]:
    """The one mapping from the product's exceptions to statuses."""

    async def validation(_request: Request, exc: RequestValidationError) -> Response:
        return _validation_problem(exc)

    async def http(_request: Request, exc: HTTPException) -> Response:
        return _problem(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    async def not_found(request: Request, _exc: TicketNotFoundError) -> Response:
        return _problem(404, f"no ticket {request.path_params.get('reference', '')!r}")

    async def conflict(_request: Request, exc: StatusConflictError) -> Response:
        return _problem(409, str(exc))

    async def cannot_send(_request: Request, exc: ConversationError) -> Response:
        return _problem(409, str(exc))

    async def newer(_request: Request, exc: NewerMessagesError) -> Response:
        body = {"error": str(exc), "field": "after", "newer": exc.newer}
        return JSONResponse(body, status_code=409, headers=_HEADERS)

    async def missing(_request: Request, exc: InputRefusedError) -> Response:
        return _problem(404, str(exc))

    async def refused(_request: Request, exc: InputRefusedError) -> Response:
        return _problem(400, str(exc))

    async def unavailable(_request: Request, exc: TransientError) -> Response:
        log.warning("api: %s", exc)
        return _problem(503, "storage unavailable, try again", {"Retry-After": "5"})

    return {
        RequestValidationError: validation,
        HTTPException: http,
        TicketNotFoundError: not_found,
        StatusConflictError: conflict,
        ConversationError: cannot_send,
        NewerMessagesError: newer,
        AttachmentNotFoundError: missing,
        CannedNotFoundError: missing,
        InputRefusedError: refused,
        TransientError: unavailable,
    }


class _Gate:
    """In front of FastAPI, in the order the API has always answered: the bearer token first
    (401, 429), then the body before FastAPI reads it: JSON only (415), at most
    MAX_BODY_BYTES (413), counted as it streams (a chunked body declares no length). Our
    headers go on every answer. The agent found is left in the request's state."""

    def __init__(
        self,
        app: ASGIApp,
        authenticate: Callable[[Headers, str], Awaitable[AgentIdentity]],
        max_bytes: int = MAX_BODY_BYTES,
        reply_max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.max_bytes = max_bytes
        # A reply carries its files, base64, in the JSON: its own, larger, limit.
        self.reply_max_bytes = max(max_bytes, reply_max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        if not scope["path"].rstrip("/").endswith("/openapi.json"):
            headers = Headers(scope=scope)
            client = scope["client"][0] if scope.get("client") else "unknown"
            try:
                agent = await self.authenticate(headers, client)
            except HTTPException as exc:
                refusal = _problem(exc.status_code, str(exc.detail), dict(exc.headers or {}))
                await refusal(scope, receive, send)
                return
            except TransientError as exc:
                log.warning("api: %s", exc)
                await _problem(503, "storage unavailable, try again", {"Retry-After": "5"})(
                    scope, receive, send
                )
                return
            scope.setdefault("state", {})["agent"] = agent
            if scope["method"] in ("POST", "PUT", "PATCH"):
                limit = self.reply_max_bytes if _is_reply(scope["path"]) else self.max_bytes
                refused, body = await self._read(headers, receive, limit)
                if refused is not None:
                    await refused(scope, receive, send)
                    return
                receive = _replay(body)
        await self.app(scope, receive, send)

    async def _read(
        self, headers: Headers, receive: Receive, limit: int
    ) -> tuple[Response | None, bytes]:
        kind = headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "application/json":
            return _problem(415, "send the body as Content-Type: application/json"), b""
        too_large = _problem(413, f"the body is larger than {limit} bytes")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return too_large, b""
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > limit:
                return too_large, b""
            if not message.get("more_body", False):
                return None, bytes(body)


def _is_reply(path: str) -> bool:
    return path.rstrip("/").endswith("/replies")


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [
                *message.get("headers", []),
                *(
                    (name.lower().encode(), value.encode())
                    for name, value in _HEADERS.items()
                    if name.lower().encode() not in present
                ),
            ]
        await send(message)

    return sending


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class AgentApi:
    """The /api/ app over one database; `routes` is the web channel's factory."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock = _now,
        *,
        replies: ReplyOptions | None = None,
        templates_dir: FilePath | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        # Without them (no wiring given) replies are refused; notes and the rest work.
        self.replies = replies
        self.templates_dir = templates_dir  # its `canned` folder: the team's canned replies
        self.wake = wake  # the deliverer's bell: a reply goes out now, not at the next poll
        # Guessing tokens: after 10 wrong ones a client waits, doubling up to 15 minutes.
        self.failures = FailureBackoff(10, cap=900)
        self.app = self._build()

    def routes(self, _intake: Intake) -> Sequence[BaseRoute]:
        limit = self.replies.max_attachment_bytes if self.replies else 0
        # base64 is 4 bytes for 3, plus the reply's text and the JSON around it.
        reply_limit = limit * 4 // 3 + 256 * 1024
        return [Mount("/api", app=_Gate(self.app, self.authenticate, MAX_BODY_BYTES, reply_limit))]

    async def agent(
        self, request: Request, _scheme: Annotated[Any, Security(_BEARER)] = None
    ) -> AgentIdentity:
        """The dependency every ticket route has (and documents): the agent the gate found."""
        agent = getattr(request.state, "agent", None)
        if not isinstance(agent, AgentIdentity):  # the app was reached without its gate
            raise _unauthorized(had_token=False)
        return agent

    async def authenticate(self, headers: Headers, client: str) -> AgentIdentity:
        """The agent the bearer token belongs to; HTTPException 401/429 otherwise."""
        header = headers.get("authorization")
        token = _bearer(header or "")
        if token is None:
            raise _unauthorized(had_token=bool(header))
        wait = self.failures.wait(client)
        if wait:
            retry = {"Retry-After": str(math.ceil(wait))}
            raise HTTPException(429, "too many invalid tokens from your address; try later", retry)
        async with storage_errors():
            agent = await agent_for_token(self.sessions, token, now=self.clock())
        if agent is None:
            self.failures.failed(client)
            raise _unauthorized(had_token=True)
        return agent

    def _build(self) -> FastAPI:
        app = FastAPI(
            title="Support intake: agents' API",
            version="1",
            description="Tickets soonest deadline first, one ticket with its messages and "
            "events, and agents' updates. Text a sender wrote is returned as plain JSON "
            "strings: escape it before putting it in a page.",
            openapi_url="/openapi.json",
            docs_url=None,
            redoc_url=None,
            exception_handlers=_handlers(),
        )
        errors: dict[int | str, dict[str, Any]] = {
            status: {"model": Problem, "description": description}
            for status, description in (
                (400, "A parameter or the body is invalid; `error` says which, `field` where."),
                (401, "No bearer token, or an unknown one."),
                (429, "Too many invalid tokens from this address; see Retry-After."),
                (503, "The database does not answer; try again."),
            )
        }
        one: dict[int | str, dict[str, Any]] = {
            404: {"model": Problem, "description": "No such ticket."}
        }
        agent = Depends(self.agent)

        @app.get(
            "/tickets", response_model=TicketList, responses=errors,
            summary="Tickets, soonest deadline first (no deadline last)",
            operation_id="listTickets",
        )  # fmt: skip
        async def list_tickets(
            request: Request,
            request_agent: AgentIdentity = agent,
            *,
            open: Annotated[bool, Query(description="Only open or on-hold tickets.")] = False,
            overdue: Annotated[
                bool, Query(description="Only open tickets past a deadline at request time.")
            ] = False,
            channel: ChannelKind | None = None,
            organization: Annotated[
                str | None, Query(description="The organization's name, exactly.")
            ] = None,
            priority: str | None = None,
            limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
            offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        ) -> dict[str, Any]:
            unknown = sorted(set(request.query_params) - _LIST_PARAMS)
            if unknown:
                raise InputRefusedError(f"unknown parameter {unknown[0]!r}")
            rows = await ticket_rows(
                self.sessions,
                only_open=open,
                overdue_at=self.clock() if overdue else None,
                where=QueueFilter(channel, organization, priority),
                limit=limit,
                offset=offset,
            )
            return {"tickets": rows}

        @app.get(
            "/tickets/{reference}", response_model=TicketDetail, responses=errors | one,
            summary="One ticket with its messages, decision record and events",
            operation_id="showTicket",
        )  # fmt: skip
        async def show_ticket(
            reference: Annotated[str, Path(description="e.g. SUP-000123")],
            request_agent: AgentIdentity = agent,
        ) -> dict[str, Any]:
            return await ticket_detail(self.sessions, _ticket_id(reference))

        conflict: dict[int | str, dict[str, Any]] = {
            409: {"model": Problem, "description": "The action does not apply to its status."},
            413: {"model": Problem, "description": f"The body is over {MAX_BODY_BYTES} bytes."},
            415: {"model": Problem, "description": "The body is not application/json."},
        }

        @app.patch(
            "/tickets/{reference}", response_model=TicketDetail,
            responses=errors | one | conflict,
            summary="Record an action, or change priority and/or severity",
            description="An action already done changes nothing (recording the first "
            "response twice keeps the first time). A new priority recomputes the deadlines "
            "from the original receipt.",
            operation_id="updateTicket",
        )  # fmt: skip
        async def update_ticket(
            reference: str, update: TicketUpdate, who: AgentIdentity = agent
        ) -> dict[str, Any]:
            ticket_id = _ticket_id(reference)
            now = self.clock()
            fields = update.model_fields_set
            if update.action is not None:
                await act(self.sessions, ticket_id, update.action, who, now=now)
            if {"priority", "severity"} & fields:
                await change_ticket(
                    self.sessions, ticket_id, who, priority=update.priority,
                    severity=update.severity, now=now, reason=update.reason,
                )  # fmt: skip
            if "assignee" in fields:
                await assign(self.sessions, ticket_id, who, update.assignee, now=now)
            if update.status is not None:
                await set_status(
                    self.sessions, ticket_id, who, update.status, now=now, reason=update.reason
                )
            return await ticket_detail(self.sessions, ticket_id)

        self._desk_routes(app, errors | one | conflict, agent)
        return app

    def _desk_routes(
        self, app: FastAPI, errors: dict[int | str, dict[str, Any]], agent: Any
    ) -> None:
        """The agents' desk: replies, notes, the timeline, attachments, merge, canned."""
        created: dict[int | str, dict[str, Any]] = {
            409: {"model": NewerProblem, "description": "Not sent: newer messages (returned), "
                  "the channel cannot carry it now (WhatsApp's 24 hours), or a merged ticket."},
        }  # fmt: skip

        @app.post(
            "/tickets/{reference}/replies", response_model=Entry, status_code=201,
            responses=errors | created,
            summary="Answer the customer on the ticket's channel",
            description="Through the outbox: email threaded to the customer's last message "
            "with the reference in the subject and our tokened reply address; WhatsApp and "
            "SMS by Twilio; Telegram by the bot. The first reply records the first response. "
            "The same `key` (or the same `after` and text) again returns the stored reply.",
            operation_id="replyToTicket",
        )  # fmt: skip
        async def post_reply(
            reference: str, body: ReplyIn, who: AgentIdentity = agent
        ) -> dict[str, Any]:
            ticket_id = _ticket_id(reference)
            if self.replies is None:
                raise ConversationError("replies are not configured on this server")
            text = body.text or ""
            if body.canned is not None:
                shown = await ticket_detail(self.sessions, ticket_id)
                text = render_canned(body.canned, shown, who, self.templates_dir)
            stored = await reply(
                self.sessions, ticket_id, who, text, now=self.clock(), options=self.replies,
                files=[_upload(f) for f in body.files], after=body.after, key=body.key,
            )  # fmt: skip
            if self.wake is not None:
                self.wake()
            return stored

        @app.post(
            "/tickets/{reference}/notes", response_model=Entry, status_code=201,
            responses=errors, summary="An internal note: never sent to the customer",
            operation_id="addNote",
        )  # fmt: skip
        async def post_note(
            reference: str, body: NoteIn, who: AgentIdentity = agent
        ) -> dict[str, Any]:
            return await add_note(self.sessions, _ticket_id(reference), who, body.text,
                                  now=self.clock())  # fmt: skip

        @app.get(
            "/tickets/{reference}/timeline", response_model=Timeline, responses=errors,
            summary="Messages, acknowledgements, replies, notes, alerts and events, oldest first",
            operation_id="ticketTimeline",
        )  # fmt: skip
        async def get_timeline(
            reference: str,
            who: AgentIdentity = agent,
            zone: Annotated[
                str | None, Query(description="An IANA time zone for `at`, e.g. Europe/Prague.")
            ] = None,
        ) -> dict[str, Any]:
            return {"entries": await timeline(self.sessions, _ticket_id(reference), zone=zone)}

        @app.get(
            "/tickets/{reference}/attachments/{attachment_id}", response_class=Response,
            responses=errors | {200: {"content": {"application/octet-stream": {}},
                                      "description": "The file, as a download."}},
            summary="One attachment's bytes, as a download", operation_id="getAttachment",
        )  # fmt: skip
        async def get_attachment(
            reference: str, attachment_id: int, who: AgentIdentity = agent
        ) -> Response:
            name, kind, data = await attachment(self.sessions, _ticket_id(reference), attachment_id)
            return _download(name, kind, data)

        @app.post(
            "/tickets/{reference}/merge", response_model=TicketDetail, responses=errors,
            summary="Merge this ticket into another: its messages join the other",
            operation_id="mergeTicket",
        )  # fmt: skip
        async def post_merge(
            reference: str, body: MergeIn, who: AgentIdentity = agent
        ) -> dict[str, Any]:
            into = references.parse_reference(body.into)
            if into is None:
                raise InputRefusedError(f"into: not a ticket reference: {body.into!r}")
            await merge(self.sessions, _ticket_id(reference), into, who, now=self.clock())
            return await ticket_detail(self.sessions, into)

        @app.post(
            "/tickets/{reference}/not-a-request", response_model=TicketDetail,
            responses=errors, operation_id="notARequest",
            summary="Not a request (machine mail let through): no SLA, no more automatic mail",
            description="The way back is PATCH with the action `request`.",
        )  # fmt: skip
        async def post_not_request(
            reference: str, body: NotRequestIn, who: AgentIdentity = agent
        ) -> dict[str, Any]:
            ticket_id = _ticket_id(reference)
            await not_a_request(self.sessions, ticket_id, who, now=self.clock(),
                                reason=body.reason)  # fmt: skip
            return await ticket_detail(self.sessions, ticket_id)

        @app.get(
            "/canned", response_model=CannedList, responses=errors,
            summary="The team's canned replies", operation_id="listCanned",
        )  # fmt: skip
        async def get_canned(who: AgentIdentity = agent) -> dict[str, Any]:
            return {"canned": list_canned(self.templates_dir)}

        @app.get(
            "/tickets/{reference}/canned/{name}", response_model=CannedText, responses=errors,
            summary="A canned reply filled in for this ticket (to edit before sending)",
            operation_id="renderCanned",
        )  # fmt: skip
        async def get_canned_text(
            reference: str, name: str, who: AgentIdentity = agent
        ) -> dict[str, Any]:
            shown = await ticket_detail(self.sessions, _ticket_id(reference))
            return {"name": name, "text": render_canned(name, shown, who, self.templates_dir)}


def _upload(file: FileUpload) -> Attachment:
    try:
        data = base64.b64decode(file.data, validate=True)
    except (binascii.Error, ValueError):
        raise InputRefusedError(f"files: {file.name!r} is not valid base64") from None
    return Attachment(filename=file.name, content_type=file.content_type, data=data)


def _download(name: str, content_type: str, data: bytes) -> Response:
    """Never rendered from our origin: a download, not sniffed, sandboxed if opened."""
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                         for c in name) or "file"  # fmt: skip
    headers = {
        "Content-Disposition": f'attachment; filename="{ascii_name}"; '
        f"filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    kind = content_type if "/" in content_type else "application/octet-stream"
    return Response(data, media_type=kind, headers=headers)


def api_routes(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock = _now,
    *,
    replies: ReplyOptions | None = None,
    templates_dir: FilePath | None = None,
    wake: Callable[[], None] | None = None,
) -> Callable[[Intake], Sequence[BaseRoute]]:
    """The web channel's factory for the agents' API."""
    api = AgentApi(sessions, clock, replies=replies, templates_dir=templates_dir, wake=wake)
    return api.routes
