"""Never-log (SPEC §3, company setting `never_log`): which addresses a company never records, and the
message JSON without them.

An entry is a full address or a domain (subdomains match too), normalized by
bccd.store.users.never_log_entry. Such an address is never a participant (bccd.participants), and it is
left out of the message's stored From/To/Cc and forwarded-header JSON: when the message is accepted
(`scrub_message_values`) and again whenever a thread is read (`scrub_message_json`), so rows stored before
an entry was added are not shown with it either. The raw message and its bodies are kept as received
(docs/rules.md, "Never-log").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bccd.mail.addresses import domain_of, normalize_address

AddressTest = Callable[[str], bool]


class NeverLog:
    """A company's never-log entries as a matcher of normalized addresses."""

    __slots__ = ("_addresses", "_domains")

    def __init__(self, entries: Iterable[str]) -> None:
        addresses: set[str] = set()
        domains: set[str] = set()
        for entry in entries:
            bare = entry.lstrip("@")
            if "@" in bare:
                addresses.add(bare)
            elif bare:
                domains.add(bare)
        self._addresses = frozenset(addresses)
        self._domains = frozenset(domains)

    def __bool__(self) -> bool:
        return bool(self._addresses or self._domains)

    def matches(self, address: str) -> bool:
        if address in self._addresses:
            return True
        domain = domain_of(address)
        return any(domain == d or domain.endswith("." + d) for d in self._domains)


def every_company_never_logs(lists: Sequence[NeverLog]) -> AddressTest:
    """For a message row shared by owners of several companies: an address is left out of the row only
    when every one of those companies never-logs it (each company's reads still hide its own entries)."""
    return lambda address: bool(lists) and all(n.matches(address) for n in lists)


def _hidden(entry: Any, test: AddressTest) -> bool:
    if not isinstance(entry, Mapping):
        return False
    address = entry.get("address")
    if not isinstance(address, str):
        return False  # a name a forward shows without an address stays
    norm = normalize_address(address)
    return test(norm if norm is not None else address.lower())


def _kept(entries: Any, test: AddressTest) -> Any:
    if not isinstance(entries, list):
        return entries
    return [e for e in entries if not _hidden(e, test)]


def scrub_forward(forward: Any, test: AddressTest) -> Any:
    """A stored forward JSON ({"understood": true, "from": [...], ...}) without never-logged addresses."""
    if not isinstance(forward, Mapping):
        return forward
    out = dict(forward)
    for key in ("from", "to", "cc"):
        if key in out:
            out[key] = _kept(out[key], test)
    return out


def scrub_message_values(values: Mapping[str, Any], test: AddressTest) -> dict[str, Any]:
    """A message row's values (bccd.ingest.message_row) without never-logged header addresses."""
    out = dict(values)
    for key in ("from_addrs", "to_addrs", "cc_addrs"):
        out[key] = _kept(out.get(key), test)
    out["forward"] = scrub_forward(out.get("forward"), test)
    return out


def scrub_message_json(
    from_: Any, to: Any, cc: Any, forward: Any, never_log: NeverLog
) -> tuple[Any, Any, Any, Any]:
    """The message's stored address JSON as the company may see it (rows stored before an entry)."""
    if not never_log:
        return from_, to, cc, forward
    test = never_log.matches
    return _kept(from_, test), _kept(to, test), _kept(cc, test), scrub_forward(forward, test)
