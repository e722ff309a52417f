"""Why a thread is (not) linked, in words a salesperson reads (issue 10; SPEC L11 reason codes).

Pure: the stored decision (reason code, candidates) and the names of the records it mentions go in, one
sentence comes out. No I/O, so every reason code has a table-driven test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PLURAL = {"deal": "deals", "lead": "leads", "project": "projects"}


@dataclass(frozen=True, slots=True)
class CandidateInfo:
    """A candidate item as the CRM names it; `person` is its contact person's name, when known."""

    type: str
    id: str
    title: str
    person: str | None = None


def _and(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _kinds(found: Sequence[CandidateInfo]) -> str:
    types = {c.type for c in found}
    if len(types) == 1:
        kind = next(iter(types))
        return kind if len(found) == 1 else PLURAL.get(kind, kind + "s")
    return "items"


def _titles(found: Sequence[CandidateInfo]) -> str:
    mixed = len({c.type for c in found}) > 1
    return ", ".join(f"{c.title} ({c.type})" if mixed else c.title for c in found)


def _ambiguous(found: Sequence[CandidateInfo], persons: Sequence[str]) -> str:
    if not found:
        return "several open deals, leads or projects match this mail: pick one"
    contacts = {c.person for c in found}
    if len(contacts) == 1 and None not in contacts:
        who = f"{next(iter(contacts))} has"
    elif len(persons) == 1:
        who = f"{persons[0]} has"
    else:
        who = "the people in this mail have"
    return f"{who} {len(found)} open {_kinds(found)} — {_titles(found)}: pick one"


def _no_items(persons: Sequence[str]) -> str:
    if len(persons) == 1:
        return f"{persons[0]} has no deal, lead or project"
    if persons:
        return f"none of {_and(list(persons))} has a deal, lead or project"
    return "nobody in this mail has a deal, lead or project"


def _sentence(reason: str, found: Sequence[CandidateInfo], persons: Sequence[str], item: str | None) -> str:
    if reason == "linked":
        if item is not None:
            return f"linked automatically: {item} is the only open deal, lead or project of this mail"
        return "linked automatically to the only open deal, lead or project of this mail"
    if reason == "explicit_target":
        where = f" {item}" if item else ""
        return f"linked to{where} because the mail was sent to your +type-id Smart Bcc address"
    if reason == "autolink_disabled":
        return "your autolink setting is off: bccd linked the contacts and leaves the deal to you"
    if reason == "no_matching_person":
        return "no contact in the CRM matches anyone in this mail"
    if reason == "no_open_items":
        return _no_items(persons)
    if reason == "only_closed_items":
        if len(persons) == 1:
            return f"{persons[0]}'s deals, leads and projects are all closed"
        return "the deals, leads and projects of the people in this mail are all closed"
    if reason == "items_newer_than_thread":
        return "the deal was created after this mail, and bccd never links mail to items created later"
    if reason == "ambiguous":
        return _ambiguous(found, persons)
    return f"not linked ({reason})"


def explain(
    decision: Mapping[str, Any],
    candidates: Mapping[tuple[str, str], CandidateInfo],
    *,
    persons: Sequence[str] = (),
    item: str | None = None,
) -> str:
    """One sentence for the decision. `candidates` maps (type, external id) to names; `persons` are the
    names of the thread's linked contacts; `item` names the linked item (for linked decisions)."""
    found = [
        candidates.get((c["type"], c["id"]), CandidateInfo(c["type"], c["id"], f"{c['type']} {c['id']}"))
        for c in decision.get("candidates", [])
    ]
    reason = str(decision.get("reason", ""))
    if reason == "target_not_found":
        fallback = _sentence(str(decision.get("fallback_reason", "")), found, persons, item)
        return (
            "the +type-id tag of the address names nothing in the CRM, so the usual rules applied: "
            + fallback
        )
    return _sentence(reason, found, persons, item)
