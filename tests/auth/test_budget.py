"""The per-message DNS budget holds over the whole evaluation: a slow or dead resolver makes temperrors,
and once the budget is spent no further lookup is sent (asserted on the budget and the server's count)."""

from __future__ import annotations

from bccd.auth.evaluate import SenderAuthenticator
from bccd.metrics import Metrics
from tests.auth.conftest import resolver_for
from tests.auth.signing import sign
from tests.dnsserver import DnsServer
from tests.helpers import make_mail


async def test_slow_dns_stops_at_the_budget(dns_server: DnsServer) -> None:
    dns_server.zone.delay = 0.15  # every answer takes 0.15 s
    dns_server.txt("acme.test", "v=spf1 include:i1.test -all")
    for n in range(1, 10):
        dns_server.txt(f"i{n}.test", f"v=spf1 include:i{n + 1}.test -all")
    dns_server.txt("i10.test", "v=spf1 ip4:192.0.2.10 -all")
    metrics = Metrics()
    auth = SenderAuthenticator(resolver_for(dns_server, timeout=2.0, budget=0.5), metrics)
    result = await auth.evaluate(
        make_mail(), client_ip="192.0.2.10", mail_from="alice@acme.test", helo="h.test",
        from_addresses=["alice@acme.test"],
    )  # fmt: skip
    assert (result.spf.result, result.spf.reason) == ("temperror", "dns_budget")
    assert result.verdict == "temperror"
    # At most 0.5 / 0.15 sequential answers fit: the chain was cut long before its end.
    spf_names = [name for name, _ in dns_server.queried() if name.startswith("i")]
    assert len(spf_names) <= 3 and ("i10.test", "TXT") not in dns_server.queried()
    assert metrics.registry.get_sample_value("bccd_sender_auth_dns_budget_exhausted_total") == 1


async def test_dead_dns_makes_every_check_temperror(dns_server: DnsServer) -> None:
    dns_server.zone.silent_all = True
    auth = SenderAuthenticator(resolver_for(dns_server, timeout=5.0, budget=0.4))
    signed = sign(make_mail(), "acme.test")
    result = await auth.evaluate(
        signed, client_ip="192.0.2.10", mail_from="alice@acme.test", helo="h.test",
        from_addresses=["alice@acme.test"],
    )  # fmt: skip
    assert result.spf.reason == "dns_budget"
    assert [(d.result, d.reason) for d in result.dkim] == [("temperror", "dns_budget")]
    assert result.dmarc.result == "temperror"
    assert result.verdict == "temperror"
    # SPF record, DKIM key and DMARC policy were asked for, concurrently (perhaps more than once: the
    # resolver retries over UDP), and nothing after them.
    assert set(dns_server.queried()) == {
        ("_dmarc.acme.test", "TXT"), ("acme.test", "TXT"), ("s1._domainkey.acme.test", "TXT"),
    }  # fmt: skip
