"""Fixtures for channel tests: a real Dovecot on loopback, plain or with a trustme certificate."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from dovecot import Dovecot, TlsFiles


@pytest.fixture(scope="session")
def stopped_dovecots() -> Iterator[list[Dovecot]]:
    """Servers told to stop; waited for once, at the end (a master takes seconds to exit)."""
    servers: list[Dovecot] = []
    yield servers
    for server in servers:
        server.wait_stopped()


@pytest.fixture
def make_dovecot(stopped_dovecots: list[Dovecot]) -> Iterator[Callable[..., Dovecot]]:
    """Start a Dovecot (`Dovecot` keyword arguments); each is stopped after the test."""
    started: list[Dovecot] = []

    def make(**options: Any) -> Dovecot:
        server = Dovecot(**options)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.stop()
        stopped_dovecots.append(server)


@pytest.fixture
def dovecot(make_dovecot: Callable[..., Dovecot]) -> Dovecot:
    """A fresh Dovecot (IDLE, MOVE, UIDPLUS) with an empty INBOX."""
    return make_dovecot()


@pytest.fixture(scope="session")
def tls_files() -> Iterator[TlsFiles]:
    """A private CA and a server certificate for 127.0.0.1, readable by Dovecot's processes."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory(prefix="intake-tls-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        files = TlsFiles(cert=root / "cert.pem", key=root / "key.pem", ca=root / "ca.pem")
        issued.private_key_pem.write_to_path(str(files.key))
        for blob in issued.cert_chain_pems:
            blob.write_to_path(str(files.cert), append=True)
        ca.cert_pem.write_to_path(str(files.ca))
        yield files


@pytest.fixture
def dovecot_tls(make_dovecot: Callable[..., Dovecot], tls_files: TlsFiles) -> Dovecot:
    """Dovecot with `ssl = required`, STARTTLS on `port` and implicit TLS on `ssl_port`."""
    return make_dovecot(tls=tls_files)
