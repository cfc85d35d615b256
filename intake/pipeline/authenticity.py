"""Is the From domain authentic? A verdict from DMARC, else aligned DKIM, else aligned SPF.

Pure: results in, `Authenticity` out. The results come either from the topmost
`Authentication-Results` header (RFC 8601) added by a trusted upstream (its authserv-id is
configured; anyone can write such a header, so others are ignored), or from our own DKIM and
SPF checks on the SMTP path (`channels.email.sender_checks`, which does the DNS). Pure:
channels may import it.

Alignment is DMARC's (RFC 7489 3.1): relaxed compares organizational domains (the Public
Suffix List decides where one ends), strict compares the domains exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import authres
from publicsuffixlist import PublicSuffixList

from intake.messages import Authenticity

PASS, FAIL, NONE = "pass", "fail", "none"
AR_HEADER = "authentication-results"


@dataclass(frozen=True, slots=True)
class MethodResult:
    """One method's outcome: dkim (domain d=), spf (MAIL FROM or HELO domain), dmarc (From)."""

    method: str
    result: str
    domain: str


@dataclass(frozen=True, slots=True)
class DmarcPolicy:
    """What a domain's `_dmarc` TXT record says about alignment (the p= is not our concern:
    any DMARC failure makes the sender unverified here)."""

    domain: str
    strict_dkim: bool = False
    strict_spf: bool = False


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package: no network


def org_domain(domain: str) -> str:
    """The organizational domain: mail.example.co.uk -> example.co.uk."""
    name = domain.strip().rstrip(".").lower()
    return _suffixes().privatesuffix(name) or name


def aligned(identifier: str, from_domain: str, *, strict: bool = False) -> bool:
    a, b = identifier.strip().rstrip(".").lower(), from_domain.strip().rstrip(".").lower()
    if not a or not b:
        return False
    return a == b if strict else org_domain(a) == org_domain(b)


def domain_of(address: str) -> str:
    """The domain of an address or of an `@domain` identity; "" when there is none."""
    return address.strip().strip("<>").rpartition("@")[2].rstrip(".").lower()


def parse_dmarc(domain: str, record: str) -> DmarcPolicy | None:
    """A `v=DMARC1; ...` TXT record, or None when it is not one (RFC 7489 6.3)."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip().lower()
    if tags.get("v") != "dmarc1" or "p" not in tags:
        return None
    return DmarcPolicy(domain, tags.get("adkim") == "s", tags.get("aspf") == "s")


def evaluate(
    from_domain: str,
    results: Sequence[MethodResult],
    *,
    dmarc: DmarcPolicy | None = None,
    source: str,
) -> Authenticity:
    """The verdict for `from_domain`, honouring a DMARC result, else aligned DKIM, else SPF.

    `dmarc` is the domain's published policy when we evaluate ourselves (then DMARC passes
    exactly when an aligned DKIM or SPF passes, and fails otherwise).
    """
    if not from_domain:
        return Authenticity(NONE, (f"{source}: no From domain",))
    for found in results:
        if found.method == "dmarc" and found.result in (PASS, FAIL):
            if not found.domain or aligned(found.domain, from_domain, strict=True):
                return Authenticity(found.result, (f"{source}: dmarc={found.result}",))
    strict_dkim = dmarc.strict_dkim if dmarc else False
    strict_spf = dmarc.strict_spf if dmarc else False
    dkim = _aligned(results, "dkim", from_domain, strict=strict_dkim)
    spf = _aligned(results, "spf", from_domain, strict=strict_spf)
    for found in (*dkim, *spf):
        if found.result == PASS:
            return Authenticity(PASS, (f"{source}: {_said(found)} aligned with {from_domain}",))
    if dmarc is not None:
        tried = ", ".join(_said(r) for r in results) or "no DKIM signature or SPF result"
        return Authenticity(FAIL, (f"{source}: dmarc=fail for {from_domain} ({tried})",))
    failed = [r for r in (*dkim, *spf) if r.result == FAIL]
    if failed:
        said = ", ".join(_said(r) for r in failed)
        return Authenticity(FAIL, (f"{source}: {said} for {from_domain}",))
    seen = ", ".join(_said(r) for r in results)
    return Authenticity(
        NONE, (f"{source}: nothing aligned with {from_domain}" + (f" ({seen})" if seen else ""),)
    )


def _aligned(
    results: Sequence[MethodResult], method: str, from_domain: str, *, strict: bool
) -> list[MethodResult]:
    return [
        r for r in results if r.method == method and aligned(r.domain, from_domain, strict=strict)
    ]


def _said(found: MethodResult) -> str:
    return f"{found.method}={found.result} ({found.domain or '?'})"


def trusted_results(
    headers: Iterable[tuple[str, str]], trusted_ids: Iterable[str]
) -> tuple[str, list[MethodResult]] | None:
    """The results of the topmost Authentication-Results header whose authserv-id is trusted,
    with that id; None when there is none. Headers arrive top first (the last hop on top)."""
    trusted = {t.strip().lower() for t in trusted_ids if t.strip()}
    if not trusted:
        return None
    for name, value in headers:
        if name.strip().lower() != AR_HEADER:
            continue
        # Cheap first: only a header naming a trusted id is parsed (authres takes ~0.5 ms).
        if value.partition(";")[0].strip().partition(" ")[0].lower() not in trusted:
            continue
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(value)
        except authres.AuthResError:
            continue  # unreadable: it cannot vouch for anything
        authserv_id = str(parsed.authserv_id or "").lower()
        if authserv_id in trusted:
            return authserv_id, [_method_result(r) for r in parsed.results]
    return None


def _method_result(result: authres.AuthenticationResult) -> MethodResult:
    method = str(result.method).lower()
    props = {(p.type, p.name): str(p.value or "") for p in result.properties}
    if method == "dkim":
        domain = props.get(("header", "d")) or domain_of(props.get(("header", "i"), ""))
    elif method == "spf":
        domain = domain_of(props.get(("smtp", "mailfrom"), "")) or domain_of(
            props.get(("smtp", "helo"), "")
        )
    else:
        domain = props.get(("header", "from"), "")
    return MethodResult(method, str(result.result).lower(), domain.lower())


def from_authentication_results(
    headers: Iterable[tuple[str, str]], from_domain: str, trusted_ids: Iterable[str]
) -> Authenticity | None:
    """The verdict a trusted upstream's header gives, or None when no trusted header is there."""
    found = trusted_results(headers, trusted_ids)
    if found is None:
        return None
    authserv_id, results = found
    return evaluate(from_domain, results, source=f"Authentication-Results from {authserv_id}")
