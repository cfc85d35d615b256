"""What the email API tests share: the real web channel with the posts' routes on a real
pipeline (SQLite and PostgreSQL), an HTTP client to it, and what the database then holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from typing import Any

import httpx
from pipelines import make_pipeline
from sqlalchemy import select
from starlette.routing import BaseRoute

from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import WebSettings
from intake.errors import TransientError
from intake.messages import InboundMessage, Intake
from storage.models import Message, Ticket

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday, inside every preset's windows


def mail(
    subject: str = "Export fails with error 500",
    *,
    message_id: str = "<req-1@customer.example>",
    sender: str = "Bob Builder <bob@customer.example>",
    text: str = "Hello,\nthe export fails with error 500 since this morning.\nBob\n",
    **headers: str,
) -> bytes:
    """A customer's request as raw MIME, as it left their mail client."""
    message = EmailMessage(policy=default)
    message["From"] = sender
    message["To"] = "support@support.example.com"
    message["Subject"] = subject
    message["Date"] = "Tue, 10 Mar 2026 10:59:00 +0100"
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message.as_bytes()


async def refuse(message: InboundMessage) -> Any:
    """An intake whose database is away."""
    raise TransientError("storage unavailable: OperationalError")


@dataclass
class Desk:
    storage: Storage
    client: httpx.AsyncClient

    async def tickets(self) -> list[Ticket]:
        async with self.storage.sessions() as session:
            return list(await session.scalars(select(Ticket).order_by(Ticket.id)))

    async def messages(self) -> list[Message]:
        async with self.storage.sessions() as session:
            return list(await session.scalars(select(Message).order_by(Message.id)))


@asynccontextmanager
async def serving(
    routes: Callable[[Intake], Sequence[BaseRoute]], intake: Intake
) -> AsyncIterator[httpx.AsyncClient]:
    """The real web channel on a port of its own, with `routes`, feeding `intake`."""
    web = WebChannel(WebSettings(host="127.0.0.1", port=0), [routes])
    await web.start(intake)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            yield client
    finally:
        await web.stop()


@asynccontextmanager
async def desk_for(
    storage: Storage, routes: Callable[[Intake], Sequence[BaseRoute]]
) -> AsyncIterator[Desk]:
    pipeline = make_pipeline(storage, clock=lambda: NOW)
    async with serving(routes, pipeline) as client:
        yield Desk(storage, client)


def multipart(fields: dict[str, bytes | str], boundary: str = "mRkV7fQ2xPz") -> tuple[bytes, str]:
    """A multipart/form-data body as the providers send it: one part per field, no file names,
    values as their bytes (a raw message keeps its 8-bit bytes)."""
    body = bytearray()
    for name, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"
