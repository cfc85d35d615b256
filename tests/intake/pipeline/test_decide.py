"""The pure decisions of issue 17, table by table: who sets the priority, what the text
suggests, what a follow-up raises, when raising is worth a hint, and the response cap."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from classifier import Category, Classification
from intake.messages import ChannelKind
from intake.pipeline.decide import (
    ContactStatus,
    Identity,
    choose_priority,
    decide,
    raise_hint,
    raised_deadlines,
    raised_priority,
)
from intake.policy.calendar import add_support_time
from intake.policy.files import load_policy
from intake.policy.model import compute_deadlines

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)  # a Tuesday, inside every preset's windows
EMAIL, WEB, CHAT = ChannelKind.EMAIL, ChannelKind.WEB, ChannelKind.WHATSAPP


def found(
    *,
    urgent: bool = False,
    prefix: str | None = None,
    severity: int | None = None,
    category: Category = Category.OTHER,
) -> Classification:
    return Classification(
        urgent=urgent, subject_priority=prefix, header_priority=False, explicit_severity=None,
        severity=severity, category=category, auto_generated=False, machine_kind=None,
        missing=(), evidence=(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "channel", "signals", "priority", "rule"),
    [
        # circularo-onprem 12.3: every email starts at Level 3, whatever the text says
        ("circularo-onprem", EMAIL, found(severity=1), "level-3", "default for email"),
        ("circularo-onprem", EMAIL, found(category=Category.QUESTION), "level-3",
         "default for email"),
        ("circularo-onprem", WEB, found(severity=1), "level-1", "severity 1"),
        # four-tier: medium unless a leading prefix, or a feature request (low)
        ("four-tier", EMAIL, found(urgent=True, severity=1), "medium", "default for email"),
        ("four-tier", EMAIL, found(prefix="urgent"), "urgent", "subject prefix"),
        ("four-tier", EMAIL, found(category=Category.FEATURE_REQUEST), "low",
         "category feature_request"),
        # circularo-saas and scalr keep their reading
        ("circularo-saas", EMAIL, found(urgent=True), "urgent", "urgent marker"),
        ("scalr", EMAIL, found(severity=2), "severity-2", "severity 2"),
    ],
)  # fmt: skip
def test_who_sets_the_priority(
    policy: str, channel: ChannelKind, signals: Classification, priority: str, rule: str
) -> None:
    assert choose_priority(load_policy(policy), channel, signals) == (priority, rule)


def identity(plan: str, **fields: object) -> Identity:
    values: dict[str, object] = {"status": ContactStatus.NOMINATED, "organization_id": 1,
                                 "organization": "Org", "plan": plan} | fields  # fmt: skip
    return Identity(**values)  # type: ignore[arg-type]


def test_a_higher_suggestion_is_kept_and_brings_on_call_on_four_tier() -> None:
    decision = decide(load_policy("four-tier"), identity("standard"), EMAIL,
                      found(severity=1, category=Category.OUTAGE), NOW)  # fmt: skip
    assert (decision.priority, decision.suggested) == ("medium", "urgent")
    assert decision.record["suggested_priority"] == "urgent"
    assert "on_call" in decision.flags
    assert decision.deadlines is not None and decision.deadlines.on_call is False


def test_a_lower_suggestion_is_recorded_but_alerts_nobody() -> None:
    decision = decide(load_policy("circularo-onprem"), identity("plus"), EMAIL,
                      found(category=Category.QUESTION), NOW)  # fmt: skip
    assert decision.record["suggested_priority"] == "level-4"
    assert decision.suggested is None and "on_call" not in decision.flags


@pytest.mark.parametrize("flag", ["support_expired", "over_quota"])
def test_no_promise_where_none_is_owed(flag: str) -> None:
    policy = load_policy("circularo-onprem")
    if flag == "support_expired":
        who, used = identity("plus", support_start=datetime(2024, 1, 1).date()), 0
    else:
        who, used = identity("standard", support_start=NOW.date()), 25
    decision = decide(policy, who, WEB, found(severity=1), NOW, tickets_in_period=used)
    assert flag in decision.flags and decision.deadlines is None
    assert decision.record["deadlines"] == [f"no time owed: {flag}"]
    assert decision.raise_hint is None


@pytest.mark.parametrize(
    ("callback", "plan", "flagged"),
    [(True, "standard", True), (True, "plus", False), (False, "standard", False)],
)
def test_a_call_back_request_needs_phone_support(callback: bool, plan: str, flagged: bool) -> None:
    decision = decide(load_policy("circularo-saas"), identity(plan), WEB, found(), NOW,
                      callback=callback)  # fmt: skip
    assert ("channel_not_entitled" in decision.flags) is flagged


@pytest.mark.parametrize(
    ("policy", "current", "channel", "signals", "raised"),
    [
        ("four-tier", "medium", EMAIL, found(prefix="urgent"), "urgent"),
        ("four-tier", "medium", EMAIL, found(urgent=True), None),  # only suggests on email
        ("four-tier", "urgent", EMAIL, found(prefix="urgent"), None),
        ("four-tier", "high", EMAIL, found(prefix="low"), None),
        ("circularo-saas", "normal", EMAIL, found(urgent=True), "urgent"),
        ("circularo-saas", "normal", CHAT, found(), None),
        ("scalr", "severity-3", EMAIL, found(urgent=True), None),  # no urgent priority
        ("circularo-saas", "gone", EMAIL, found(urgent=True), None),  # not a priority now
    ],
)  # fmt: skip
def test_what_a_follow_up_raises(
    policy: str, current: str, channel: ChannelKind, signals: Classification, raised: str | None
) -> None:
    assert raised_priority(load_policy(policy), current, channel, signals) == raised


def test_a_raise_brings_on_call_but_no_time_where_none_is_owed() -> None:
    policy = load_policy("four-tier")
    deadlines, added = raised_deadlines(policy, "standard", "urgent", NOW, {"flags": []})
    assert added == ["on_call"] and deadlines is not None
    assert deadlines.first_response_due == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    _, again = raised_deadlines(policy, "standard", "urgent", NOW, {"flags": ["on_call"]})
    assert again == []
    saas = load_policy("circularo-saas")
    owed = {"flags": ["support_expired"]}
    assert raised_deadlines(saas, "plus", "urgent", NOW, owed) == (None, [])
    scoro = load_policy("scoro")
    unknown = {"flags": ["unidentified"]}
    assert raised_deadlines(scoro, "standard", "error", NOW, unknown) == (None, [])


@pytest.mark.parametrize(
    ("policy", "plan", "priority", "channel", "hint"),
    [
        ("circularo-saas", "standard", "normal", EMAIL, None),  # urgent 48 h is slower
        ("circularo-saas", "plus", "normal", EMAIL, "word"),  # same response, resolves sooner
        ("circularo-saas", "premium", "normal", CHAT, "word"),
        ("circularo-saas", "premium", "urgent", EMAIL, None),  # already there
        ("four-tier", "standard", "medium", EMAIL, "prefix"),
        ("four-tier", "standard", "urgent", EMAIL, None),
        ("scalr", "standard", "severity-3", EMAIL, None),  # nothing a customer can raise
        ("circularo-onprem", "plus", "level-3", EMAIL, None),
    ],
)
def test_the_hint_on_raising_priority(
    policy: str, plan: str, priority: str, channel: ChannelKind, hint: str | None
) -> None:
    loaded = load_policy(policy)
    assert raise_hint(loaded, loaded.plans[plan], priority, channel) == hint


def test_the_urgent_word_hint_is_left_out_where_it_only_suggests() -> None:
    saas = load_policy("circularo-saas")
    suggesting = replace(saas, priorities=replace(saas.priorities, suggest_on=frozenset({EMAIL})),
                         _schedules={})  # fmt: skip
    assert raise_hint(suggesting, suggesting.plans["plus"], "normal", EMAIL) is None


def test_a_resolution_is_also_a_response() -> None:
    saas = load_policy("circularo-saas")
    capped = compute_deadlines(saas, "standard", "urgent", NOW)
    assert capped.response_capped and capped.first_response_due == capped.resolution_due
    uncapped = add_support_time(saas.calendars["standard"], NOW, timedelta(hours=48))
    assert capped.resolution_due is not None and capped.resolution_due < uncapped
    assert capped.explanation[-1] == "first response capped at the resolution deadline"
    normal = compute_deadlines(saas, "standard", "normal", NOW)
    assert not normal.response_capped and len(normal.explanation) == 3
