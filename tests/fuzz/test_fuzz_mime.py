"""Fuzzing the MIME path: `parse_email` and `inbound_from_raw` on arbitrary bytes, on real
messages with bytes changed, and on messages built from hostile parts.

The property: no exception escapes, nothing is reported as an internal error ("error:" among
the problems means the parser's own catch-all caught a bug), and every output stays within
the bounds `check_parsed` and `check_inbound` spell out, whatever went in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fuzzing import any_mail, built_mail, check_inbound, check_parsed, fuzz_settings, mutated
from hypothesis import given
from hypothesis import strategies as st

from channels.email.inbound import inbound_from_raw
from channels.email.mime import parse_email

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
LIMIT = 4096  # small, so that attachments over the limit are common


def parse_and_check(raw: bytes) -> None:
    parsed = parse_email(raw, max_attachment_bytes=LIMIT)
    assert not [p for p in parsed.problems if p.startswith("error:")], parsed.problems
    check_parsed(parsed, max_attachment_bytes=LIMIT)
    message = inbound_from_raw(
        raw,
        received_at=NOW,
        envelope_sender="bounce@customer.example",
        recipients=("support@support.example.com",),
        max_attachment_bytes=LIMIT,
    )
    check_inbound(message)
    assert message.raw == raw  # kept byte for byte, for audit and re-parse


@fuzz_settings(250)
@given(raw=st.binary(max_size=4096))
def test_any_bytes(raw: bytes) -> None:
    parse_and_check(raw)


@fuzz_settings(150)
@given(raw=mutated())
def test_real_mail_with_bytes_changed(raw: bytes) -> None:
    parse_and_check(raw)


@fuzz_settings(80)
@given(raw=built_mail())
def test_mail_built_from_hostile_parts(raw: bytes) -> None:
    parse_and_check(raw)


@fuzz_settings(60)
@given(raw=any_mail(), depth=st.integers(0, 3), parts=st.integers(1, 5))
def test_tight_limits_still_answer(raw: bytes, depth: int, parts: int) -> None:
    parsed = parse_email(raw, max_attachment_bytes=0, max_depth=depth, max_parts=parts)
    assert not [p for p in parsed.problems if p.startswith("error:")], parsed.problems
    check_parsed(parsed, max_attachment_bytes=0)
    assert parsed.attachments == () or all(a.size == 0 for a in parsed.attachments)
