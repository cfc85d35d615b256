"""Amazon SNS message signatures, checked as AWS documents them ("Verifying the signatures of
Amazon SNS messages"): the canonical string of the message's signed fields, in their fixed
order, verified with the RSA key of the certificate at `SigningCertURL` (SignatureVersion 1:
SHA1withRSA; 2: SHA256withRSA), PKCS #1 v1.5.

The certificate URL must be https on a host the configured pattern allows (by default
`sns.<region>.amazonaws.com`): anyone can put a certificate on their own host. It is fetched
through an injectable `Fetcher` (TLS verified), which also confirms subscriptions.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = logging.getLogger(__name__)

# The signed fields, in the order of the canonical string; Subject only when present.
_SUBSCRIPTION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _SUBSCRIPTION,
    "UnsubscribeConfirmation": _SUBSCRIPTION,
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTIFICATE_BYTES = 65_536
CACHED_CERTIFICATES = 16

Fetcher = Callable[[str], Awaitable[bytes]]


class SnsRefusedError(Exception):
    """The message is not one SNS signed for us (HTTP 403)."""


class FetchError(Exception):
    """A certificate or SubscribeURL could not be fetched now (HTTP 503: SNS retries)."""


class HttpsFetcher:
    """GET over https with the TLS certificate verified, no redirects, a bounded answer."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 10.0,
        max_bytes: int = 1_048_576,
    ) -> None:
        self.verify = verify  # True, or an ssl.SSLContext trusting a private CA (tests)
        self.timeout = timeout
        self.max_bytes = max_bytes

    async def __call__(self, url: str) -> bytes:
        import httpx  # about 15 MB resident: only once SES is enabled and posts

        try:
            # A client per call: certificates are cached and confirmations are rare.
            async with (
                httpx.AsyncClient(verify=self.verify, timeout=self.timeout) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise FetchError(f"HTTP {response.status_code}")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise FetchError("answer too large")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise FetchError(type(exc).__name__) from None


def canonical(message: dict[str, str]) -> bytes:
    """The string SNS signs: each signed field's name and value, one per line, in order."""
    fields = SIGNED_FIELDS[message["Type"]]
    lines = []
    for name in fields:
        if name == "Subject" and name not in message:
            continue
        lines.append(f"{name}\n{message[name]}\n")
    return "".join(lines).encode("utf-8")


class SnsVerifier:
    """Checks SNS signatures; keeps the few certificates it fetched."""

    def __init__(self, fetch: Fetcher, host_pattern: str, clock: Callable[[], datetime]) -> None:
        self.fetch = fetch
        self.hosts = re.compile(host_pattern)
        self.clock = clock
        self.certificates: dict[str, x509.Certificate] = {}

    def check_url(self, url: str, what: str) -> None:
        """Refuse a URL that is not https on an allowed host (no user info)."""
        try:
            parts = urlsplit(url)
            host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        except ValueError:
            raise SnsRefusedError(f"{what} is not a URL") from None
        allowed = parts.username is None and self.hosts.fullmatch(host) is not None
        if parts.scheme != "https" or not allowed:
            raise SnsRefusedError(f"{what} is not https on an SNS host")

    async def verify(self, message: dict[str, str]) -> None:
        """Raise SnsRefusedError unless SNS signed `message` (FetchError: try later)."""
        kind = message.get("Type", "")
        needed = {*SIGNED_FIELDS.get(kind, ("Type",)), "Signature", "SigningCertURL"} - {"Subject"}
        if kind not in SIGNED_FIELDS or not needed <= message.keys():
            raise SnsRefusedError("not an SNS message")
        algorithm = _HASHES.get(message.get("SignatureVersion", ""))
        if algorithm is None:
            raise SnsRefusedError("unknown SignatureVersion")
        try:
            signature = base64.b64decode(message["Signature"], validate=True)
        except (binascii.Error, ValueError):
            raise SnsRefusedError("Signature is not base64") from None
        key = (await self.certificate(message["SigningCertURL"])).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsRefusedError("the signing certificate's key is not RSA")
        try:
            key.verify(signature, canonical(message), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SnsRefusedError("wrong signature") from None

    async def certificate(self, url: str) -> x509.Certificate:
        self.check_url(url, "SigningCertURL")
        certificate = self.certificates.get(url)
        if certificate is None:
            pem = await self.fetch(url)
            try:
                certificate = x509.load_pem_x509_certificate(pem[:MAX_CERTIFICATE_BYTES])
            except ValueError:
                raise SnsRefusedError("SigningCertURL holds no certificate") from None
            if len(self.certificates) >= CACHED_CERTIFICATES:
                self.certificates.pop(next(iter(self.certificates)))
            self.certificates[url] = certificate
        now = self.clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SnsRefusedError("the signing certificate is not valid now")
        return certificate
