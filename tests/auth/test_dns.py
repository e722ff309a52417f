"""bccd.auth.dns against a real DNS server on loopback: answers, the TTL cache, SERVFAIL and timeouts as
temperror, and the per-message budget."""

from __future__ import annotations

import pytest

from bccd.auth.dns import AsyncDns, DnsBudget, DnsTempError
from bccd.config import DnsSettings, parse_dns_server
from tests.auth.conftest import resolver_for
from tests.dnsserver import DnsServer


async def test_txt_a_mx_answers(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.txt("acme.test", "v=spf1 -all", "x" * 300)
    dns_server.add("acme.test", "A", "192.0.2.1")
    dns_server.add("acme.test", "MX", "20 b.acme.test.", "10 a.acme.test.")
    budget = resolver.new_budget()
    txt = await resolver.lookup("ACME.test.", "TXT", budget)
    assert txt.exists and set(txt.records) == {"v=spf1 -all", "x" * 300}  # 255-byte strings joined
    assert (await resolver.lookup("acme.test", "A", budget)).records == ("192.0.2.1",)
    assert (await resolver.lookup("acme.test", "MX", budget)).records == ("a.acme.test", "b.acme.test")


async def test_nxdomain_and_empty_answers_are_answers(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.add("acme.test", "A", "192.0.2.1")
    budget = resolver.new_budget()
    missing = await resolver.lookup("nothing.test", "TXT", budget)
    empty = await resolver.lookup("acme.test", "TXT", budget)
    assert not missing.exists and missing.void
    assert empty.exists and empty.void


async def test_answers_are_cached_for_their_ttl(dns_server: DnsServer) -> None:
    now = [1000.0]
    resolver = AsyncDns(DnsSettings(servers=(dns_server.address,)), clock=lambda: now[0])
    dns_server.txt("acme.test", "hello")
    for _ in range(3):
        assert (await resolver.lookup("acme.test", "TXT", resolver.new_budget())).records == ("hello",)
    assert len(dns_server.queried("acme.test")) == 1
    now[0] += dns_server.zone.ttl + 1  # the record's TTL (300 s) has passed
    await resolver.lookup("acme.test", "TXT", resolver.new_budget())
    assert len(dns_server.queried("acme.test")) == 2


async def test_servfail_is_a_temperror_and_not_cached(dns_server: DnsServer, resolver: AsyncDns) -> None:
    dns_server.zone.servfail.add("broken.test")
    for _ in range(2):
        with pytest.raises(DnsTempError) as caught:
            await resolver.lookup("broken.test", "TXT", resolver.new_budget())
        assert caught.value.reason == "servfail"
    assert len(dns_server.queried("broken.test")) >= 2


async def test_no_answer_is_a_timeout(dns_server: DnsServer) -> None:
    resolver = resolver_for(dns_server, timeout=0.3, budget=5.0)
    dns_server.zone.silent_all = True
    budget = resolver.new_budget()
    with pytest.raises(DnsTempError) as caught:
        await resolver.lookup("acme.test", "TXT", budget)
    assert caught.value.reason == "timeout"
    assert not budget.exhausted


async def test_a_spent_budget_refuses_lookups_without_asking(dns_server: DnsServer) -> None:
    resolver = resolver_for(dns_server, timeout=5.0, budget=0.3)
    dns_server.zone.silent_all = True
    budget = resolver.new_budget()
    with pytest.raises(DnsTempError) as first:
        await resolver.lookup("acme.test", "TXT", budget)  # waits for what is left of the budget, no more
    assert first.value.reason == "budget"
    asked = len(dns_server.queried())
    with pytest.raises(DnsTempError) as second:
        await resolver.lookup("other.test", "TXT", budget)
    assert second.value.reason == "budget"
    assert budget.refused == 1 and budget.exhausted
    assert len(dns_server.queried()) == asked  # the refused lookup never reached the server


def test_budget_counts_against_its_clock() -> None:
    now = [0.0]
    budget = DnsBudget(2.0, clock=lambda: now[0])
    assert budget.take() == 2.0
    now[0] = 1.5
    assert budget.take() == 0.5
    now[0] = 2.0
    with pytest.raises(DnsTempError):
        budget.take()
    assert budget.queries == 2 and budget.refused == 1


async def test_names_dns_cannot_hold_are_nxdomain_without_a_query(
    dns_server: DnsServer, resolver: AsyncDns
) -> None:
    answer = await resolver.lookup("a" * 64 + ".test", "TXT", resolver.new_budget())
    assert not answer.exists
    assert dns_server.queried() == []


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("10.0.0.1", ("10.0.0.1", 53)),
        ("[::1]:5300", ("::1", 5300)),
        ("::1", ("::1", 53)),
    ],
)
def test_server_addresses(text: str, parsed: tuple[str, int]) -> None:
    assert parse_dns_server(text) == parsed


@pytest.mark.parametrize("text", ["dns.example:53", "127.0.0.1:0", "127.0.0.1:x", "[::1", "1.2.3.4:99999"])
def test_bad_server_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        DnsSettings(servers=(text,))
