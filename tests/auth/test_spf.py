"""RFC 7208 check_host() through a real DNS server: every result, the mechanisms, macros and the limits."""

from __future__ import annotations

import ipaddress

import pytest

from bccd.auth.dns import AsyncDns
from bccd.auth.spf import MAX_DNS_TERMS, SpfResult, _Evaluator, check_spf, spf_identity
from bccd.config import DnsSettings
from tests.auth.conftest import resolver_for
from tests.dnsserver import DnsServer

CLIENT = "192.0.2.10"


async def spf(
    resolver: AsyncDns, ip: str = CLIENT, mail_from: str = "alice@acme.test", helo: str = "mx.acme.test"
) -> SpfResult:
    return await check_spf(resolver, resolver.new_budget(), ip, mail_from, helo)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", "pass"),
        ("v=spf1 ip4:198.51.100.1 -all", "fail"),
        ("v=spf1 ip4:198.51.100.1 ~all", "softfail"),
        ("v=spf1 ip4:198.51.100.1 ?all", "neutral"),
        ("v=spf1 ip4:198.51.100.1", "neutral"),  # no match, no all (§4.7)
        ("v=spf1 -ip4:192.0.2.10 +all", "fail"),
        ("v=spf1 ~ip4:192.0.2.10/32 -all", "softfail"),
        ("V=SPF1 IP4:192.0.2.10 -ALL", "pass"),  # case-insensitive (§4.6.1)
        ("v=spf1 ptr -all", "fail"),  # ptr is never a match (module docstring)
        ("v=spf1 foo=bar ip4:192.0.2.10 -all", "pass"),  # unknown modifiers are ignored (§6)
    ],
)
async def test_results_by_record(
    dns_server: DnsServer, resolver: AsyncDns, record: str, expected: str
) -> None:
    dns_server.txt("acme.test", record, "some-other=txt")
    result = await spf(resolver)
    assert (result.result, result.domain, result.identity) == (expected, "acme.test", "mailfrom")


async def test_none_without_a_record(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "google-site-verification=abc")
    assert (await spf(resolver)).result == "none"
    assert (await spf(resolver, mail_from="bob@no-such-domain.test")).result == "none"


async def test_temperror_on_servfail(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.zone.servfail.add("acme.test")
    result = await spf(resolver)
    assert (result.result, result.reason) == ("temperror", "dns_servfail")


async def test_temperror_on_timeout(dns_server: DnsServer) -> None:
    dns_server.zone.silent_all = True
    result = await spf(resolver_for(dns_server, timeout=0.3))
    assert (result.result, result.reason) == ("temperror", "dns_timeout")


async def test_temperror_inside_an_include(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 include:esp.test -all")
    dns_server.zone.servfail.add("esp.test")
    assert (await spf(resolver)).result == "temperror"


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        ({"acme.test": ["v=spf1 -all", "v=spf1 +all"]}, "multiple_spf_records"),
        ({"acme.test": ["v=spf1 ip4:192.0.2.300 -all"]}, "bad_ip_network"),
        ({"acme.test": ["v=spf1 ip4:192.0.2.0/33 -all"]}, "bad_ip_network"),
        ({"acme.test": ["v=spf1 ip6:192.0.2.1 -all"]}, "bad_ip_network"),
        ({"acme.test": ["v=spf1 frobnicate -all"]}, "unknown_mechanism"),
        ({"acme.test": ["v=spf1 include -all"]}, "syntax_error"),
        ({"acme.test": ["v=spf1 a/40 -all"]}, "bad_cidr"),
        ({"acme.test": ["v=spf1 exists:%{x}.acme.test -all"]}, "bad_macro"),
        ({"acme.test": ["v=spf1 redirect=a.test redirect=b.test"]}, "duplicate_redirect"),
        ({"acme.test": ["v=spf1 include:empty.test -all"]}, "include_without_record"),
        ({"acme.test": ["v=spf1 redirect=empty.test"]}, "redirect_without_record"),
        ({"acme.test": ["v=spf1 include:acme.test -all"]}, "too_many_dns_lookups"),  # an include loop
    ],
)
async def test_permerror(
    dns_server: DnsServer, resolver: AsyncDns, records: dict[str, list[str]], reason: str
) -> None:
    for name, texts in records.items():
        dns_server.txt(name, *texts)
    result = await spf(resolver)
    assert (result.result, result.reason) == ("permerror", reason)


async def test_syntax_error_anywhere_is_permerror_even_after_a_match(
    dns_server: DnsServer, resolver: AsyncDns
) -> None:
    dns_server.txt("acme.test", "v=spf1 ip4:192.0.2.10 bogus:thing -all")
    assert (await spf(resolver)).result == "permerror"  # §4.6: parsed whole before it is evaluated


async def test_ten_dns_terms_are_allowed_the_eleventh_is_permerror(
    dns_server: DnsServer, resolver: AsyncDns
) -> None:
    # A chain of includes: acme.test → i1 → … ; each include is one DNS-querying term.
    def chain(length: int) -> None:
        dns_server.reset()
        dns_server.txt("acme.test", "v=spf1 include:i1.test -all")
        for n in range(1, length):
            dns_server.txt(f"i{n}.test", f"v=spf1 include:i{n + 1}.test -all")
        dns_server.txt(f"i{length}.test", "v=spf1 ip4:192.0.2.10 -all")

    chain(MAX_DNS_TERMS)
    resolver.clear_cache()
    assert (await spf(resolver)).result == "pass"
    chain(MAX_DNS_TERMS + 1)
    resolver.clear_cache()
    result = await spf(resolver)
    assert (result.result, result.reason) == ("permerror", "too_many_dns_lookups")
    assert len(dns_server.queried("i11.test")) == 0  # stopped before the 11th term's lookup


async def test_third_void_lookup_is_permerror(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 a:n1.test a:n2.test ip4:198.51.100.9 -all")
    assert (await spf(resolver)).result == "fail"  # two void lookups are allowed
    dns_server.reset()
    resolver.clear_cache()
    dns_server.txt("acme.test", "v=spf1 a:n1.test a:n2.test a:n3.test -all")
    result = await spf(resolver)
    assert (result.result, result.reason) == ("permerror", "too_many_void_lookups")


async def test_a_and_mx_with_cidr(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 a/24 -all")
    dns_server.add("acme.test", "A", "192.0.2.200")
    assert (await spf(resolver)).result == "pass"
    dns_server.reset()
    resolver.clear_cache()
    dns_server.txt("acme.test", "v=spf1 mx:mail.test -all")
    dns_server.add("mail.test", "MX", "10 mx1.mail.test.", "20 mx2.mail.test.")
    dns_server.add("mx1.mail.test", "A", "198.51.100.1")
    dns_server.add("mx2.mail.test", "A", "192.0.2.10")
    assert (await spf(resolver)).result == "pass"
    assert (await spf(resolver, ip="198.51.100.2")).result == "fail"


async def test_more_than_ten_mx_hosts_is_permerror(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 mx -all")
    dns_server.add("acme.test", "MX", *[f"{n} mx{n}.acme.test." for n in range(11)])
    assert (await spf(resolver)).reason == "too_many_mx_hosts"


async def test_include_and_redirect(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 include:esp.test redirect=_spf.acme.test")
    dns_server.txt("esp.test", "v=spf1 ip4:203.0.113.0/24 -all")
    dns_server.txt("_spf.acme.test", "v=spf1 ip4:192.0.2.10 ~all")
    assert (await spf(resolver, ip="203.0.113.5")).result == "pass"  # via include
    assert (await spf(resolver)).result == "pass"  # include's fail is no match; the redirect passes
    assert (await spf(resolver, ip="198.51.100.1")).result == "softfail"  # the redirect target's all


async def test_exists_with_macros(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all")
    dns_server.add("10.2.0.192.alice._spf.acme.test", "A", "127.0.0.2")
    assert (await spf(resolver)).result == "pass"
    assert (await spf(resolver, mail_from="bob@acme.test")).result == "fail"
    assert ("10.2.0.192.alice._spf.acme.test", "A") in dns_server.queried()


async def test_ipv6_client(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 ip4:192.0.2.10 ip6:2001:db8::/32 a -all")
    dns_server.add("acme.test", "AAAA", "2001:db9::1")
    assert (await spf(resolver, ip="2001:db8::25")).result == "pass"
    assert (await spf(resolver, ip="2001:db9::1")).result == "pass"  # a → AAAA for an IPv6 client
    assert (await spf(resolver, ip="2001:dba::1")).result == "fail"
    assert (await spf(resolver, ip="::ffff:192.0.2.10")).result == "pass"  # IPv4-mapped is IPv4


async def test_helo_identity_when_mail_from_is_empty(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("mx.acme.test", "v=spf1 ip4:192.0.2.10 -all")
    result = await spf(resolver, mail_from="", helo="mx.acme.test")
    assert (result.result, result.domain, result.identity) == ("pass", "mx.acme.test", "helo")
    assert (await spf(resolver, mail_from="", helo="[192.0.2.10]")).result == "none"


def test_identity() -> None:
    assert spf_identity("<Alice@Acme.Test>", "x") == ("Alice@acme.test", "acme.test", "mailfrom")
    assert spf_identity(None, "mx.acme.test") == ("postmaster@mx.acme.test", "mx.acme.test", "helo")
    assert spf_identity("alice@localhost", "x") is None  # not a domain a record could be at
    assert spf_identity("", "192.0.2.1") is None


@pytest.mark.parametrize(
    ("spec", "expanded"),
    [  # RFC 7208 §7.4
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%%%_%-", "% %20"),
    ],
)
def test_macro_expansion(spec: str, expanded: str) -> None:
    ev = evaluator("192.0.2.3", "strong-bad@email.example.com")
    assert ev._expand(spec, "email.example.com") == expanded


def test_ipv6_macro() -> None:
    ev = evaluator("2001:db8::cb01", "a@email.example.com")
    assert ev._expand("%{ir}.%{v}._spf.%{d2}", "email.example.com") == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )


def evaluator(ip: str, sender: str) -> _Evaluator:
    resolver = AsyncDns(DnsSettings(servers=("127.0.0.1:9",)))  # never asked: expansion is local
    return _Evaluator(resolver, resolver.new_budget(), ipaddress.ip_address(ip), sender, "h.test")
