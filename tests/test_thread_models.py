"""Issue 8 "thread JSON from typed read models": the typed models give back exactly the JSON the store
held and the README documents — decisions of every shape round-trip key for key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bccd.linker import ExplicitTarget, ItemFact, LinkInput, PersonFact, decide_links
from bccd.thread_models import Decision

NOW = datetime(2024, 1, 1, tzinfo=UTC)
PETER = PersonFact(1, "p-1", frozenset({"peter@x.test"}), None)


def _deal(id_: int, ext: str) -> ItemFact:
    return ItemFact(id_, "deal", ext, "open", datetime(2020, 1, 1, tzinfo=UTC), 1)


def _facts(*items: ItemFact, target: ExplicitTarget | None = None) -> LinkInput:
    return LinkInput(
        participant_addresses=("peter@x.test",),
        persons=(PETER,),
        items=items,
        autolink=True,
        thread_created_at=NOW,
        explicit_target=target,
    )


def _decisions() -> list[dict[str, object]]:
    inputs = [
        _facts(_deal(1, "A")),  # linked (L6)
        _facts(_deal(1, "A"), _deal(2, "B")),  # ambiguous (L7)
        _facts(_deal(1, "A"), target=ExplicitTarget("deal", "zz")),  # target_not_found + fallback (L10)
    ]
    return [decide_links(i).as_json() for i in inputs]


def test_decisions_round_trip_byte_for_byte() -> None:
    decisions = _decisions()
    assert {d["reason"] for d in decisions} == {"linked", "ambiguous", "target_not_found"}
    for stored in decisions:
        again = Decision.from_json(stored).as_json()
        assert json.dumps(again) == json.dumps(stored)  # same keys, same order, same values
    # A key a future (or older) version stored is kept, not dropped.
    odd = {**decisions[0], "note": "x"}
    assert Decision.from_json(odd).as_json() == odd


def test_authentication_round_trips_and_null_stays_null() -> None:
    """A5: the stored sender authentication comes back key for key; a thread of `off` has null."""
    from bccd.thread_models import AuthenticationView

    stored = {
        "spf": {"result": "softfail", "domain": "acme.test"},
        "dkim": [
            {"result": "pass", "domain": "lists.test", "selector": "k1"},
            {"result": "permerror", "domain": None, "selector": None},
        ],
        "dmarc": {"result": "fail", "policy": "quarantine", "aligned": []},
        "verdict": "fail",
    }
    view = AuthenticationView.from_json(stored)
    assert view is not None and json.dumps(view.as_json()) == json.dumps(stored)
    assert AuthenticationView.from_json(None) is None
