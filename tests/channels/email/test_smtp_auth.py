"""The outbound replier logs in to its relay: a password over STARTTLS, and OAuth2 bearer
tokens (XOAUTH2, OAUTHBEARER) over STARTTLS or implicit TLS.

The relay is a real aiosmtpd server on loopback with a trustme certificate that refuses mail
without a login; it checks each bearer token by RFC 7662 introspection at the tests' local
authorization server, as Microsoft's and Google's submission servers check theirs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from oauth2_server import AuthorizationServer
from pydantic import SecretStr

from channels.email.smtp import SmtpReplier
from intake.config import OutboundSmtpSettings
from intake.errors import PermanentChannelError, TransientChannelError
from intake.messages import Ack, ChannelKind

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
USER = "support@example.com"
PASSWORD = "relay-Password-42"


@dataclass
class Relay:
    """An SMTP submission server that takes mail only after a login."""

    introspection_url: str
    received: list[tuple[str, list[str]]] = field(default_factory=list)  # login, recipients
    logins: list[tuple[str, str]] = field(default_factory=list)  # mechanism, outcome
    port: int = 0
    implicit: bool = False  # TLS from the first byte (port 465) instead of STARTTLS
    server: asyncio.Server | None = None

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else ""
        self.received.append((login, list(envelope.rcpt_tos)))
        return "250 OK"

    def password(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        self.logins.append((mechanism, "ok" if ok else "refused"))
        return AuthResult(success=ok, handled=False, auth_data=USER.encode() if ok else None)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        fields = base64.b64decode(args[1]).decode().split("\x01")
        user = fields[0].removeprefix("user=")
        token = fields[1].removeprefix("auth=Bearer ")
        return await self._bearer(server, "XOAUTH2", user, token)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        gs2, auth, *_ = base64.b64decode(args[1]).decode().split("\x01")
        user = gs2.split(",")[1].removeprefix("a=")
        return await self._bearer(server, "OAUTHBEARER", user, auth.removeprefix("auth=Bearer "))

    async def _bearer(self, server: SMTP, mechanism: str, user: str, token: str) -> AuthResult:
        async with httpx.AsyncClient() as client:
            answer = (await client.post(self.introspection_url, data={"token": token})).json()
        if answer.get("active") and answer.get("username") == user:
            self.logins.append((mechanism, "ok"))
            return AuthResult(success=True, auth_data=user.encode())
        self.logins.append((mechanism, "refused"))
        # RFC 7628 3.2.2 and Google's XOAUTH2: an error challenge, then 535 after the client's
        # dummy answer.
        error = json.dumps({"status": "invalid_token", "schemes": "bearer"})
        await server.challenge_auth(error)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535

    async def start(self, context: ssl.SSLContext, *, implicit: bool) -> None:
        loop = asyncio.get_running_loop()
        self.implicit = implicit

        def protocol() -> SMTP:
            with warnings.catch_warnings():
                # aiosmtpd warns of AUTH without STARTTLS; with implicit TLS it is all TLS.
                warnings.simplefilter("ignore")
                return self._protocol(context, implicit, loop)

        self.server = await loop.create_server(
            protocol, "127.0.0.1", 0, ssl=context if implicit else None
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def _protocol(
        self, context: ssl.SSLContext, implicit: bool, loop: asyncio.AbstractEventLoop
    ) -> SMTP:
        return SMTP(
            self,
            loop=loop,
            hostname="relay.test",
            tls_context=None if implicit else context,
            require_starttls=not implicit,
            auth_required=True,
            auth_require_tls=not implicit,  # implicit TLS: the whole session is TLS
            authenticator=self.password,
            auth_exclude_mechanism=["LOGIN"],
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture(params=["starttls", "implicit"])
async def relay(
    request: pytest.FixtureRequest,
    certificates: tuple[ssl.SSLContext, Path],
    authorization: AuthorizationServer,
) -> AsyncIterator[Relay]:
    server = Relay(authorization.introspection_url)
    await server.start(certificates[0], implicit=request.param == "implicit")
    yield server
    await server.stop()


def notice(n: int) -> Ack:
    return Ack(
        outbox_id=n,
        kind="ack",
        channel=ChannelKind.EMAIL,
        to=f"customer{n}@example.org",
        subject=f"[SUP-{n:06d}] Re: hi",
        text="We have your request.",
    )


def settings(
    relay: Relay, certificates: tuple[ssl.SSLContext, Path], **values: Any
) -> OutboundSmtpSettings:
    tls = {"ssl": True} if relay.implicit else {"starttls": True}
    base: dict[str, Any] = {"host": "127.0.0.1", "port": relay.port, "ca_file": certificates[1]}
    return OutboundSmtpSettings(**(base | tls | {"user": USER} | values))


def oauth2(authorization: AuthorizationServer, **values: Any) -> dict[str, Any]:
    return {
        "auth": "oauth2",
        "oauth2_token_url": authorization.token_url,
        "oauth2_client_id": authorization.client_id,
        "oauth2_client_secret": SecretStr(authorization.client_secret),
        "oauth2_refresh_token": SecretStr(authorization.refresh_token),
        "oauth2_scope": "https://outlook.office365.com/SMTP.Send offline_access",
    } | values


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
async def test_oauth2_login_then_mail(
    relay: Relay,
    certificates: tuple[ssl.SSLContext, Path],
    authorization: AuthorizationServer,
    mechanism: str,
) -> None:
    values = oauth2(authorization, oauth2_mechanism=mechanism)
    replier = SmtpReplier(settings(relay, certificates, **values), clock=lambda: NOW, timeout=10)
    try:
        await replier.send(notice(1))
        await replier.send(notice(2))  # the same connection: no second login
    finally:
        await replier.aclose()
    assert relay.received == [(USER, ["customer1@example.org"]), (USER, ["customer2@example.org"])]
    assert relay.logins == [(mechanism.upper(), "ok")]
    assert len(authorization.granted()) == 1


async def test_token_is_cached_across_connections_and_renewed_when_refused(
    relay: Relay,
    certificates: tuple[ssl.SSLContext, Path],
    authorization: AuthorizationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = settings(relay, certificates, **oauth2(authorization))
    replier = SmtpReplier(config, clock=lambda: NOW, timeout=10)
    try:
        await replier.send(notice(1))
        await replier.aclose()
        await replier.send(notice(2))  # a new connection, the cached token
        await replier.aclose()
        authorization.expire_all()  # the relay now refuses it: one refusal, a new token
        await replier.send(notice(3))
    finally:
        await replier.aclose()
    assert [login for login, _ in relay.received] == [USER] * 3
    assert relay.logins == [("XOAUTH2", "ok"), ("XOAUTH2", "ok"), ("XOAUTH2", "refused"),
                            ("XOAUTH2", "ok")]  # fmt: skip
    assert replier.connections == 3
    tokens = authorization.granted()
    assert len(tokens) == 2
    for secret in (*tokens, authorization.refresh_token, authorization.client_secret):
        assert secret not in caplog.text


async def test_revoked_refresh_token_keeps_the_notice_for_a_retry(
    relay: Relay,
    certificates: tuple[ssl.SSLContext, Path],
    authorization: AuthorizationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    authorization.revoke_refresh_token()
    config = settings(relay, certificates, **oauth2(authorization))
    replier = SmtpReplier(config, clock=lambda: NOW, timeout=10)
    try:
        with pytest.raises(TransientChannelError) as failed:
            await replier.send(notice(1))
    finally:
        await replier.aclose()
    assert "outbound.smtp.oauth2_refresh_token" in failed.value.reason
    assert "invalid_grant" in caplog.text
    assert relay.received == [] and not replier.connected


async def test_password_login(relay: Relay, certificates: tuple[ssl.SSLContext, Path]) -> None:
    config = settings(relay, certificates, auth="password", password=SecretStr(PASSWORD))
    replier = SmtpReplier(config, clock=lambda: NOW, timeout=10)
    try:
        await replier.send(notice(1))
    finally:
        await replier.aclose()
    assert relay.received == [(USER, ["customer1@example.org"])]
    assert relay.logins == [("PLAIN", "ok")]


async def test_wrong_password_is_transient_and_named(
    relay: Relay, certificates: tuple[ssl.SSLContext, Path], caplog: pytest.LogCaptureFixture
) -> None:
    config = settings(relay, certificates, auth="password", password=SecretStr("wrong-one-42"))
    replier = SmtpReplier(config, clock=lambda: NOW, timeout=10)
    try:
        with pytest.raises(TransientChannelError) as failed:
            await replier.send(notice(1))
    finally:
        await replier.aclose()
    assert "refused our login (535)" in failed.value.reason
    assert relay.received == [] and "wrong-one-42" not in caplog.text


async def test_without_a_login_the_relay_refuses(
    relay: Relay, certificates: tuple[ssl.SSLContext, Path]
) -> None:
    """The relay really demands a login (what makes the tests above mean something)."""
    replier = SmtpReplier(settings(relay, certificates), clock=lambda: NOW, timeout=10)
    try:
        with pytest.raises(PermanentChannelError, match="530"):  # Authentication required
            await replier.send(notice(1))
    finally:
        await replier.aclose()
    assert relay.received == []


def test_credentials_need_tls() -> None:
    with pytest.raises(ValueError, match="ssl = true or starttls = true"):
        OutboundSmtpSettings(auth="password", user=USER, password=SecretStr(PASSWORD))
