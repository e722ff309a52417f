"""RFC 7489 policy discovery and alignment, and bccd's verdict, through the whole evaluation (SPF, DKIM and
the DMARC lookup against a real DNS server, real signatures)."""

from __future__ import annotations

import pytest

from bccd.auth.dmarc import aligned, org_domain
from bccd.auth.evaluate import SenderAuthenticator, from_domain
from bccd.auth.verdict import Authentication
from tests.auth.conftest import resolver_for
from tests.auth.signing import publish, rsa_key, sign
from tests.dnsserver import DnsServer
from tests.helpers import make_mail

CLIENT = "192.0.2.10"


async def evaluate(
    server: DnsServer,
    raw: bytes,
    *,
    mail_from: str = "alice@acme.test",
    author: str = "alice@acme.test",
) -> Authentication:
    auth = SenderAuthenticator(resolver_for(server))
    return await auth.evaluate(
        raw, client_ip=CLIENT, mail_from=mail_from, helo="mx.test", from_addresses=[author]
    )


def mail(author: str = "alice@acme.test") -> bytes:
    return make_mail(sender=f"Alice <{author}>")


def test_organizational_domains() -> None:
    assert org_domain("mail.acme.example") == "acme.example"
    assert org_domain("a.b.example.co.uk") == "example.co.uk"
    assert org_domain("Sales.Acme.Test.") == "acme.test"
    assert org_domain("co.uk") == "co.uk"  # a public suffix is its own
    assert aligned("mail.acme.test", "acme.test", "r") and not aligned("mail.acme.test", "acme.test", "s")
    assert not aligned("acme.co.uk", "evil.co.uk", "r")


def test_one_from_domain_or_none() -> None:
    assert from_domain(mail(), ["alice@acme.test"]) == "acme.test"
    assert from_domain(mail(), ["alice@acme.test", "bob@other.test"]) is None
    assert from_domain(b"From: a@acme.test\r\nFrom: b@acme.test\r\n\r\nx", ["a@acme.test"]) is None
    assert from_domain(b"Subject: x\r\n\r\nx", []) is None


async def test_dkim_pass_aligned_is_dmarc_pass(dns_server: DnsServer) -> None:
    publish(dns_server, "acme.test", "s1", rsa_key())
    dns_server.txt("_dmarc.acme.test", "v=DMARC1; p=reject; rua=mailto:d@acme.test")
    result = await evaluate(dns_server, sign(mail(), "acme.test"), mail_from="bounce@esp.test")
    assert result.as_json() == {
        "spf": {"result": "none", "domain": "esp.test"},
        "dkim": [{"result": "pass", "domain": "acme.test", "selector": "s1"}],
        "dmarc": {"result": "pass", "policy": "reject", "aligned": ["dkim"]},
        "verdict": "pass",
    }


@pytest.mark.parametrize(("adkim", "expected"), [("", "pass"), ("; adkim=r", "pass"), ("; adkim=s", "fail")])
async def test_dkim_alignment_relaxed_and_strict(dns_server: DnsServer, adkim: str, expected: str) -> None:
    publish(dns_server, "mail.acme.test", "s1", rsa_key())
    dns_server.txt("_dmarc.acme.test", f"v=DMARC1; p=quarantine{adkim}")
    result = await evaluate(dns_server, sign(mail(), "mail.acme.test"), mail_from="")
    assert result.dmarc.result == expected and result.verdict == expected
    assert result.dmarc.policy == "quarantine"


@pytest.mark.parametrize(("aspf", "expected"), [("", "pass"), ("; aspf=s", "fail")])
async def test_spf_alignment_relaxed_and_strict(dns_server: DnsServer, aspf: str, expected: str) -> None:
    dns_server.txt("bounces.acme.test", f"v=spf1 ip4:{CLIENT} -all")
    dns_server.txt("_dmarc.acme.test", f"v=DMARC1; p=reject{aspf}")
    result = await evaluate(dns_server, mail(), mail_from="b-123@bounces.acme.test")
    assert result.spf.result == "pass"
    assert (result.dmarc.result, result.verdict) == (expected, expected)
    assert result.dmarc.aligned == (("spf",) if expected == "pass" else ())


async def test_policy_falls_back_to_the_organizational_domain(dns_server: DnsServer) -> None:
    dns_server.txt("_dmarc.acme.test", "v=DMARC1; p=reject; sp=quarantine")
    result = await evaluate(dns_server, mail("alice@sales.acme.test"), author="alice@sales.acme.test")
    assert (result.dmarc.result, result.dmarc.policy) == ("fail", "quarantine")  # sp= for a subdomain
    assert ("_dmarc.sales.acme.test", "TXT") in dns_server.queried()
    assert ("_dmarc.acme.test", "TXT") in dns_server.queried()


async def test_the_from_domains_own_record_wins(dns_server: DnsServer) -> None:
    dns_server.txt("_dmarc.acme.test", "v=DMARC1; p=reject")
    dns_server.txt("_dmarc.sales.acme.test", "v=DMARC1; p=none")
    result = await evaluate(dns_server, mail("alice@sales.acme.test"), author="alice@sales.acme.test")
    assert result.dmarc.policy == "none"


@pytest.mark.parametrize(
    ("records", "policy"),
    [
        (["v=DMARC1; p=reject", "v=DMARC1; p=none"], None),  # several records: no DMARC (§6.6.3)
        (["v=DMARC1; p=bogus; rua=mailto:d@acme.test"], "none"),  # bad p= with rua: p=none
        (["v=DMARC1; p=bogus"], None),  # bad p= without rua: no record
        (["v=spf1 -all"], None),
        (["v=DMARC1;p=REJECT"], "reject"),
    ],
)
async def test_record_selection(dns_server: DnsServer, records: list[str], policy: str | None) -> None:
    dns_server.txt("_dmarc.acme.test", *records)
    result = await evaluate(dns_server, mail())
    assert result.dmarc.policy == policy
    assert result.dmarc.result == ("none" if policy is None else "fail")


async def test_forwarded_mail_whose_signature_survives_passes(dns_server: DnsServer) -> None:
    """Forwarded through another domain's server: SPF checks the forwarder, the author's DKIM still holds."""
    publish(dns_server, "acme.test", "s1", rsa_key())
    dns_server.txt("acme.test", "v=spf1 ip4:203.0.113.1 -all")  # the author's own servers only
    dns_server.txt("forwarder.test", f"v=spf1 ip4:{CLIENT} -all")
    dns_server.txt("_dmarc.acme.test", "v=DMARC1; p=reject")
    forwarded = b"Received: from mx.acme.test by mx.forwarder.test\r\n" + sign(mail(), "acme.test")
    result = await evaluate(dns_server, forwarded, mail_from="srs0=x=acme.test=alice@forwarder.test")
    assert result.spf.result == "pass" and result.spf.domain == "forwarder.test"
    assert result.dmarc.aligned == ("dkim",)
    assert result.verdict == "pass"


async def test_forged_from_with_another_domains_valid_signature_fails(dns_server: DnsServer) -> None:
    publish(dns_server, "evil.test", "s1", rsa_key("evil"))
    dns_server.txt("evil.test", f"v=spf1 ip4:{CLIENT} -all")
    forged = sign(mail("alice@acme.test"), "evil.test", key=rsa_key("evil"))
    result = await evaluate(dns_server, forged, mail_from="mallory@evil.test")
    assert [d.result for d in result.dkim] == ["pass"] and result.spf.result == "pass"  # both valid…
    assert result.dmarc.aligned == ()  # …for evil.test, not for the author's acme.test
    assert (result.verdict, result.refusal) == ("fail", "dkim_not_author")


async def test_spf_fail_without_signature(dns_server: DnsServer) -> None:
    dns_server.txt("acme.test", "v=spf1 ip4:203.0.113.1 -all")
    result = await evaluate(dns_server, mail())
    assert (result.spf.result, result.verdict, result.refusal) == ("fail", "fail", "spf_failed")


async def test_spf_and_dkim_both_failing(dns_server: DnsServer) -> None:
    dns_server.txt("acme.test", "v=spf1 ip4:203.0.113.1 -all")
    publish(dns_server, "acme.test", "s1", rsa_key())
    broken = sign(mail(), "acme.test").replace(b"here is the proposal", b"here is the invoice!")
    result = await evaluate(dns_server, broken)
    assert (result.verdict, result.refusal) == ("fail", "multiple_failed")


async def test_nothing_published_is_verdict_none(dns_server: DnsServer) -> None:
    result = await evaluate(dns_server, mail())
    assert result.as_json() == {
        "spf": {"result": "none", "domain": "acme.test"},
        "dkim": [],
        "dmarc": {"result": "none", "policy": None, "aligned": []},
        "verdict": "none",
    }
    assert result.refusal == "not_authenticated"


async def test_spf_pass_of_the_from_domain_without_dmarc_passes(dns_server: DnsServer) -> None:
    dns_server.txt("acme.test", f"v=spf1 ip4:{CLIENT} -all")
    result = await evaluate(dns_server, mail())
    assert (result.dmarc.result, result.dmarc.aligned, result.verdict) == ("none", ("spf",), "pass")


async def test_spf_temperror_for_the_from_domain_is_temperror(dns_server: DnsServer) -> None:
    dns_server.zone.servfail.add("acme.test")
    result = await evaluate(dns_server, mail())
    assert (result.spf.result, result.verdict, result.refusal) == ("temperror", "temperror", "spf_temperror")


async def test_spf_temperror_for_an_unrelated_domain_does_not_hold_a_fail(dns_server: DnsServer) -> None:
    dns_server.zone.servfail.add("esp.test")
    dns_server.txt("_dmarc.acme.test", "v=DMARC1; p=reject")
    result = await evaluate(dns_server, mail(), mail_from="bounce@esp.test")
    assert result.spf.result == "temperror"
    assert result.verdict == "fail"  # esp.test could never align with acme.test


async def test_dmarc_temperror_keeps_only_what_strict_alignment_proves(dns_server: DnsServer) -> None:
    publish(dns_server, "acme.test", "s1", rsa_key())
    publish(dns_server, "mail.acme.test", "s1", rsa_key())
    dns_server.zone.servfail.add("_dmarc.acme.test")
    exact = await evaluate(dns_server, sign(mail(), "acme.test"))
    assert (exact.dmarc.result, exact.verdict) == ("temperror", "pass")  # aligned whatever the record says
    relaxed = await evaluate(dns_server, sign(mail(), "mail.acme.test"))
    assert (relaxed.verdict, relaxed.refusal) == ("temperror", "dns_temperror")  # adkim=s would fail it


async def test_no_single_from_domain_is_dmarc_permerror(dns_server: DnsServer) -> None:
    dns_server.txt("acme.test", f"v=spf1 ip4:{CLIENT} -all")
    two = b"From: a@acme.test\r\nFrom: b@evil.test\r\nSubject: x\r\n\r\nbody\r\n"
    result = await evaluate(dns_server, two)
    assert result.dmarc.result == "permerror" and result.verdict == "fail"
