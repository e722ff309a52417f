"""DNS for sender authentication: async lookups with a TTL cache and a per-message time budget (issue 11).

Everything SPF, DKIM and DMARC need from DNS goes through `AsyncDns.lookup`, on dnspython's asyncio
resolver, so no lookup ever blocks the event loop. One `DnsBudget` is shared by all lookups of one message:
each lookup may take at most what is left of it (and at most `[dns] timeout`), and once it is spent every
further lookup fails at once with `DnsTempError("budget")` — a slow or dead resolver costs a message at
most the budget, never a session. Timeouts, SERVFAIL and an exhausted budget are all `DnsTempError`
(temperror in RFC 7208/6376/7489 terms); NXDOMAIN and empty answers are answers, and are cached.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import dns.rrset

from bccd.config import DnsSettings, parse_dns_server

RDTYPES = ("TXT", "A", "AAAA", "MX")
CACHE_MAX_ENTRIES = 10_000  # names; the oldest go first
MAX_CACHE_TTL = 3600.0  # seconds: a record's own TTL, but never longer than this
NEGATIVE_TTL = 60.0  # seconds an NXDOMAIN/empty answer is kept (RFC 2308 lets it be the SOA minimum)
EDNS_PAYLOAD = 1232  # bytes: the DNS flag day 2020 size, big enough for 2048-bit DKIM keys over UDP


class DnsTempError(Exception):
    """No answer could be had: `timeout`, `servfail`, `budget` (the message's DNS time is spent) or
    `no_resolver` (no server configured, none in /etc/resolv.conf)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Answer:
    """`exists` is False for NXDOMAIN. `records`: TXT strings joined per record (RFC 7208 §3.3, RFC 6376
    §3.6.2.2) as latin-1 text, addresses for A/AAAA, exchange host names for MX (by preference)."""

    exists: bool
    records: tuple[str, ...]

    @property
    def void(self) -> bool:
        """RFC 7208 §4.6.4: NXDOMAIN or an empty answer."""
        return not self.records


NXDOMAIN = Answer(False, ())


class DnsBudget:
    """The DNS time one message may spend, shared by all its lookups (concurrent ones included)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self.started = clock()
        self.deadline = self.started + seconds
        self.queries = 0  # lookups sent to the resolver (cache hits are not counted)
        self.refused = 0  # lookups not even tried: the budget was spent

    def remaining(self) -> float:
        return self.deadline - self._clock()

    def elapsed(self) -> float:
        return self._clock() - self.started

    @property
    def exhausted(self) -> bool:
        return self.refused > 0 or self.remaining() <= 0

    def take(self) -> float:
        """Seconds the next lookup may take; DnsTempError("budget") when none are left."""
        left = self.remaining()
        if left <= 0:
            self.refused += 1
            raise DnsTempError("budget")
        self.queries += 1
        return left


class DnsClient(Protocol):
    async def lookup(self, name: str, rdtype: str, budget: DnsBudget) -> Answer: ...


class AsyncDns:
    """`[dns]` servers (or the system resolver), a per-query timeout, and a cache bounded by TTL and size."""

    def __init__(self, settings: DnsSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = settings.timeout
        self.budget_seconds = settings.budget
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str], tuple[float, Answer]] = OrderedDict()
        self._resolver: dns.asyncresolver.Resolver | None = _resolver(settings.servers, settings.timeout)

    def new_budget(self) -> DnsBudget:
        return DnsBudget(self.budget_seconds, self._clock)

    async def lookup(self, name: str, rdtype: str, budget: DnsBudget) -> Answer:
        assert rdtype in RDTYPES, rdtype
        key = (name.lower().rstrip("."), rdtype)
        cached = self._cache.get(key)
        if cached is not None:
            if cached[0] > self._clock():
                return cached[1]
            del self._cache[key]
        try:
            qname = dns.name.from_text(key[0])
        except (dns.exception.DNSException, UnicodeError):
            return NXDOMAIN  # not a name DNS can hold: nothing can be published there
        if self._resolver is None:
            raise DnsTempError("no_resolver")
        allowed = min(self.timeout, budget.take())
        try:
            async with asyncio.timeout(allowed):
                answer, ttl = await self._query(self._resolver, qname, rdtype, allowed)
        except TimeoutError:
            raise DnsTempError("budget" if budget.remaining() <= 0 else "timeout") from None
        self._remember(key, answer, ttl)
        return answer

    async def _query(
        self, resolver: dns.asyncresolver.Resolver, qname: dns.name.Name, rdtype: str, lifetime: float
    ) -> tuple[Answer, float]:
        try:
            result = await resolver.resolve(
                qname, rdtype, search=False, lifetime=lifetime, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return NXDOMAIN, NEGATIVE_TTL
        except dns.exception.Timeout:  # LifetimeTimeout too
            raise DnsTempError("timeout") from None
        except dns.exception.DNSException:
            # NoNameservers: every server answered SERVFAIL/REFUSED or garbage; the rest are alike to us.
            raise DnsTempError("servfail") from None
        if result.rrset is None:
            return Answer(True, ()), NEGATIVE_TTL
        return Answer(True, _records(result.rrset, rdtype)), float(result.rrset.ttl)

    def _remember(self, key: tuple[str, str], answer: Answer, ttl: float) -> None:
        ttl = min(max(ttl, 0.0), MAX_CACHE_TTL if answer.records else NEGATIVE_TTL)
        if ttl <= 0:
            return
        self._cache[key] = (self._clock() + ttl, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_MAX_ENTRIES:
            self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        self._cache.clear()


def _records(rrset: dns.rrset.RRset, rdtype: str) -> tuple[str, ...]:
    if rdtype == "TXT":
        return tuple(b"".join(r.strings).decode("latin-1") for r in rrset)
    if rdtype == "MX":
        ordered = sorted(rrset, key=lambda r: (r.preference, r.exchange.to_text()))
        return tuple(r.exchange.to_text(omit_final_dot=True).lower() for r in ordered)
    return tuple(r.address for r in rrset)


def _resolver(servers: Sequence[str], timeout: float) -> dns.asyncresolver.Resolver | None:
    """The configured servers, else /etc/resolv.conf; None when neither names one (lookups: temperror)."""
    if servers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in map(parse_dns_server, servers)
        ]
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            return None
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None  # ours: bounded, and shared by every lookup type
    resolver.use_edns(0, 0, EDNS_PAYLOAD)
    return resolver
