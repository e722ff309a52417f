"""Decide what a new thread links to (SPEC §4, rules L1–L11): directory facts in, one `LinkDecision` out.

Pure domain logic: no I/O, no clock, no globals. The store gathers the facts, ingest persists the decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bccd.vocabulary import OPEN as OPEN  # re-exported: the words are defined in bccd.vocabulary
from bccd.vocabulary import DecisionRule, ItemKind, Outcome
from bccd.vocabulary import ReasonCode as ReasonCode

ItemType = ItemKind  # the linker's older name for it


def _require_aware(value: datetime, what: str) -> None:
    # A naive timestamp compared with an aware one raises deep inside the rules, and two naive ones
    # from different sources may silently be in different zones; refuse both at the boundary.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class ItemRef:
    """How decisions and candidates name an item: its type and the CRM's external id."""

    type: ItemType
    id: str

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


@dataclass(frozen=True, slots=True)
class PersonFact:
    """A person of the owner's company that may match a participant address (L1)."""

    id: int
    external_id: str
    emails: frozenset[str]
    organization_id: int | None


@dataclass(frozen=True, slots=True)
class ItemFact:
    """A deal, lead or project, any status or age, that may relate to the thread's persons (L3)."""

    id: int
    type: ItemType
    external_id: str
    status: str
    created_at: datetime
    person_id: int | None
    participant_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        _require_aware(self.created_at, f"created_at of {self.type} {self.external_id!r}")

    @property
    def ref(self) -> ItemRef:
        return ItemRef(self.type, self.external_id)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


@dataclass(frozen=True, slots=True)
class ExplicitTarget:
    """The item named by a `+deal-42` style tag on the Smart Bcc local part (L10)."""

    type: ItemType
    external_id: str


def _require_consistent(facts: Iterable[PersonFact | ItemFact], what: str) -> None:
    seen: dict[int, PersonFact | ItemFact] = {}
    for fact in facts:
        if seen.setdefault(fact.id, fact) != fact:
            raise ValueError(f"two different {what} facts share id {fact.id}")


@dataclass(frozen=True, slots=True)
class LinkInput:
    """Everything the rules look at for one thread; `decide_links` needs nothing else."""

    participant_addresses: tuple[str, ...]
    persons: tuple[PersonFact, ...]
    items: tuple[ItemFact, ...]
    autolink: bool
    thread_created_at: datetime
    explicit_target: ExplicitTarget | None = None
    target_item: ItemFact | None = None

    def __post_init__(self) -> None:
        _require_aware(self.thread_created_at, "thread_created_at")
        # Repeats are expected (a join reaches one deal through several persons), but two different
        # facts under one id would make the decision depend on the order the rows came back in.
        _require_consistent(self.persons, "person")
        _require_consistent(self.items, "item")
        if self.target_item is None:
            return
        # A target item without a tag, or of another type than the tag names, means the caller
        # resolved the wrong thing; linking it anyway would break T1/L10 silently. The external id is
        # not compared: the tag arrives lowercased with the local part, the CRM's id may not be.
        if self.explicit_target is None:
            raise ValueError("target_item given without explicit_target")
        if self.target_item.type != self.explicit_target.type:
            raise ValueError(
                f"target_item is a {self.target_item.type}, "
                f"explicit_target names a {self.explicit_target.type}"
            )


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """The outcome of the rules for one thread, with enough detail to answer "why (not) linked?" (L11)."""

    item: ItemRef | None
    item_id: int | None
    person_ids: tuple[int, ...]
    organization_ids: tuple[int, ...]
    outcome: Outcome
    reason: str
    rule: DecisionRule
    candidates: tuple[ItemRef, ...]
    fallback_reason: str | None = None

    def __post_init__(self) -> None:
        # These invariants are what the store and the API rely on; catching a violation here keeps a
        # self-contradictory decision out of the database.
        if (self.item is None) != (self.item_id is None):
            raise ValueError("item and item_id must both be set or both be None")
        if self.outcome != ("linked" if self.item is not None else "unlinked"):
            raise ValueError(f"outcome {self.outcome!r} contradicts item {self.item!r}")
        if (self.fallback_reason is not None) != (self.reason == ReasonCode.TARGET_NOT_FOUND):
            raise ValueError("fallback_reason is set exactly when reason is target_not_found")

    @property
    def linked(self) -> bool:
        return self.item is not None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "outcome": self.outcome,
            "reason": str(self.reason),
            "rule": self.rule,
            "candidates": [ref.as_json() for ref in self.candidates],
        }
        if self.fallback_reason is not None:
            data["fallback_reason"] = str(self.fallback_reason)
        return data


@dataclass(frozen=True, slots=True)
class _ItemOutcome:
    """What L2–L8 decided about the item link, before L10 may override or annotate it."""

    item: ItemFact | None
    reason: ReasonCode
    rule: DecisionRule
    candidates: tuple[ItemFact, ...]


def linked_persons(
    participant_addresses: Iterable[str], persons: Iterable[PersonFact]
) -> tuple[PersonFact, ...]:
    """L1: the persons with an address among the participants, one per id, ordered by id."""
    # The store may hand over persons that do not match (or the same person twice); the rule is
    # enforced here, not trusted to the query.
    addresses = frozenset(participant_addresses)
    matched = {person.id: person for person in persons if not person.emails.isdisjoint(addresses)}
    return tuple(matched[person_id] for person_id in sorted(matched))


def _organization_ids(persons: Iterable[PersonFact]) -> tuple[int, ...]:
    return tuple(sorted({p.organization_id for p in persons if p.organization_id is not None}))


def _is_related(item: ItemFact, person_ids: frozenset[int]) -> bool:
    # L3: participants only count for deals; leads and projects have a single contact person.
    if item.person_id is not None and item.person_id in person_ids:
        return True
    return item.type == "deal" and not item.participant_ids.isdisjoint(person_ids)


def _sorted_items(items: Iterable[ItemFact]) -> tuple[ItemFact, ...]:
    return tuple(sorted(items, key=lambda i: (i.type, i.external_id, i.id)))


def _decide_item(facts: LinkInput, persons: tuple[PersonFact, ...]) -> _ItemOutcome:
    """Rules L2–L8, in the order the spec gives them; the first that decides wins."""
    if not facts.autolink:
        return _ItemOutcome(None, ReasonCode.AUTOLINK_DISABLED, "L2", ())
    if not persons:
        return _ItemOutcome(None, ReasonCode.NO_MATCHING_PERSON, "L3", ())

    person_ids = frozenset(p.id for p in persons)
    # Keyed by internal id so that one deal reached through several persons is one candidate (L6/L7).
    related = {item.id: item for item in facts.items if _is_related(item, person_ids)}
    open_items = [item for item in related.values() if item.is_open]
    # Strictly before: an item created in the same instant as the thread did not exist for its sender.
    candidates = _sorted_items(item for item in open_items if item.created_at < facts.thread_created_at)

    if len(candidates) == 1:
        return _ItemOutcome(candidates[0], ReasonCode.LINKED, "L6", candidates)
    if candidates:
        return _ItemOutcome(None, ReasonCode.AMBIGUOUS, "L7", candidates)
    # Nothing to link: name the rule that removed the last items, so the user sees the real cause.
    if not related:
        return _ItemOutcome(None, ReasonCode.NO_OPEN_ITEMS, "L8", ())
    if open_items:
        return _ItemOutcome(None, ReasonCode.ITEMS_NEWER_THAN_THREAD, "L5", ())
    return _ItemOutcome(None, ReasonCode.ONLY_CLOSED_ITEMS, "L4", ())


def decide_links(facts: LinkInput) -> LinkDecision:
    """Apply L1–L10 to one thread's facts and return the decision to record (L11).

    Persons and organizations always follow L1. A resolved explicit target (L10) links whatever its
    status, age or the autolink setting, and lists no candidates because none were weighed. An explicit
    target the store could not resolve falls back to L2–L8, whose verdict is kept in `fallback_reason`.
    """
    persons = linked_persons(facts.participant_addresses, facts.persons)
    person_ids = tuple(p.id for p in persons)
    organization_ids = _organization_ids(persons)

    if facts.target_item is not None:
        target = facts.target_item
        return LinkDecision(
            item=target.ref,
            item_id=target.id,
            person_ids=person_ids,
            organization_ids=organization_ids,
            outcome="linked",
            reason=ReasonCode.EXPLICIT_TARGET,
            rule="L10",
            candidates=(),
        )

    auto = _decide_item(facts, persons)
    reason: ReasonCode = auto.reason
    rule = auto.rule
    fallback_reason: ReasonCode | None = None
    if facts.explicit_target is not None:
        reason, rule, fallback_reason = ReasonCode.TARGET_NOT_FOUND, "L10", auto.reason

    return LinkDecision(
        item=auto.item.ref if auto.item is not None else None,
        item_id=auto.item.id if auto.item is not None else None,
        person_ids=person_ids,
        organization_ids=organization_ids,
        outcome="linked" if auto.item is not None else "unlinked",
        reason=reason,
        rule=rule,
        candidates=tuple(item.ref for item in auto.candidates),
        fallback_reason=fallback_reason,
    )
