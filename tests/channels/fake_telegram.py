"""A local fake of the Telegram Bot API: a small Starlette app under uvicorn on port 0.

It answers getMe, getUpdates (queued updates, honoring `offset` as Telegram does: asking with
an offset confirms, and forgets, every update before it), sendMessage, getFile, the file
download path, setWebhook and deleteWebhook with the payloads in `tests/data/telegram/`, and
records every request it receives. Parameters are read from the query string and from a
form or JSON body, as the Bot API reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DATA = Path(__file__).resolve().parents[1] / "data" / "telegram"


def payload(name: str) -> dict[str, Any]:
    """A recorded payload from tests/data/telegram/, as a fresh dict."""
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Call:
    method: str  # "getUpdates", ..., or "file" for a download
    params: dict[str, Any]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test process keeps its own signal handlers


def _value(raw: str) -> Any:
    # PTB sends each parameter JSON-encoded in a form field ("123", '["message"]').
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class FakeTelegram:
    def __init__(self, token: str, *, long_poll_cap: float = 0.3) -> None:
        self.token = token
        self.long_poll_cap = long_poll_cap  # the longest a getUpdates waits when empty
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self.errors: dict[str, list[str]] = {}  # method -> payload names answered next
        self.delivered: dict[int, int] = {}  # update_id -> how often getUpdates served it
        self._arrived = asyncio.Event()
        self._sent = 0
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # -- what tests do ---------------------------------------------------------------------

    def push(self, *updates: dict[str, Any]) -> None:
        self.updates.extend(copy.deepcopy(u) for u in updates)
        self._arrived.set()

    def add_file(self, file_id: str, path: str, content: bytes) -> None:
        self.files[file_id] = (path, content)

    def fail_next(self, method: str, *payload_names: str) -> None:
        self.errors.setdefault(method, []).extend(payload_names)

    def made(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                methods = [c.method for c in self.calls][-20:]
                raise AssertionError(f"condition not met; last calls: {methods}")
            await asyncio.sleep(0.02)

    # -- the server ------------------------------------------------------------------------

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise OSError("fake Telegram did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()

    async def _params(self, request: Request) -> dict[str, Any]:
        params = {key: _value(value) for key, value in request.query_params.items()}
        if request.headers.get("content-type", "").startswith("application/json"):
            params.update(await request.json())
        elif request.method == "POST":
            form = await request.form()
            params.update({k: _value(v) for k, v in form.items() if isinstance(v, str)})
        return params

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params))
        if request.path_params["token"] != self.token:
            body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
            return JSONResponse(body, status_code=401)
        queued = self.errors.get(method)
        if queued:
            error = payload(queued.pop(0))
            return JSONResponse(error, status_code=error["error_code"])
        handler = {
            "getMe": self._ok,
            "setWebhook": self._ok,
            "deleteWebhook": self._ok,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "getFile": self._get_file,
        }.get(method)
        if handler is None:
            body = {"ok": False, "error_code": 404, "description": "Not Found"}
            return JSONResponse(body, status_code=404)
        return await handler(method, params)

    async def _ok(self, method: str, params: dict[str, Any]) -> Response:
        return JSONResponse(payload(method))

    async def _get_updates(self, method: str, params: dict[str, Any]) -> Response:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        if offset > 0:  # confirms, for good, everything before it
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        wait = min(float(params.get("timeout") or 0), self.long_poll_cap)
        if not self.updates and wait > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait)
        served = self.updates[:limit]
        for update in served:
            self.delivered[update["update_id"]] = self.delivered.get(update["update_id"], 0) + 1
        return JSONResponse({"ok": True, "result": served})

    async def _send_message(self, method: str, params: dict[str, Any]) -> Response:
        answer = payload("sendMessage")
        self._sent += 1
        answer["result"]["message_id"] = 1000 + self._sent
        answer["result"]["chat"]["id"] = int(params["chat_id"])
        answer["result"]["text"] = params["text"]
        return JSONResponse(answer)

    async def _get_file(self, method: str, params: dict[str, Any]) -> Response:
        found = self.files.get(str(params.get("file_id")))
        if found is None:
            error = {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}
            return JSONResponse(error, status_code=400)
        answer = payload("getFile")
        path, content = found
        answer["result"].update(file_id=params["file_id"], file_size=len(content), file_path=path)
        return JSONResponse(answer)

    async def _file(self, request: Request) -> Response:
        path = request.path_params["path"]
        self.calls.append(Call("file", {"path": path}))
        if request.path_params["token"] != self.token:
            return Response(status_code=401)
        for file_path, content in self.files.values():
            if file_path == path:
                return Response(content, media_type="application/octet-stream")
        return Response(status_code=404)
