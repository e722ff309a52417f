"""DMARC (RFC 7489): does SPF or DKIM authenticate the `From:` domain, and what does its owner ask for?

Policy discovery (§6.6.3): the TXT record at `_dmarc.<From domain>`, else at `_dmarc.<organizational
domain>` (the public suffix list, from the `publicsuffixlist` package's bundled copy: no network), where
`sp=` (when given) replaces `p=`. Identifier alignment (§3.1): an SPF pass for the MAIL FROM (or HELO)
domain, or a DKIM pass of `d=`, counts when it equals the From domain (strict, `aspf=s`/`adkim=s`) or
shares its organizational domain (relaxed, the default).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from bccd.auth.dkim import DkimResult
from bccd.auth.dns import DnsBudget, DnsClient, DnsTempError
from bccd.auth.spf import SpfResult

PASS, FAIL, NONE, TEMPERROR, PERMERROR = "pass", "fail", "none", "temperror", "permerror"
RESULTS = (PASS, FAIL, NONE, TEMPERROR, PERMERROR)
POLICIES = ("none", "quarantine", "reject")
RELAXED, STRICT = "r", "s"


@dataclass(frozen=True, slots=True)
class DmarcPolicy:
    domain: str  # where the record was found (the From domain or its organizational domain)
    policy: str  # p=, or sp= for a subdomain of the organizational domain
    adkim: str = RELAXED
    aspf: str = RELAXED


@dataclass(frozen=True, slots=True)
class PolicyLookup:
    status: str  # "found", "none" or "temperror"
    policy: DmarcPolicy | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DmarcResult:
    result: str  # one of RESULTS
    policy: str | None  # the domain owner's policy; None without a record
    aligned: tuple[str, ...]  # "spf", "dkim": the passing identifiers aligned with the From domain
    reason: str  # for logs

    def as_json(self) -> dict[str, object]:
        return {"result": self.result, "policy": self.policy, "aligned": list(self.aligned)}


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled list once (~0.2 s)


def normalize_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def org_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label; the domain itself when it is a public suffix."""
    domain = normalize_domain(domain)
    return _psl().privatesuffix(domain) or domain


def aligned(identifier: str | None, from_domain: str, mode: str) -> bool:
    if not identifier:
        return False
    a, b = normalize_domain(identifier), normalize_domain(from_domain)
    return a == b if mode == STRICT else org_domain(a) == org_domain(b)


async def lookup_policy(dns: DnsClient, budget: DnsBudget, from_domain: str) -> PolicyLookup:
    domain = normalize_domain(from_domain)
    try:
        found = await _record(dns, budget, domain)
        if found is not None:
            return PolicyLookup("found", _policy(domain, found, subdomain=False))
        org = org_domain(domain)
        if org != domain:
            found = await _record(dns, budget, org)
            if found is not None:
                return PolicyLookup("found", _policy(org, found, subdomain=True))
    except DnsTempError as exc:
        return PolicyLookup("temperror", reason=f"dns_{exc.reason}")
    return PolicyLookup("none", reason="no_dmarc_record")


async def _record(dns: DnsClient, budget: DnsBudget, domain: str) -> dict[str, str] | None:
    answer = await dns.lookup(f"_dmarc.{domain}", "TXT", budget)
    records = [tags for tags in map(_tags, answer.records) if tags is not None]
    if len(records) != 1:
        return None  # §6.6.3: none, or several: no DMARC processing
    tags = records[0]
    if tags.get("p") not in POLICIES:
        # §6.6.3 step 6: a bad or missing p= is p=none when the record asks for reports, else no record.
        if "rua" not in tags:
            return None
        tags["p"] = "none"
    return tags


def _tags(text: str) -> dict[str, str] | None:
    parts = [p.strip() for p in text.split(";")]
    if not parts or parts[0].replace(" ", "") != "v=DMARC1":
        return None
    tags: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            tags.setdefault(key.strip().lower(), value.strip())
    for key in ("p", "sp", "adkim", "aspf"):
        if key in tags:
            tags[key] = tags[key].lower()
    return tags


def _policy(domain: str, tags: dict[str, str], *, subdomain: bool) -> DmarcPolicy:
    policy = tags["p"]
    if subdomain and tags.get("sp") in POLICIES:
        policy = tags["sp"]
    return DmarcPolicy(
        domain=domain,
        policy=policy,
        adkim=STRICT if tags.get("adkim") == STRICT else RELAXED,
        aspf=STRICT if tags.get("aspf") == STRICT else RELAXED,
    )


def evaluate(
    from_domain: str | None, spf: SpfResult, dkim: Sequence[DkimResult], lookup: PolicyLookup
) -> DmarcResult:
    """DMARC's result for the message. Without a record the alignment is still computed (relaxed), since
    bccd's own verdict uses it; after a temperror only strict alignment is claimed (the modes are unknown)."""
    if from_domain is None:
        return DmarcResult(PERMERROR, None, (), "no_single_from_domain")
    policy = lookup.policy
    if lookup.status == "temperror":
        aspf = adkim = STRICT
    elif policy is not None:
        aspf, adkim = policy.aspf, policy.adkim
    else:
        aspf = adkim = RELAXED
    found: list[str] = []
    if spf.result == "pass" and aligned(spf.domain, from_domain, aspf):
        found.append("spf")
    if any(d.result == "pass" and aligned(d.domain, from_domain, adkim) for d in dkim):
        found.append("dkim")
    ids = tuple(found)
    if lookup.status == "temperror":
        return DmarcResult(TEMPERROR, None, ids, lookup.reason)
    if policy is None:
        return DmarcResult(NONE, None, ids, lookup.reason)
    return DmarcResult(PASS if ids else FAIL, policy.policy, ids, "aligned" if ids else "not_aligned")
