"""Issue 10 / SPEC L11: every reason code reads as a sentence, with the CRM's names filled in."""

from __future__ import annotations

from typing import Any

import pytest

from bccd.linker import ReasonCode
from bccd.web.reasons import CandidateInfo, explain

WIND = CandidateInfo("deal", "A", "Wind farm", "Carol Jensen")
SOLAR = CandidateInfo("deal", "B", "Solar park", "Carol Jensen")
HARBOUR = CandidateInfo("lead", "L1", "Harbour lights", "Dave Hansen")
NAMES = {(c.type, c.id): c for c in (WIND, SOLAR, HARBOUR)}


def _decision(reason: str, *candidates: CandidateInfo, **extra: Any) -> dict[str, Any]:
    return {
        "outcome": "unlinked",
        "reason": reason,
        "rule": "L?",
        "candidates": [{"type": c.type, "id": c.id} for c in candidates],
        **extra,
    }


CASES = [
    # (decision, linked persons, linked item, sentence)
    (
        _decision("ambiguous", WIND, SOLAR),
        ["Carol Jensen"],
        None,
        "Carol Jensen has 2 open deals — Wind farm, Solar park: pick one",
    ),
    (
        _decision("ambiguous", SOLAR, HARBOUR),
        ["Carol Jensen", "Dave Hansen"],
        None,
        "the people in this mail have 2 open items — Solar park (deal), Harbour lights (lead): pick one",
    ),
    (_decision("no_matching_person"), [], None, "no contact in the CRM matches anyone in this mail"),
    (
        _decision("items_newer_than_thread"),
        ["Carol Jensen"],
        None,
        "the deal was created after this mail, and bccd never links mail to items created later",
    ),
    (_decision("no_open_items"), ["Carol Jensen"], None, "Carol Jensen has no deal, lead or project"),
    (
        _decision("no_open_items"),
        ["Carol Jensen", "Dave Hansen"],
        None,
        "none of Carol Jensen and Dave Hansen has a deal, lead or project",
    ),
    (
        _decision("only_closed_items"),
        ["Carol Jensen"],
        None,
        "Carol Jensen's deals, leads and projects are all closed",
    ),
    (
        _decision("autolink_disabled"),
        ["Carol Jensen"],
        None,
        "your autolink setting is off: bccd linked the contacts and leaves the deal to you",
    ),
    (
        _decision("linked", WIND) | {"outcome": "linked"},
        ["Carol Jensen"],
        "Wind farm",
        "linked automatically: Wind farm is the only open deal, lead or project of this mail",
    ),
    (
        _decision("explicit_target") | {"outcome": "linked"},
        [],
        "Solar park",
        "linked to Solar park because the mail was sent to your +type-id Smart Bcc address",
    ),
    (
        _decision("target_not_found", fallback_reason="no_matching_person"),
        [],
        None,
        "the +type-id tag of the address names nothing in the CRM, so the usual rules applied: "
        "no contact in the CRM matches anyone in this mail",
    ),
]


@pytest.mark.parametrize(("decision", "persons", "item", "sentence"), CASES)
def test_reason_sentences(
    decision: dict[str, Any], persons: list[str], item: str | None, sentence: str
) -> None:
    assert explain(decision, NAMES, persons=persons, item=item) == sentence


def test_every_reason_code_has_its_own_sentence() -> None:
    """A new reason code in the linker must get words here too (no code falls through to the fallback)."""
    for code in ReasonCode:
        extra = {"fallback_reason": "ambiguous"} if code == ReasonCode.TARGET_NOT_FOUND else {}
        text = explain(_decision(str(code), **extra), NAMES, persons=["Carol Jensen"])
        assert f"({code})" not in text, code


def test_a_candidate_missing_from_the_crm_is_named_by_its_id() -> None:
    text = explain(_decision("ambiguous", WIND, CandidateInfo("deal", "Z9", "?")), {("deal", "A"): WIND})
    assert text == "the people in this mail have 2 open deals — Wind farm, deal Z9: pick one"
