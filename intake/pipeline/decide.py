"""Deciding a request: priority, severity, flags and deadlines. Pure: no I/O, no clock.

The order in which a priority is chosen, first match wins:
1. a leading "Urgent:" / "High:" / "Low:" in the subject, where the policy maps it (four-tier);
2. an urgent marker in the request's own text, where the policy has an urgent priority;
3. the severity the classifier found, where the policy maps severities (scalr, on-premise);
4. the category, where the policy maps it (scoro's availability/error/request, feature -> low);
5. the policy's default for the channel (email on circularo-onprem starts at level-3);
6. the policy's default.
Every step that fired is written to the decision record, so an agent can see why.
"""

from __future__ import annotations

import calendar as stdlib_calendar
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from classifier import Classification
from intake.messages import Authenticity, ChannelKind, SpamVerdict
from intake.policy.model import Deadlines, Plan, Policy, compute_deadlines


class ContactStatus:
    NOMINATED = "nominated"
    DESIGNATED = "designated"
    KNOWN = "known"
    UNIDENTIFIED = "unidentified"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who wrote: the matched organization and contact, if any."""

    status: str  # a ContactStatus value
    organization_id: int | None = None
    organization: str | None = None
    plan: str | None = None
    policy: str | None = None  # the organization's own policy, overriding the default
    region: str | None = None
    support_start: date | None = None
    contact_id: int | None = None
    contact_name: str | None = None
    matched_by: str | None = None  # "email", "phone", "telegram", "domain"
    sender_check: Authenticity = field(default_factory=Authenticity)  # of the From domain (email)
    unverified: bool = False  # the check failed (or was required and said nothing)


PRIVILEGED = (ContactStatus.NOMINATED, ContactStatus.DESIGNATED)


def verified_identity(
    identity: Identity, check: Authenticity, *, channel: ChannelKind, require: bool = False
) -> Identity:
    """`identity` as far as the sender is proven: a sender whose From failed authentication
    (or, with `require`, an email with no verdict) keeps the organization it claims, as any
    writer from its domain would, but not a nominated or designated contact's standing."""
    unverified = check.verdict == "fail" or (
        require and channel is ChannelKind.EMAIL and check.verdict != "pass"
    )
    if not unverified:
        return replace(identity, sender_check=check)
    status = ContactStatus.KNOWN if identity.status in PRIVILEGED else identity.status
    return replace(identity, status=status, sender_check=check, unverified=True)


@dataclass(frozen=True, slots=True)
class Decision:
    priority: str
    severity: int | None
    plan: str
    flags: tuple[str, ...]
    deadlines: Deadlines | None
    record: dict[str, Any]


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the month's end (31 Jan + 1 month = 28/29 Feb).

    By hand: the standard library has no month arithmetic and one function is not worth
    a dependency.
    """
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, stdlib_calendar.monthrange(year, month)[1]))


def support_period(start: date | None, months: int, on: date) -> tuple[date, date]:
    """The support period holding `on`: counted from `start` in steps of `months`, or the
    `months` before `on` when the start is unknown."""
    if start is None:
        return add_months(on, -months), on
    periods = max(0, ((on.year - start.year) * 12 + on.month - start.month) // months)
    begin = add_months(start, periods * months)
    if begin > on:
        periods -= 1
        begin = add_months(start, periods * months)
    return begin, add_months(start, (periods + 1) * months)


def choose_priority(policy: Policy, channel: ChannelKind, found: Classification) -> tuple[str, str]:
    """The priority and the rule that chose it."""
    rules = policy.priorities
    if found.subject_priority and found.subject_priority in rules.subject_prefixes:
        return rules.subject_prefixes[found.subject_priority], "subject prefix"
    if found.urgent and rules.urgent:
        return rules.urgent, "urgent marker"
    if found.severity is not None and found.severity in rules.by_severity:
        return rules.by_severity[found.severity], f"severity {found.severity}"
    if str(found.category) in rules.by_category:
        return rules.by_category[str(found.category)], f"category {found.category}"
    if channel in rules.by_channel:
        return rules.by_channel[channel], f"default for {channel}"
    return rules.default, "policy default"


def severity_of(policy: Policy, priority: str, found: Classification) -> int | None:
    """The classifier's severity, else the one the chosen priority stands for (level-3 -> 3)."""
    if found.severity is not None:
        return found.severity
    for level, name in policy.priorities.by_severity.items():
        if name == priority:
            return level
    return None


def plan_for(policy: Policy, identity: Identity) -> Plan:
    # An unknown sender, or a plan this policy lacks, is held to the policy's first plan.
    found = policy.plans.get(identity.plan) if identity.plan else None
    return found or next(iter(policy.plans.values()))


def flags_for(
    policy: Policy,
    plan: Plan,
    identity: Identity,
    channel: ChannelKind,
    received: datetime,
    tickets_in_period: int,
) -> list[str]:
    flags = []
    if identity.status == ContactStatus.UNIDENTIFIED:
        flags.append("unidentified")
    if identity.unverified:
        flags.append("sender_unverified")
    if channel not in plan.channels:
        flags.append("channel_not_entitled")
    if channel in plan.nominated_channels and identity.status != ContactStatus.NOMINATED:
        flags.append("not_nominated")
    # A nominated representative speaks for the organization, so counts as designated too.
    designated = {ContactStatus.DESIGNATED, ContactStatus.NOMINATED}
    if plan.designated_required and identity.status not in designated:
        flags.append("not_designated")
    months = policy.support_period_months
    if months and identity.support_start is not None:
        if received.date() >= add_months(identity.support_start, months):
            flags.append("support_expired")
    if plan.quota is not None and tickets_in_period >= plan.quota:
        flags.append("over_quota")
    return flags


def decide(
    policy: Policy,
    identity: Identity,
    channel: ChannelKind,
    found: Classification,
    received: datetime,
    *,
    tickets_in_period: int = 0,
) -> Decision:
    """Everything the policy says about one new request.

    `tickets_in_period` is how many tickets the organization opened in the current support
    period before this one (for quotas).
    """
    plan = plan_for(policy, identity)
    priority, why = choose_priority(policy, channel, found)
    severity = severity_of(policy, priority, found)
    flags = flags_for(policy, plan, identity, channel, received, tickets_in_period)
    deadlines: Deadlines | None = None
    if identity.status != ContactStatus.UNIDENTIFIED or policy.unidentified_sla:
        deadlines = compute_deadlines(policy, plan.name, priority, received, identity.region)
        if deadlines.on_call:
            flags.append("on_call")
    record: dict[str, Any] = {
        "policy": policy.name,
        "plan": plan.name,
        "priority": {"value": priority, "rule": why},
        "severity": severity,
        "contact": {
            "status": identity.status,
            "organization": identity.organization,
            "contact": identity.contact_name,
            "matched_by": identity.matched_by,
        },
        "flags": flags,
        "deadlines": list(deadlines.explanation) if deadlines else ["no SLA for this sender"],
        "evidence": [
            {"signal": e.signal, "rule": e.rule, "matched": e.matched, "where": e.where}
            for e in found.evidence
        ],
    }
    check = identity.sender_check
    if check.evidence or identity.unverified:
        record["authenticity"] = {
            "verdict": check.verdict,
            "evidence": list(check.evidence),
            "unverified": identity.unverified,
        }
    return Decision(priority, severity, plan.name, tuple(flags), deadlines, record)


# What a machine-mail ticket says instead of deadlines (CONTRACTS 1: machine mail is not a request).
MACHINE_RULE = "machine mail is not a request"


def machine_kind(found: Classification, spam: SpamVerdict | None) -> str | None:
    """Why this message is machine mail (the classifier's kind, or "spam" over the spam
    engine's threshold), or None for a request."""
    if spam is not None and spam.verdict == "spam":
        return "spam"
    if found.auto_generated:
        return str(found.machine_kind or "machine")
    return None


def as_machine(decision: Decision, kind: str) -> Decision:
    """`decision` for machine mail: kept for agents to see, but no deadlines and no on-call."""
    flags = tuple(f for f in decision.flags if f != "on_call")
    record = dict(decision.record)
    record.update(
        flags=list(flags),
        machine={"kind": kind, "rule": MACHINE_RULE},
        deadlines=[f"{MACHINE_RULE} ({kind}): no deadlines, no acknowledgement, no alerts"],
    )
    return replace(decision, flags=flags, deadlines=None, record=record)


def spam_record(spam: SpamVerdict | None) -> dict[str, Any]:
    """The spam engine's say in the decision record: `spam` is "spam", "ham" or "unavailable"."""
    if spam is None:
        return {}
    check: dict[str, Any] = {"engine": spam.engine, "score": spam.score}
    check.update(threshold=spam.threshold, detail=spam.detail)
    return {"spam": spam.verdict, "spam_check": check}
