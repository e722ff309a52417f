"""One message's sender authentication: SPF, DKIM and the DMARC policy lookup run concurrently inside one
DNS budget, then combine into the verdict (bccd.auth.verdict). Called once per message at end of DATA."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence

from bccd.auth.dkim import DkimResult, header_block, verify_dkim
from bccd.auth.dmarc import PolicyLookup, evaluate, lookup_policy, normalize_domain, org_domain
from bccd.auth.dns import AsyncDns, DnsBudget
from bccd.auth.spf import SpfResult, check_spf
from bccd.auth.verdict import Authentication, combine
from bccd.logs import get_logger
from bccd.metrics import Metrics

log = get_logger("bccd.auth")

_FROM_FIELD = re.compile(rb"^from[ \t]*:", re.I | re.M)


def from_domain(raw: bytes, from_addresses: Sequence[str]) -> str | None:
    """The one RFC5322.From domain DMARC evaluates; None with no From, several From fields or several
    domains in it (RFC 7489 §6.6.1: such mail has no single author domain to authenticate)."""
    if len(_FROM_FIELD.findall(header_block(raw))) != 1:
        return None
    domains = {normalize_domain(a.rpartition("@")[2]) for a in from_addresses if "@" in a}
    return domains.pop() if len(domains) == 1 else None


class SenderAuthenticator:
    def __init__(self, dns: AsyncDns, metrics: Metrics | None = None) -> None:
        self._dns = dns
        self._metrics = metrics or Metrics()
        org_domain("example.com")  # loads the public suffix list now, not on the first message

    async def evaluate(
        self,
        raw: bytes,
        *,
        client_ip: str,
        mail_from: str | None,
        helo: str | None,
        from_addresses: Sequence[str],
    ) -> Authentication:
        budget = self._dns.new_budget()
        started = time.perf_counter()
        author = from_domain(raw, from_addresses)
        spf, dkim, policy = await asyncio.gather(
            check_spf(self._dns, budget, client_ip, mail_from, helo),
            verify_dkim(self._dns, budget, raw),
            self._policy(budget, author),
        )
        result = combine(author, spf, dkim, evaluate(author, spf, dkim, policy))
        self._observe(result, budget, time.perf_counter() - started)
        return result

    async def _policy(self, budget: DnsBudget, author: str | None) -> PolicyLookup:
        if author is None:
            return PolicyLookup("none", reason="no_single_from_domain")
        return await lookup_policy(self._dns, budget, author)

    def _observe(self, result: Authentication, budget: DnsBudget, seconds: float) -> None:
        self._metrics.auth_seconds.observe(seconds)
        self._metrics.auth_verdicts.labels(result.verdict).inc()
        if budget.exhausted:
            self._metrics.auth_budget_exhausted.inc()
        log.info(
            "sender_auth_evaluated",
            verdict=result.verdict,
            from_domain=result.from_domain,
            spf=_spf_fields(result.spf),
            dkim=[_dkim_fields(d) for d in result.dkim],
            dmarc={
                "result": result.dmarc.result,
                "policy": result.dmarc.policy,
                "reason": result.dmarc.reason,
            },
            reason=result.refusal,
            dns_queries=budget.queries,
            dns_refused=budget.refused,
            ms=round(seconds * 1000, 1),
        )


def _spf_fields(spf: SpfResult) -> dict[str, str | None]:
    return {"result": spf.result, "domain": spf.domain, "identity": spf.identity, "reason": spf.reason}


def _dkim_fields(d: DkimResult) -> dict[str, str | None]:
    return {"result": d.result, "domain": d.domain, "selector": d.selector, "reason": d.reason}
