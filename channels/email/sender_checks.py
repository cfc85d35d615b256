"""Our own sender checks on the SMTP path: DKIM (dkimpy), SPF (pyspf) and the From domain's
DMARC record, each through an injectable DNS lookup (tests serve records from a dict; no
real DNS in tests). Blocking: the SMTP channel runs `check_sender` in a worker thread.

`sender_authenticity` picks the evidence: a trusted upstream's Authentication-Results header
when there is one and the client that handed us the mail is a trusted relay
(`channels.email.relays`; behind a relay, the client we see is the relay, so our own SPF would
judge the wrong host), else our own checks where enabled, else nothing ("none"). A trusted
upstream's header from any other client is ignored, and the evidence says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dkim
import dkim.util
import spf

from intake.config import AuthenticationSettings
from intake.messages import Authenticity, ChannelKind, InboundMessage, Intake, Receipt
from intake.pipeline.authenticity import (
    DmarcPolicy,
    MethodResult,
    domain_of,
    evaluate,
    from_authentication_results,
    org_domain,
    parse_dmarc,
    trusted_results,
)

log = logging.getLogger(__name__)

# dkimpy's own seam: a TXT lookup, name -> the record's text or None.
TxtLookup = Callable[..., bytes | None]
# pyspf's seam: (name, qtype) -> [((name, qtype), value), ...] as spf.DNSLookup answers.
SpfLookup = Callable[[str, str], Sequence[tuple[tuple[str, str], Any]]]
MAX_SIGNATURES = 5  # each costs a DNS lookup and an RSA verification


def system_spf_lookup(name: str, qtype: str) -> Sequence[tuple[tuple[str, str], Any]]:
    """pyspf's resolver (dnspython), with a short timeout."""
    return list(spf.DNSLookup(name, qtype, True, 5))


@dataclass(frozen=True, slots=True)
class SenderChecks:
    """Which of our own checks run, and the DNS they use."""

    verify_dkim: bool = False
    verify_spf: bool = False
    txt: TxtLookup = dkim.get_txt
    spf_lookup: SpfLookup = system_spf_lookup
    trusted_authserv_ids: tuple[str, ...] = ()


def check_dkim(raw: bytes, txt: TxtLookup) -> list[MethodResult]:
    """Each DKIM signature's result and signing domain (d=)."""
    try:
        message = dkim.DKIM(raw)
    except dkim.DKIMException as exc:
        return [MethodResult("dkim", "permerror", f"unreadable: {exc}")]
    names = [value for name, value in message.headers if name.lower() == b"dkim-signature"]
    results = []
    for index, value in enumerate(names[:MAX_SIGNATURES]):
        try:
            domain = dkim.util.parse_tag_value(value).get(b"d", b"").decode("ascii").lower()
        except (dkim.util.InvalidTagValueList, UnicodeDecodeError):
            results.append(MethodResult("dkim", "permerror", ""))
            continue
        try:
            ok = message.verify(index, dnsfunc=txt)
        except dkim.DKIMException as exc:
            log.info("DKIM signature of %r not verified: %s", domain, exc)
            ok = False
        results.append(MethodResult("dkim", "pass" if ok else "fail", domain))
    return results


class _SpfQuery(spf.query):  # type: ignore[misc]
    """pyspf's query with its DNS lookups through `lookup` (pyspf reads a module global)."""

    def __init__(self, lookup: SpfLookup, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lookup = lookup

    def dns(
        self, name: str, qtype: str, cnames: Any = None, ignore_void: bool = False
    ) -> list[Any]:
        name = str(name).rstrip(".").lower()
        cached: list[Any] = self.cache.get((name, qtype), [])
        if cached:
            return cached
        for (answer_name, answer_type), value in self._lookup(name, qtype):
            self.cache.setdefault((answer_name.lower(), answer_type), []).append(value)
        result: list[Any] = self.cache.get((name, qtype), [])
        if not result and not ignore_void:
            self.void_lookups += 1  # RFC 7208 4.6.4: a bound on lookups that find nothing
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


def check_spf(ip: str, helo: str, mail_from: str, lookup: SpfLookup) -> MethodResult:
    """SPF for the client `ip` and the MAIL FROM (or, for the null sender, HELO) domain."""
    sender = mail_from or f"postmaster@{helo}"
    query = _SpfQuery(lookup, i=ip, s=sender, h=helo, timeout=10)
    result, _code, _why = query.check()
    return MethodResult("spf", str(result), domain_of(sender))


def dmarc_policy(from_domain: str, txt: TxtLookup) -> DmarcPolicy | None:
    """The From domain's DMARC record, else its organizational domain's (RFC 7489 6.6.3)."""
    for domain in dict.fromkeys((from_domain, org_domain(from_domain))):
        try:
            record = txt(f"_dmarc.{domain}".encode())
        except Exception as exc:  # any resolver failure: no policy known
            log.info("DMARC lookup for %r failed: %s", domain, type(exc).__name__)
            return None
        if record:
            found = parse_dmarc(domain, record.decode("utf-8", "replace"))
            if found is not None:
                return found
    return None


def check_sender(
    raw: bytes, from_domain: str, *, ip: str, helo: str, mail_from: str, checks: SenderChecks
) -> Authenticity:
    """Our own verdict from DKIM and SPF (as enabled) and the domain's DMARC record."""
    results: list[MethodResult] = []
    if checks.verify_dkim:
        results.extend(check_dkim(raw, checks.txt))
    if checks.verify_spf and ip:
        results.append(check_spf(ip, helo, mail_from, checks.spf_lookup))
    dmarc = dmarc_policy(from_domain, checks.txt) if from_domain else None
    return evaluate(from_domain, results, dmarc=dmarc, source="our check")


def sender_authenticity(
    raw: bytes,
    headers: Iterable[tuple[str, str]],
    from_domain: str,
    *,
    checks: SenderChecks,
    ip: str = "",
    helo: str = "",
    mail_from: str = "",
    relay: bool = False,
) -> Authenticity:
    """The verdict for a message's From domain (see the module docstring for the order);
    `relay`: the client `ip` is a trusted relay, whose upstream's header may be believed."""
    upstream = trusted_results(headers, checks.trusted_authserv_ids)
    if upstream is not None and relay:
        authserv_id, results = upstream
        source = f"Authentication-Results from {authserv_id}"
        return evaluate(from_domain, results, source=source)
    ignored: tuple[str, ...] = ()
    if upstream is not None:  # anyone can write one: only a trusted relay's counts
        ignored = (
            f"Authentication-Results from {upstream[0]} ignored: "
            f"client {ip or '?'} is not a trusted relay",
        )
    if checks.verify_dkim or checks.verify_spf:
        ours = check_sender(raw, from_domain, ip=ip, helo=helo, mail_from=mail_from, checks=checks)
        return replace(ours, evidence=(*ours.evidence, *ignored))
    return Authenticity(evidence=ignored)


def sender_checks(settings: AuthenticationSettings) -> SenderChecks | None:
    """The checks `[authentication]` asks for on the SMTP path; None when there are none."""
    if not (settings.trusted_authserv_ids or settings.verify_dkim or settings.verify_spf):
        return None
    return SenderChecks(
        verify_dkim=settings.verify_dkim,
        verify_spf=settings.verify_spf,
        trusted_authserv_ids=tuple(settings.trusted_authserv_ids),
    )


class UpstreamVerdict:
    """An `Intake` that gives mail without a verdict yet (read by IMAP) the one a trusted
    upstream's Authentication-Results header states; the SMTP channel has judged its own."""

    def __init__(self, intake: Intake, trusted_authserv_ids: Sequence[str]) -> None:
        self.intake = intake
        self.trusted = tuple(trusted_authserv_ids)

    async def __call__(self, message: InboundMessage) -> Receipt:
        if message.channel is ChannelKind.EMAIL and not message.authenticity.evidence:
            domain = message.sender.rpartition("@")[2] if "@" in message.sender else ""
            found = from_authentication_results(message.headers, domain, self.trusted)
            if found is not None:
                message = replace(message, authenticity=found)
        return await self.intake(message)


def with_upstream_verdict(intake: Intake, settings: AuthenticationSettings) -> Intake:
    if not settings.trusted_authserv_ids:
        return intake
    return UpstreamVerdict(intake, settings.trusted_authserv_ids)
