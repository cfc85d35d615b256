"""The words of acknowledgements, endorsement requests and agent alerts, from Jinja2 templates.

The packaged templates live in `intake/outbox/templates/`; a team overrides any of them by putting a
file of the same name in `[pipeline] templates_dir`. HTML templates autoescape everything a
sender wrote; plain-text ones go into mail bodies, never headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

from classifier import Classification
from intake.messages import ChannelKind
from intake.pipeline.decide import NO_PROMISE, ContactStatus, Decision, Identity
from intake.policy.model import Policy

# Outgoing mail carries this header; mail that comes back with it is never acknowledged.
LOOP_HEADER = "X-Intake-Loop"

SEVERITY_TEXT = {
    1: "critical: production stopped or severely impacted",
    2: "high: important features unavailable without a workaround",
    3: "medium: partial loss of function, with a workaround",
    4: "low: a question or a request",
}
CATEGORY_TEXT = {
    "outage": "service unavailable",
    "error": "an error",
    "question": "a question",
    "feature_request": "a feature request",
    "account_billing": "account or billing",
    "service_credit": "a service credit claim",
    "other": "a support request",
}
MISSING_TEXT = {
    "when_how": "when and how the problem appeared",
    "steps": "the steps to reproduce it",
    "error_message": "the exact error message",
    "recent_changes": "any changes made to your system or environment just before it",
}
# Every flag a ticket can carry (CONTRACTS section 2); templates may test any of them.
FLAGS = (
    "unidentified",
    "channel_not_entitled",
    "not_nominated",
    "not_designated",
    "over_quota",
    "support_expired",
    "on_call",
    "sender_unverified",
)
CHANNEL_TEXT = {
    "email": "email",
    "whatsapp": "WhatsApp",
    "sms": "SMS",
    "telegram": "Telegram",
    "voice": "phone",
    "web": "the web help desk",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str = ""


def environment(templates_dir: Path | None = None) -> Environment:
    loaders: list[BaseLoader] = [PackageLoader("intake.outbox", "templates")]
    if templates_dir is not None:
        loaders.insert(0, FileSystemLoader(templates_dir))
    return Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def local_time(moment: datetime | None, zone: str) -> str | None:
    """ "Thursday 5 April 2024, 15:30 CEST": how a person reads a deadline."""
    if moment is None:
        return None
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()}"


def _subject(reference: str, original: str) -> str:
    # Header safety: the subject is folded onto one line and capped; composing the mail with
    # policy.default refuses anything left that could start a new header.
    clean = " ".join(original.split())[:200]
    if not clean:
        return f"[{reference}] Your support request"
    prefix = "" if clean.lower().startswith("re:") else "Re: "
    return f"[{reference}] {prefix}{clean}"


def render_ack(
    env: Environment,
    *,
    policy: Policy,
    reference: str,
    identity: Identity,
    channel: ChannelKind,
    subject: str,
    sender: str,
    name: str,
    found: Classification,
    decision: Decision,
    support_end: str | None,
    by_mail: bool = True,
    quote: bool = True,
    callback: bool = False,
) -> Rendered:
    """`by_mail`: the acknowledgement goes out by email, so replies have a subject line.
    `quote`: it may repeat what the sender wrote (their subject); False for a sender we
    cannot identify, whose From may be forged. `callback`: the request asked to be called
    back."""
    plan = policy.plans[decision.plan]
    deadlines = decision.deadlines
    owed = [flag for flag in decision.flags if flag in NO_PROMISE]
    context: dict[str, Any] = {
        "name": name if identity.status != ContactStatus.UNIDENTIFIED else "",
        "reference": reference,
        "sender": sender,
        # In the policy's own words: "Level 3 (Medium)", "Severity 1", "Urgent".
        "priority": policy.priorities.display(decision.priority),
        "severity": decision.severity if policy.priorities.show_severity else None,
        "severity_text": SEVERITY_TEXT.get(decision.severity or 0, ""),
        "category_text": CATEGORY_TEXT.get(str(found.category), "a support request"),
        "first_response_due": local_time(
            deadlines.first_response_due if deadlines else None, policy.zone
        ),
        "resolution_due": local_time(deadlines.resolution_due if deadlines else None, policy.zone),
        "no_sla": deadlines is None and not owed,
        "no_promise": bool(owed),
        "on_call": "on_call" in decision.flags,
        "missing": [MISSING_TEXT[m] for m in found.missing if m in MISSING_TEXT],
        "flags": {flag: flag in decision.flags for flag in FLAGS},
        "plan": plan.name if len(policy.plans) > 1 else "",  # one plan: no name to give
        "callback": callback,
        "plan_channels": ", ".join(CHANNEL_TEXT[str(c)] for c in sorted(plan.channels)),
        "channel_text": CHANNEL_TEXT[str(channel)],
        "quota": plan.quota,
        "support_end": support_end,
        "urgent": found.urgent,
        "by_mail": by_mail,
        "urgent_hint": decision.raise_hint,
        "quote": quote,  # templates show `subject` (the sender's words) only where it is True
        "subject": " ".join(subject.split())[:200] if quote else "",
    }
    return Rendered(
        subject=_subject(reference, subject if quote else ""),
        text=env.get_template("ack.txt.j2").render(context),
        html=env.get_template("ack.html.j2").render(context),
    )


def render_endorse_digest(
    env: Environment,
    *,
    name: str,
    organization: str,
    entries: list[dict[str, Any]],
    more: int,
    period_minutes: int,
) -> Rendered:
    """One mail to a nominated contact listing the requests that wait for their endorsement."""
    count = len(entries) + more
    text = env.get_template("endorse_digest.txt.j2").render(
        name=name, organization=organization, entries=entries, more=more, count=count,
        period_minutes=period_minutes,
    )  # fmt: skip
    if count == 1:
        subject = f"[{entries[0]['reference']}] Please confirm a support request"
    else:
        subject = f"{count} support requests from {organization} await your endorsement"
    return Rendered(subject=" ".join(subject.split())[:250], text=text)


def render_alert(
    env: Environment, *, reasons: list[str], policy: Policy | None = None, **context: Any
) -> Rendered:
    if policy is not None:  # in the policy's own words
        context["priority"] = policy.priorities.display(context["priority"])
        if not policy.priorities.show_severity:
            context["severity"] = None
    text = env.get_template("alert.txt.j2").render(reasons=", ".join(reasons), **context)
    subject = " ".join(
        f"[{context['reference']}] {', '.join(reasons)}: {context['subject']}".split()
    )
    return Rendered(subject=subject[:250], text=text)
