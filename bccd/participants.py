"""Who takes part in a thread (SPEC §3, F2): header addresses, a forward's original ones, minus exclusions."""

from __future__ import annotations

from dataclasses import dataclass, field

from bccd.mail.addresses import MailAddress, domain_of, normalize_address
from bccd.mail.forwards import ForwardDetection, strip_forward_prefix
from bccd.mail.message import ParsedMessage
from bccd.never_log import NeverLog

ROLES = ("from", "to", "cc", "original_from", "original_to", "original_cc")


@dataclass(frozen=True, slots=True)
class Participant:
    address: str
    name: str | None
    role: str


@dataclass(frozen=True, slots=True)
class Exclusions:
    """Addresses that are never participants: the owner's own, every Smart Bcc address, never-log entries."""

    owner_addresses: frozenset[str]
    bcc_domains: frozenset[str]
    never_log: frozenset[str]  # full addresses, or domains (with or without a leading "@")
    _never: NeverLog = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_never", NeverLog(self.never_log))

    def excludes(self, address: str) -> bool:
        if address in self.owner_addresses or domain_of(address) in self.bcc_domains:
            return True
        return self._never.matches(address)


def forwarded_by_owner(parsed: ParsedMessage, mail_from: str | None, owner_addresses: frozenset[str]) -> bool:
    """F2 applies when the forwarder (the From header, else the envelope sender) is the owner."""
    if parsed.from_:
        return any(a.address in owner_addresses for a in parsed.from_)
    envelope = normalize_address(mail_from or "")
    return envelope is not None and envelope in owner_addresses


def collect_participants(
    parsed: ParsedMessage,
    forward: ForwardDetection | None,
    *,
    owner_is_forwarder: bool,
    exclusions: Exclusions,
) -> list[Participant]:
    groups: list[tuple[str, tuple[MailAddress, ...]]] = [
        ("from", parsed.from_),
        ("to", parsed.to),
        ("cc", parsed.cc),
    ]
    if forward is not None and forward.original is not None and owner_is_forwarder:
        original = forward.original
        groups += [
            ("original_from", original.from_),
            ("original_to", original.to),
            ("original_cc", original.cc),
        ]
    out: list[Participant] = []
    seen: set[tuple[str, str]] = set()
    for role, addresses in groups:
        for addr in addresses:
            if exclusions.excludes(addr.address) or (addr.address, role) in seen:
                continue
            seen.add((addr.address, role))
            out.append(Participant(addr.address, addr.name, role))
    return out


def thread_subject(
    parsed: ParsedMessage, forward: ForwardDetection | None, *, owner_is_forwarder: bool
) -> str:
    """F2: a forward by the owner takes the original subject, without Fwd:/FW:/WG:/… prefixes."""
    if forward is None or not owner_is_forwarder:
        return parsed.subject
    if forward.original is not None and forward.original.subject:
        return strip_forward_prefix(forward.original.subject)
    return strip_forward_prefix(parsed.subject)
