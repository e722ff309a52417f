"""S5 at RCPT: which recipients can share one SMTP transaction without a silent drop (issue 11).

One DATA reply answers for every recipient of a transaction, but the sender policy is decided per owner.
If owners could be decided differently, a 250 would stand for threads some of them never got. So at RCPT
each recipient gets a `SenderClass`: recipients of one class are decided alike for any message the client
may still send (any From header, any authentication verdict). A transaction takes only recipients of its
first recipient's class; any other one is answered `452 4.5.3` and the client sends it again in a new
transaction (RFC 5321 §4.5.3.1.10), where it is the first. The envelope sender alone can accept a
recipient (it is one of the owner's addresses) but never refuse one: the From header may still be
allowed, so refusals (`550 5.7.1`) stay at DATA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bccd.mail.addresses import normalize_address
from bccd.store.users import Company, User


class CompanyAddresses(Protocol):
    async def company_addresses(self, company_id: int) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class SenderClass:
    """`accepted`: the envelope already satisfies S5 (or the policy is `any`). Otherwise the From header
    decides, against the addresses of `scope` (an owner's or a company's). `require`: sender
    authentication is enforced too (`sender_auth = require`), so the verdict counts as well."""

    accepted: bool
    scope: tuple[str, int] | None = None
    require: bool = False


async def sender_class(
    facts: CompanyAddresses, company: Company, owner: User, mail_from: str | None
) -> SenderClass:
    require = company.sender_auth == "require"
    if company.sender_policy == "any":
        return SenderClass(accepted=not require, scope=None, require=require)
    scope = ("owner", owner.id) if company.sender_policy == "owner" else ("company", company.id)
    if require:
        # The envelope counts only with an SPF pass, known at DATA: the same for every such recipient.
        return SenderClass(accepted=False, scope=scope, require=True)
    envelope = normalize_address(mail_from or "")
    if envelope is not None:
        allowed = owner.addresses if scope[0] == "owner" else await facts.company_addresses(company.id)
        if envelope in allowed:
            return SenderClass(accepted=True)
    return SenderClass(accepted=False, scope=scope)
