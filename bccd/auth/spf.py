"""SPF (RFC 7208): is the connecting IP allowed to send for the MAIL FROM domain (or HELO when MAIL FROM is
empty)? Our own evaluator of `check_host()` on the async resolver (bccd.auth.dns).

Implemented as the RFC says: record selection (§4.5), every mechanism but `ptr`, `redirect=`, macros
(§7) in domain-specs, the limit of 10 DNS-querying terms (§4.6.4, include/a/mx/ptr/exists/redirect) and
of 10 MX hosts per `mx`, and 2 void lookups, each exceeding limit a permerror. Deliberate simplifications:
`ptr` (which §5.5 says SHOULD NOT be used) counts as a DNS term but never matches, so `%{p}` is "unknown";
`exp=` is parsed and ignored (bccd never explains a refusal with the domain's text).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

from bccd.auth.dns import DnsBudget, DnsClient, DnsTempError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PASS, FAIL, SOFTFAIL, NEUTRAL = "pass", "fail", "softfail", "neutral"
NONE, TEMPERROR, PERMERROR = "none", "temperror", "permerror"
RESULTS = (PASS, FAIL, SOFTFAIL, NEUTRAL, NONE, TEMPERROR, PERMERROR)  # RFC 7208 §2.6

MAX_DNS_TERMS = 10  # §4.6.4: include, a, mx, ptr, exists and redirect together
MAX_VOID_LOOKUPS = 2  # §4.6.4
MAX_MX_HOSTS = 10  # §4.6.4: address lookups per mx mechanism
MAX_DOMAIN_LENGTH = 253  # §7.3: longer expansions lose labels from the left
_QUALIFIERS = {"+": PASS, "-": FAIL, "~": SOFTFAIL, "?": NEUTRAL}
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", re.S)
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9_.-]*)(.*)", re.S)
_DUAL_CIDR = re.compile(r"(.*?)(?:/(\d{1,2}))?(?://(\d{1,3}))?", re.S)
_MACRO = re.compile(r"%\{([slodiphvcrtSLODIPHVCRT])(\d*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%", re.S)
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


@dataclass(frozen=True, slots=True)
class SpfResult:
    result: str  # one of RESULTS
    domain: str | None  # the domain checked (MAIL FROM's, or HELO's); None when there was none
    identity: str  # "mailfrom" or "helo"
    reason: str  # for logs: what decided, e.g. "matched ip4", "too_many_dns_lookups"

    def as_json(self) -> dict[str, str | None]:
        return {"result": self.result, "domain": self.domain}


class _PermError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Term:
    qualifier: str
    name: str  # mechanism name, lower case
    domain_spec: str | None
    cidr4: int | None = None
    cidr6: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None


@dataclass(frozen=True, slots=True)
class _Record:
    terms: tuple[_Term, ...]
    redirect: str | None


def spf_identity(mail_from: str | None, helo: str | None) -> tuple[str, str, str] | None:
    """(sender, domain, identity) to check (RFC 7208 §2.4): MAIL FROM, else postmaster@HELO; None if
    neither gives a domain that could hold a record (§4.3: then the result is none)."""
    sender = (mail_from or "").strip().strip("<>")
    identity = "mailfrom"
    if not sender:
        sender, identity = f"postmaster@{(helo or '').strip()}", "helo"
    local, at, domain = sender.rpartition("@")
    if not at:
        local, domain = "postmaster", sender
    domain = domain.lower().rstrip(".")
    if not _valid_domain(domain):
        return None
    return f"{local or 'postmaster'}@{domain}", domain, identity


async def check_spf(
    dns: DnsClient, budget: DnsBudget, ip: str, mail_from: str | None, helo: str | None
) -> SpfResult:
    """The SPF result for the client at `ip` sending as `mail_from` (or as HELO `helo` when it is empty)."""
    found = spf_identity(mail_from, helo)
    identity = "mailfrom" if (mail_from or "").strip("<> ") else "helo"
    if found is None:
        return SpfResult(NONE, None, identity, "no_checkable_domain")
    sender, domain, identity = found
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return SpfResult(NONE, domain, identity, "no_client_ip")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # RFC 7208 §5: an IPv4 client seen on a dual-stack socket
    evaluator = _Evaluator(dns, budget, address, sender, (helo or "").strip())
    try:
        result, reason = await evaluator.check_host(domain)
    except _PermError as exc:
        return SpfResult(PERMERROR, domain, identity, str(exc))
    except DnsTempError as exc:
        return SpfResult(TEMPERROR, domain, identity, f"dns_{exc.reason}")
    return SpfResult(result, domain, identity, reason)


class _Evaluator:
    """One check_host() run with its shared counters (the limits hold across include and redirect)."""

    def __init__(self, dns: DnsClient, budget: DnsBudget, ip: IpAddress, sender: str, helo: str) -> None:
        self._dns = dns
        self._budget = budget
        self._ip = ip
        self._sender = sender
        self._helo = helo
        self._dns_terms = 0
        self._voids = 0

    async def check_host(self, domain: str) -> tuple[str, str]:
        """(result, reason) for `domain`; raises _PermError and DnsTempError (§4)."""
        record = await self._record(domain)
        if record is None:
            return NONE, "no_spf_record"
        for term in record.terms:
            if await self._matches(term, domain):
                return _QUALIFIERS[term.qualifier], f"matched {term.name}"
        if record.redirect is not None:
            self._count_dns_term()
            target = self._expand(record.redirect, domain)
            result, reason = await self.check_host(target)
            if result == NONE:
                raise _PermError("redirect_without_record")  # §6.1
            return result, reason
        return NEUTRAL, "no_match"  # §4.7

    async def _record(self, domain: str) -> _Record | None:
        answer = await self._dns.lookup(domain, "TXT", self._budget)
        found = [r for r in answer.records if _is_spf(r)]
        if not found:
            return None
        if len(found) > 1:
            raise _PermError("multiple_spf_records")  # §4.5
        return _parse(found[0])

    def _count_dns_term(self) -> None:
        self._dns_terms += 1
        if self._dns_terms > MAX_DNS_TERMS:
            raise _PermError("too_many_dns_lookups")

    async def _lookup(self, name: str, rdtype: str) -> tuple[str, ...]:
        answer = await self._dns.lookup(name, rdtype, self._budget)
        if answer.void:
            self._voids += 1
            if self._voids > MAX_VOID_LOOKUPS:
                raise _PermError("too_many_void_lookups")
        return answer.records

    async def _matches(self, term: _Term, domain: str) -> bool:
        name = term.name
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            assert term.network is not None
            return term.network.version == self._ip.version and self._ip in term.network
        self._count_dns_term()
        target = self._expand(term.domain_spec, domain) if term.domain_spec else domain
        if name == "include":
            result, _ = await self.check_host(target)
            if result == PASS:
                return True
            if result in (FAIL, SOFTFAIL, NEUTRAL):
                return False
            raise _PermError("include_without_record")  # §5.2: none (and permerror) become permerror
        if name == "ptr":
            return False  # not evaluated (module docstring)
        if name == "exists":
            return bool(await self._lookup(target, "A"))  # §5.7: always an A query
        if name == "a":
            return self._in_any(await self._lookup(target, self._address_type()), term)
        # mx
        hosts = [h for h in await self._lookup(target, "MX") if h and h != "."]
        if len(hosts) > MAX_MX_HOSTS:
            raise _PermError("too_many_mx_hosts")
        for host in hosts:
            answer = await self._dns.lookup(host, self._address_type(), self._budget)
            if self._in_any(answer.records, term):
                return True
        return False

    def _address_type(self) -> str:
        return "A" if self._ip.version == 4 else "AAAA"

    def _in_any(self, addresses: tuple[str, ...], term: _Term) -> bool:
        prefix = term.cidr4 if self._ip.version == 4 else term.cidr6
        for text in addresses:
            try:
                network = ipaddress.ip_network(
                    f"{text}/{prefix}" if prefix is not None else text, strict=False
                )
            except ValueError:
                continue
            if network.version == self._ip.version and self._ip in network:
                return True
        return False

    def _expand(self, spec: str, domain: str) -> str:
        """§7 macro expansion of a domain-spec; the result trimmed to 253 characters from the left."""
        local, _, sender_domain = self._sender.rpartition("@")
        values = {
            "s": self._sender,
            "l": local,
            "o": sender_domain,
            "d": domain,
            "i": _ip_macro(self._ip),
            "p": "unknown",
            "v": "in-addr" if self._ip.version == 4 else "ip6",
            "h": self._helo,
        }

        def one(match: re.Match[str]) -> str:
            text = match.group(0)
            if text == "%%":
                return "%"
            if text == "%_":
                return " "
            if text == "%-":
                return "%20"
            letter = match.group(1)
            if letter is None:
                raise _PermError("bad_macro")
            if letter.lower() in "crt":
                raise _PermError("bad_macro")  # §7.2: only in exp= text
            value = values[letter.lower()]
            parts = re.split("[" + re.escape(match.group(4) or ".") + "]", value)
            if match.group(3):
                parts.reverse()
            if match.group(2):
                keep = int(match.group(2))
                if keep == 0:
                    raise _PermError("bad_macro")
                parts = parts[-keep:]
            out = ".".join(parts)
            return urllib.parse.quote(out, safe="") if letter.isupper() else out

        expanded = _MACRO.sub(one, spec).rstrip(".").lower()
        while len(expanded) > MAX_DOMAIN_LENGTH and "." in expanded:
            expanded = expanded.partition(".")[2]
        return expanded


def _is_spf(text: str) -> bool:
    lowered = text.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def _parse(text: str) -> _Record:
    """A whole record, or _PermError for any syntax error anywhere in it (§4.6)."""
    terms: list[_Term] = []
    redirect: str | None = None
    seen: set[str] = set()
    for raw in text.split()[1:]:
        mechanism = _MECHANISM.fullmatch(raw)
        modifier = _MODIFIER.fullmatch(raw)
        if modifier and not (mechanism and mechanism.group(3)[:1] in (":", "/")):
            name = modifier.group(1).lower()
            if name in ("redirect", "exp"):
                if name in seen:
                    raise _PermError(f"duplicate_{name}")  # §6
                seen.add(name)
                _check_macros(modifier.group(2))
                if name == "redirect":
                    redirect = modifier.group(2)
            continue  # unknown modifiers are ignored (§6)
        if mechanism is None:
            raise _PermError("syntax_error")
        terms.append(_term(mechanism.group(1) or "+", mechanism.group(2).lower(), mechanism.group(3)))
    # §6.1: with an `all` mechanism redirect= is never reached; it is kept as parsed, which is the same.
    return _Record(tuple(terms), redirect)


def _term(qualifier: str, name: str, rest: str) -> _Term:
    if name not in _MECHANISMS:
        raise _PermError("unknown_mechanism")
    if name == "all":
        if rest:
            raise _PermError("syntax_error")
        return _Term(qualifier, name, None)
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise _PermError("syntax_error")
        try:
            network = ipaddress.ip_network(rest[1:], strict=False)
        except ValueError:
            raise _PermError("bad_ip_network") from None
        if network.version != (4 if name == "ip4" else 6):
            raise _PermError("bad_ip_network")
        if "/" not in rest and network.prefixlen != network.max_prefixlen:
            raise _PermError("bad_ip_network")
        return _Term(qualifier, name, None, network=network)
    domain_spec: str | None = None
    cidr4 = cidr6 = None
    if name in ("a", "mx"):
        match = _DUAL_CIDR.fullmatch(rest)
        assert match is not None  # the pattern matches any text
        rest = match.group(1)
        cidr4 = int(match.group(2)) if match.group(2) else None
        cidr6 = int(match.group(3)) if match.group(3) else None
        if (cidr4 is not None and cidr4 > 32) or (cidr6 is not None and cidr6 > 128):
            raise _PermError("bad_cidr")
    if rest:
        if not rest.startswith(":") or len(rest) < 2:
            raise _PermError("syntax_error")
        domain_spec = rest[1:]
        _check_macros(domain_spec)
    elif name in ("include", "exists"):
        raise _PermError("syntax_error")  # their domain-spec is required
    return _Term(qualifier, name, domain_spec, cidr4, cidr6)


def _check_macros(spec: str) -> None:
    for match in _MACRO.finditer(spec):
        if match.group(0) == "%":
            raise _PermError("bad_macro")


def _ip_macro(ip: IpAddress) -> str:
    if ip.version == 4:
        return str(ip)
    return ".".join(ip.exploded.replace(":", ""))  # §7.3: dot-separated nibbles


def _valid_domain(domain: str) -> bool:
    """A multi-label name whose labels DNS can hold (§4.3); IP literals and bare hosts are not."""
    if not domain or len(domain) > MAX_DOMAIN_LENGTH or "." not in domain or domain.startswith("["):
        return False
    try:
        ipaddress.ip_address(domain)
        return False
    except ValueError:
        pass
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return all(_LABEL.fullmatch(label) for label in ascii_domain.split("."))
