"""The web channel: one ASGI app (Starlette on uvicorn) for webhooks, the call-back form and,
later, the agents' API and page (CONTRACTS section 4).

Each wire contributes its routes (`channels.twilio.messaging`, `channels.telegram.channel`,
the form); this module runs the server inside our event loop and maps pipeline outcomes to
HTTP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from channels.web.refusals import RefusalLog
from intake.config import WebSettings
from intake.errors import InputRefusedError, TransientError
from intake.messages import InboundMessage, Intake, Receipt
from intake.ratelimit import ClientLimit, RateLimitedError, RateLimiter

log = logging.getLogger(__name__)

RoutesFactory = Callable[[Intake], Sequence[BaseRoute]]
HealthCheck = Callable[[], Awaitable[object]]
Problems = Callable[[], Sequence[str]]  # what needs an administrator, e.g. a refused IMAP login


def to_status(outcome: Receipt | BaseException) -> int:
    """The one mapping from the pipeline's answer to an HTTP status for a webhook."""
    if isinstance(outcome, Receipt):
        return 200
    if isinstance(outcome, RateLimitedError):
        return 429
    if isinstance(outcome, InputRefusedError):
        return 400
    return 503  # TransientError, or anything unexpected: the caller retries


async def take(
    intake: Intake, build: Callable[[], InboundMessage]
) -> Receipt | InputRefusedError | TransientError | Exception:
    """Build the message and run the pipeline, returning the outcome instead of raising.

    `build` may raise InputRefusedError for a request that can never be a message.
    """
    try:
        return await intake(build())
    except (InputRefusedError, TransientError) as exc:
        return exc
    except Exception as exc:  # mapped to 503 so the caller retries; the server keeps serving
        log.exception("webhook intake failed")
        return exc


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # `intake serve` owns SIGTERM/SIGINT and stops every channel in order; uvicorn must
        # not take them over.
        yield


async def healthz(request: Request) -> Response:
    check: HealthCheck | None = request.app.state.health_check
    if check is not None:
        try:
            await check()
        except Exception as exc:  # any failure to reach the database is "unhealthy"
            log.warning("health check failed: %s", type(exc).__name__)
            return PlainTextResponse("database unavailable\n", status_code=503)
    problems: Problems | None = getattr(request.app.state, "problems", None)
    found = list(problems()) if problems is not None else []
    if found:
        # Still 200: the node takes mail and webhooks, so a load balancer keeps it; monitoring
        # reads the first line. One line per problem: servers' answers, never a secret.
        lines = (" ".join(problem.split()) for problem in found)
        return PlainTextResponse("degraded\n" + "".join(f"{line}\n" for line in lines))
    return PlainTextResponse("ok\n")


def bind(host: str, port: int) -> socket.socket:
    """The web listener's socket, bound to the first address of `host` (OSError if taken)."""
    # Bound here, not by uvicorn: a taken port is then an OSError, not uvicorn's sys.exit.
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class WebChannel:
    """Serves the app built from every routes factory; `stop` finishes requests in hand."""

    name = "web"

    def __init__(
        self,
        settings: WebSettings,
        factories: Sequence[RoutesFactory],
        *,
        health_check: HealthCheck | None = None,
        client_limiter: RateLimiter | None = None,
        problems: Problems | None = None,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        self.problems = problems
        # Listening sockets bound by someone else (the parent of `intake serve --workers N`);
        # none: `start` binds host and port itself.
        self.sockets = tuple(sockets)
        self.settings = settings
        self.client_limiter = client_limiter  # requests per client address (ClientLimit)
        self.factories = factories
        self.health_check = health_check
        self.app: Starlette | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    def build_app(self, intake: Intake) -> Starlette:
        routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
        for factory in self.factories:
            routes.extend(factory(intake))
        middleware = [Middleware(RefusalLog)]  # outermost: it sees the limiter's 429s too
        if self.client_limiter is not None:
            # Twilio and Telegram call from shared cloud addresses: limited per sender instead.
            exempt = ("/webhooks/", "/healthz", "/metrics")
            middleware.append(Middleware(ClientLimit, limiter=self.client_limiter, exempt=exempt))
        app = Starlette(routes=routes, middleware=middleware)
        app.state.health_check = self.health_check
        app.state.problems = self.problems
        return app

    async def start(self, intake: Intake) -> None:
        self.app = self.build_app(intake)
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            access_log=False,  # request lines carry sender-controlled paths and queries
            lifespan="off",
        )
        self._sockets = list(self.sockets) or [bind(self.settings.host, self.settings.port)]
        self._port = int(self._sockets[0].getsockname()[1])
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=self._sockets))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise OSError(f"web server did not start on port {self._port}")
            await asyncio.sleep(0.01)
        log.info("web listening on %s:%d", self.settings.host, self._port)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = None
        for sock in self._sockets:
            sock.close()
        self._sockets = []
