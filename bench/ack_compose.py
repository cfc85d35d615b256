"""Composing an acknowledgement: what one costs, against the stdlib's plain way of doing it.

The same acknowledgement (text and HTML alternatives, threading headers, RFC 3834 marks) is
composed and serialized to the bytes the relay receives, on one pinned core:
- baseline: `email.policy.default` as it comes (a header class built per header, the
  generator choosing the boundary and compiling a regex to check it);
- compose: `channels.email.compose.compose` (the same policy with the header classes kept, the
  boundary named), byte for byte the same mail but for the random boundary, flattened as
  aiosmtplib's `send_message` flattens it (the path before issue 19);
- skeleton: `channels.email.skeletons.wire_bytes`, the shape's skeleton filled in (the path
  since issue 19), with a non-ASCII subject and text too, against compose on the same;
- for scale, a do-nothing message: compat32 `email.message_from_bytes` + `as_bytes()` of it.

    python bench/ack_compose.py [--count 2000]
"""

from __future__ import annotations

import argparse
import email
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dataclasses  # noqa: E402
from email import policy  # noqa: E402
from email.message import EmailMessage  # noqa: E402

from aiosmtplib.email import flatten_message  # noqa: E402

from channels.email import compose as outmail  # noqa: E402
from channels.email.skeletons import wire_bytes  # noqa: E402
from intake.messages import Ack, ChannelKind  # noqa: E402

ACK = Ack(
    outbox_id=1,
    kind="ack",
    channel=ChannelKind.EMAIL,
    to="customer1@example.org",
    subject="[SUP-000123] Re: Export fails (12)",
    text="Hello,\n\nwe have received your request and will answer by 14:00 CET.\n" * 6,
    html="<p>Hello,</p><p>we have received your request and will answer by 14:00.</p>" * 6,
    reference="SUP-000123",
    in_reply_to="load-1-123@example.org",
    references=("load-1-123@example.org",),
    message_id="ack-123.abc@support.example.com",
    reply_to="support+abc123@support.example.com",
)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CZECH = dataclasses.replace(
    ACK,
    subject="[SUP-000123] Re: Tisk faktur selhává \u2013 chyba 500 po aktualizaci (12)",
    text="Dobrý den,\n\nvaši žádost jsme přijali a odpovíme do 14:00 SEČ.\n" * 6,
)
SENDER = {"sender": "support@support.example.com", "sender_name": "Support"}


def composed(ack: Ack) -> Callable[[], bytes]:
    return lambda: flatten_message(outmail.compose(ack, now=NOW, **SENDER))


def filled(ack: Ack) -> Callable[[], bytes]:
    return lambda: wire_bytes(ack, now=NOW, **SENDER)


def ours() -> bytes:
    mail = outmail.compose(
        ACK, sender="support@support.example.com", sender_name="Support", now=NOW
    )
    return mail.as_bytes()


def stock() -> bytes:
    """`compose` on the untouched `policy.default`, the boundary left to the generator."""
    with (
        mock.patch.object(outmail, "DEFAULT", policy.default),
        mock.patch.object(EmailMessage, "set_boundary", lambda self, boundary: None),
    ):
        return ours()


def reread(raw: bytes) -> Callable[[], bytes]:
    return lambda: email.message_from_bytes(raw).as_bytes()


def best_us(work: Callable[[], bytes], count: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(count):
            work()
        best = min(best, time.process_time() - began)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    base = best_us(stock, args.count)
    mine = best_us(ours, args.count)
    plain = best_us(reread(ours()), args.count)
    print(f"one acknowledgement, composed and serialized ({len(ours())} bytes), best of 5:")
    print(f"  baseline: policy.default as it comes   {base:7.0f} us   1.00x")
    print(f"  channels.email.compose.compose               {mine:7.0f} us   {mine / base:.2f}x")
    print(f"  compat32 parse + as_bytes, for scale   {plain:7.0f} us   {plain / base:.2f}x")
    print("the wire bytes of one acknowledgement, best of 5 (same run, same core):")
    for name, ack in (("ASCII, text + HTML", ACK), ("Czech subject and text", CZECH)):
        old, new = best_us(composed(ack), args.count), best_us(filled(ack), args.count)
        print(f"  {name:<24} compose + flatten {old:6.0f} us   skeleton filled in "
              f"{new:5.0f} us   {new / old:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
