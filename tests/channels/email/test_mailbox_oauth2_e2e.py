"""`intake serve`'s service with a mailbox that takes only OAuth2: mail read by IMAP over
XOAUTH2 becomes a ticket, its acknowledgement leaves through a relay that wants XOAUTH2 too,
and a refresh token revoked meanwhile shows on /healthz. No password anywhere."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dovecot import Dovecot
from oauth2_server import AuthorizationServer
from test_imap import WAIT_SECONDS
from test_smtp_auth import Relay

from channels.web.app import WebChannel
from intake.cli.app import Storage, build_pipeline
from intake.cli.serve import Service
from intake.config import Settings
from intake.redact import MASK


@pytest.fixture
async def relay(
    certificates: tuple[ssl.SSLContext, Path], authorization: AuthorizationServer
) -> AsyncIterator[Relay]:
    server = Relay(authorization.introspection_url)
    await server.start(certificates[0], implicit=False)
    yield server
    await server.stop()


def oauth2_keys(authorization: AuthorizationServer, scope: str) -> dict[str, Any]:
    return {
        "auth": "oauth2",
        "oauth2_token_url": authorization.token_url,
        "oauth2_client_id": authorization.client_id,
        "oauth2_client_secret": authorization.client_secret,
        "oauth2_refresh_token": authorization.refresh_token,
        "oauth2_scope": scope,
    }


def settings(
    server: Dovecot, relay: Relay, ca: Path, authorization: AuthorizationServer
) -> Settings:
    imap = {"enabled": True, "host": "127.0.0.1", "port": server.port, "ssl": False,
            "user": server.user, "poll_seconds": 0.2, "idle_seconds": 2}  # fmt: skip
    smtp = {"host": "127.0.0.1", "port": relay.port, "starttls": True, "ca_file": str(ca),
            "from": "support@support.example.com", "user": server.user}  # fmt: skip
    values: dict[str, Any] = {
        "policy": {"name": "four-tier"},
        "smtp": {"enabled": False},
        "web": {"enabled": True, "host": "127.0.0.1", "port": 0},
        "imap": imap | oauth2_keys(authorization, "https://mail.google.com/"),
        "outbound": {"smtp": smtp | oauth2_keys(authorization, "https://mail.google.com/")},
    }
    return Settings(**values)


async def until(check: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
async def test_mail_in_and_ack_out_over_oauth2_then_a_revoked_grant_on_healthz(
    storage: Storage,
    oauth2_dovecot: Dovecot,
    relay: Relay,
    certificates: tuple[ssl.SSLContext, Path],
    authorization: AuthorizationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    oauth2_dovecot.deliver(
        b"From: Alice Customer <alice@customer.example>\r\n"
        b"To: support@support.example.com\r\nSubject: Export fails\r\n"
        b"Message-ID: <oauth2-e2e@customer.example>\r\n\r\nError 500 since this morning.\r\n"
    )
    config = settings(oauth2_dovecot, relay, certificates[1], authorization)
    service = Service(config, storage, await build_pipeline(config, storage))
    service.deliverer.idle = 0.05
    await service.start()
    try:
        [web] = [c for c in service.channels if isinstance(c, WebChannel)]
        await until(lambda: relay.received, "the acknowledgement at the relay")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
            assert (await client.get("/healthz")).text == "ok\n"
            authorization.revoke_refresh_token()
            authorization.expire_all()
            await asyncio.to_thread(oauth2_dovecot.kick)
            await until(lambda: service.problems(), "the refused login to be reported")
            health = await client.get("/healthz")
    finally:
        await service.stop()
    assert relay.received == [(oauth2_dovecot.user, ["alice@customer.example"])]
    assert ("XOAUTH2", "ok") in relay.logins
    assert health.status_code == 200
    assert health.text.splitlines()[0] == "degraded"
    assert "imap.oauth2_refresh_token" in health.text and "invalid_grant" in health.text
    # Every secret and token of the run, masked in the log (the service's redaction).
    for secret in (*authorization.granted(), authorization.refresh_token):
        assert secret not in caplog.text
    assert MASK not in health.text
