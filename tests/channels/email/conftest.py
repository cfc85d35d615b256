"""Fixtures for the mailbox login tests: the local OAuth2 authorization server, and a Dovecot
that takes only the bearer tokens it grants, and the certificates of the test relays."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from dovecot import USER, Dovecot
from oauth2_server import AuthorizationServer


@pytest.fixture
def authorization() -> Iterator[AuthorizationServer]:
    """Grants tokens for the test mailbox's user; introspects them for Dovecot and relays."""
    server = AuthorizationServer(USER)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def oauth2_dovecot(
    make_dovecot: Callable[..., Dovecot], authorization: AuthorizationServer
) -> Dovecot:
    """Dovecot with an `oauth2` passdb only: no password logs in."""
    return make_dovecot(
        introspection_url=authorization.introspection_url, bearer=authorization.issue
    )


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """The relay's TLS context and the PEM file of the private CA that issued its certificate."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca))
    return context, ca
