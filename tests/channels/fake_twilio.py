"""A local fake of Twilio's REST API: Messages.json and message media, on port 0.

It answers with the recorded payloads in tests/data/twilio/ and records every request it
receives (method, path, headers, form), so tests assert what crossed the wire. Media URLs
answer, as Twilio does, with a redirect to a media store on another origin (`localhost`
instead of `127.0.0.1`), which must not receive the account's credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

DATA = Path(__file__).resolve().parents[1] / "data" / "twilio"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text())
    return loaded


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    peer: tuple[str, int] | None = None  # the client's address: its TCP connection

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(value).decode().partition(":")
        return user, password


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # pytest owns the signals


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.received: list[Received] = []
        self.media: dict[str, tuple[bytes, str]] = {}  # media SID -> (bytes, content type)
        self.replies: list[tuple[int, str]] = []  # next answers to Messages.json: status, file
        self._sids = itertools.count(1)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.port = 0
        prefix = "/2010-04-01/Accounts/{account}"
        self.app = Starlette(
            routes=[
                Route(f"{prefix}/Messages.json", self.create_message, methods=["POST"]),
                Route(f"{prefix}/Messages/{{message}}/Media/{{media}}", self.media_url),
                Route("/media-store/{media}", self.media_store),
            ]
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sent(self) -> list[Received]:
        """The Messages.json requests, in order."""
        return [r for r in self.received if r.path.endswith("/Messages.json")]

    async def _record(self, request: Request) -> Received:
        form = {k: str(v) for k, v in (await request.form()).items()}
        peer = (request.client.host, request.client.port) if request.client else None
        entry = Received(request.method, request.url.path, dict(request.headers), form, peer)
        self.received.append(entry)
        return entry

    def _authorized(self, entry: Received, account: str) -> bool:
        return account == self.account_sid and entry.basic_auth == (
            self.account_sid,
            self.auth_token,
        )

    async def create_message(self, request: Request) -> Response:
        entry = await self._record(request)
        if not self._authorized(entry, request.path_params["account"]):
            return JSONResponse(
                {"code": 20003, "message": "Authenticate", "status": 401}, status_code=401
            )
        if self.replies:
            status, name = self.replies.pop(0)
            return JSONResponse(load(name), status_code=status)
        sid = f"SM{next(self._sids):032x}"
        body = load("messages_create.json") | {
            "sid": sid,
            "to": entry.form.get("To", ""),
            "from": entry.form.get("From", ""),
            "body": entry.form.get("Body", ""),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return JSONResponse(body, status_code=201)

    async def media_url(self, request: Request) -> Response:
        entry = await self._record(request)
        if not self._authorized(entry, request.path_params["account"]):
            return JSONResponse({"code": 20003, "status": 401}, status_code=401)
        media = request.path_params["media"]
        if media not in self.media:
            return JSONResponse({"code": 20404, "status": 404}, status_code=404)
        return RedirectResponse(f"http://localhost:{self.port}/media-store/{media}", 307)

    async def media_store(self, request: Request) -> Response:
        await self._record(request)
        data, content_type = self.media[request.path_params["media"]]
        return Response(data, media_type=content_type)

    async def start(self) -> None:
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()
