"""Which SMTP replies refuse something, and why: each is one `log_refusal` line (counted in
/metrics as `intake_refusals_total{channel="email",reason}`).

Every reply aiosmtpd sends passes `SMTP.push`, ours (550 relaying, 554 bad input, 450 rate
limit) and its own (552 size, 500/501 bad commands, 421 timeouts) alike, so one hook there
sees them all; the 421s written before a session starts are noted where they are written.
"""

from __future__ import annotations

from intake.errors import log_refusal

# (reply code, enhanced status code prefix or "") -> reason; the first match wins.
_REASONS: tuple[tuple[str, str, str], ...] = (
    ("550", "5.7.1", "relaying_denied"),
    ("552", "", "too_large"),
    ("452", "", "too_many_recipients"),
    ("450", "4.7.1", "rate_limited"),
    ("421", "4.7.0", "too_many_connections"),
    ("421", "4.3.2", "busy"),
    ("421", "", "closing"),
    ("451", "", "unavailable"),
    ("554", "", "bad_input"),
    ("5", "5.5", "bad_command"),
    ("50", "", "bad_command"),
)


def refusal_reason(reply: str) -> str | None:
    """The reason a reply refuses for, or None for a reply that refuses nothing (2xx, 3xx)."""
    if reply[:1] not in ("4", "5"):
        return None
    code, _, rest = reply[:3], reply[3:4], reply[4:]
    for prefix, enhanced, reason in _REASONS:
        if code.startswith(prefix) and rest.startswith(enhanced):
            return reason
    return f"smtp_{code}" if code.isdigit() else "bad_reply"


def note_reply(peer: object, reply: str | bytes) -> None:
    """Log the reply when it refuses (a multi-line reply: its first line)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    first = text.split("\r\n", 1)[0].split("\n", 1)[0]
    reason = refusal_reason(first)
    if reason is not None:
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        log_refusal("email", reason, client, first)
