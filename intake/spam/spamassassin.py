"""SpamAssassin's spamd over its SPAMC/SPAMD protocol, through aiospamc (the maintained
asyncio client: it writes the request and parses the answer). Our threshold decides, not
spamd's user preferences, so the verdict is the same whichever spamd answers.

aiospamc's TCP connection leaves its socket open when an answer times out or fails, which a
hanging spamd would turn into one leaked socket per message; `_ClosingTcp` closes it on every
path (the one override, of aiospamc 1.x's `_send`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiospamc.client import Client
from aiospamc.connections import TcpConnectionManager, Timeout
from aiospamc.exceptions import ClientException, ParseError, TimeoutException
from aiospamc.requests import Request
from aiospamc.responses import ResponseException
from loguru import logger as loguru_logger  # aiospamc's logger (a dependency of aiospamc)

from intake.messages import SpamVerdict

log = logging.getLogger(__name__)

ENGINE = "spamassassin"


class _ClosingTcp(TcpConnectionManager):  # type: ignore[misc]  # aiospamc has no type hints
    async def _send(self, data: bytes) -> bytes:
        reader, writer = await self._connect()
        try:
            writer.write(data)
            if writer.can_write_eof():
                writer.write_eof()
            await writer.drain()
            return await self._receive(reader)  # type: ignore[no-any-return]
        finally:
            writer.close()


@dataclass(frozen=True)
class SpamAssassin:
    """`SpamChecker` for one spamd at `host`:`port`.

    Mail over `max_bytes` is not sent (spamc's own default limit is 500 KB: rules are written
    for mail of that size, and scanning a 25 MB attachment would only be slow): its verdict
    is "skipped".
    """

    host: str
    port: int
    threshold: float = 5.0
    timeout_seconds: float = 5.0
    max_bytes: int = 512_000

    def __post_init__(self) -> None:
        # aiospamc logs every request at INFO through loguru, to stderr; ours is enough.
        loguru_logger.disable("aiospamc")

    def _verdict(self, verdict: str, score: float | None = None, detail: str = "") -> SpamVerdict:
        return SpamVerdict(verdict, ENGINE, score, self.threshold, detail)

    async def check(self, raw: bytes) -> SpamVerdict:
        if len(raw) > self.max_bytes:
            return self._verdict("skipped", detail=f"larger than {self.max_bytes} bytes")
        wait = self.timeout_seconds
        try:
            # aiospamc's own timeouts cover connecting and reading; wait_for bounds the whole.
            timeout = Timeout(total=wait, connection=wait, response=wait)
            client = Client(_ClosingTcp(self.host, self.port, timeout=timeout))
            response = await asyncio.wait_for(client.request(Request("CHECK", body=raw)), wait)
        except (TimeoutError, TimeoutException):
            return self._unavailable(f"no answer within {wait:g} s")
        except (ClientException, ResponseException, ParseError, OSError) as exc:
            # Refused, reset, an error reply (spamd's EX_* codes) or a garbled answer.
            return self._unavailable(type(exc).__name__)
        found = response.headers.spam
        if found is None:
            return self._unavailable("no Spam header in spamd's answer")
        score = float(found.score)
        return self._verdict("spam" if score >= self.threshold else "ham", score)

    def _unavailable(self, why: str) -> SpamVerdict:
        # Intake goes on; the decision record says the check did not happen, and why.
        log.warning("spamd at %s:%s unavailable: %s", self.host, self.port, why)
        return self._verdict("unavailable", detail=why)
