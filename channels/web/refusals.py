"""Refused web requests, one `log_refusal` line each (counted in /metrics by channel and
reason): an ASGI middleware that reads the status every response starts with.

Only what refuses input counts: 400 (malformed), 403 (bad signature or token), 413 (too
large), 415, 422, 429 (rate limited) and 503 (not taken now). A 404 or 405 is a client
looking for something we do not serve, not a refused message; 401 is the login page's.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from intake.errors import log_refusal
from intake.ratelimit import Asgi, Receive, Scope, Send

REASONS = {
    400: "bad_input",
    403: "forbidden",
    413: "too_large",
    415: "bad_input",
    422: "bad_input",
    429: "rate_limited",
    503: "unavailable",
}
# The channel a path belongs to; the first matching prefix wins.
CHANNELS = (
    ("/webhooks/twilio/voice", "voice"),
    ("/webhooks/twilio/", "twilio"),
    ("/webhooks/telegram", "telegram"),
    ("/webhooks/mail/", "email"),
    ("/callback", "web"),
    ("/api/", "desk"),
)


def channel_of(path: str) -> str:
    for prefix, channel in CHANNELS:
        if path.startswith(prefix):
            return channel
    return "desk"  # the agents' page and its forms


class RefusalLog:
    """ASGI middleware: log each refusing response's channel, reason and client address."""

    def __init__(self, app: Asgi) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def noted(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                reason = REASONS.get(int(message["status"]))
                path = str(scope.get("path", ""))
                if reason is not None and path not in ("/healthz", "/metrics"):
                    client = scope.get("client")
                    where = f"{scope.get('method', '')} {path}"
                    log_refusal(channel_of(path), reason, str(client[0]) if client else "?", where)
            await send(message)

        await self.app(scope, receive, noted)
