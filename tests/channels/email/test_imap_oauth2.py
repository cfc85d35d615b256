"""IMAP over OAuth2 against a real Dovecot that takes bearer tokens only (its `oauth2` passdb),
checking each token by RFC 7662 introspection at the tests' own authorization server.

No password is configured anywhere: the channel gets its tokens from the server's `/token`.
Storage is SQLite only here; what these tests vary is the login, not the database.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date
from typing import Any

import httpx
import pytest
from dovecot import Dovecot
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from oauth2_server import AuthorizationServer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import async_sessionmaker
from test_imap import (
    NOW,
    all_seen,
    channel,
    deliver,
    eventually,
    imap_settings,
    pipeline,
    pipeline_unused,
    running,
    stored_ids,
    tickets_reach,
)

from channels.email.imap import ImapChannel, backfill
from channels.email.oauth2 import TokenRefusedError
from channels.web.app import WebChannel
from intake.cli.app import Storage
from intake.config import ImapSettings, WebSettings
from intake.errors import ConfigError

sqlite_only = pytest.mark.parametrize("storage", ["sqlite"], indirect=True)


def oauth2_settings(
    server: Dovecot, authorization: AuthorizationServer, **overrides: Any
) -> ImapSettings:
    values: dict[str, Any] = {
        "auth": "oauth2",
        "password": SecretStr(""),
        "oauth2_token_url": authorization.token_url,
        "oauth2_client_id": authorization.client_id,
        "oauth2_client_secret": SecretStr(authorization.client_secret),
        "oauth2_refresh_token": SecretStr(authorization.refresh_token),
        "oauth2_scope": "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access",
    }
    return imap_settings(server, **(values | overrides))


def test_the_server_takes_no_password(oauth2_dovecot: Dovecot) -> None:
    """The premise of every test here: Dovecot refuses a password login outright."""
    with IMAPClient("127.0.0.1", port=oauth2_dovecot.port, ssl=False, timeout=10) as client:
        with pytest.raises(LoginError):
            client.login(oauth2_dovecot.user, oauth2_dovecot.password)


@sqlite_only
@pytest.mark.parametrize(
    ("mechanism", "grant"),
    [("xoauth2", "refresh_token"), ("oauthbearer", "client_credentials")],
)
async def test_waiting_and_new_mail_become_tickets(
    storage: Storage,
    oauth2_dovecot: Dovecot,
    authorization: AuthorizationServer,
    mechanism: str,
    grant: str,
) -> None:
    waiting = deliver(oauth2_dovecot, 2)
    refresh = authorization.refresh_token if grant == "refresh_token" else ""
    settings = oauth2_settings(
        oauth2_dovecot,
        authorization,
        oauth2_mechanism=mechanism,
        oauth2_refresh_token=SecretStr(refresh),
    )
    async with running(channel(storage, settings), pipeline(storage)):
        await tickets_reach(storage, 2)
        await all_seen(oauth2_dovecot, waiting)
        [new] = deliver(oauth2_dovecot)  # while the channel waits in IDLE
        await tickets_reach(storage, 3)
        await all_seen(oauth2_dovecot, [new])
    assert sorted(await stored_ids(storage)) == sorted([*waiting, new])
    # One token, from the configured grant, and it was the one Dovecot checked.
    [only] = [g for g in authorization.grants if g.issued]
    assert only.grant_type == grant and only.client_id == authorization.client_id
    assert only.scope.endswith("offline_access")
    assert only.issued in authorization.introspected


@sqlite_only
async def test_expired_token_is_refreshed_and_the_channel_logs_in_again(
    storage: Storage,
    oauth2_dovecot: Dovecot,
    authorization: AuthorizationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings = oauth2_settings(oauth2_dovecot, authorization)
    async with running(channel(storage, settings), pipeline(storage)):
        [first] = deliver(oauth2_dovecot)
        await all_seen(oauth2_dovecot, [first])
        # The cached token still looks valid for an hour, but the server says it is inactive
        # now; the session outlives it until the server ends it.
        authorization.expire_all()
        await asyncio.to_thread(oauth2_dovecot.kick)
        [second] = deliver(oauth2_dovecot)
        await tickets_reach(storage, 2)
        await all_seen(oauth2_dovecot, [second])
    first_token, second_token = authorization.granted()
    assert first_token != second_token
    assert "refused the access token; fetching a new one" in caplog.text
    for token in (first_token, second_token, authorization.refresh_token):
        assert token not in caplog.text


@sqlite_only
async def test_kicked_session_reconnects_with_a_fresh_token(
    storage: Storage,
    oauth2_dovecot: Dovecot,
    authorization: AuthorizationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Tokens live 60 s: under the cache's 5-minute margin, so each login fetches its own.
    authorization.lifetime = 60
    caplog.set_level(logging.INFO, logger="channels.email.imap")
    settings = oauth2_settings(oauth2_dovecot, authorization)
    async with running(channel(storage, settings), pipeline(storage)):
        [first] = deliver(oauth2_dovecot)
        await all_seen(oauth2_dovecot, [first])
        await asyncio.to_thread(oauth2_dovecot.kick)
        await eventually(
            lambda: asyncio.sleep(0, len(authorization.granted()) >= 2), "a second token"
        )
        [second] = deliver(oauth2_dovecot)
        await tickets_reach(storage, 2)
        await all_seen(oauth2_dovecot, [second])
    assert "reconnected" in caplog.text
    tokens = authorization.granted()
    assert len(tokens) >= 2 and len(set(tokens)) == len(tokens)
    assert tokens[1] in authorization.introspected


@sqlite_only
async def test_revoked_refresh_token_is_a_clear_error_in_the_log_and_on_healthz(
    storage: Storage,
    oauth2_dovecot: Dovecot,
    authorization: AuthorizationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = oauth2_settings(oauth2_dovecot, authorization)
    imap = channel(storage, settings)
    web = WebChannel(WebSettings(port=0), [], problems=lambda: [p for p in [imap.problem] if p])
    await web.start(pipeline_unused)
    try:
        async with running(imap, pipeline(storage)):
            [first] = deliver(oauth2_dovecot)
            await all_seen(oauth2_dovecot, [first])
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as client:
                assert (await client.get("/healthz")).text == "ok\n"
                authorization.revoke_refresh_token()
                authorization.expire_all()
                await asyncio.to_thread(oauth2_dovecot.kick)

                async def reported() -> bool:
                    return imap.problem is not None

                await eventually(reported, "the channel to report the refused login")
                health = await client.get("/healthz")
        [refused] = [r for r in caplog.records if "oauth2_refresh_token" in r.getMessage()]
    finally:
        await web.stop()
    assert health.status_code == 200  # the node still takes mail: balancers keep it
    first_line, problem = health.text.splitlines()
    assert first_line == "degraded"
    assert "imap.oauth2_refresh_token" in problem and "invalid_grant" in problem
    assert "token was revoked" in problem  # the provider's own description
    assert refused.levelno == logging.ERROR
    assert authorization.refresh_token not in caplog.text + health.text


async def test_revoked_refresh_token_is_refused_at_start(
    oauth2_dovecot: Dovecot, authorization: AuthorizationServer
) -> None:
    authorization.revoke_refresh_token()
    settings = oauth2_settings(oauth2_dovecot, authorization)
    imap = ImapChannel(settings, async_sessionmaker(), lambda: NOW)
    with pytest.raises(TokenRefusedError) as refused:
        await imap.start(pipeline_unused)
    assert refused.value.key == "imap.oauth2_refresh_token"
    assert authorization.refresh_token not in str(refused.value)


async def test_wrong_client_secret_is_refused_at_start(
    oauth2_dovecot: Dovecot, authorization: AuthorizationServer
) -> None:
    settings = oauth2_settings(
        oauth2_dovecot, authorization, oauth2_client_secret=SecretStr("not-the-secret")
    )
    imap = ImapChannel(settings, async_sessionmaker(), lambda: NOW)
    with pytest.raises(ConfigError) as refused:
        await imap.start(pipeline_unused)
    assert refused.value.key == "imap.oauth2_client_id"
    assert "invalid_client" in str(refused.value)


@sqlite_only
async def test_backfill_logs_in_with_a_token(
    storage: Storage, oauth2_dovecot: Dovecot, authorization: AuthorizationServer
) -> None:
    ids = deliver(oauth2_dovecot, 2)
    settings = oauth2_settings(oauth2_dovecot, authorization)
    result = await backfill(settings, pipeline(storage), date(2000, 1, 1), lambda: NOW)
    assert result.accepted == 2
    assert sorted(await stored_ids(storage)) == sorted(ids)
