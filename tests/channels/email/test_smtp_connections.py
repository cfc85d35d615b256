"""Concurrent SMTP sessions per client address (`[smtp] max_connections_per_client`), over many
real connections: one address cannot take every slot, the others keep being served, and each
refused connection is one log line, never a traceback (issue 16, item 6)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from serving import wait_until

from channels.email.smtp import SmtpChannel
from intake.config import SmtpSettings
from intake.messages import InboundMessage, Receipt

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def refuse_all(message: InboundMessage) -> Receipt:
    raise AssertionError("no message is sent in these tests")


@pytest.fixture
async def channel() -> AsyncIterator[SmtpChannel]:
    # The default cap (20) under a total cap far above it: only the per-client cap can bite.
    settings = SmtpSettings(host="127.0.0.1", port=0, domains=["support.example.com"])
    assert settings.max_connections_per_client == 20
    server = SmtpChannel(settings, clock=lambda: NOW, max_connections=200)
    await server.start(refuse_all)
    yield server
    await server.stop()


async def connect(port: int, source: str = "127.0.0.1") -> tuple[Connection, bytes]:
    """A raw client bound to `source`, and the server's first line to it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    return (reader, writer), await reader.readline()


async def close(connection: Connection) -> None:
    connection[1].close()
    await connection[1].wait_closed()


async def test_one_address_gets_twenty_sessions_and_others_still_get_in(
    channel: SmtpChannel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    held: list[Connection] = []
    try:
        for _ in range(20):
            connection, banner = await connect(channel.port)
            held.append(connection)
            assert banner.startswith(b"220 ")
        for _ in range(10):  # the 21st to the 30th: refused, and closed by the server
            connection, first = await connect(channel.port)
            assert first == b"421 4.7.0 Too many connections from your address, try again later\r\n"
            assert await connection[0].read() == b""  # the server hung up
            await close(connection)
        # Another client address is served as before.
        other, banner = await connect(channel.port, "127.0.0.2")
        assert banner.startswith(b"220 ")
        await close(other)
        # A session ended frees its slot.
        await close(held.pop())
        await wait_until(lambda: channel.per_client["127.0.0.1"] == 19, "the slot to free")
        again, banner = await connect(channel.port)
        held.append(again)
        assert banner.startswith(b"220 ")
    finally:
        for connection in held:
            await close(connection)
    await wait_until(lambda: not channel.per_client, "every session to end")
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 10
    assert refusals[0].getMessage() == (  # one refusals line each, counted in /metrics
        "refused email from '127.0.0.1': too_many_connections "
        "('421 4.7.0 Too many connections from your address, try again later')"
    )
    # Never a traceback: aiosmtpd's connection_lost once asserted a session we never opened.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []


async def test_zero_means_no_cap_per_client() -> None:
    settings = SmtpSettings(
        host="127.0.0.1", port=0, domains=["support.example.com"], max_connections_per_client=0
    )
    server = SmtpChannel(settings, clock=lambda: NOW, max_connections=200)
    await server.start(refuse_all)
    held: list[Connection] = []
    try:
        for _ in range(25):
            connection, banner = await connect(server.port)
            held.append(connection)
            assert banner.startswith(b"220 ")
    finally:
        for connection in held:
            await close(connection)
        await server.stop()
