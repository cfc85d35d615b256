"""`intake classify`: one input (a raw email, or a chat text) in, one JSON-ready object out."""

from __future__ import annotations

from typing import Any

from channels.email.mime import parse_email
from classifier import Classification, RuleSet, classify
from intake.errors import InputRefusedError
from intake.messages import ChannelKind
from intake.pipeline.decide import choose_priority, severity_of
from intake.policy.model import Policy

# Neutral when nothing in the text speaks to impact and the policy has no scale of its own:
# "partial loss of function" is what an ordinary problem report is.
DEFAULT_SEVERITY = 3


def _result(
    found: Classification, policy: Policy, channel: ChannelKind, subject: str, sender: str | None
) -> dict[str, Any]:
    priority, rule = choose_priority(policy, channel, found)
    severity = severity_of(policy, priority, found)
    return {
        "subject": subject,
        "from": sender,
        "channel": str(channel),
        "policy": policy.name,
        "priority": priority,
        "priority_rule": rule,
        "severity": severity if severity is not None else DEFAULT_SEVERITY,
        "severity_evidence": found.severity is not None,
        "urgent": found.urgent,
        "subject_priority": found.subject_priority,
        "header_priority": found.header_priority,
        "category": str(found.category),
        "auto_generated": found.auto_generated,
        "machine_kind": str(found.machine_kind) if found.machine_kind else None,
        "missing": list(found.missing),
        "evidence": [
            {"signal": e.signal, "rule": e.rule, "matched": e.matched, "where": e.where}
            for e in found.evidence
        ],
    }


def classify_input(
    data: bytes, *, channel: ChannelKind, policy: Policy, rules: RuleSet, max_bytes: int
) -> dict[str, Any]:
    """Classify one input; raises InputRefusedError for input that is not what it should be."""
    if not data.strip():
        raise InputRefusedError("empty input")
    if len(data) > max_bytes:
        raise InputRefusedError(f"input is over the limit of {max_bytes} bytes")
    if channel is not ChannelKind.EMAIL:
        text = data.decode("utf-8", errors="replace")
        found = classify("", text, (), rules, channel=str(channel))
        return _result(found, policy, channel, "", None)
    parsed = parse_email(data)
    if "unparseable" in parsed.problems:
        raise InputRefusedError("not an email message: no header fields")
    found = classify(parsed.subject, parsed.text, parsed.headers, rules, channel="email")
    return _result(found, policy, channel, parsed.subject, parsed.from_addr)
