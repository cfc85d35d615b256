"""The blocking half of the IMAP channel: one imapclient connection and the commands we use.

Every method here blocks on a socket, so `channels.email.imap` calls them only through
`asyncio.to_thread`. Nothing here knows about tickets. Exceptions from imapclient, imaplib,
socket and ssl are translated in one place, `map_imap_errors()`.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import (
    IMAPClientAbortError,
    IMAPClientError,
    LoginError,
)

from channels.email.oauth2 import AccessTokens
from intake.config import ImapSettings
from intake.errors import ConfigError, IntakeError, TransientError

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
DELETED = b"\\Deleted"
REFUSED = b"$IntakeRefused"  # keyword on messages the pipeline refused for good
# How often a blocking IDLE wait looks up to see whether the channel is stopping.
IDLE_SLICE_SECONDS = 0.5


class ImapConnectionError(TransientError):
    """The connection to the IMAP server failed or dropped (socket, TLS, BYE): reconnect."""


class ImapCommandError(IntakeError):
    """The server answered NO or BAD, or something the protocol does not allow."""

    def __init__(self, action: str, reason: str) -> None:
        self.action = action
        self.reason = reason
        super().__init__(f"IMAP {action} failed: {reason}")


@contextmanager
def map_imap_errors(action: str) -> Iterator[None]:
    """Turn third-party exceptions from `action` into the product's errors."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise ConfigError(
            "imap.ca_file", f"the server's certificate is not trusted: {exc.verify_message}"
        ) from exc
    except LoginError as exc:
        # The server's text only: the password is never part of a message.
        raise ConfigError("imap.user", f"the server refused the login: {exc}") from exc
    except IMAPClientAbortError as exc:
        raise ImapConnectionError(f"IMAP {action}: connection lost: {exc}") from exc
    except OSError as exc:  # socket errors, timeouts and ssl.SSLError
        raise ImapConnectionError(f"IMAP {action}: {type(exc).__name__}: {exc}") from exc
    except IMAPClientError as exc:
        raise ImapCommandError(action, str(exc)) from exc


def tls_context(settings: ImapSettings) -> ssl.SSLContext:
    """Certificate and host name checked; `ca_file` trusted instead of the system's CAs."""
    cafile = str(settings.ca_file) if settings.ca_file else None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)


class ImapSession:
    """A logged-in connection with `folder` selected. Blocking; not thread-safe."""

    def __init__(self, client: Any, settings: ImapSettings, selected: dict[bytes, Any]) -> None:
        self._client = client
        self.settings = settings
        self.uidvalidity = int(selected[b"UIDVALIDITY"])
        permanent = selected.get(b"PERMANENTFLAGS", ())
        self._keywords_allowed = b"\\*" in permanent or REFUSED in permanent
        self.capabilities = frozenset(bytes(c).upper() for c in client.capabilities())

    @classmethod
    def open(
        cls, settings: ImapSettings, *, timeout: float, tokens: AccessTokens | None = None
    ) -> ImapSession:
        """Connect (TLS, or STARTTLS when configured), log in and select `settings.folder`.

        With `tokens` (auth = "oauth2") the login is SASL XOAUTH2 or OAUTHBEARER.
        """
        context = tls_context(settings) if settings.ssl or settings.starttls else None
        with map_imap_errors("connect"):
            client = IMAPClient(
                settings.host,
                port=settings.port,
                ssl=settings.ssl,
                ssl_context=context,
                timeout=timeout,
            )
        try:
            with map_imap_errors("login"):
                if settings.starttls and not settings.ssl:
                    if not client.has_capability("STARTTLS"):
                        raise ConfigError("imap.starttls", "the server does not offer STARTTLS")
                    client.starttls(context)
                _login(client, settings, tokens)
                selected = client.select_folder(settings.folder)
                target = settings.processed_folder
                if target and not client.folder_exists(target):
                    raise ConfigError("imap.processed_folder", f"no folder {target!r}")
                return cls(client, settings, selected)
        except BaseException:
            _shut(client)
            raise

    @property
    def has_idle(self) -> bool:
        return b"IDLE" in self.capabilities

    def search(self, criteria: Sequence[object]) -> list[int]:
        with map_imap_errors("SEARCH"):
            return sorted(int(uid) for uid in self._client.search(list(criteria)))

    def uids_after(self, last_uid: int) -> list[int]:
        # `n:*` always matches the highest UID, even when it is below n: filter.
        return [uid for uid in self.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid]

    def highest_uid(self) -> int:
        return max(self.search(["UID", "*"]), default=0)

    def uids_since(self, day: date) -> list[int]:
        return self.search(["SINCE", day])

    def fetch(self, uids: Sequence[int]) -> dict[int, bytes]:
        """Raw bytes by UID; BODY.PEEK so that reading does not set \\Seen."""
        with map_imap_errors("FETCH"):
            found = self._client.fetch(list(uids), [b"BODY.PEEK[]"])
        return {
            int(uid): bytes(data[b"BODY[]"]) for uid, data in found.items() if b"BODY[]" in data
        }

    def confirm(self, uid: int) -> None:
        """Done with `uid`: move it to the processed folder if there is one, else flag it."""
        target = self.settings.processed_folder
        if not target:
            with map_imap_errors("STORE"):
                self._client.add_flags([uid], [SEEN], silent=True)
            return
        with map_imap_errors("MOVE"):
            if b"MOVE" in self.capabilities:
                self._client.move([uid], target)
                return
            self._client.copy([uid], target)
            self._client.add_flags([uid], [SEEN, DELETED], silent=True)
            if b"UIDPLUS" in self.capabilities:
                self._client.uid_expunge([uid])
            else:
                self._client.expunge()

    def mark_refused(self, uid: int) -> None:
        """\\Seen, plus our keyword where the server keeps new keywords."""
        flags = [SEEN, REFUSED] if self._keywords_allowed else [SEEN]
        with map_imap_errors("STORE"):
            self._client.add_flags([uid], flags, silent=True)

    def noop(self) -> None:
        with map_imap_errors("NOOP"):
            self._client.noop()

    def idle(self, seconds: float, stopping: threading.Event) -> None:
        """IDLE until the server reports a change, `seconds` pass, or `stopping` is set."""
        deadline = time.monotonic() + seconds
        with map_imap_errors("IDLE"):
            self._client.idle()
            try:
                while not stopping.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    wait = min(left, IDLE_SLICE_SECONDS)
                    started = time.monotonic()
                    if self._client.idle_check(timeout=wait):
                        break
                    if time.monotonic() - started < wait / 2:
                        # Readable but nothing parsed: imapclient swallows EOF this way.
                        break
            finally:
                self._client.idle_done()

    def logout(self) -> None:
        try:
            with map_imap_errors("LOGOUT"):
                self._client.logout()
        except IntakeError as exc:
            log.debug("IMAP logout failed (%s); closing the socket", exc)
        finally:
            _shut(self._client)

    def close(self) -> None:
        """Drop the connection without a word to the server (it may be gone already)."""
        _shut(self._client)


def _login(client: Any, settings: ImapSettings, tokens: AccessTokens | None) -> None:
    if tokens is None:
        client.login(settings.user, settings.password.get_secret_value())
        return
    token = tokens.get()
    try:
        _bearer_login(client, settings, token)
    except LoginError:
        # A token we took for valid was refused (it expired early or was revoked): once more
        # with a fresh one. A second refusal is the account's or the grant's problem.
        log.info("IMAP %s: the server refused the access token; fetching a new one", settings.user)
        tokens.invalidate(token)
        _bearer_login(client, settings, tokens.get())


def _bearer_login(client: Any, settings: ImapSettings, token: str) -> None:
    if settings.oauth2_mechanism == "oauthbearer":
        client.oauthbearer_login(settings.user, token)
    else:
        client.oauth2_login(settings.user, token)


def _shut(client: Any) -> None:
    try:
        client.shutdown()
    except (OSError, IMAPClientError):
        pass  # already closed
