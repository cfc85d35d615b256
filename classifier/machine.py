"""Machine mail: auto-replies, bounces, lists and bulk mail, which must never be acknowledged.

Header rules are protocol (RFC 3834, RFC 3464, RFC 2369/2919, RFC 8058 and what real mailers
add), so they live here in code; the subjects and texts machines write are language vocabulary
and live in the rule files.

Most findings decide alone. A few traits are only hints, because a person's mail can show one
of them (an HTML-only body, "opt out" in a signature, a "Backup failed" subject, an ESP's
header on a CRM-sent mail): the message is machine mail when two different hints meet. What
a machine writes about itself counts where a machine writes it: a delivery report's wording
opens the own text, a "do not reply" opens a line of the own text or the footer; quoted and
forwarded mail never counts.
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
    # a no-reply address with a suffix: "noreply-dmarc-support@", "no-reply+billing@"
    r"|^(?:[\w.+-]*[-_.])?(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply)[-_.+][\w.+-]*@"
    # web-form mailers', the cron daemon's, databases', backup, monitoring and fax servers'
    # system accounts
    r"|^(?:www-data|apache|nginx|nobody|daemon|anonymous|root|cron|crond|postgres|mysql|oracle"
    r"|backup|bacula|nagios|icinga|zabbix|monit|jenkins|fax\w*|hylafax|scanner\w*|robot"
    r"|automailer|auto[-_.]?mailer|autoreply|auto[-_.]?reply)@",
    re.I,
)
_LIST_SENDER = re.compile(r"^(?:owner-[\w.+-]+|[\w.+-]+-(?:request|owner|bounces?))@", re.I)
# Bulk senders' return paths: "bounces-...@", "bounce-mc...@", "news-bounces@", "abc@bounce.
# mailer.example", VERP "list+user=example.org@".
_BULK_RETURN = re.compile(
    r"^(?:[\w.+=-]*?bounces?(?:[-+._=]|@)|[\w.-]*\+[\w.-]*=[\w.-]+@|[^@\s]+@bounces?[.-])", re.I
)
# A To: that is only an empty group ("undisclosed-recipients:;", "IETF-Announce:;") hides a
# mass mailing's recipients (RFC 5322 3.4); a person's request names whom it is to.
_EMPTY_GROUP = re.compile(r"^\s*[^:,<>@\"]*:\s*;\s*$")
# A text that opens with an XML declaration is a machine's payload (lead feeds, ADF, monitoring
# exports), never a person's words.
_XML_PAYLOAD = re.compile(r"\s*<\?xml[\s?]", re.I)
# RFC 3464 per-message and per-recipient fields, typed ("rfc822;", "dns;", "smtp;"), as the
# email adapter writes a message/delivery-status part into the text. Mail clients show that
# part as an attachment, so a person pasting a report does not bring these lines along.
_DSN_FIELD = re.compile(
    r"^(?:reporting-mta|final-recipient|original-recipient|diagnostic-code|remote-mta)"
    r"[ \t]*:[ \t]*(?:dns|rfc822|smtp|x-[\w-]+|unknown)[ \t]*;",
    re.MULTILINE,
)
_DSN_LITERALS = ("-mta", "-recipient", "diagnostic-code")
# A line that ends with a colon introduces what follows ("I got this back:"): a delivery
# report after it is pasted by a person.
_INTRODUCED = re.compile(r":[ \t]*\n")
# What may stand before a machine's first words on their line: blanks, bullets, the brackets
# and bars around link texts ("[Unsubscribe]", "| Manage preferences |", "※").
_LEAD = " \t*[(#=>|<-\u2022\u00b7\u203b\u25a0\u3010"
_BLANKS = re.compile(r"\s*")
_MAX_LEAD = 200
_MAX_BULK_HITS = 8
# A forward's subject prefix (en, de "WG", fr "TR", es "RV", pt "ENC"): machines never add one.
_FORWARDED = re.compile(r"\s*(?:\[[^\]\n]{0,30}\]\s*)?(?:fw|fwd|wg|tr|rv|enc)\s*:")
_SENTENCE_ENDS = (".", "!", "?", "\u3002", "\uff01", "\uff1f")

# Mailers named in X-Mailer / User-Agent. Mass-mailing software sends bulk mail; issue
# trackers, monitors, backup and fax servers and the cron daemon send notifications; an
# application's mail library (a web form, a script) is only a hint.
_BULK_MAILER = re.compile(
    r"mass[\s-]?mail|bulk[\s-]?mail|newsletter|campaign|mailing[\s-]?list|e-?mail[\s-]?marketing"
    r"|phplist|mailchimp|sendblaster|acymailing|mailpoet|mailerlite|mailjet|sendinblue|brevo"
    r"|interspire|listmonk|mautic|sendy\b|group ?mail|atomic mail|turbo[\s-]?mailer|mass sender"
    r"|emarsys|exacttarget|cheetahmail|marketo|eloqua|pardot|hubspot|klaviyo|getresponse"
    r"|aweber|constant ?contact|campaign ?monitor|emailvision|selligent",
    re.I,
)
_NOTIFIER_MAILER = re.compile(
    r"\b(?:jira|confluence|redmine|bugzilla|mantis\w*|youtrack|trac|otrs|znuny|zammad"
    r"|request tracker|phabricator|servicenow|jenkins|gitlab|gerrit|nagios|icinga|zabbix|prtg"
    r"|munin|monit|cron\w*|anacron|veeam|backup exec|acronis|bacula|arcserve|hylafax|faxmail"
    r"|fax ?server|sql ?server|sqlagent|database ?mail)\b",
    re.I,
)
_APP_MAILER = re.compile(
    r"phpmailer|swift ?mailer|symfony|zend_mail|laminas|nodemailer|javamail|python|smtplib"
    r"|perl|mime-tools|mime::lite|mail::|php/|cdo for|cdosys|blat\b|sendemail|msmtp|ssmtp"
    r"|powershell|\.net|system\.net|mailkit|go-mail|postmark|sendgrid|amazon ?ses",
    re.I,
)
# Headers only bulk mailers add: campaign ids, RFC 8058 one-click unsubscribe, the Certified
# Senders Alliance's complaint address, newsletter and mailing ids.
_BULK_HEADERS = frozenset(
    {
        "list-unsubscribe-post",
        "x-csa-complaints",
        "x-newsletter",
        "x-newsletter-id",
        "x-mailing-id",
        "x-mailingid",
        "x-bulkmail",
        "x-bulk-mail",
        "x-mass-mail",
        "x-listmember",
        "x-list-unsubscribe",
    }
)
# Headers email service providers add to every message they send, bulk or transactional (a
# person's CRM-sent mail has them too): one hint together, however many of them there are.
_ESP_HEADERS = frozenset(
    {
        "feedback-id",
        "x-report-abuse",
        "x-report-abuse-to",
        "x-abuse-reports-to",
        "x-complaints-to",
        "x-ses-outgoing",
        "x-sg-eid",
        "x-sg-id",
        "x-mc-user",
        "x-mandrill-user",
        "x-pm-message-id",
        "x-sfmc-stack",
        "x-sib-id",
        "x-mailgun-sid",
        "x-mailgun-tag",
        "x-mailgun-variables",
        "x-mailer-recptid",
        "x-rpcampaign",
    }
)
# List managers' own headers: RFC 2369's other List- fields, ezmlm's Mailing-List, Mailman's
# X-BeenThere and X-Mailman-Version, SmartList's X-Mailing-List, fml's X-ML-Name, X-ML-Count and
# X-MLServer. A list server wrote or relayed the message; a person's client adds none of them.
_LIST_HEADERS = frozenset(
    {
        "list-help",
        "list-subscribe",
        "list-owner",
        "list-archive",
        "mailing-list",
        "x-mailing-list",
        "x-beenthere",
        "x-mailman-version",
        "x-list-administrivia",
        "x-ml-name",
        "x-ml-count",
        "x-mlserver",
    }
)
# Issue trackers, CI, monitors and the cron daemon stamp their own X- headers.
_NOTIFIER_HEADER = re.compile(
    r"x-(?:jira|redmine|bugzilla|gitlab|github|mantis|trac|rt|otrs|znuny|zammad|youtrack"
    r"|phabricator|jenkins|nagios|icinga|zabbix|gerrit|sentry|pagerduty|opsgenie|cron)-",
    re.I,
)
# System and role accounts that only machines write from (a hint: people answer as them too).
_SYSTEM_SENDER = re.compile(
    r"^(?:system|sysmail|reports?|reporting|notifier|scheduler|batch|jobs?|automation"
    r"|automated|mailbot)@",
    re.I,
)

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
    # An HTML body with no plain-text alternative (alone, or with its inline images): how
    # mass mailers send, and how some people's Outlook does. A hint.
    if lowered.startswith(("text/html", "multipart/related")):
        return "bulk", "header.content_type.html_only"
    if lowered.startswith("message/delivery-status"):
        return "bounce", "header.content_type.delivery_status"
    if not lowered.startswith("multipart/report"):
        return None
    report = _REPORT_TYPE.search(lowered)
    if report is not None and report.group(1) == "delivery-status":
        return "bounce", "header.content_type.delivery_status"
    return "report", "header.content_type.report"  # MDN read receipts, ARF abuse reports


def _mailer(value: str) -> Finding | None:
    if _BULK_MAILER.search(value):
        return "bulk", "header.x_mailer.bulk"
    if _NOTIFIER_MAILER.search(value):
        return "notification", "header.x_mailer.notifier"
    if _APP_MAILER.search(value):
        return "notification", "header.x_mailer.application"
    return None


def _reply_to(value: str) -> Finding | None:
    # Replies are not wanted: "Reply-To: noreply@..." on a mail from a normal-looking From.
    if _NO_REPLY.match(_address(value)):
        return "notification", "header.reply_to.no_reply"
    return None


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
    if _SYSTEM_SENDER.match(address):
        return "notification", "header.from.system_sender"
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
    "x-mailer": _mailer,
    "user-agent": _mailer,
    "x-loop": _flag("notification", "header.x_loop"),  # set by the ticket system that sent it
    "reply-to": _reply_to,
    "sender": lambda value: _sender_kind(_address(value), "header.sender"),
    "from": _from,
    "to": _to,
    "return-path": _return_path,
}
# Rules that are hints: only two different ones together make machine mail (see above).
_HINTS = frozenset(
    {
        "header.content_type.html_only",
        "header.x_mailer.application",
        "header.x_loop",
        "header.esp",
        "header.from.system_sender",
    }
)
_HTML_ONLY = "header.content_type.html_only"
_BULK_TEXT = ".machine.bulk_text."
_BULK_LINE = ".machine.bulk_line."  # the same traits as bulk_text, as a line of their own
_HINT_SECTIONS = (_BULK_TEXT, _BULK_LINE, ".machine.report_subject.")


def _check_header(name: str, value: str) -> Finding | None:
    lowered = name.lower()
    check = _HEADER_CHECKS.get(lowered)
    if check is not None:
        return check(value)
    if lowered in _BULK_HEADERS:
        return "bulk", "header.bulk_mailer"
    if lowered in _ESP_HEADERS:
        return "bulk", "header.esp"
    if lowered in _LIST_HEADERS:
        return "list", "header.list_manager"
    if not lowered.startswith("x-"):  # Received, Date, DKIM-Signature, ...: most headers
        return None
    if "campaign" in lowered:
        return "bulk", "header.bulk_mailer"
    if lowered.startswith("x-mailgun-"):
        return "bulk", "header.esp"
    if _NOTIFIER_HEADER.match(lowered):
        return "notification", "header.notifier"
    return None


def _address(value: str) -> str:
    match = _ADDRESS.search(value)
    if match is None:
        return value.strip()
    return (match.group(1) if match.group(1) is not None else match.group(2)).strip()


# Auto-responders put their "I am out of the office" first, delivery reports their "could not
# be delivered"; later text is the person's.
_TEXT_HEAD = 400

Found = tuple[str, Evidence]


def detect_machine(
    document: Document,
    headers: Sequence[tuple[str, str]],
    envelope_sender: str | None,
    rules: RuleSet,
) -> tuple[MachineKind | None, list[Evidence]]:
    """The kind of machine mail this is (None for a person's mail), with its evidence.

    Only the email channel calls this: chat channels have no headers, subject or envelope.
    """
    findings: list[Found] = []
    for name, value in headers:
        found = _check_header(name, value)
        if found is not None:
            findings.append((found[0], Evidence(SIGNAL, found[1], value.strip(), f"header:{name}")))
    findings.extend(_envelope(envelope_sender))
    findings.extend(_subject(document, rules))
    findings.extend(_text(document, rules))
    findings.extend(_payload(document))
    decisive = [found for found in findings if not _is_hint(found[1].rule)]
    hints = [found for found in findings if _is_hint(found[1].rule)]
    if not decisive and not _hints_agree([evidence for _, evidence in hints]):
        return None, []
    return _KIND_OF[_kind(decisive, hints)], [evidence for _, evidence in findings]


def _kind(decisive: list[Found], hints: list[Found]) -> str:
    """The most telling kind. A notice's own words ("You are receiving this because you
    subscribed") beside a bulk mailer's wording ("Unsubscribe") name a mailing: bulk."""
    strongest = max(decisive or hints, key=lambda finding: _STRENGTH[finding[0]])[0]
    if strongest == "notification" and any(_BULK_TEXT in _trait(e.rule) for _, e in hints):
        return "bulk"
    return strongest


def _hints_agree(hints: list[Evidence]) -> bool:
    """Two different hints. An HTML-only body counts only beside a bulk mailer's wording in
    the own text, or a "you receive this because" anywhere: a person's Outlook sends HTML-only
    mail about a "Weekly report", from a role account, or with "manage your email preferences"
    or an "Unsubscribe ..." line in the signature's footer."""
    traits = {_trait(evidence.rule) for evidence in hints}
    if len(traits - {_HTML_ONLY}) >= 2:
        return True
    return _HTML_ONLY in traits and any(_pairs_with_html(evidence) for evidence in hints)


def _trait(rule: str) -> str:
    return rule.replace(_BULK_LINE, _BULK_TEXT)


def _pairs_with_html(evidence: Evidence) -> bool:
    rule = _trait(evidence.rule)
    if rule.endswith(".why_received") or rule == "header.esp":
        return True
    return _BULK_TEXT in rule and evidence.where == "body"


def _is_hint(rule: str) -> bool:
    return rule in _HINTS or any(section in rule for section in _HINT_SECTIONS)


def _subject(document: Document, rules: RuleSet) -> list[Found]:
    if _FORWARDED.match(document.folded, 0, document.subject_end):
        return []  # "Fwd: Undeliverable: ...": a person passes a machine's mail on
    findings: list[Found] = []
    for group, kind in ((rules.bounce_subject, "bounce"), (rules.auto_reply_subject, "auto_reply")):
        findings.extend(_found(document, kind, group.match(document.folded, document.subject_end)))
    for group, kind in (
        (rules.notification_subject, "notification"),
        (rules.report_subject, "notification"),
    ):
        findings.extend(_found(document, kind, group.first(document.folded, document.subject_end)))
    return findings


def _text(document: Document, rules: RuleSet) -> list[Found]:
    findings: list[Found] = []
    head = document.body_start + _TEXT_HEAD
    auto_reply = rules.auto_reply_text.search(document, min(head, document.own_end))
    findings.extend(_found(document, "auto_reply", auto_reply[0] if auto_reply else None))
    findings.extend(_found(document, "bounce", _report(document, rules, head)))
    hits: dict[str, list[tuple[Rule, re.Match[str]]]] = {}
    for hit in rules.machine_text.search(document):
        if hit[1].start() >= document.body_start:
            hits.setdefault(hit[0].kind, []).append(hit)
    challenge = [hit for hit in hits.get("challenge_text", ()) if hit[1].start() < document.own_end]
    findings.extend(_found(document, "auto_reply", challenge[0] if challenge else None))
    # A machine's words about itself open a line or a sentence ("Please do not reply to this
    # e-mail."); inside a person's sentence they are quoted ('it says "do not reply"').
    notices = hits.get("notification_text", ())
    notice = next((hit for hit in notices if _opens(document, hit[1].start(), True)), None)
    findings.extend(_found(document, "notification", notice))
    # A link text alone on its line, below other content: a person's one-line "Unsubscribe"
    # is a request.
    first_line = _first_line_end(document)
    bulk = hits.get("bulk_text", []) + [
        hit
        for hit in hits.get("bulk_line", ())
        if hit[1].start() > first_line and _opens(document, hit[1].start(), False)
    ]
    for hit in bulk[:_MAX_BULK_HITS]:  # a footer pasted a thousand times is one trait
        findings.extend(_found(document, "bulk", hit))
    findings.extend(_delivery_status(document))
    return findings


def _first_line_end(document: Document) -> int:
    """Where the first line with content of the own text ends."""
    content = _BLANKS.match(document.folded, document.body_start, document.own_end)
    start = document.body_start if content is None else content.end()
    end = document.folded.find("\n", start, document.own_end)
    return document.own_end if end < 0 else end


def _opens(document: Document, start: int, sentence: bool) -> bool:
    """Whether a match in the body (`start` >= body_start) opens its line (or, with
    `sentence`, a sentence): only blanks, bullets and brackets stand before it."""
    folded = document.folded
    window = max(start - _MAX_LEAD, document.body_start)  # bounded: a line may be 64 Ki long
    line = max(folded.rfind("\n", window, start) + 1, window)
    lead = folded[line:start].rstrip(_LEAD)
    return not lead.lstrip(_LEAD) or (sentence and lead.endswith(_SENTENCE_ENDS))


def _report(document: Document, rules: RuleSet, head: int) -> tuple[Rule, re.Match[str]] | None:
    """A delivery report's wording opening the own text: the first such wording opens a line
    or a sentence, and no line ending in ":" introduces it (a person pasting a report)."""
    for hit in rules.bounce_text.search(document, min(head, document.own_end)):
        start = hit[1].start()
        if start < document.body_start:
            continue
        introduced = _INTRODUCED.search(document.folded, document.body_start, start) is not None
        return hit if _opens(document, start, True) and not introduced else None
    return None


def _delivery_status(document: Document) -> list[Found]:
    folded = document.folded
    if not any(literal in folded for literal in _DSN_LITERALS):
        return []
    field = _DSN_FIELD.search(folded, document.body_start)
    if field is None:
        return []
    evidence = Evidence(SIGNAL, "text.delivery_status", document.text(field), "body")
    return [("bounce", evidence)]


def _envelope(sender: str | None) -> list[Found]:
    if sender is None:
        return []
    if sender.strip() in ("", "<>"):  # RFC 5321 null reverse-path: DSNs and auto-replies
        return [("null_sender", Evidence(SIGNAL, "envelope.null_sender", "<>", "envelope"))]
    found = _sender_kind(_address(sender), "envelope")
    return [] if found is None else [(found[0], Evidence(SIGNAL, found[1], sender, "envelope"))]


def _payload(document: Document) -> list[Found]:
    payload = _XML_PAYLOAD.match(document.folded, document.body_start)
    if payload is None:
        return []
    matched = document.text(payload).strip()
    return [("notification", Evidence(SIGNAL, "text.xml_payload", matched, "body"))]


def _found(document: Document, kind: str, hit: tuple[Rule, re.Match[str]] | None) -> list[Found]:
    if hit is None:
        return []
    rule, match = hit
    where = document.where(match.start())
    return [(kind, Evidence(SIGNAL, rule.name, document.text(match), where))]
