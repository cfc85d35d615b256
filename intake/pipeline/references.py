"""Ticket references ("SUP-000123") and the HMAC tokens our outgoing mail carries.

A reply to an acknowledgement names its ticket in three ways: the subject ("[SUP-000123]"),
our Message-ID in In-Reply-To/References, and the reply address ("support+sup-000123-<token>@").
The last two carry an HMAC of the ticket id, so they cannot be forged to attach a message to
someone else's ticket, and the reply address survives providers that rewrite Message-IDs.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PREFIX = "SUP"
_REFERENCE = re.compile(rf"\b{PREFIX}-(\d{{6,12}})\b", re.IGNORECASE)
_TOKEN_LENGTH = 20
_TOKENED = re.compile(rf"\b{PREFIX}-(\d{{6,12}})-([0-9a-f]{{{_TOKEN_LENGTH}}})\b", re.IGNORECASE)


def format_reference(ticket_id: int) -> str:
    return f"{PREFIX}-{ticket_id:06d}"


def parse_reference(text: str) -> int | None:
    """The ticket id of a reference such as "SUP-000123" (the whole text), else None."""
    match = _REFERENCE.fullmatch(text.strip())
    return int(match[1]) if match else None


def references_in(text: str) -> list[int]:
    """Ticket ids named by references anywhere in `text`, in order, without repeats."""
    return list(dict.fromkeys(int(m[1]) for m in _REFERENCE.finditer(text)))


def token(secret: bytes, ticket_id: int) -> str:
    digest = hmac.new(secret, f"ticket:{ticket_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:_TOKEN_LENGTH]


def tokened(secret: bytes, ticket_id: int) -> str:
    """ "sup-000123-<token>": the part our Message-IDs and reply addresses carry."""
    return f"{format_reference(ticket_id).lower()}-{token(secret, ticket_id)}"


def message_id(secret: bytes, ticket_id: int, unique: int, domain: str) -> str:
    """Our Message-ID for one outgoing message (without angle brackets)."""
    return f"{tokened(secret, ticket_id)}.{unique:x}@{domain}"


def reply_address(secret: bytes, ticket_id: int, mailbox: str) -> str:
    """`mailbox` with the ticket's token as a plus-address: support+sup-000123-<token>@..."""
    local, _, domain = mailbox.partition("@")
    return f"{local}+{tokened(secret, ticket_id)}@{domain}"


def verified_tickets(secret: bytes, hints: tuple[str, ...] | list[str]) -> list[int]:
    """Ticket ids named by a valid token in any hint (Message-IDs, recipient addresses)."""
    found: dict[int, None] = {}
    for hint in hints:
        for match in _TOKENED.finditer(hint):
            ticket_id = int(match[1])
            if hmac.compare_digest(match[2].lower(), token(secret, ticket_id)):
                found[ticket_id] = None
    return list(found)
