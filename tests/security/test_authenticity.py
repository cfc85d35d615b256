"""A spoofed From: the verdict from a trusted upstream's Authentication-Results, or from our own
DKIM (real signatures, dkimpy) and SPF (pyspf) checks against a zone served from a dict; and
what a failing sender loses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from forgery import Zone, key, mail, signed

from channels.email.relays import from_trusted_relay
from channels.email.sender_checks import (
    SenderChecks,
    check_dkim,
    check_sender,
    check_spf,
    sender_authenticity,
    sender_checks,
)
from classifier import classify as run_classifier
from classifier import load_rules
from intake.config import AuthenticationSettings
from intake.messages import Authenticity, ChannelKind
from intake.pipeline.authenticity import (
    DmarcPolicy,
    MethodResult,
    aligned,
    evaluate,
    from_authentication_results,
    org_domain,
    parse_dmarc,
)
from intake.pipeline.decide import ContactStatus, Identity, decide, verified_identity
from intake.policy.files import load_policy

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
TRUSTED = ("mx.relay.example",)
RELAY = "mx.relay.example;"


def ar(value: str) -> tuple[str, str]:
    return ("Authentication-Results", value)


# -- Authentication-Results from a trusted upstream ---------------------------------------


@pytest.mark.parametrize(
    ("headers", "verdict"),
    [
        ([ar("mx.relay.example; dmarc=pass header.from=acme.example")], "pass"),
        ([ar("mx.relay.example; dmarc=fail (p=reject) header.from=acme.example")], "fail"),
        # DMARC decides even where DKIM passed (for another domain).
        (
            [ar(f"{RELAY} dkim=pass header.d=evil.example; dmarc=fail header.from=acme.example")],
            "fail",
        ),
        # No DMARC result: an aligned DKIM pass (relaxed: a subdomain signs).
        ([ar("mx.relay.example; dkim=pass header.d=mail.acme.example")], "pass"),
        ([ar("mx.relay.example; dkim=pass header.i=@acme.example")], "pass"),
        # A valid signature of another domain proves nothing about acme.example.
        ([ar("mx.relay.example; dkim=pass header.d=evil.example")], "none"),
        ([ar("mx.relay.example; spf=pass smtp.mailfrom=bounce@acme.example")], "pass"),
        ([ar("mx.relay.example; spf=fail smtp.mailfrom=alice@acme.example")], "fail"),
        ([ar("mx.relay.example; spf=softfail smtp.mailfrom=alice@acme.example")], "none"),
        ([ar("mx.relay.example; dkim=fail header.d=acme.example")], "fail"),
        (
            [ar(f"{RELAY} dkim=fail header.d=acme.example; spf=pass smtp.mailfrom=acme.example")],
            "pass",
        ),
        ([ar("mx.relay.example; none")], "none"),
    ],
)
def test_a_trusted_header_decides_dmarc_then_dkim_then_spf(
    headers: list[tuple[str, str]], verdict: str
) -> None:
    found = from_authentication_results(headers, "acme.example", TRUSTED)
    assert found is not None and found.verdict == verdict
    assert all("mx.relay.example" in e for e in found.evidence)


def test_only_the_topmost_trusted_header_counts_and_others_are_ignored() -> None:
    headers = [
        ("Received", "from mx.relay.example by us"),
        ar("mx.relay.example; dmarc=fail header.from=acme.example"),  # the relay's own, on top
        ar("attacker.example; dmarc=pass header.from=acme.example"),  # anyone can write this
        ar("mx.relay.example; dmarc=pass header.from=acme.example"),  # forged by the sender
    ]
    found = from_authentication_results(headers, "acme.example", TRUSTED)
    assert found is not None and found.verdict == "fail"
    untrusted = [ar("attacker.example; dmarc=pass header.from=acme.example")]
    assert from_authentication_results(untrusted, "acme.example", TRUSTED) is None
    assert from_authentication_results(headers, "acme.example", ()) is None  # none trusted
    unreadable = [ar("mx.relay.example;;; dkim"), ar("MX.Relay.Example; dmarc=pass")]
    found = from_authentication_results(unreadable, "acme.example", TRUSTED)
    assert found is not None and found.verdict == "pass"  # authserv-ids compare caselessly


def test_a_dmarc_result_for_another_from_domain_is_not_ours() -> None:
    headers = [ar("mx.relay.example; dmarc=pass header.from=evil.example")]
    found = from_authentication_results(headers, "acme.example", TRUSTED)
    assert found is not None and found.verdict == "none"


@pytest.mark.parametrize(
    ("a", "b", "strict", "expected"),
    [
        ("mail.acme.example", "acme.example", False, True),
        ("mail.acme.example", "acme.example", True, False),
        ("acme.example.", "ACME.example", True, True),
        ("evil.co.uk", "acme.co.uk", False, False),  # the public suffix is not an organization
        ("a.acme.co.uk", "b.acme.co.uk", False, True),
        ("", "acme.example", False, False),
    ],
)
def test_alignment_uses_organizational_domains(
    a: str, b: str, strict: bool, expected: bool
) -> None:
    assert aligned(a, b, strict=strict) is expected


def test_org_domain_and_dmarc_records() -> None:
    assert org_domain("mail.example.co.uk") == "example.co.uk"
    assert parse_dmarc("acme.example", "v=DMARC1; p=reject; adkim=s") == DmarcPolicy(
        "acme.example", strict_dkim=True, strict_spf=False
    )
    assert parse_dmarc("acme.example", "v=spf1 -all") is None
    assert parse_dmarc("acme.example", "v=DMARC1; rua=mailto:x@acme.example") is None  # no p=


def test_our_own_dmarc_evaluation_honours_strict_alignment() -> None:
    sub_dkim = [MethodResult("dkim", "pass", "mail.acme.example")]
    relaxed = DmarcPolicy("acme.example")
    strict = DmarcPolicy("acme.example", strict_dkim=True)
    assert evaluate("acme.example", sub_dkim, dmarc=relaxed, source="t").verdict == "pass"
    failed = evaluate("acme.example", sub_dkim, dmarc=strict, source="t")
    assert failed.verdict == "fail" and "dmarc=fail" in failed.evidence[0]
    assert evaluate("", sub_dkim, source="t").verdict == "none"


# -- our own checks: real DKIM signatures, SPF, the domain's DMARC record ------------------


@pytest.fixture
def zone() -> Zone:
    zone = Zone()
    zone.publish_dkim("acme.example", key("acme"))
    zone.publish_dkim("evil.example", key("evil"))
    zone.add_txt("_dmarc.acme.example", b"v=DMARC1; p=reject")
    zone.add_txt("acme.example", b"v=spf1 ip4:192.0.2.0/24 -all")
    zone.add_txt("evil.example", b"v=spf1 ip4:198.51.100.7 -all")
    return zone


def checks(zone: Zone, **overrides: object) -> SenderChecks:
    values: dict[str, object] = {
        "verify_dkim": True, "verify_spf": True, "txt": zone.txt, "spf_lookup": zone.spf_lookup,
    } | overrides  # fmt: skip
    return SenderChecks(**values)  # type: ignore[arg-type]


def test_a_real_signature_of_the_from_domain_passes(zone: Zone) -> None:
    raw = signed(mail("Alice <alice@acme.example>"), "acme.example", key("acme"))
    assert check_dkim(raw, zone.txt) == [MethodResult("dkim", "pass", "acme.example")]
    verdict = check_sender(
        raw, "acme.example", ip="203.0.113.9", helo="mx.acme.example",
        mail_from="alice@acme.example", checks=checks(zone),
    )  # fmt: skip
    # SPF fails for this client, but the aligned DKIM signature passes: DMARC passes.
    assert verdict.verdict == "pass"
    assert verdict.evidence == ("our check: dkim=pass (acme.example) aligned with acme.example",)


def test_a_forged_from_with_a_valid_signature_of_another_domain_fails(zone: Zone) -> None:
    raw = signed(mail("Alice <alice@acme.example>"), "evil.example", key("evil"))
    assert check_dkim(raw, zone.txt) == [MethodResult("dkim", "pass", "evil.example")]
    verdict = check_sender(
        raw, "acme.example", ip="198.51.100.7", helo="mx.evil.example",
        mail_from="bounce@evil.example", checks=checks(zone),
    )  # fmt: skip
    assert verdict.verdict == "fail"
    [evidence] = verdict.evidence
    assert "dmarc=fail for acme.example" in evidence
    assert "dkim=pass (evil.example)" in evidence and "spf=pass (evil.example)" in evidence
    # Without a DMARC record for acme.example, nothing speaks for or against it.
    del zone.records[("_dmarc.acme.example", "TXT")]
    verdict = check_sender(
        raw, "acme.example", ip="198.51.100.7", helo="mx.evil.example",
        mail_from="bounce@evil.example", checks=checks(zone),
    )  # fmt: skip
    assert verdict.verdict == "none"


def test_a_signature_broken_in_transit_or_by_an_unknown_key_fails(zone: Zone) -> None:
    raw = signed(mail("alice@acme.example"), "acme.example", key("acme"))
    tampered = raw.replace(b"error 500", b"error 501")
    assert check_dkim(tampered, zone.txt) == [MethodResult("dkim", "fail", "acme.example")]
    other_key = signed(mail("alice@acme.example"), "acme.example", key("evil"))
    assert check_dkim(other_key, zone.txt) == [MethodResult("dkim", "fail", "acme.example")]
    del zone.records[("_dmarc.acme.example", "TXT")]  # no DMARC: the aligned DKIM fail says it
    verdict = check_sender(
        tampered, "acme.example", ip="", helo="", mail_from="", checks=checks(zone)
    )
    assert verdict.verdict == "fail"
    assert check_dkim(mail("alice@acme.example").as_bytes(), zone.txt) == []  # unsigned


@pytest.mark.parametrize(
    ("ip", "mail_from", "helo", "result", "domain"),
    [
        ("192.0.2.25", "alice@acme.example", "mx.acme.example", "pass", "acme.example"),
        ("203.0.113.9", "alice@acme.example", "mx.acme.example", "fail", "acme.example"),
        ("198.51.100.7", "", "evil.example", "pass", "evil.example"),  # null sender: HELO
        ("192.0.2.25", "x@nospf.example", "h.example", "none", "nospf.example"),
    ],
)
def test_spf_through_the_injected_resolver(
    zone: Zone, ip: str, mail_from: str, helo: str, result: str, domain: str
) -> None:
    assert check_spf(ip, helo, mail_from, zone.spf_lookup) == MethodResult("spf", result, domain)
    assert zone.asked  # the answers came from the zone, not from the network


def test_spf_follows_includes_and_bounds_void_lookups(zone: Zone) -> None:
    zone.add_txt("inc.example", b"v=spf1 include:acme.example -all")
    assert check_spf("192.0.2.1", "h", "a@inc.example", zone.spf_lookup).result == "pass"
    zone.add_txt("void.example", b"v=spf1 a:n1.example a:n2.example a:n3.example -all")
    assert check_spf("192.0.2.1", "h", "a@void.example", zone.spf_lookup).result == "permerror"


def test_a_trusted_upstream_header_from_a_trusted_relay_wins_over_our_own_check(
    zone: Zone,
) -> None:
    raw = signed(mail("alice@acme.example"), "evil.example", key("evil"))
    headers = (ar("mx.relay.example; dmarc=pass header.from=acme.example"),)
    both = checks(zone, trusted_authserv_ids=TRUSTED)
    upstream = sender_authenticity(
        raw, headers, "acme.example", checks=both, ip="127.0.0.1", relay=True
    )
    assert upstream.verdict == "pass" and "mx.relay.example" in upstream.evidence[0]
    ours = sender_authenticity(raw, (), "acme.example", checks=both, ip="127.0.0.1")
    assert ours.verdict == "fail"
    off = sender_authenticity(raw, headers, "acme.example", checks=SenderChecks())
    assert off == Authenticity()  # nothing configured: no verdict


def test_from_any_other_client_the_header_is_ignored_and_the_evidence_says_so(
    zone: Zone,
) -> None:
    raw = signed(mail("alice@acme.example"), "evil.example", key("evil"))
    headers = (ar("mx.relay.example; dmarc=pass header.from=acme.example"),)
    both = checks(zone, trusted_authserv_ids=TRUSTED)
    direct = sender_authenticity(raw, headers, "acme.example", checks=both, ip="192.0.2.7")
    assert direct.verdict == "fail"  # our own check decides
    assert direct.evidence[-1] == (
        "Authentication-Results from mx.relay.example ignored: "
        "client 192.0.2.7 is not a trusted relay"
    )
    only_trusted = SenderChecks(trusted_authserv_ids=TRUSTED)
    none = sender_authenticity(raw, headers, "acme.example", checks=only_trusted, ip="192.0.2.7")
    assert none.verdict == "none" and "ignored" in none.evidence[0]


@pytest.mark.parametrize(
    ("peer", "relays", "trusted"),
    [
        ("192.0.2.10", ["192.0.2.10/32"], True),
        ("192.0.2.11", ["192.0.2.10/32"], False),
        ("192.0.2.200", ["192.0.2.0/24"], True),
        ("::ffff:192.0.2.10", ["192.0.2.10/32"], True),  # an IPv4 client on a dual-stack socket
        ("::1", ["::1/128"], True),
        ("::1", ["127.0.0.1/32"], False),
        ("fe80::1%eth0", ["fe80::/64"], True),
        ("127.0.0.1", [], False),  # the default: nobody
        ("", ["0.0.0.0/0"], False),
        ("not an address", ["0.0.0.0/0"], False),
    ],
)
def test_from_trusted_relay(peer: str, relays: list[str], trusted: bool) -> None:
    networks = AuthenticationSettings(trusted_relays=relays).trusted_relays  # type: ignore[arg-type]
    assert from_trusted_relay(peer, networks) is trusted


def test_sender_checks_follow_the_settings() -> None:
    assert sender_checks(AuthenticationSettings()) is None
    made = sender_checks(AuthenticationSettings(trusted_authserv_ids=["mx.relay.example"]))
    assert made is not None and made.trusted_authserv_ids == ("mx.relay.example",)
    assert not made.verify_dkim and not made.verify_spf


# -- what a failing sender loses -----------------------------------------------------------

ALICE = Identity(
    ContactStatus.NOMINATED, organization_id=1, organization="Acme", plan="plus",
    contact_id=1, contact_name="Alice", matched_by="email",
)  # fmt: skip
FAILED = Authenticity("fail", ("our check: dmarc=fail for acme.example",))


@pytest.mark.parametrize(
    ("check", "channel", "require", "status", "unverified"),
    [
        (FAILED, ChannelKind.EMAIL, False, ContactStatus.KNOWN, True),
        (Authenticity(), ChannelKind.EMAIL, False, ContactStatus.NOMINATED, False),
        (Authenticity(), ChannelKind.EMAIL, True, ContactStatus.KNOWN, True),
        (Authenticity("pass", ("x",)), ChannelKind.EMAIL, True, ContactStatus.NOMINATED, False),
        # Chat senders are vouched for by their platform; `require` is about mail.
        (Authenticity(), ChannelKind.WHATSAPP, True, ContactStatus.NOMINATED, False),
    ],
)
def test_verified_identity(
    check: Authenticity, channel: ChannelKind, require: bool, status: str, unverified: bool
) -> None:
    found = verified_identity(ALICE, check, channel=channel, require=require)
    assert (found.status, found.unverified, found.sender_check) == (status, unverified, check)
    assert found.organization == "Acme"  # still the organization it claims, like any colleague


def test_a_spoofed_nominated_or_designated_contact_gets_no_privileges() -> None:
    rules = load_rules()
    found = run_classifier("Urgent: export fails", "Error 500.", (), rules, channel="email")
    policy = load_policy("circularo-saas")
    spoofed = verified_identity(ALICE, FAILED, channel=ChannelKind.EMAIL)
    decision = decide(policy, spoofed, ChannelKind.EMAIL, found, NOW)
    assert decision.flags == ("sender_unverified", "not_nominated")
    assert decision.record["authenticity"] == {
        "verdict": "fail",
        "evidence": ["our check: dmarc=fail for acme.example"],
        "unverified": True,
    }
    genuine = decide(policy, verified_identity(ALICE, Authenticity(), channel=ChannelKind.EMAIL),
                     ChannelKind.EMAIL, found, NOW)  # fmt: skip
    assert genuine.flags == () and "authenticity" not in genuine.record
    eve = Identity(ContactStatus.DESIGNATED, organization_id=2, plan="standard")
    scalr = load_policy("scalr")
    flags = decide(scalr, verified_identity(eve, FAILED, channel=ChannelKind.EMAIL),
                   ChannelKind.EMAIL, found, NOW).flags  # fmt: skip
    assert flags == ("sender_unverified", "not_designated")
