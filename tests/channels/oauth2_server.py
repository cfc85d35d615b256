"""A local OAuth2 authorization server for the mailbox login tests, on 127.0.0.1 port 0.

`/token` grants access tokens by refresh token (delegated) and by client credentials
(application access), with the client's secret in the form or in basic auth (RFC 6749 2.3.1);
`/introspect` answers RFC 7662 introspection, by POST and, for Dovecot's `tokeninfo_url`, by
GET. Dovecot's `oauth2` passdb and the tests' SMTP server check tokens here, as Microsoft's and
Google's servers are checked by theirs. It runs uvicorn in a thread of its own, so a test may
block (imapclient, Dovecot's helpers) while Dovecot asks it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLIENT_ID = "intake-test-client"
CLIENT_SECRET = "client-Secret-0123456789"


@dataclass
class Grant:
    """One token request the server answered (or refused)."""

    grant_type: str
    client_id: str
    scope: str
    issued: str | None  # the access token, None when refused


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # pytest owns the signals


class AuthorizationServer:
    def __init__(self, user: str, *, lifetime: int = 3600) -> None:
        self.user = user  # whose mailbox every token opens (the app's, too)
        self.lifetime = lifetime  # `expires_in` of the tokens it grants
        # Microsoft's way: each refresh grant hands out a new refresh token; the old one ends.
        self.rotate = False
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.refresh_token = "refresh-" + secrets.token_urlsafe(16)
        self.grants: list[Grant] = []
        self.introspected: list[str] = []
        self._active: dict[str, str] = {}  # access token -> user
        self._revoked: set[str] = set()  # refresh tokens no longer honoured
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self.port = 0
        self._server: _Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/introspect", self._introspect, methods=["GET", "POST"]),
            ]
        )

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    # -- what tests do ---------------------------------------------------------------------

    def issue(self) -> str:
        """A fresh access token for `user`, without the HTTP exchange (the test's own logins)."""
        token = f"at-{next(self._numbers)}-{secrets.token_urlsafe(12)}"
        with self._lock:
            self._active[token] = self.user
        return token

    def expire_all(self) -> None:
        """Every access token granted so far is now inactive (expired at the server)."""
        with self._lock:
            self._active.clear()

    def revoke_refresh_token(self) -> None:
        with self._lock:
            self._revoked.add(self.refresh_token)

    def granted(self) -> list[str]:
        return [g.issued for g in self.grants if g.issued]

    # -- the endpoints ---------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, secret = base64.b64decode(value).decode().partition(":")
        grant_type = str(form.get("grant_type", ""))
        grant = Grant(grant_type, client_id, str(form.get("scope", "")), None)
        self.grants.append(grant)
        if (client_id, secret) != (self.client_id, self.client_secret):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant_type == "refresh_token":
            refresh = str(form.get("refresh_token", ""))
            if refresh != self.refresh_token or refresh in self._revoked:
                error = {"error": "invalid_grant", "error_description": "token was revoked"}
                return JSONResponse(error, status_code=400)
        elif grant_type != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        grant.issued = self.issue()
        answer: dict[str, object] = {"access_token": grant.issued, "token_type": "Bearer"}
        if self.rotate and grant_type == "refresh_token":
            self.refresh_token = "refresh-" + secrets.token_urlsafe(16)
            answer["refresh_token"] = self.refresh_token
        return JSONResponse(answer | {"expires_in": self.lifetime})

    async def _introspect(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if request.method == "POST":
            token = str((await request.form()).get("token", token))
        self.introspected.append(token)
        with self._lock:
            user = self._active.get(token)
        if user is None:
            return JSONResponse({"active": False})
        return JSONResponse({"active": True, "username": user, "scope": "IMAP SMTP"})

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        self._socket = sock
        self._server = server = _Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the authorization server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        if self._socket is not None:
            self._socket.close()
