"""Property tests of the linker: invariants of SPEC §4 that must hold for any directory facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bccd.linker import (
    OPEN,
    ExplicitTarget,
    ItemFact,
    ItemType,
    LinkInput,
    PersonFact,
    ReasonCode,
    decide_links,
)

THREAD_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# Few distinct instants, so that ties with the thread and on both sides of it are common.
INSTANTS = [THREAD_AT + timedelta(seconds=s) for s in (-86_400, -1, 0, 1, 86_400)]
ITEM_TYPES: tuple[ItemType, ...] = ("deal", "lead", "project")
CLOSED = ("won", "lost", "deleted", "archived", "converted", "completed", "canceled")
# A small address and id space makes overlaps (shared persons, shared deals) the normal case.
ADDRESSES = [f"user{n}@example.com" for n in range(6)]
PERSON_IDS = st.integers(min_value=1, max_value=6)
ITEM_IDS = st.integers(min_value=1, max_value=12)


@st.composite
def persons(draw: st.DrawFn, person_id: int) -> PersonFact:
    return PersonFact(
        id=person_id,
        external_id=f"p{person_id}",
        emails=draw(st.frozensets(st.sampled_from(ADDRESSES), min_size=1, max_size=3)),
        organization_id=draw(st.none() | st.integers(min_value=1, max_value=40)),
    )


@st.composite
def items(draw: st.DrawFn, item_id: int, status: st.SearchStrategy[str] | None = None) -> ItemFact:
    type_ = draw(st.sampled_from(ITEM_TYPES))
    return ItemFact(
        id=item_id,
        type=type_,
        external_id=f"{type_}-{item_id}",
        status=draw(status if status is not None else st.sampled_from((OPEN, OPEN, *CLOSED))),
        created_at=draw(st.sampled_from(INSTANTS)),
        # Ids beyond PERSON_IDS' range name persons the store did not hand over.
        person_id=draw(st.none() | st.integers(min_value=1, max_value=8)),
        participant_ids=draw(st.frozensets(st.integers(min_value=1, max_value=8), max_size=3)),
    )


@st.composite
def link_inputs(draw: st.DrawFn) -> LinkInput:
    person_ids = draw(st.lists(PERSON_IDS, unique=True, max_size=5))
    item_ids = draw(st.lists(ITEM_IDS, unique=True, max_size=8))
    all_items = [draw(items(i)) for i in item_ids]
    # Repeat some rows, as a store join reaching one deal through several persons does.
    repeats = draw(st.lists(st.sampled_from(all_items), max_size=3)) if all_items else []
    explicit: ExplicitTarget | None = None
    target: ItemFact | None = None
    if draw(st.booleans()):
        target = draw(st.none() | items(draw(st.integers(min_value=100, max_value=110))))
        if target is not None:
            explicit = ExplicitTarget(target.type, target.external_id)
        else:
            explicit = ExplicitTarget(draw(st.sampled_from(ITEM_TYPES)), "unknown")
    return LinkInput(
        participant_addresses=tuple(
            draw(st.lists(st.sampled_from([*ADDRESSES, "stranger@elsewhere.example"]), unique=True))
        ),
        persons=tuple(draw(persons(i)) for i in person_ids),
        items=(*all_items, *repeats),
        autolink=draw(st.booleans()),
        thread_created_at=THREAD_AT,
        explicit_target=explicit,
        target_item=target,
    )


@given(link_inputs(), st.data())
def test_input_order_never_changes_the_decision(facts: LinkInput, data: st.DataObject) -> None:
    shuffled = replace(
        facts,
        participant_addresses=tuple(data.draw(st.permutations(facts.participant_addresses))),
        persons=tuple(data.draw(st.permutations(facts.persons))),
        items=tuple(data.draw(st.permutations(facts.items))),
    )
    assert decide_links(shuffled) == decide_links(facts)


@given(link_inputs(), st.data())
def test_adding_a_closed_item_never_changes_the_linked_item(facts: LinkInput, data: st.DataObject) -> None:
    fresh_id = max((i.id for i in facts.items), default=0) + 1
    closed = data.draw(items(fresh_id, status=st.sampled_from(CLOSED)))
    before = decide_links(facts)
    after = decide_links(replace(facts, items=(*facts.items, closed)))
    assert after.item == before.item
    assert after.item_id == before.item_id
    assert after.candidates == before.candidates


@given(link_inputs())
def test_linked_item_is_a_candidate_or_the_explicit_target(facts: LinkInput) -> None:
    decision = decide_links(facts)
    if decision.item is None:
        return
    if facts.target_item is not None:
        assert decision.item == facts.target_item.ref
        assert decision.item_id == facts.target_item.id
    else:
        assert decision.item in decision.candidates
        assert decision.item_id in {i.id for i in facts.items if i.ref == decision.item}


@given(link_inputs())
def test_at_most_one_item(facts: LinkInput) -> None:
    decision = decide_links(facts)
    assert (decision.outcome == "linked") == (decision.item is not None)
    # L9 through L6/L7: an automatic link only ever comes from a lone candidate.
    if decision.item is not None and facts.target_item is None:
        assert decision.candidates == (decision.item,)
    if len(decision.candidates) > 1:
        assert decision.item is None or decision.reason == ReasonCode.EXPLICIT_TARGET


@given(link_inputs())
def test_candidates_are_open_older_related_and_distinct(facts: LinkInput) -> None:
    decision = decide_links(facts)
    linked = set(decision.person_ids)
    by_ref = {i.ref: i for i in facts.items}
    assert len(set(decision.candidates)) == len(decision.candidates)
    assert list(decision.candidates) == sorted(decision.candidates, key=lambda r: (r.type, r.id))
    for ref in decision.candidates:
        it = by_ref[ref]
        assert it.status == OPEN
        assert it.created_at < facts.thread_created_at
        assert it.person_id in linked or (it.type == "deal" and bool(it.participant_ids & linked))


@given(link_inputs(), st.booleans())
def test_persons_and_organizations_ignore_autolink_and_target(facts: LinkInput, autolink: bool) -> None:
    decision = decide_links(facts)
    plain = decide_links(replace(facts, autolink=autolink, explicit_target=None, target_item=None))
    assert (plain.person_ids, plain.organization_ids) == (decision.person_ids, decision.organization_ids)
    participants = set(facts.participant_addresses)
    matched = [p for p in facts.persons if p.emails & participants]
    assert decision.person_ids == tuple(sorted({p.id for p in matched}))
    orgs = {p.organization_id for p in matched if p.organization_id is not None}
    assert decision.organization_ids == tuple(sorted(orgs))


@given(link_inputs())
def test_reason_and_rule_are_recorded(facts: LinkInput) -> None:
    decision = decide_links(facts)
    assert decision.reason in set(ReasonCode)
    assert decision.rule in {"L2", "L3", "L4", "L5", "L6", "L7", "L8", "L10"}
    if facts.explicit_target is not None:
        assert decision.rule == "L10"
        expected = ReasonCode.EXPLICIT_TARGET if facts.target_item else ReasonCode.TARGET_NOT_FOUND
        assert decision.reason == expected
    assert (decision.fallback_reason is not None) == (decision.reason == ReasonCode.TARGET_NOT_FOUND)
