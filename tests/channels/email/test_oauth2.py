"""channels.email.oauth2: access tokens from a real token endpoint on loopback (the tests'
authorization server), cached until shortly before they expire, never in a log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from oauth2_server import AuthorizationServer
from pydantic import SecretStr
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from channels.email.oauth2 import AccessTokens, TokenEndpointError, TokenRefusedError
from intake.config import ImapSettings, Settings
from intake.redact import MASK, redact_logs, secrets_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(authorization: AuthorizationServer, **values: Any) -> ImapSettings:
    base: dict[str, Any] = {
        "auth": "oauth2",
        "oauth2_token_url": authorization.token_url,
        "oauth2_client_id": authorization.client_id,
        "oauth2_client_secret": SecretStr(authorization.client_secret),
        "oauth2_refresh_token": SecretStr(authorization.refresh_token),
        "oauth2_scope": "https://mail.google.com/",
    }
    return ImapSettings(**(base | values))


def test_a_token_is_kept_until_shortly_before_it_expires(
    authorization: AuthorizationServer,
) -> None:
    clock = Clock()
    tokens = AccessTokens(settings(authorization), "imap", margin=300, clock=clock)
    first = tokens.get()
    clock.now += 3600 - 301  # valid for just over the margin still
    assert tokens.get() == first and tokens.fetched == 1
    clock.now += 2  # inside the margin now
    second = tokens.get()
    assert second != first and tokens.fetched == 2
    [grant, _] = authorization.grants
    assert grant.grant_type == "refresh_token" and grant.scope == "https://mail.google.com/"


def test_invalidate_drops_only_the_refused_token(authorization: AuthorizationServer) -> None:
    tokens = AccessTokens(settings(authorization), "imap")
    first = tokens.get()
    tokens.invalidate("some-older-token")
    assert tokens.get() == first
    tokens.invalidate(first)
    assert tokens.get() != first and tokens.fetched == 2


def test_client_credentials_when_no_refresh_token(authorization: AuthorizationServer) -> None:
    tokens = AccessTokens(settings(authorization, oauth2_refresh_token=SecretStr("")), "imap")
    assert tokens.get() in authorization.granted()
    assert [g.grant_type for g in authorization.grants] == ["client_credentials"]
    assert not tokens.delegated


def test_a_rotated_refresh_token_is_used_next(authorization: AuthorizationServer) -> None:
    clock = Clock()
    authorization.rotate = True  # the old refresh token ends with each grant
    tokens = AccessTokens(settings(authorization), "imap", clock=clock)
    tokens.get()
    clock.now += 7200
    tokens.get()
    clock.now += 7200
    tokens.get()
    assert tokens.fetched == 3 and len(authorization.granted()) == 3


def test_revoked_refresh_token_names_the_key(authorization: AuthorizationServer) -> None:
    authorization.revoke_refresh_token()
    tokens = AccessTokens(settings(authorization), "outbound.smtp")
    with pytest.raises(TokenRefusedError) as refused:
        tokens.get()
    assert refused.value.key == "outbound.smtp.oauth2_refresh_token"
    assert "invalid_grant (token was revoked)" in refused.value.problem


def test_wrong_client_secret_names_the_client(authorization: AuthorizationServer) -> None:
    values = {"oauth2_client_secret": SecretStr("nope-nope")}
    with pytest.raises(TokenRefusedError) as refused:
        AccessTokens(settings(authorization, **values), "imap").get()
    assert refused.value.key == "imap.oauth2_client_id"


@pytest.mark.parametrize(
    "answer",
    [
        PlainTextResponse("upstream down", status_code=502),
        JSONResponse({"token_type": "Bearer"}),  # no access_token
        JSONResponse({"error": "temporarily_unavailable"}, status_code=400),
    ],
    ids=["502", "no-token", "temporarily_unavailable"],
)
def test_endpoint_failures_are_transient(authorization: AuthorizationServer, answer: Any) -> None:
    async def failing(request: Any) -> Any:
        return answer

    authorization.app.router.routes[0] = Route("/token", failing, methods=["POST"])
    with pytest.raises(TokenEndpointError):
        AccessTokens(settings(authorization), "imap").get()


def test_unreachable_endpoint_is_transient(authorization: AuthorizationServer) -> None:
    url = authorization.token_url
    authorization.stop()
    with pytest.raises(TokenEndpointError):
        AccessTokens(settings(authorization, oauth2_token_url=url), "imap", timeout=5).get()


def test_tokens_and_oauth2_secrets_never_reach_a_log_line(
    authorization: AuthorizationServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = Settings(imap=settings(authorization), outbound={"smtp": {"password": "pw-7-x"}})
    found = secrets_of(config)
    assert {authorization.client_secret, authorization.refresh_token, "pw-7-x"} <= set(found)
    stop = redact_logs(found)
    try:
        caplog.set_level(logging.INFO)
        token = AccessTokens(config.imap, "imap").get()
        logging.getLogger("test").info(
            "token %s secret %s refresh %s",
            token,
            authorization.client_secret,
            authorization.refresh_token,
        )
    finally:
        stop()
    assert caplog.records[-1].getMessage() == f"token {MASK} secret {MASK} refresh {MASK}"
    assert token not in caplog.text and "OAuth2 access token fetched" in caplog.text


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"oauth2_client_id": ""}, "oauth2_client_id: required"),
        ({"oauth2_token_url": "http://login.example/token"}, "https:// URL is required"),
    ],
)
def test_incomplete_oauth2_settings_are_refused(
    authorization: AuthorizationServer, values: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        settings(authorization, **values)


def test_a_scope_the_provider_refuses_names_the_scope(authorization: AuthorizationServer) -> None:
    async def refusing(request: Any) -> Any:
        return JSONResponse({"error": "invalid_scope"}, status_code=400)

    authorization.app.router.routes[0] = Route("/token", refusing, methods=["POST"])
    with pytest.raises(TokenRefusedError) as refused:
        AccessTokens(settings(authorization), "imap").get()
    assert refused.value.key == "imap.oauth2_scope"
