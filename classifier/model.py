"""The classifier's result types. Plain frozen values: no behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    """What the request is about; `scoro` maps these onto its own priorities."""

    OUTAGE = "outage"
    ERROR = "error"
    QUESTION = "question"
    FEATURE_REQUEST = "feature_request"
    ACCOUNT_BILLING = "account_billing"
    SERVICE_CREDIT = "service_credit"
    OTHER = "other"


class MachineKind(StrEnum):
    """Why a message is machine mail that must never be acknowledged."""

    AUTO_REPLY = "auto_reply"  # RFC 3834 auto-replies, out-of-office
    BOUNCE = "bounce"  # delivery status notifications, MAILER-DAEMON
    LIST = "list"  # mailing-list traffic (List-Id, Precedence: list)
    BULK = "bulk"  # newsletters, marketing (List-Unsubscribe, Precedence: bulk/junk)
    REPORT = "report"  # other multipart/report: read receipts (MDN), abuse feedback (ARF)
    SPAM = "spam"  # an upstream filter's verdict (X-Spam-Flag: YES); answering it is backscatter
    NOTIFICATION = "notification"  # Auto-Submitted: auto-generated, no-reply senders


# The pieces of information CONTRACTS' "necessary information" (Circularo SaaS 11, on-premise
# 13.2) asks for, in the order the acknowledgement lists them.
MISSING_INFO: tuple[str, ...] = ("when_how", "steps", "error_message", "recent_changes")

# Missing information is asked for only when the request reports a problem.
PROBLEM_CATEGORIES: frozenset[Category] = frozenset({Category.OUTAGE, Category.ERROR})

# The only channel with headers, a subject and an envelope; every other channel is chat-style
# and never machine mail by headers.
MAIL_CHANNEL = "email"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One rule that fired: which signal, which rule, the text it matched and where."""

    signal: str  # urgent, subject_priority, header_priority, explicit_severity, severity, ...
    rule: str  # e.g. "en.urgent.markers.urgent", "header.x_priority"
    matched: str  # the text as the sender wrote it ("" for a missing piece of information)
    where: str  # "subject", "body", "header:X-Priority", "envelope"


@dataclass(frozen=True, slots=True)
class Classification:
    """Everything the classifier found in one message, with the evidence for each signal."""

    urgent: bool
    subject_priority: str | None
    header_priority: bool
    explicit_severity: int | None
    severity: int | None
    category: Category
    auto_generated: bool
    machine_kind: MachineKind | None
    missing: tuple[str, ...]
    evidence: tuple[Evidence, ...]
