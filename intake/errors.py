"""The product's exception hierarchy: a leaf module every package may import.

Exceptions inside, wire codes only at an adapter's edge: each adapter maps these to its own
protocol (SMTP 4xx/5xx, HTTP 503/4xx), so retry semantics stay explicit.
"""

import logging


class IntakeError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(IntakeError):
    """A configuration or policy file is wrong; names the file, the key and the problem."""

    def __init__(self, key: str, problem: str, *, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {problem}")


class InputRefusedError(IntakeError):
    """Permanent refusal of one input: malformed, oversize, foreign domain, bad signature."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class TransientError(IntakeError):
    """Try again later: the database is locked or gone, a timeout."""


class TransientChannelError(IntakeError):
    """Outbound delivery failed but may succeed on retry."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class PermanentChannelError(IntakeError):
    """Outbound delivery can never succeed as addressed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# -- refusals: one log line each, which /metrics also counts ------------------------------------

REFUSALS_LOGGER = "intake.refusals"


def log_refusal(channel: str, reason: str, client: str, detail: str = "") -> None:
    """Log one refused or dropped input: the channel, a reason from a small fixed vocabulary
    (a metrics label: "relaying_denied", "too_large", "rate_limited", "bad_input", ...), who
    sent it, never what it said. `channels.web.metrics` counts these records."""
    logging.getLogger(REFUSALS_LOGGER).info(
        "refused %s from %r: %s%s",
        channel, client, reason, f" ({detail[:200]!r})" if detail else "",
        extra={"refusal": (channel, reason)},
    )  # fmt: skip
