"""A real intake pipeline for tests, wired as `intake.cli.app` wires it, on a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from classifier import load_rules
from intake.cli.app import Storage
from intake.outbox import acks
from intake.outbox.notices import NoticeOptions, Notifier
from intake.pipeline.pipeline import Pipeline, PipelineOptions

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday, inside every preset's windows
RULES = load_rules()
NOTICE_DEFAULTS: dict[str, Any] = {
    "mailbox": "support@support.example.com",
    "our_domains": frozenset({"support.example.com"}),
    "notify_emails": ("oncall@vendor.example",),
}


def make_pipeline(
    storage: Storage,
    *,
    default_policy: str = "circularo-saas",
    clock: Callable[[], datetime] = lambda: NOW,
    secret: bytes = b"s" * 32,
    **notice_options: Any,
) -> Pipeline:
    """`notice_options` override NoticeOptions fields (notify_telegram=..., ...)."""
    notifier = Notifier(
        options=NoticeOptions(**(NOTICE_DEFAULTS | notice_options)),
        secret=secret,
        templates=acks.environment(),
        clock=clock,
    )
    return Pipeline(
        sessions=storage.sessions,
        rules=RULES,
        options=PipelineOptions(default_policy=default_policy),
        notifier=notifier,
    )
