"""The agents' queue page at `/` (CONTRACTS section 4): login, the open tickets soonest
deadline first with the time left, filters, and one ticket with its messages and evidence.

Server-rendered HTML (autoescaped Jinja2: everything a sender wrote is escaped). The filters
are a GET form that works without JavaScript; `/static/page.js` refreshes the table from
`/queue/rows` (an HTML fragment) every few seconds and on a filter change, without a reload.
Every answer carries `Content-Security-Policy: default-src 'self'`: no inline script or style.

A login is a session kept on the server (`agent_sessions`, the cookie's SHA-256): the cookie is
a random token, HttpOnly, SameSite=Strict, Secure when the public URL is https. Logging out
deletes the session, and deactivating the agent deletes all of theirs, so a copied cookie stops
working at once. The login form has the call-back form's double-submit CSRF token and a
per-address rate limit.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, PackageLoader
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from channels.desk.ticket_page import TicketPage
from channels.web.callback import csrf_token, csrf_valid
from intake.desk.actions import (
    QueueFilter,
    storage_errors,
    ticket_rows,
)
from intake.desk.agents import (
    agent_for_password,
    agent_for_session,
    agent_zone,
    end_session,
    start_session,
)
from intake.desk.conversation import ReplyOptions
from intake.errors import InputRefusedError, TransientError
from intake.messages import ChannelKind, Intake
from intake.ratelimit import LoginBackoff, RateLimiter

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

SESSION_COOKIE = "intake_session"
ZONE_COOKIE = "intake_zone"  # the browser's IANA zone, set by page.js
LOGIN_COOKIE = "intake_login_csrf"
MAX_ROWS = 200  # the page shows this many; the API pages through more
MAX_LOGIN_BODY = 8 * 1024
SHOWS = ("open", "overdue", "all", "machine")
VIEWS = {"": "Everyone's", "mine": "Mine", "unassigned": "Unassigned"}  # by assignee
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_templates = Environment(
    loader=PackageLoader("channels.desk", "templates"),
    autoescape=True,  # every template: sender text is never trusted
    # Lenient: a decision record from an older version may lack a key; it shows as empty.
    trim_blocks=True,
    lstrip_blocks=True,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _static(name: str) -> bytes:
    return (resources.files("channels.desk") / "static" / name).read_bytes()


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """Who a valid session cookie belongs to, and the cookie's value (the logout form's nonce)."""

    agent_id: int
    email: str
    cookie: str


@dataclass(frozen=True, slots=True)
class Filters:
    """The queue's filters as the GET form sends them; "" means any."""

    show: str = "open"
    channel: str = ""
    organization: str = ""
    priority: str = ""
    view: str = ""

    @classmethod
    def parse(cls, query: Any) -> Filters:
        show = str(query.get("show") or "open")
        if show not in SHOWS:
            raise InputRefusedError(f"show must be one of {', '.join(SHOWS)}, not {show!r}")
        channel = str(query.get("channel") or "")
        if channel and channel not in set(ChannelKind):
            raise InputRefusedError(f"no channel {channel!r}")
        view = str(query.get("view") or "")
        if view not in VIEWS:
            raise InputRefusedError(f"view must be mine or unassigned, not {view[:20]!r}")
        return cls(
            show=show,
            channel=channel,
            organization=str(query.get("organization") or "")[:200],
            priority=str(query.get("priority") or "")[:50],
            view=view,
        )

    def where(self, me: str = "") -> QueueFilter:
        return QueueFilter(
            channel=self.channel or None,
            organization=self.organization or None,
            priority=self.priority or None,
            status="machine" if self.show == "machine" else None,
            # "Mine": the agent's email; "Unassigned": ""; any assignee: None.
            assignee={"mine": me, "unassigned": ""}.get(self.view),
        )


def duration(delta: timedelta) -> str:
    """A span as an agent reads it: "35 min", "2 h 10 min", "3 d 4 h"."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def time_left(due: datetime | None, now: datetime) -> tuple[str, bool]:
    """("2 h 10 min left" or "overdue by 35 min" or "no deadline", overdue?)."""
    if due is None:
        return "no deadline", False
    delta = due - now
    if delta.total_seconds() >= 0:
        return f"{duration(delta)} left", False
    # Overdue by a few seconds reads "overdue by 1 min", not "0 min".
    late = timedelta(minutes=math.ceil(-delta.total_seconds() / 60))
    return f"overdue by {duration(late)}", True


def _csrf_ok(secret: bytes, nonce: str, token: str, now: int, max_age: int) -> bool:
    # compare_digest refuses non-ASCII text: such a token is simply not ours.
    return token.isascii() and nonce.isascii() and csrf_valid(secret, nonce, token, now, max_age)


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def shown_time(value: str | None, zone: tzinfo = UTC) -> str:
    moment = _parse_time(value)
    return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def page_zone(chosen: str | None, browser: str | None) -> tuple[tzinfo, str]:
    """The zone the page shows times in, and why: the agent's own setting ("agent"), else
    the zone the browser reported in its cookie ("browser"), else UTC ("default")."""
    for name, source in ((chosen, "agent"), (browser, "browser")):
        if name and len(name) <= 64 and name.isascii():
            try:
                return ZoneInfo(name), source
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue  # a zone this machine does not know: try the next
    return UTC, "default"


def _queue_row(row: dict[str, Any], now: datetime, zone: tzinfo = UTC) -> dict[str, Any]:
    # The queue's order is the API's: the next deadline still open (first response until it
    # was given, then resolution until resolved).
    first = row["first_response_due"] if not row.get("first_response_at") else None
    due_text = first or (row["resolution_due"] if not row.get("resolved_at") else None)
    left, overdue = time_left(_parse_time(due_text), now)
    return row | {
        "deadline_kind": "first response" if first else "resolution" if due_text else "",
        "due_at": due_text or "",
        "due_shown": shown_time(due_text, zone),
        "left": left,
        "overdue": overdue,
    }


class QueuePage:
    """The page's routes; `routes` is the web channel's factory."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secret: bytes,
        *,
        clock: Clock = _now,
        secure_cookie: bool = True,
        session_lifetime: timedelta = timedelta(hours=12),
        logins_per_window: int = 10,
        login_window_seconds: float = 300,
        failures_before_delay: int = 5,
        delay_cap_seconds: float = 900,
        account_failures_before_delay: int = 20,
        account_delay_cap_seconds: float = 60,
        refresh_seconds: int = 15,
        wall_clock: Callable[[], float] = time.time,
        priorities: Sequence[str] = (),
        reply_options: ReplyOptions | None = None,
        canned_dir: Path | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the page needs a secret to sign its cookies")
        self.sessions = sessions
        self.secret = secret
        self.clock = clock
        self.secure_cookie = secure_cookie
        self.lifetime = int(session_lifetime.total_seconds())
        self.limiter = RateLimiter(logins_per_window, login_window_seconds)
        # Brute force: after a few failures the guessing address waits, doubling; guessing
        # one account from many addresses meets a bounded delay (intake.ratelimit).
        self.logins = LoginBackoff(
            failures_before_delay, delay_cap_seconds,
            account_free=account_failures_before_delay, account_cap=account_delay_cap_seconds,
        )  # fmt: skip
        self.refresh_seconds = refresh_seconds
        self.wall_clock = wall_clock
        self.script = _static("page.js")
        self.style = _static("page.css")
        # The filter offers every priority of the policy, not only those with tickets now.
        self.priorities = tuple(priorities)
        # Replies from the ticket page (None: the page offers none) and the team's canned ones.
        self.reply_options = reply_options
        self.canned_dir = canned_dir
        self.wake = wake  # the outbox's deliverer: a queued reply goes out now

    def routes(self, _intake: Intake) -> Sequence[BaseRoute]:
        return [
            Route("/", self.queue, methods=["GET"]),
            Route("/queue/rows", self.rows, methods=["GET"]),
            *TicketPage(self).routes(),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/static/page.js", self.asset, methods=["GET"]),
            Route("/static/page.css", self.asset, methods=["GET"]),
        ]

    # -- sessions -----------------------------------------------------------------------

    async def logged_in(self, request: Request) -> LoggedIn | None:
        """The agent whose live session the cookie names (None also when storage is away:
        the login page then says the database does not answer)."""
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if not cookie:
            return None
        try:
            async with storage_errors():
                agent = await agent_for_session(self.sessions, cookie, now=self.clock())
        except TransientError as exc:
            log.warning("page session: %s", exc)
            return None
        return None if agent is None else LoggedIn(agent.id, agent.email, cookie)

    # -- pages --------------------------------------------------------------------------

    def _html(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = _templates.get_template(template).render(**values)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def _problem(self, status: int, message: str, agent: LoggedIn | None) -> HTMLResponse:
        return self._html(
            "problem.html.j2", status, message=message, agent=agent,
            logout_token=self._logout_token(agent),
        )  # fmt: skip

    def _logout_token(self, agent: LoggedIn | None) -> str:
        if agent is None:
            return ""
        return csrf_token(self.secret, agent.cookie, int(self.wall_clock()))

    async def _zone(self, request: Request, agent: LoggedIn) -> tuple[tzinfo, str]:
        async with storage_errors():
            chosen = await agent_zone(self.sessions, agent.agent_id)
        return page_zone(chosen, request.cookies.get(ZONE_COOKIE))

    def csrf_ok(self, agent: LoggedIn, token: str) -> bool:
        """A logged-in form's token: signed for this session's cookie, not older than it."""
        return _csrf_ok(self.secret, agent.cookie, token, int(self.wall_clock()), self.lifetime)

    async def _queue_rows(
        self, filters: Filters, zone: tzinfo = UTC, me: str = ""
    ) -> tuple[list[dict[str, Any]], datetime]:
        now = self.clock()
        rows = await ticket_rows(
            self.sessions,
            only_open=filters.show == "open",
            overdue_at=now if filters.show == "overdue" else None,
            where=filters.where(me),
            limit=MAX_ROWS,
            offset=0,
        )
        return [_queue_row(row, now, zone) for row in rows], now

    async def queue(self, request: Request) -> Response:
        agent = await self.logged_in(request)
        if agent is None:
            return RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        try:
            filters = Filters.parse(request.query_params)
            zone, zone_source = await self._zone(request, agent)
            rows, now = await self._queue_rows(filters, zone, agent.email)
            # The filters' choices: what the open queue holds now.
            choices = await ticket_rows(
                self.sessions, only_open=True, overdue_at=None, where=QueueFilter(),
                limit=500, offset=0,
            )  # fmt: skip
        except InputRefusedError as exc:
            return self._problem(400, str(exc), agent)
        except TransientError as exc:
            log.warning("page: %s", exc)
            return self._problem(503, "The database does not answer; try again shortly.", agent)
        organizations = sorted({r["organization"] for r in choices if r["organization"]})
        extra = {r["priority"] for r in choices} | {filters.priority}
        priorities = [*self.priorities, *sorted(extra - {*self.priorities, ""})]
        return self._html(
            "queue.html.j2",
            agent=agent,
            logout_token=self._logout_token(agent),
            rows=rows,
            filters=filters,
            shows=SHOWS,
            views=VIEWS,
            channels=[c.value for c in ChannelKind],
            organizations=sorted({*organizations, filters.organization} - {""}),
            priorities=priorities,
            now=shown_time(now.isoformat(), zone),
            zone=str(zone),
            zone_source=zone_source,
            max_rows=MAX_ROWS,
            refresh_seconds=self.refresh_seconds,
        )

    async def rows(self, request: Request) -> Response:
        """The queue table's body alone, for the page's script."""
        agent = await self.logged_in(request)
        if agent is None:
            return Response("log in again\n", 401, headers=SECURITY_HEADERS)
        try:
            filters = Filters.parse(request.query_params)
            zone, _ = await self._zone(request, agent)
            rows, now = await self._queue_rows(filters, zone, agent.email)
        except InputRefusedError as exc:
            return Response(f"{exc}\n", 400, media_type="text/plain", headers=SECURITY_HEADERS)
        except TransientError as exc:
            log.warning("page: %s", exc)
            return Response(
                "storage unavailable\n", 503, media_type="text/plain",
                headers=SECURITY_HEADERS | {"Retry-After": "5"},
            )  # fmt: skip
        return self._html("rows.html.j2", rows=rows, now=shown_time(now.isoformat(), zone))

    async def asset(self, request: Request) -> Response:
        if request.url.path.endswith(".js"):
            body, kind = self.script, "text/javascript"
        else:
            body, kind = self.style, "text/css"
        headers = SECURITY_HEADERS | {"Cache-Control": "no-cache"}
        return Response(body, media_type=kind, headers=headers)

    # -- login and logout ---------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if await self.logged_in(request) is not None:
            return RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        return self.login_form(request)

    def login_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_hex(16)
        response = self._html(
            "login.html.j2",
            status,
            error=error,
            csrf_token=csrf_token(self.secret, nonce, int(self.wall_clock())),
            agent=None,
            logout_token="",
        )
        response.set_cookie(
            LOGIN_COOKIE, nonce, max_age=3600, httponly=True, samesite="strict",
            secure=self.secure_cookie,
        )  # fmt: skip
        return response

    async def login(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            response = self.login_form(
                request, "Too many login attempts from your address; please wait and try again.",
                429,
            )  # fmt: skip
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():  # browsers always say; a chunked body could be endless
            return self.login_form(request, "The login request has no length.", 411)
        if int(declared) > MAX_LOGIN_BODY:
            return self.login_form(request, "The login request is too large.", 413)
        async with request.form(max_files=0, max_fields=4) as raw:
            form = {k: v for k, v in raw.items() if isinstance(v, str)}
        if not _csrf_ok(
            self.secret, request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf_token", ""),
            int(self.wall_clock()), 3600,
        ):  # fmt: skip
            return self.login_form(request, "The form expired; please log in again.", 403)
        account = form.get("email", "").strip().lower()[:320]
        locked = self.logins.wait(account, client)
        if locked:  # checked before the password: a locked account answers nothing about it
            response = self.login_form(
                request, "Too many failed logins; please wait and try again.", 429
            )
            response.headers["Retry-After"] = str(math.ceil(locked))
            return response
        try:
            agent = await agent_for_password(
                self.sessions, form.get("email", ""), form.get("password", "")
            )
        except TransientError as exc:
            log.warning("page login: %s", exc)
            return self.login_form(request, "The database does not answer; try again.", 503)
        if agent is None:
            self.logins.failed(account, client)
            log.info("page login failed for %r from %s", account, client)
            return self.login_form(request, "Wrong email or password.", 400)
        self.logins.succeeded(account, client)
        try:
            async with storage_errors():
                cookie = await start_session(
                    self.sessions,
                    agent,
                    now=self.clock(),
                    lifetime=timedelta(seconds=self.lifetime),
                )
        except TransientError as exc:
            log.warning("page login: %s", exc)
            return self.login_form(request, "The database does not answer; try again.", 503)
        response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            SESSION_COOKIE, cookie, max_age=self.lifetime, httponly=True, samesite="strict",
            secure=self.secure_cookie,
        )  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE, httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        agent = await self.logged_in(request)
        if agent is not None:
            async with request.form(max_files=0, max_fields=2) as raw:
                token = raw.get("csrf_token")
            if not isinstance(token, str) or not _csrf_ok(
                self.secret, agent.cookie, token, int(self.wall_clock()), self.lifetime
            ):
                return self._problem(403, "The logout form expired; please try again.", agent)
            try:
                async with storage_errors():
                    await end_session(self.sessions, agent.cookie, now=self.clock())
            except TransientError as exc:  # the session lives on until it expires
                log.warning("page logout: %s", exc)
                return self._problem(503, "The database does not answer; try again.", agent)
        response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(
            SESSION_COOKIE, httponly=True, samesite="strict", secure=self.secure_cookie
        )
        return response


def page_routes(
    sessions: async_sessionmaker[AsyncSession],
    secret: bytes,
    *,
    clock: Clock = _now,
    secure_cookie: bool = True,
    failures_before_delay: int = 5,
    delay_cap_seconds: float = 900,
    priorities: Sequence[str] = (),
    account_failures_before_delay: int = 20,
    account_delay_cap_seconds: float = 60,
    reply_options: ReplyOptions | None = None,
    canned_dir: Path | None = None,
    wake: Callable[[], None] | None = None,
) -> Callable[[Intake], Sequence[BaseRoute]]:
    """The web channel's factory for the queue page."""
    return QueuePage(
        sessions, secret, clock=clock, secure_cookie=secure_cookie,
        failures_before_delay=failures_before_delay, delay_cap_seconds=delay_cap_seconds,
        priorities=priorities,
        account_failures_before_delay=account_failures_before_delay,
        account_delay_cap_seconds=account_delay_cap_seconds,
        reply_options=reply_options, canned_dir=canned_dir, wake=wake,
    ).routes  # fmt: skip
