"""A mail sink on loopback that prints each message it receives: the demo's outbound relay."""

from __future__ import annotations

import asyncio
import email
from email import policy
from typing import TextIO

from aiosmtpd.smtp import SMTP, Envelope, Session


class PrintingSink:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        mail = email.message_from_bytes(envelope.original_content or b"", policy=policy.default)
        body = mail.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        rcpt = ", ".join(envelope.rcpt_tos)
        print(f"\n--- outgoing mail to {rcpt}: {mail['Subject']}\n{text}---", file=self.out)
        self.out.flush()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, loop=loop), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
