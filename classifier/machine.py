"""Machine mail: auto-replies, bounces, lists and bulk mail, which must never be acknowledged.

Header rules are protocol (RFC 3834, RFC 3464, RFC 2369/2919 and what real mailers add), so they
live here in code; the subjects and texts auto-responders write are language vocabulary and
live in the rule files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from classifier.document import Document
from classifier.model import Evidence, MachineKind
from classifier.ruleset import Rule, RuleSet

SIGNAL = "auto_generated"

# When several signals fire, the most telling kind names the message: a DSN that also carries
# "Auto-Submitted: auto-replied" is a bounce; a null sender alone is the weakest hint.
_STRENGTH: dict[str, int] = {
    "bounce": 8,
    "auto_reply": 7,
    "report": 6,
    "list": 5,
    "bulk": 4,
    "spam": 3,
    "notification": 2,
    "null_sender": 1,
}
_KIND_OF = {"null_sender": MachineKind.BOUNCE} | {kind.value: kind for kind in MachineKind}
_NO_VALUES = frozenset({"", "no", "none", "false", "0", "off"})
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([\w-]+)", re.IGNORECASE)
_ADDRESS = re.compile(r"<([^<>]*)>\s*$|([^\s<>\"]+@[^\s<>\"]+)")
# "postmaster" is left out: people answer as postmaster too, and real bounces from it carry a
# report Content-Type or a bounce subject as well.
_DAEMON = re.compile(r"\b(?:mailer[-_ ]?daemon|mail delivery (?:subsystem|system))\b", re.I)
_NO_REPLY = re.compile(
    r"^(?:[\w.+-]*[-_.])?(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|notifications?|notify"
    r"|alerts?|newsletters?|announcements?|announce|marketing|mailer)@"
    r"|^(?:www-data|apache|nginx|nobody|daemon|anonymous)@",  # web-form mailers' system accounts
    re.I,
)
_LIST_SENDER = re.compile(r"^(?:owner-[\w.+-]+|[\w.+-]+-(?:request|owner|bounces?))@", re.I)
# Bulk senders' return paths: "bounces-...@", "bounce-mc...@", VERP "list+user=example.org@".
_BULK_RETURN = re.compile(r"^(?:bounces?[-+._]|[\w.-]*\+[\w.-]*=[\w.-]+@)", re.I)
# A To: that is only an empty group ("undisclosed-recipients:;", "IETF-Announce:;") hides a
# mass mailing's recipients (RFC 5322 3.4); a person's request names whom it is to.
_EMPTY_GROUP = re.compile(r"^\s*[^:,<>@\"]*:\s*;\s*$")
# A text that opens with an XML declaration is a machine's payload (lead feeds, ADF, monitoring
# exports), never a person's words.
_XML_PAYLOAD = re.compile(r"\s*<\?xml[\s?]", re.I)

Finding = tuple[str, str]  # (strength key, rule name)


def _auto_submitted(value: str) -> Finding | None:
    # RFC 3834: anything but "no" is machine mail; "auto-replied" is an auto-responder.
    token = value.split(";", 1)[0].strip().lower()
    if token in _NO_VALUES:
        return None
    kind = "auto_reply" if token == "auto-replied" else "notification"
    return kind, "header.auto_submitted"


def _flag(kind: str, rule: str) -> Callable[[str], Finding | None]:
    def check(value: str) -> Finding | None:
        return None if value.strip().lower() in _NO_VALUES else (kind, rule)

    return check


def _precedence(value: str) -> Finding | None:
    token = value.strip().lower()
    kinds = {"bulk": "bulk", "junk": "bulk", "list": "list", "auto_reply": "auto_reply"}
    return (kinds[token], "header.precedence") if token in kinds else None


def _content_type(value: str) -> Finding | None:
    lowered = value.strip().lower()
    if lowered.startswith("message/delivery-status"):
        return "bounce", "header.content_type.delivery_status"
    if not lowered.startswith("multipart/report"):
        return None
    report = _REPORT_TYPE.search(lowered)
    if report is not None and report.group(1) == "delivery-status":
        return "bounce", "header.content_type.delivery_status"
    return "report", "header.content_type.report"  # MDN read receipts, ARF abuse reports


def _spam(value: str) -> Finding | None:
    return ("spam", "header.spam_flag") if value.strip().lower().startswith("yes") else None


def _from(value: str) -> Finding | None:
    if _DAEMON.search(value):  # also the display name: "Mail Delivery Subsystem <x@y>"
        return "bounce", "header.from.mailer_daemon"
    address = _address(value)
    if _LIST_SENDER.match(address):
        return "list", "header.from.list_sender"
    if _NO_REPLY.match(address):  # nobody reads an acknowledgement sent there
        return "notification", "header.from.no_reply"
    return None


def _to(value: str) -> Finding | None:
    return ("bulk", "header.to.empty_group") if _EMPTY_GROUP.match(value) else None


def _return_path(value: str) -> Finding | None:
    if value.strip() in ("<>", ""):
        return "null_sender", "header.return_path.null"
    return _sender_kind(_address(value), "header.return_path")


def _sender_kind(address: str, rule: str) -> Finding | None:
    if _DAEMON.search(address):
        return "bounce", f"{rule}.mailer_daemon"
    if _BULK_RETURN.match(address):
        return "bulk", f"{rule}.bulk_sender"
    if _NO_REPLY.match(address):
        return "notification", f"{rule}.no_reply"
    return None


_HEADER_CHECKS: dict[str, Callable[[str], Finding | None]] = {
    "auto-submitted": _auto_submitted,
    "x-autoreply": _flag("auto_reply", "header.x_autoreply"),
    "x-autorespond": _flag("auto_reply", "header.x_autorespond"),
    "x-autogenerated": _flag("auto_reply", "header.x_autogenerated"),
    "x-autoreply-from": _flag("auto_reply", "header.x_autoreply_from"),
    "x-mail-autoreply": _flag("auto_reply", "header.x_mail_autoreply"),
    # Exchange stamps this on its own auto-replies and OOF notices; on an *incoming* mail it
    # therefore marks machine mail (a person's client does not add it).
    "x-auto-response-suppress": _flag("auto_reply", "header.x_auto_response_suppress"),
    "precedence": _precedence,
    "x-precedence": _precedence,
    "list-id": _flag("list", "header.list_id"),
    "list-post": _flag("list", "header.list_post"),
    "list-unsubscribe": _flag("bulk", "header.list_unsubscribe"),
    "x-failed-recipients": _flag("bounce", "header.x_failed_recipients"),
    "content-type": _content_type,
    "x-spam-flag": _spam,
    "x-spam-status": _spam,
    "from": _from,
    "to": _to,
    "return-path": _return_path,
}


def _address(value: str) -> str:
    match = _ADDRESS.search(value)
    if match is None:
        return value.strip()
    return (match.group(1) if match.group(1) is not None else match.group(2)).strip()


# Auto-responders put their "I am out of the office" first; later text is the person's.
_TEXT_HEAD = 400


def detect_machine(
    document: Document,
    headers: Sequence[tuple[str, str]],
    envelope_sender: str | None,
    rules: RuleSet,
) -> tuple[MachineKind | None, list[Evidence]]:
    """The kind of machine mail this is (None for a person's mail), with its evidence.

    Only the email channel calls this: chat channels have no headers, subject or envelope.
    """
    findings: list[tuple[str, Evidence]] = []
    for name, value in headers:
        check = _HEADER_CHECKS.get(name.lower())
        found = check(value) if check is not None else None
        if found is not None:
            findings.append((found[0], Evidence(SIGNAL, found[1], value.strip(), f"header:{name}")))
    findings.extend(_envelope(envelope_sender))
    for group, kind in ((rules.bounce_subject, "bounce"), (rules.auto_reply_subject, "auto_reply")):
        findings.extend(_found(document, kind, group.match(document.folded, document.subject_end)))
    head = rules.auto_reply_text.search(document, document.body_start + _TEXT_HEAD)
    findings.extend(_found(document, "auto_reply", head[0] if head else None))
    findings.extend(_payload(document))
    if not findings:
        return None, []
    strongest = max(findings, key=lambda finding: _STRENGTH[finding[0]])[0]
    return _KIND_OF[strongest], [evidence for _, evidence in findings]


def _envelope(sender: str | None) -> list[tuple[str, Evidence]]:
    if sender is None:
        return []
    if sender.strip() in ("", "<>"):  # RFC 5321 null reverse-path: DSNs and auto-replies
        return [("null_sender", Evidence(SIGNAL, "envelope.null_sender", "<>", "envelope"))]
    found = _sender_kind(_address(sender), "envelope")
    return [] if found is None else [(found[0], Evidence(SIGNAL, found[1], sender, "envelope"))]


def _payload(document: Document) -> list[tuple[str, Evidence]]:
    payload = _XML_PAYLOAD.match(document.folded, document.body_start)
    if payload is None:
        return []
    matched = document.text(payload).strip()
    return [("notification", Evidence(SIGNAL, "text.xml_payload", matched, "body"))]


def _found(
    document: Document, kind: str, hit: tuple[Rule, re.Match[str]] | None
) -> list[tuple[str, Evidence]]:
    if hit is None:
        return []
    rule, match = hit
    where = document.where(match.start())
    return [(kind, Evidence(SIGNAL, rule.name, document.text(match), where))]
