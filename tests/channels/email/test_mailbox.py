"""A From is exactly one valid mailbox, or it names no one (issue 16, item 7): the parsed
sender, and the problem recorded, for the shapes real and hostile mail takes."""

from __future__ import annotations

import pytest

from channels.email.mime import parse_email


def from_header(value: str) -> bytes:
    return f"From: {value}\r\nTo: support@support.example.com\r\nSubject: x\r\n\r\nhi\r\n".encode()


@pytest.mark.parametrize(
    ("value", "sender", "name"),
    [
        ("alice@acme.example", "alice@acme.example", ""),
        ("Alice <Alice@ACME.example>", "alice@acme.example", "Alice"),
        ("<alice@acme.example>", "alice@acme.example", ""),
        ('"Smith, Alice (IT)" <alice@acme.example>', "alice@acme.example", "Smith, Alice (IT)"),
        ("Mr. A. Smith <a@acme.example>", "a@acme.example", "Mr. A. Smith"),
        ("alice@acme.example (Alice)", "alice@acme.example", ""),
        ("=?utf-8?b?QWxpY2U=?= <alice@acme.example>", "alice@acme.example", "Alice"),
        # Old mailers quote encoded words (RFC 2047 forbids it); the address is plain.
        ('"=?utf-8?q?Jos=C3=A9?=" <jose@acme.example>', "jose@acme.example", "José"),
        ("Renée <renee@acme.example>", "renee@acme.example", "Renée"),
        # A colon inside an encoded word is only text of the name.
        (
            "=?utf-8?q?victim:_victim5@example.org?= <attacker@evil.example>",
            "attacker@evil.example",
            "victim: victim5@example.org",
        ),
    ],
)
def test_one_mailbox_is_the_sender(value: str, sender: str, name: str) -> None:
    parsed = parse_email(from_header(value))
    assert (parsed.from_addr, parsed.from_name) == (sender, name)
    assert "invalid-from" not in parsed.problems


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?q?Attacker=0D=0A?= <attacker@evil.example>",  # a CRLF hidden in the name
        "=?utf-8?q?x=0D=0A:_victim5@example.org?= <attacker@evil.example>",  # once a "group"
        "=?utf-8?b?RXZlDQpYLUV2aWw6IDE=?= <eve@example.com>",
        "Friends: victim5@example.org, victim6@example.org;",
        "undisclosed-recipients:;",
        "victim5@example.org, victim6@example.org",
        "tim@powerupdev.example concierge@powerupdev.example",  # two, without a comma
        "alice@example.com <bob@example.com>",  # a name posing as another address
        "Alice <alice@acme.example",
        "<>",
        "nobody",
    ],
)
def test_anything_else_names_no_one(value: str) -> None:
    parsed = parse_email(from_header(value))
    assert (parsed.from_addr, parsed.from_name) == (None, "")
    assert "invalid-from" in parsed.problems


def test_no_from_at_all_is_not_a_defect_of_the_from() -> None:
    parsed = parse_email(b"To: support@support.example.com\r\nSubject: x\r\n\r\nhi\r\n")
    assert parsed.from_addr is None and "invalid-from" not in parsed.problems
