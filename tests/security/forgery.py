"""What the attacker tests share: a DNS zone served from a dict (no real DNS, ever), real
DKIM signatures made with dkimpy and a generated RSA key, and seeded contacts."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from functools import cache
from typing import Any

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from intake.cli.app import Storage
from storage import contacts

SELECTOR = b"sel"


@dataclass(frozen=True)
class Key:
    private_pem: bytes
    dns_record: bytes  # the `v=DKIM1; k=rsa; p=...` TXT record


@cache
def key(name: str = "default") -> Key:
    """A 2048-bit RSA key per name, made once per test run."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Key(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der))


@dataclass
class Zone:
    """TXT, A and the other records pyspf asks for, by (name, type); counts the questions."""

    records: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def add_txt(self, name: str, text: bytes) -> None:
        self.records.setdefault((name.lower(), "TXT"), []).append(text)

    def publish_dkim(self, domain: str, signing_key: Key) -> None:
        self.add_txt(f"{SELECTOR.decode()}._domainkey.{domain}", signing_key.dns_record)

    def txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: the TXT record's text, or None."""
        text = name.decode().rstrip(".").lower()
        self.asked.append((text, "TXT"))
        found = self.records.get((text, "TXT"))
        return found[0] if found else None

    def spf_lookup(self, name: str, qtype: str) -> list[tuple[tuple[str, str], Any]]:
        """pyspf's lookup: [((name, qtype), value)], TXT values as a tuple of byte strings."""
        self.asked.append((name, qtype))
        values = self.records.get((name.lower(), qtype), [])
        return [((name, qtype), (v,) if qtype == "TXT" else v) for v in values]


def mail(
    from_address: str,
    subject: str = "Export fails",
    body: str = "The export shows error 500.\n",
    *,
    headers: tuple[tuple[str, str], ...] = (),
) -> EmailMessage:
    message = EmailMessage()
    for name, value in headers:
        message[name] = value
    message["From"] = from_address
    message["To"] = "support@support.example.com"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="test.example")
    message.set_content(body)
    return message


def signed(message: EmailMessage, domain: str, signing_key: Key) -> bytes:
    """The message's bytes with a real DKIM-Signature by `domain` on top."""
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    signature = dkim.sign(
        raw,
        SELECTOR,
        domain.encode(),
        signing_key.private_pem,
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    return bytes(signature) + raw


async def seed(storage: Storage) -> None:
    """Acme (circularo-saas plus): Alice the nominated representative, Bob a user.
    Globex (scalr standard): Eve a designated contact."""
    async with storage.sessions.begin() as session:
        acme, _ = await contacts.upsert_organization(
            session, name="Acme", plan="plus", policy=None, support_start=None, region=None,
            domains=("acme.example",),
        )  # fmt: skip
        await contacts.upsert_contact(
            session, acme, name="Alice", email="alice@acme.example", phone="+420601123456",
            telegram=None, role="nominated",
        )  # fmt: skip
        await contacts.upsert_contact(
            session, acme, name="Bob", email="bob@acme.example", phone=None, telegram=None,
            role="user",
        )  # fmt: skip
        globex, _ = await contacts.upsert_organization(
            session, name="Globex", plan="standard", policy="scalr", support_start=None,
            region=None, domains=("globex.example",),
        )  # fmt: skip
        await contacts.upsert_contact(
            session, globex, name="Eve", email="eve@globex.example", phone=None, telegram=None,
            role="designated",
        )  # fmt: skip
