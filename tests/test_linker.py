"""Table-driven tests of the linker, one group per rule of SPEC §4 (L1–L11)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bccd.linker import (
    OPEN,
    ExplicitTarget,
    ItemFact,
    ItemRef,
    ItemType,
    LinkDecision,
    LinkInput,
    PersonFact,
    ReasonCode,
    decide_links,
)

THREAD_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OLD = THREAD_AT - timedelta(days=30)
NEWER = THREAD_AT + timedelta(hours=1)

CLOSED_STATUSES: dict[ItemType, tuple[str, ...]] = {
    "deal": ("won", "lost", "deleted"),
    "lead": ("archived", "converted", "deleted"),
    "project": ("completed", "canceled", "deleted"),
}

ANN = "ann@acme.example"
ANN_ALT = "ann.private@mail.example"
BOB = "bob@acme.example"
CARL = "carl@globex.example"
STRANGER = "nobody@elsewhere.example"

# Persons 1 and 2 work for organization 10, person 3 for 20, person 4 for none.
P_ANN = PersonFact(1, "p-ann", frozenset({ANN, ANN_ALT}), 10)
P_BOB = PersonFact(2, "p-bob", frozenset({BOB}), 10)
P_CARL = PersonFact(3, "p-carl", frozenset({CARL}), 20)
P_DORA = PersonFact(4, "p-dora", frozenset({"dora@solo.example"}), None)
ALL_PERSONS = (P_ANN, P_BOB, P_CARL, P_DORA)


def item(
    item_id: int,
    type_: ItemType = "deal",
    *,
    person: int | None = None,
    status: str = OPEN,
    created_at: datetime = OLD,
    participants: Iterable[int] = (),
) -> ItemFact:
    return ItemFact(
        id=item_id,
        type=type_,
        external_id=f"{type_[0]}{item_id}",
        status=status,
        created_at=created_at,
        person_id=person,
        participant_ids=frozenset(participants),
    )


def facts(
    participants: Iterable[str],
    items: Iterable[ItemFact] = (),
    *,
    persons: Iterable[PersonFact] = ALL_PERSONS,
    autolink: bool = True,
    explicit: ExplicitTarget | None = None,
    target: ItemFact | None = None,
) -> LinkInput:
    return LinkInput(
        participant_addresses=tuple(participants),
        persons=tuple(persons),
        items=tuple(items),
        autolink=autolink,
        thread_created_at=THREAD_AT,
        explicit_target=explicit,
        target_item=target,
    )


@dataclass(frozen=True)
class Expect:
    """The parts of a decision a table row pins down."""

    reason: ReasonCode
    rule: str
    item: ItemFact | None = None
    candidates: tuple[ItemFact, ...] = ()
    fallback: ReasonCode | None = None


def check(decision: LinkDecision, expect: Expect) -> None:
    assert decision.reason == expect.reason
    assert decision.rule == expect.rule
    assert decision.fallback_reason == expect.fallback
    assert decision.candidates == tuple(c.ref for c in expect.candidates)
    if expect.item is None:
        assert decision.item is None
        assert decision.item_id is None
        assert decision.outcome == "unlinked"
    else:
        assert decision.item == expect.item.ref
        assert decision.item_id == expect.item.id
        assert decision.outcome == "linked"


class TestL1PersonsAndOrganizations:
    @pytest.mark.parametrize(
        ("participants", "persons", "person_ids", "org_ids"),
        [
            pytest.param([ANN], ALL_PERSONS, (1,), (10,), id="one-match"),
            pytest.param([ANN_ALT], ALL_PERSONS, (1,), (10,), id="secondary-email-matches"),
            pytest.param([STRANGER], ALL_PERSONS, (), (), id="no-match"),
            pytest.param([], ALL_PERSONS, (), (), id="no-participants"),
            pytest.param([ANN, BOB], ALL_PERSONS, (1, 2), (10,), id="shared-org-once"),
            pytest.param([CARL, ANN], ALL_PERSONS, (1, 3), (10, 20), id="sorted-ids"),
            pytest.param(["dora@solo.example"], ALL_PERSONS, (4,), (), id="person-without-org"),
            pytest.param([ANN, ANN_ALT], ALL_PERSONS, (1,), (10,), id="two-addresses-one-person"),
            pytest.param([ANN], (P_ANN, P_ANN), (1,), (10,), id="person-passed-twice"),
            pytest.param([BOB], (P_ANN, P_CARL), (), (), id="unmatched-persons-passed-in-ignored"),
            pytest.param(
                [ANN, BOB],
                (replace(P_ANN, organization_id=9), replace(P_BOB, organization_id=2)),
                (1, 2),
                (2, 9),
                id="orgs-sorted-not-in-person-order",
            ),
        ],
    )
    def test_linked_persons_and_orgs(
        self,
        participants: list[str],
        persons: tuple[PersonFact, ...],
        person_ids: tuple[int, ...],
        org_ids: tuple[int, ...],
    ) -> None:
        decision = decide_links(facts(participants, persons=persons))
        assert decision.person_ids == person_ids
        assert decision.organization_ids == org_ids

    @pytest.mark.parametrize(
        "link_input",
        [
            pytest.param(facts([ANN, CARL], [item(5, person=1)], autolink=False), id="autolink-off"),
            pytest.param(
                facts([ANN, CARL], explicit=ExplicitTarget("deal", "d9"), target=item(9, created_at=NEWER)),
                id="explicit-target",
            ),
            pytest.param(facts([ANN, CARL], explicit=ExplicitTarget("deal", "d404")), id="target-not-found"),
            pytest.param(facts([ANN, CARL], [item(5, person=1), item(6, person=3)]), id="ambiguous"),
            pytest.param(facts([ANN, CARL], [item(5, person=1, status="won")]), id="only-closed"),
        ],
    )
    def test_persons_linked_whatever_the_item_outcome(self, link_input: LinkInput) -> None:
        decision = decide_links(link_input)
        assert decision.person_ids == (1, 3)
        assert decision.organization_ids == (10, 20)


class TestL2Autolink:
    def test_autolink_off_leaves_single_candidate_unlinked(self) -> None:
        deal = item(5, person=1)
        assert decide_links(facts([ANN], [deal])).item == deal.ref  # the control: autolink on links it
        decision = decide_links(facts([ANN], [deal], autolink=False))
        check(decision, Expect(ReasonCode.AUTOLINK_DISABLED, "L2"))
        assert decision.person_ids == (1,)
        assert decision.organization_ids == (10,)

    def test_autolink_is_checked_before_persons(self) -> None:
        decision = decide_links(facts([STRANGER], autolink=False))
        check(decision, Expect(ReasonCode.AUTOLINK_DISABLED, "L2"))


class TestL3Candidates:
    def test_no_matching_person(self) -> None:
        orphan = item(5, person=1)
        check(decide_links(facts([STRANGER], [orphan])), Expect(ReasonCode.NO_MATCHING_PERSON, "L3"))

    def test_no_persons_at_all(self) -> None:
        check(decide_links(facts([ANN], persons=())), Expect(ReasonCode.NO_MATCHING_PERSON, "L3"))

    @pytest.mark.parametrize(
        ("it", "linked"),
        [
            pytest.param(item(5, "deal", person=1), True, id="deal-contact"),
            pytest.param(item(5, "lead", person=1), True, id="lead-contact"),
            pytest.param(item(5, "project", person=1), True, id="project-contact"),
            pytest.param(item(5, "deal", person=3, participants=[1]), True, id="deal-participant"),
            pytest.param(item(5, "deal", person=None, participants=[2, 1]), True, id="deal-participant-only"),
            pytest.param(item(5, "lead", person=3, participants=[1]), False, id="lead-participants-ignored"),
            pytest.param(item(5, "project", participants=[1]), False, id="project-participants-ignored"),
            pytest.param(item(5, "deal", person=3), False, id="other-persons-deal"),
            pytest.param(item(5, "deal", person=None), False, id="deal-without-person"),
        ],
    )
    def test_relation_to_linked_person(self, it: ItemFact, linked: bool) -> None:
        decision = decide_links(facts([ANN], [it]))
        if linked:
            check(decision, Expect(ReasonCode.LINKED, "L6", item=it, candidates=(it,)))
        else:
            check(decision, Expect(ReasonCode.NO_OPEN_ITEMS, "L8"))

    def test_unrelated_items_passed_in_do_not_make_it_ambiguous(self) -> None:
        mine = item(5, person=1)
        # Carl's deal arrives in the facts, but Carl is not a participant of this thread.
        carls = item(6, person=3)
        check(decide_links(facts([ANN], [mine, carls])), Expect(ReasonCode.LINKED, "L6", mine, (mine,)))

    def test_unmatched_person_passed_in_does_not_relate_items(self) -> None:
        # Carl is in the persons handed over but has no address among the participants.
        carls = item(6, person=3)
        check(decide_links(facts([ANN], [carls])), Expect(ReasonCode.NO_OPEN_ITEMS, "L8"))


class TestL4OpenOnly:
    @pytest.mark.parametrize(
        ("type_", "status"),
        [(t, s) for t, statuses in CLOSED_STATUSES.items() for s in statuses],
    )
    def test_closed_item_is_never_a_candidate(self, type_: ItemType, status: str) -> None:
        closed = item(5, type_, person=1, status=status)
        check(decide_links(facts([ANN], [closed])), Expect(ReasonCode.ONLY_CLOSED_ITEMS, "L4"))

    def test_status_must_be_exactly_open(self) -> None:
        odd = item(5, person=1, status="Open")
        check(decide_links(facts([ANN], [odd])), Expect(ReasonCode.ONLY_CLOSED_ITEMS, "L4"))

    @pytest.mark.parametrize(
        ("rows", "expect_index", "reason", "rule"),
        [
            pytest.param(
                [item(5, person=1, status="won"), item(6, person=1)],
                1,
                ReasonCode.LINKED,
                "L6",
                id="won+open",
            ),
            pytest.param(
                [item(5, person=1, status="lost"), item(6, "lead", person=2, status="converted")],
                None,
                ReasonCode.ONLY_CLOSED_ITEMS,
                "L4",
                id="closed-across-persons",
            ),
            pytest.param(
                [item(5, person=1, status="deleted", created_at=NEWER)],
                None,
                ReasonCode.ONLY_CLOSED_ITEMS,
                "L4",
                id="closed-and-newer-is-closed",
            ),
        ],
    )
    def test_closed_mixes(
        self, rows: list[ItemFact], expect_index: int | None, reason: ReasonCode, rule: str
    ) -> None:
        decision = decide_links(facts([ANN, BOB], rows))
        expected = rows[expect_index] if expect_index is not None else None
        check(decision, Expect(reason, rule, expected, (expected,) if expected is not None else ()))

    def test_closed_sibling_does_not_make_it_ambiguous(self) -> None:
        open_deal = item(5, person=1)
        rows = [open_deal, *(item(10 + i, person=1, status=s) for i, s in enumerate(CLOSED_STATUSES["deal"]))]
        check(decide_links(facts([ANN], rows)), Expect(ReasonCode.LINKED, "L6", open_deal, (open_deal,)))


class TestL5NoRetroactiveLinking:
    @pytest.mark.parametrize(
        ("created_at", "linked"),
        [
            pytest.param(OLD, True, id="long-before"),
            pytest.param(THREAD_AT - timedelta(microseconds=1), True, id="just-before"),
            pytest.param(THREAD_AT, False, id="tie-is-not-before"),
            pytest.param(THREAD_AT.astimezone(timezone(timedelta(hours=2))), False, id="tie-other-offset"),
            pytest.param(THREAD_AT + timedelta(microseconds=1), False, id="just-after"),
            pytest.param(NEWER, False, id="after"),
        ],
    )
    def test_created_before_thread(self, created_at: datetime, linked: bool) -> None:
        deal = item(5, person=1, created_at=created_at)
        decision = decide_links(facts([ANN], [deal]))
        if linked:
            check(decision, Expect(ReasonCode.LINKED, "L6", deal, (deal,)))
        else:
            check(decision, Expect(ReasonCode.ITEMS_NEWER_THAN_THREAD, "L5"))

    def test_newer_open_plus_closed_old_is_newer(self) -> None:
        rows = [item(5, person=1, status="won"), item(6, "lead", person=1, created_at=NEWER)]
        check(decide_links(facts([ANN], rows)), Expect(ReasonCode.ITEMS_NEWER_THAN_THREAD, "L5"))

    def test_newer_item_does_not_make_it_ambiguous(self) -> None:
        old = item(5, person=1)
        rows = [old, item(6, person=1, created_at=NEWER), item(7, "project", person=1, created_at=THREAD_AT)]
        check(decide_links(facts([ANN], rows)), Expect(ReasonCode.LINKED, "L6", old, (old,)))

    def test_closed_old_open_newer_and_closed_newer(self) -> None:
        rows = [
            item(5, person=1, status="lost"),
            item(6, person=2, created_at=NEWER),
            item(7, "lead", person=2, status="archived", created_at=NEWER),
        ]
        check(decide_links(facts([ANN, BOB], rows)), Expect(ReasonCode.ITEMS_NEWER_THAN_THREAD, "L5"))


class TestL6SingleCandidate:
    def test_single_open_older_item_links(self) -> None:
        lead = item(5, "lead", person=1)
        decision = decide_links(facts([ANN], [lead]))
        check(decision, Expect(ReasonCode.LINKED, "L6", lead, (lead,)))
        assert decision.item == ItemRef("lead", "l5")

    def test_same_deal_via_contact_and_participant_counts_once(self) -> None:
        deal = item(5, person=1, participants=[2, 3])
        check(decide_links(facts([ANN, BOB, CARL], [deal])), Expect(ReasonCode.LINKED, "L6", deal, (deal,)))

    def test_same_item_repeated_in_facts_counts_once(self) -> None:
        # A store join returns the deal once per matching person.
        deal = item(5, participants=[1, 2])
        check(
            decide_links(facts([ANN, BOB], [deal, deal, deal])),
            Expect(ReasonCode.LINKED, "L6", deal, (deal,)),
        )


class TestL7Ambiguous:
    @pytest.mark.parametrize(
        ("participants", "rows"),
        [
            pytest.param([ANN], [item(6, person=1), item(5, person=1)], id="one-contact-two-deals"),
            pytest.param([ANN, CARL], [item(5, person=1), item(6, person=3)], id="two-participants"),
            pytest.param(
                [ANN],
                [item(5, "project", person=1), item(6, "deal", participants=[1]), item(7, "lead", person=1)],
                id="deal-lead-project-mix",
            ),
            pytest.param(
                [ANN, BOB],
                [item(5, person=1, participants=[2]), item(6, participants=[2])],
                id="via-participants",
            ),
            pytest.param(
                [ANN],
                [item(5, person=1, created_at=THREAD_AT - timedelta(seconds=1)), item(6, person=1)],
                id="both-before",
            ),
        ],
    )
    def test_more_than_one_candidate_is_ambiguous(
        self, participants: list[str], rows: list[ItemFact]
    ) -> None:
        decision = decide_links(facts(participants, rows))
        expected = tuple(sorted(rows, key=lambda r: (r.type, r.external_id)))
        check(decision, Expect(ReasonCode.AMBIGUOUS, "L7", None, expected))

    def test_candidates_sorted_by_type_then_id(self) -> None:
        rows = [item(9, "project", person=1), item(3, "lead", person=1), item(2, "deal", person=1)]
        decision = decide_links(facts([ANN], rows))
        assert [c.type for c in decision.candidates] == ["deal", "lead", "project"]

    def test_candidates_exclude_closed_and_newer(self) -> None:
        a, b = item(5, person=1), item(6, "lead", person=1)
        rows = [a, b, item(7, person=1, status="won"), item(8, person=1, created_at=NEWER)]
        check(decide_links(facts([ANN], rows)), Expect(ReasonCode.AMBIGUOUS, "L7", None, (a, b)))


class TestL8AnyNumberOfRecipients:
    def test_many_recipients_none_with_items(self) -> None:
        decision = decide_links(facts([ANN, BOB, CARL, "dora@solo.example", STRANGER]))
        check(decision, Expect(ReasonCode.NO_OPEN_ITEMS, "L8"))
        assert decision.person_ids == (1, 2, 3, 4)

    def test_many_recipients_one_open_item_links(self) -> None:
        project = item(5, "project", person=3)
        decision = decide_links(facts([ANN, BOB, CARL, "dora@solo.example"], [project]))
        check(decision, Expect(ReasonCode.LINKED, "L6", project, (project,)))

    def test_one_open_item_among_closed_items_of_others(self) -> None:
        lead = item(5, "lead", person=4)
        rows = [lead, item(6, person=1, status="won"), item(7, "project", person=2, status="completed")]
        check(
            decide_links(facts([ANN, BOB, "dora@solo.example"], rows)),
            Expect(ReasonCode.LINKED, "L6", lead, (lead,)),
        )


class TestL9AtMostOneItem:
    def test_ambiguous_links_no_item_at_all(self) -> None:
        decision = decide_links(facts([ANN], [item(5, person=1), item(6, person=1)]))
        assert decision.item is None
        assert decision.item_id is None
        assert len(decision.candidates) == 2

    def test_explicit_target_replaces_automatic_candidates(self) -> None:
        target = item(9, "lead")
        decision = decide_links(
            facts([ANN], [item(5, person=1)], explicit=ExplicitTarget("lead", "l9"), target=target)
        )
        assert decision.item == target.ref
        assert decision.item_id == 9

    def test_decision_refuses_item_without_internal_id(self) -> None:
        with pytest.raises(ValueError, match="item_id"):
            LinkDecision(ItemRef("deal", "d1"), None, (), (), "linked", ReasonCode.LINKED, "L6", ())


class TestL10ExplicitTarget:
    @pytest.mark.parametrize(
        ("target", "participants", "rows", "autolink"),
        [
            pytest.param(item(9, "deal", status="won"), [ANN], [], True, id="closed-deal"),
            pytest.param(item(9, "lead", status="converted"), [ANN], [], True, id="closed-lead"),
            pytest.param(item(9, "project", status="deleted"), [ANN], [], True, id="deleted-project"),
            pytest.param(item(9, "project", created_at=NEWER), [ANN], [], True, id="newer-target"),
            pytest.param(item(9, "deal", created_at=THREAD_AT), [ANN], [], True, id="tie-target"),
            pytest.param(item(9, "deal"), [ANN], [item(5, person=1)], False, id="autolink-off"),
            pytest.param(item(9, "deal"), [STRANGER], [], True, id="no-matching-person"),
            pytest.param(
                item(9, "deal", person=1), [ANN], [item(9, "deal", person=1)], True, id="also-candidate"
            ),
            pytest.param(
                item(9, "deal"), [ANN], [item(5, person=1), item(6, person=1)], True, id="overrides-ambiguous"
            ),
            pytest.param(item(9, "lead"), [ANN], [item(5, person=1)], True, id="overrides-single-candidate"),
        ],
    )
    def test_resolved_target_links_whatever_status_age_or_setting(
        self, target: ItemFact, participants: list[str], rows: list[ItemFact], autolink: bool
    ) -> None:
        explicit = ExplicitTarget(target.type, target.external_id)
        decision = decide_links(
            facts(participants, rows, autolink=autolink, explicit=explicit, target=target)
        )
        check(decision, Expect(ReasonCode.EXPLICIT_TARGET, "L10", target, ()))

    @pytest.mark.parametrize(
        ("participants", "rows", "autolink", "fallback", "linked_index", "candidate_count"),
        [
            pytest.param([ANN], [item(5, person=1)], True, ReasonCode.LINKED, 0, 1, id="falls-back-to-link"),
            pytest.param(
                [ANN],
                [item(5, person=1), item(6, person=1)],
                True,
                ReasonCode.AMBIGUOUS,
                None,
                2,
                id="ambiguous",
            ),
            pytest.param(
                [ANN], [item(5, person=1)], False, ReasonCode.AUTOLINK_DISABLED, None, 0, id="autolink"
            ),
            pytest.param([STRANGER], [], True, ReasonCode.NO_MATCHING_PERSON, None, 0, id="no-person"),
            pytest.param([ANN], [], True, ReasonCode.NO_OPEN_ITEMS, None, 0, id="no-items"),
            pytest.param(
                [ANN],
                [item(5, person=1, status="won")],
                True,
                ReasonCode.ONLY_CLOSED_ITEMS,
                None,
                0,
                id="closed",
            ),
            pytest.param(
                [ANN],
                [item(5, person=1, created_at=NEWER)],
                True,
                ReasonCode.ITEMS_NEWER_THAN_THREAD,
                None,
                0,
                id="newer",
            ),
        ],
    )
    def test_unknown_or_foreign_target_falls_back_to_l2_to_l8(
        self,
        participants: list[str],
        rows: list[ItemFact],
        autolink: bool,
        fallback: ReasonCode,
        linked_index: int | None,
        candidate_count: int,
    ) -> None:
        # The store resolves a foreign company's item to None, exactly like an unknown one.
        decision = decide_links(
            facts(participants, rows, autolink=autolink, explicit=ExplicitTarget("deal", "d-foreign"))
        )
        linked = rows[linked_index] if linked_index is not None else None
        check(
            decision,
            Expect(
                ReasonCode.TARGET_NOT_FOUND, "L10", linked, tuple(rows[:candidate_count]), fallback=fallback
            ),
        )
        assert decision.as_json()["fallback_reason"] == str(fallback)

    def test_target_item_without_explicit_target_is_refused(self) -> None:
        with pytest.raises(ValueError, match="without explicit_target"):
            facts([ANN], target=item(9))

    def test_target_item_of_another_type_is_refused(self) -> None:
        with pytest.raises(ValueError, match="names a lead"):
            facts([ANN], explicit=ExplicitTarget("lead", "d9"), target=item(9, "deal"))


# Each row reaches one reason code; TestL11 checks that together they reach all of them.
REASON_SCENARIOS: list[tuple[ReasonCode, LinkInput]] = [
    (ReasonCode.LINKED, facts([ANN], [item(5, person=1)])),
    (ReasonCode.EXPLICIT_TARGET, facts([ANN], explicit=ExplicitTarget("deal", "d9"), target=item(9))),
    (ReasonCode.AUTOLINK_DISABLED, facts([ANN], [item(5, person=1)], autolink=False)),
    (ReasonCode.NO_MATCHING_PERSON, facts([STRANGER])),
    (ReasonCode.NO_OPEN_ITEMS, facts([ANN])),
    (ReasonCode.ONLY_CLOSED_ITEMS, facts([ANN], [item(5, person=1, status="lost")])),
    (ReasonCode.ITEMS_NEWER_THAN_THREAD, facts([ANN], [item(5, person=1, created_at=NEWER)])),
    (ReasonCode.AMBIGUOUS, facts([ANN], [item(5, person=1), item(6, "lead", person=1)])),
    (ReasonCode.TARGET_NOT_FOUND, facts([ANN], explicit=ExplicitTarget("deal", "d404"))),
]


class TestL11DecisionRecord:
    def test_scenarios_cover_every_reason_code(self) -> None:
        assert {reason for reason, _ in REASON_SCENARIOS} == set(ReasonCode)

    @pytest.mark.parametrize(
        ("reason", "link_input"), REASON_SCENARIOS, ids=[r.value for r, _ in REASON_SCENARIOS]
    )
    def test_every_decision_records_outcome_reason_rule_candidates(
        self, reason: ReasonCode, link_input: LinkInput
    ) -> None:
        decision = decide_links(link_input)
        assert decision.reason == reason
        record = json.loads(json.dumps(decision.as_json()))
        assert record["outcome"] == decision.outcome
        assert record["reason"] == reason.value
        assert record["rule"] == decision.rule
        assert record["rule"] in {f"L{n}" for n in range(2, 11)}
        assert record["candidates"] == [{"type": c.type, "id": c.id} for c in decision.candidates]
        assert ("fallback_reason" in record) == (reason is ReasonCode.TARGET_NOT_FOUND)

    def test_ambiguous_record_lists_candidates(self) -> None:
        decision = decide_links(facts([ANN], [item(6, "lead", person=1), item(5, person=1)]))
        assert decision.as_json() == {
            "outcome": "unlinked",
            "reason": "ambiguous",
            "rule": "L7",
            "candidates": [{"type": "deal", "id": "d5"}, {"type": "lead", "id": "l6"}],
        }

    def test_target_not_found_record_says_what_l2_to_l8_decided(self) -> None:
        decision = decide_links(facts([ANN], [item(5, person=1)], explicit=ExplicitTarget("deal", "d404")))
        assert decision.as_json() == {
            "outcome": "linked",
            "reason": "target_not_found",
            "rule": "L10",
            "candidates": [{"type": "deal", "id": "d5"}],
            "fallback_reason": "linked",
        }

    def test_item_ref_json(self) -> None:
        assert ItemRef("project", "p-7").as_json() == {"type": "project", "id": "p-7"}

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            pytest.param({"outcome": "unlinked"}, "contradicts", id="linked-item-but-unlinked"),
            pytest.param({"reason": ReasonCode.TARGET_NOT_FOUND}, "fallback_reason", id="missing-fallback"),
            pytest.param({"fallback_reason": ReasonCode.LINKED}, "fallback_reason", id="stray-fallback"),
        ],
    )
    def test_contradictory_decision_is_refused(self, kwargs: dict[str, object], message: str) -> None:
        good = decide_links(facts([ANN], [item(5, person=1)]))
        with pytest.raises(ValueError, match=message):
            replace(good, **kwargs)  # type: ignore[arg-type]


class TestInputContract:
    """The facts the store hands over must be unambiguous, or the decision would depend on row order."""

    def test_naive_thread_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="thread_created_at"):
            replace(facts([ANN]), thread_created_at=THREAD_AT.replace(tzinfo=None))

    def test_naive_item_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            item(5, created_at=OLD.replace(tzinfo=None))

    def test_conflicting_item_facts_are_refused(self) -> None:
        with pytest.raises(ValueError, match="item facts share id 5"):
            facts([ANN], [item(5, person=1), item(5, person=1, status="won")])

    def test_conflicting_person_facts_are_refused(self) -> None:
        with pytest.raises(ValueError, match="person facts share id 1"):
            facts([ANN], persons=[P_ANN, replace(P_ANN, organization_id=None)])
