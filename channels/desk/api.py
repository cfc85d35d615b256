"""The agents' JSON API under /api/ (CONTRACTS section 4): list, show and update tickets.

Every route but /api/openapi.json needs `Authorization: Bearer TOKEN` (`intake agents add`
prints one). Everything a sender wrote is returned as JSON data, never as HTML: escaping is
the page's job. This module maps the product's errors to HTTP statuses, in one place
(`_answer`); what the actions do is `intake.desk.actions`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from channels.web.app import RoutesFactory
from intake.desk.actions import (
    Action,
    QueueFilter,
    StatusConflictError,
    TicketNotFoundError,
    act,
    change_ticket,
    storage_errors,
    ticket_detail,
    ticket_rows,
)
from intake.desk.agents import AgentIdentity, agent_for_token
from intake.errors import InputRefusedError, TransientError
from intake.messages import ChannelKind, Intake
from intake.pipeline import references
from intake.ratelimit import FailureBackoff

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[Request, AgentIdentity], Awaitable[Response]]

MAX_BODY_BYTES = 16 * 1024  # an update is a few dozen bytes
DEFAULT_LIMIT, MAX_LIMIT = 100, 500
_LIST_PARAMS = frozenset(
    {"open", "overdue", "channel", "organization", "priority", "limit", "offset", "status"}
)
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class _HttpError(Exception):
    """A refusal with its own status (401, 413, 415), raised inside a handler."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=_HEADERS | (headers or {}))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return _json({"error": message}, status, headers)


def _now() -> datetime:
    return datetime.now(UTC)


def _bearer(header: str) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header (the scheme is case-insensitive)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(had_token: bool) -> _HttpError:
    # RFC 6750 section 3: say which scheme, and whether the token given was the problem.
    challenge = 'Bearer realm="intake"' + (', error="invalid_token"' if had_token else "")
    message = "invalid bearer token" if had_token else "an Authorization: Bearer token is needed"
    return _HttpError(401, message, {"WWW-Authenticate": challenge})


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise InputRefusedError(f"{name} must be true or false, not {value!r}")


def _number(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise InputRefusedError(f"{name} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise InputRefusedError(f"{name} must be from {low} to {high}, not {number}")
    return number


def _channel(value: str | None) -> str | None:
    if value is not None and value not in set(ChannelKind):
        known = ", ".join(c.value for c in ChannelKind)
        raise InputRefusedError(f"channel must be one of {known}, not {value!r}")
    return value


def _ticket_id(reference: str) -> int:
    ticket_id = references.parse_reference(reference)
    if ticket_id is None:
        raise TicketNotFoundError(0)
    return ticket_id


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object of a request, refused when it is not JSON or larger than the cap."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise _HttpError(415, "send the update as Content-Type: application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _HttpError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:  # a chunked body declares no length
            raise _HttpError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputRefusedError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InputRefusedError("the body must be a JSON object")
    return data


class AgentApi:
    """The /api/ routes over one database; `routes` is the web channel's factory."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock = _now) -> None:
        self.sessions = sessions
        self.clock = clock
        # Guessing tokens: after 10 wrong ones a client waits, doubling up to 15 minutes.
        self.failures = FailureBackoff(10, cap=900)

    def routes(self, _intake: Intake) -> Sequence[BaseRoute]:
        return [
            Route("/api/openapi.json", self.openapi, methods=["GET"]),
            Route("/api/tickets", self._answer(self.list_tickets), methods=["GET"]),
            Route("/api/tickets/{reference}", self._answer(self.show_ticket), methods=["GET"]),
            Route("/api/tickets/{reference}", self._answer(self.update_ticket), methods=["PATCH"]),
        ]

    async def openapi(self, _request: Request) -> Response:
        return _json(OPENAPI)

    def _answer(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Authenticate, run the handler, and map its errors to statuses (the one mapping)."""

        async def endpoint(request: Request) -> Response:
            try:
                agent = await self._agent(request)
                return await handler(request, agent)
            except _HttpError as exc:
                return _error(exc.status, str(exc), exc.headers)
            except TicketNotFoundError:
                return _error(404, f"no ticket {request.path_params.get('reference', '')!r}")
            except StatusConflictError as exc:
                return _error(409, str(exc))
            except InputRefusedError as exc:
                return _error(400, str(exc))
            except TransientError as exc:
                log.warning("api: %s", exc)
                return _error(503, "storage unavailable, try again", {"Retry-After": "5"})

        return endpoint

    async def _agent(self, request: Request) -> AgentIdentity:
        header = request.headers.get("authorization")
        token = _bearer(header or "")
        if token is None:
            raise _unauthorized(had_token=bool(header))
        client = request.client.host if request.client else "unknown"
        wait = self.failures.wait(client)
        if wait:
            retry = {"Retry-After": str(math.ceil(wait))}
            raise _HttpError(429, "too many invalid tokens from your address; try later", retry)
        async with storage_errors():
            agent = await agent_for_token(self.sessions, token, now=self.clock())
        if agent is None:
            self.failures.failed(client)
            raise _unauthorized(had_token=True)
        return agent

    async def list_tickets(self, request: Request, _agent: AgentIdentity) -> Response:
        query = request.query_params
        unknown = sorted(set(query) - _LIST_PARAMS)
        if unknown:
            raise InputRefusedError(f"unknown parameter {unknown[0]!r}")
        overdue = _flag(query.get("overdue", ""), "overdue")
        where = QueueFilter(
            channel=_channel(query.get("channel")),
            organization=query.get("organization"),
            priority=query.get("priority"),
            status=_status(query.get("status")),
        )
        rows = await ticket_rows(
            self.sessions,
            only_open=_flag(query.get("open", ""), "open"),
            overdue_at=self.clock() if overdue else None,
            where=where,
            limit=_number(query.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=_number(query.get("offset"), "offset", 0, 0, 10**9),
        )
        return _json({"tickets": rows})

    async def show_ticket(self, request: Request, _agent: AgentIdentity) -> Response:
        ticket_id = _ticket_id(request.path_params["reference"])
        return _json(await ticket_detail(self.sessions, ticket_id))

    async def update_ticket(self, request: Request, agent: AgentIdentity) -> Response:
        ticket_id = _ticket_id(request.path_params["reference"])
        data = await _body(request)
        now = self.clock()
        if "action" in data:
            if set(data) != {"action"}:
                raise InputRefusedError("an action goes alone; change priority separately")
            try:
                action = Action(data["action"])
            except ValueError:
                known = ", ".join(a.value for a in Action)
                raise InputRefusedError(
                    f"action must be one of {known}, not {data['action']!r}"
                ) from None
            await act(self.sessions, ticket_id, action, agent, now=now)
        else:
            extra = sorted(set(data) - {"priority", "severity"})
            if extra:
                raise InputRefusedError(f"unknown field {extra[0]!r}")
            priority = data.get("priority")
            if priority is not None and not isinstance(priority, str):
                raise InputRefusedError(f"priority must be a string, not {priority!r}")
            await change_ticket(
                self.sessions, ticket_id, agent, priority=priority,
                severity=data.get("severity"), now=now,
            )  # fmt: skip
        return _json(await ticket_detail(self.sessions, ticket_id))


_STATUSES = ("open", "on_hold", "resolved", "closed", "merged", "machine")


def _status(value: str | None) -> str | None:
    if value is not None and value not in _STATUSES:
        raise InputRefusedError(f"status must be one of {', '.join(_STATUSES)}, not {value!r}")
    return value


def api_routes(sessions: async_sessionmaker[AsyncSession], clock: Clock = _now) -> RoutesFactory:
    """The web channel's factory for the agents' API."""
    return AgentApi(sessions, clock).routes


# The OpenAPI 3.1 document served at /api/openapi.json, written by hand to match the routes
# above (a test checks that every route is here and that answers fit these schemas).
_TIME = {"type": ["string", "null"], "format": "date-time"}
_ERRORS = {
    status: {"$ref": f"#/components/responses/{name}"}
    for status, name in (("400", "BadRequest"), ("401", "Unauthorized"), ("503", "Unavailable"))
}
_REFERENCE = {
    "name": "reference",
    "in": "path",
    "required": True,
    "description": "The ticket's reference, e.g. SUP-000123.",
    "schema": {"type": "string", "pattern": "^[Ss][Uu][Pp]-[0-9]{6,12}$"},
}
_TICKET_PROPERTIES: dict[str, Any] = {
    "id": {"type": "integer"},
    "reference": {"type": "string", "examples": ["SUP-000123"]},
    "channel": {"type": "string", "enum": [c.value for c in ChannelKind]},
    "sender": {"type": "string"},
    "subject": {"type": "string"},
    "organization": {"type": ["string", "null"]},
    "contact_status": {
        "type": "string",
        "enum": ["nominated", "designated", "known", "unidentified"],
    },
    "plan": {"type": ["string", "null"]},
    "priority": {"type": "string"},
    "severity": {"type": ["integer", "null"], "minimum": 1, "maximum": 4},
    "category": {"type": "string"},
    "status": {"type": "string", "enum": ["open", "on_hold", "resolved", "closed", "machine"]},
    "received_at": {"type": "string", "format": "date-time"},
    "first_response_due": _TIME,
    "resolution_due": _TIME,
    "flags": {"type": "array", "items": {"type": "string"}},
    "message_count": {"type": "integer"},
    "first_response_at": _TIME,
    "resolved_at": _TIME,
}
_DETAIL_PROPERTIES: dict[str, Any] = {
    "clock_starts": _TIME,
    "first_response_at": _TIME,
    "resolved_at": _TIME,
    "on_hold_at": _TIME,
    "closed_at": _TIME,
    "last_message_at": {"type": "string", "format": "date-time"},
    "decision": {
        "type": "object",
        "description": "How the ticket was decided: rules, evidence, deadlines' basis, and "
        "`changes` made by agents.",
    },
    "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
}
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Support intake: agents' API",
        "version": "1",
        "description": "Tickets soonest deadline first, one ticket with its messages and "
        "events, and agents' updates. Text a sender wrote is returned as plain JSON strings: "
        "escape it before putting it in a page.",
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document"}},
            }
        },
        "/api/tickets": {
            "get": {
                "summary": "Tickets, soonest deadline first (no deadline last)",
                "operationId": "listTickets",
                "parameters": [
                    {
                        "name": "open",
                        "in": "query",
                        "schema": {"type": "boolean"},
                        "description": "Only open or on-hold tickets.",
                    },
                    {
                        "name": "overdue",
                        "in": "query",
                        "schema": {"type": "boolean"},
                        "description": "Only open tickets past a deadline at request time.",
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "Only tickets of this status, e.g. machine (machine "
                        "mail kept out of the open queue).",
                    },
                    {
                        "name": "channel",
                        "in": "query",
                        "schema": {"type": "string", "enum": [c.value for c in ChannelKind]},
                    },
                    {
                        "name": "organization",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "The organization's name, exactly.",
                    },
                    {"name": "priority", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": DEFAULT_LIMIT,
                        },
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The tickets",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/TicketList"}
                            }
                        },
                    },
                    **_ERRORS,
                },
            }
        },
        "/api/tickets/{reference}": {
            "parameters": [_REFERENCE],
            "get": {
                "summary": "One ticket with its messages, decision record and events",
                "operationId": "showTicket",
                "responses": {
                    "200": {"$ref": "#/components/responses/Ticket"},
                    "404": {"$ref": "#/components/responses/NotFound"},
                    **_ERRORS,
                },
            },
            "patch": {
                "summary": "Record an action, or change priority and/or severity",
                "description": "An action already done changes nothing (recording the first "
                "response twice keeps the first time). A new priority recomputes the "
                "deadlines from the original receipt.",
                "operationId": "updateTicket",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/TicketUpdate"}
                        }
                    },
                },
                "responses": {
                    "200": {"$ref": "#/components/responses/Ticket"},
                    "404": {"$ref": "#/components/responses/NotFound"},
                    "409": {"$ref": "#/components/responses/Conflict"},
                    "413": {"$ref": "#/components/responses/TooLarge"},
                    "415": {"$ref": "#/components/responses/NotJson"},
                    **_ERRORS,
                },
            },
        },
    },
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token printed by `intake agents add` or `intake agents token`.",
            }
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "Ticket": {
                "type": "object",
                "required": list(_TICKET_PROPERTIES),
                "properties": _TICKET_PROPERTIES,
            },
            "TicketList": {
                "type": "object",
                "required": ["tickets"],
                "properties": {
                    "tickets": {"type": "array", "items": {"$ref": "#/components/schemas/Ticket"}}
                },
            },
            "TicketDetail": {
                "allOf": [
                    {"$ref": "#/components/schemas/Ticket"},
                    {
                        "type": "object",
                        "required": list(_DETAIL_PROPERTIES),
                        "properties": _DETAIL_PROPERTIES,
                    },
                ]
            },
            "Message": {
                "type": "object",
                "required": [
                    "channel",
                    "direction",
                    "sender",
                    "subject",
                    "text",
                    "received_at",
                    "attachments",
                    "problems",
                    "extra",
                ],
                "properties": {
                    "channel": {"type": "string"},
                    "direction": {"type": "string"},
                    "sender": {"type": "string"},
                    "subject": {"type": "string"},
                    "text": {"type": "string"},
                    "received_at": {"type": "string", "format": "date-time"},
                    "attachments": {"type": "array", "items": {"type": "string"}},
                    "problems": {"type": "array", "items": {"type": "string"}},
                    "extra": {"type": "object"},
                },
            },
            "Event": {
                "type": "object",
                "required": ["at", "actor", "kind", "details"],
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string", "description": "The agent's email, or system"},
                    "kind": {
                        "type": "string",
                        "examples": [
                            "first_response",
                            "resolved",
                            "reopened",
                            "on_hold",
                            "closed",
                            "changed",
                        ],
                    },
                    "details": {"type": "object"},
                },
            },
            "TicketUpdate": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["action"],
                        "additionalProperties": False,
                        "properties": {
                            "action": {"type": "string", "enum": [a.value for a in Action]}
                        },
                    },
                    {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": False,
                        "properties": {
                            "priority": {
                                "type": "string",
                                "description": "A priority of the ticket's policy.",
                            },
                            "severity": {"type": "integer", "minimum": 1, "maximum": 4},
                        },
                    },
                ]
            },
        },
        "responses": {
            name: {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
            for name, description in (
                ("BadRequest", "A parameter or the body is invalid; `error` says which."),
                ("Unauthorized", "No bearer token, or an unknown one."),
                ("NotFound", "No such ticket."),
                ("Conflict", "The action does not apply to the ticket's status."),
                ("TooLarge", f"The body is larger than {MAX_BODY_BYTES} bytes."),
                ("NotJson", "The body is not application/json."),
                ("Unavailable", "The database does not answer; try again."),
            )
        }
        | {
            "Ticket": {
                "description": "The ticket",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/TicketDetail"}}
                },
            }
        },
    },
}
