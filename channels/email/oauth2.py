"""OAuth2 access tokens for mailbox logins (IMAP, SMTP submission) at Microsoft 365, Google
and any provider with an RFC 6749 token endpoint.

Tokens come from the token endpoint through authlib's OAuth2 client (requests): by the refresh
token grant when a refresh token is configured (delegated access, a user's mailbox), else by
client credentials (application access). authlib, not MSAL: it speaks both grants to any
provider, Google's included, where MSAL knows only Microsoft's. A token is kept until
`margin` seconds before it expires and dropped at once when a server refuses it. Every token
is masked in logs (`intake.redact`) as soon as it arrives; none is ever formatted here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from intake.config import ImapSettings, OutboundSmtpSettings
from intake.errors import ConfigError, TransientError
from intake.redact import mask_later

if TYPE_CHECKING:
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.requests_client import OAuth2Session

log = logging.getLogger(__name__)

MARGIN_SECONDS = 300.0  # fetch a new token this long before the current one expires
DEFAULT_LIFETIME = 3600.0  # when the endpoint does not say (`expires_in` is only RECOMMENDED)
# What the endpoint answers when the grant itself is bad: no retry helps, an admin must act.
REFUSALS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"}


class TokenRefusedError(ConfigError):
    """The token endpoint refused our client or our refresh token (revoked, expired, wrong)."""


class TokenEndpointError(TransientError):
    """The token endpoint could not be reached or failed (5xx, timeout): try again later."""


class AccessTokens:
    """The current access token of one OAuth2 client, fetched when missing or nearly expired.

    Blocking (the IMAP session calls it from its worker thread); `aget` is for async callers.
    Thread-safe: one fetch at a time.
    """

    def __init__(
        self,
        settings: ImapSettings | OutboundSmtpSettings,
        section: str,
        *,
        margin: float = MARGIN_SECONDS,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.section = section  # "imap" or "outbound.smtp": names the key in errors
        self.margin = margin
        self.timeout = timeout
        self.clock = clock
        self.fetched = 0  # tokens fetched so far (for tests and logs)
        self._token: str | None = None
        self._expires = 0.0
        # A provider may rotate the refresh token (Microsoft does): keep the newest one.
        self._refresh = settings.oauth2_refresh_token.get_secret_value()
        self._lock = threading.Lock()

    @property
    def delegated(self) -> bool:
        return bool(self._refresh)

    def get(self) -> str:
        """A token valid for at least `margin` seconds more (as far as the endpoint said)."""
        with self._lock:
            if self._token is None or self.clock() >= self._expires - self.margin:
                self._token = self._fetch()
            return self._token

    async def aget(self) -> str:
        # The HTTP exchange blocks: in a worker thread, so the event loop keeps serving.
        return await asyncio.to_thread(self.get)

    def invalidate(self, token: str) -> None:
        """A server refused `token` (expired early, revoked): the next `get` fetches anew."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _fetch(self) -> str:
        # authlib and requests (about 15 MB resident) only for an OAuth2 login.
        import requests
        from authlib.integrations.base_client import OAuthError

        started = self.clock()
        try:
            with self._client() as client:
                url = self.settings.oauth2_token_url
                if self._refresh:
                    answer = client.refresh_token(
                        url, refresh_token=self._refresh, timeout=self.timeout
                    )
                else:
                    answer = client.fetch_token(
                        url, grant_type="client_credentials", timeout=self.timeout
                    )
        except OAuthError as exc:
            raise self._refused(exc) from None
        except (requests.RequestException, ValueError) as exc:
            # The exception's text may quote the request; its type and status are enough.
            status = getattr(getattr(exc, "response", None), "status_code", None)
            what = f"HTTP {status}" if status else type(exc).__name__
            raise TokenEndpointError(f"OAuth2 token endpoint failed: {what}") from None
        return self._keep(answer, started)

    def _client(self) -> OAuth2Session:
        from authlib.integrations.requests_client import OAuth2Session

        secret = self.settings.oauth2_client_secret.get_secret_value()
        return OAuth2Session(
            client_id=self.settings.oauth2_client_id,
            client_secret=secret or None,
            # In the form body: what Microsoft documents, and Google accepts too.
            token_endpoint_auth_method="client_secret_post" if secret else "none",
            scope=self.settings.oauth2_scope or None,
        )

    def _refused(self, exc: OAuthError) -> TokenRefusedError | TokenEndpointError:
        error = str(exc.error or "error")
        # The provider's description names the problem ("AADSTS70000: ... revoked"), no secret.
        description = " ".join(str(exc.description or "").split())[:300]
        problem = f"the token endpoint refused it: {error}" + (
            f" ({description})" if description else ""
        )
        if error not in REFUSALS:
            return TokenEndpointError(f"OAuth2 {problem}")
        if error == "invalid_grant" and self._refresh:
            field = "oauth2_refresh_token"
        elif error == "invalid_scope":
            field = "oauth2_scope"
        else:  # the client id or its secret
            field = "oauth2_client_id"
        return TokenRefusedError(f"{self.section}.{field}", problem)

    def _keep(self, answer: dict[str, Any], started: float) -> str:
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenEndpointError("OAuth2 token endpoint answered without an access_token")
        mask_later(token)
        rotated = answer.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh:
            mask_later(rotated)
            self._refresh = rotated
        try:
            lifetime = float(answer.get("expires_in") or DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME
        self._expires = started + lifetime
        self.fetched += 1
        log.info(
            "%s: OAuth2 access token fetched (%s grant, valid %.0fs)",
            self.section,
            "refresh token" if self.delegated else "client credentials",
            lifetime,
        )
        return token
