"""Thread reads: listings with filters, cursor pagination and privacy (§3, M7, T1)."""

from __future__ import annotations

from typing import Any

import pytest

from bccd.store.database import Database
from bccd.store.thread_views import MAX_PAGE, ThreadFilter, get_thread, list_threads
from bccd.store.threads import set_visibility
from bccd.store.users import NotFound
from tests.store.factories import PAULA, PETER, STRANGER, World, new_thread


async def _ids(db: Database, f: ThreadFilter, **kw: int) -> list[int]:
    async with db.read() as conn:
        return [t.id for t in await list_threads(conn, f, **kw)]


@pytest.fixture
async def threads_of(store_db: Database, world: World) -> dict[str, int]:
    """Six threads: alice ×4 (linked d-1, ambiguous, stranger, shared), bob ×1, eve (Globex) ×1."""
    made = {
        "a_linked": await new_thread(store_db, world.alice, "a1", [PETER]),
        "a_ambiguous": await new_thread(store_db, world.alice, "a2", [PAULA]),
        "a_stranger": await new_thread(store_db, world.alice, "a3", [STRANGER]),
        "a_shared": await new_thread(store_db, world.alice, "a4", [STRANGER, PETER]),
        "b_linked": await new_thread(store_db, world.bob, "b1", [PETER]),
        "eve": await new_thread(store_db, world.eve, "e1", [PETER]),
    }
    async with store_db.write() as conn:
        await set_visibility(conn, made["a_shared"], "shared", actor="user:1")
    return made


async def test_listing_is_newest_first_and_company_scoped(
    store_db: Database, world: World, threads_of: dict[str, int]
) -> None:
    acme = ThreadFilter(company_id=world.company_id)
    ids = await _ids(store_db, acme)
    assert ids == sorted(set(threads_of.values()) - {threads_of["eve"]}, reverse=True)
    assert await _ids(store_db, ThreadFilter(company_id=world.other_company_id)) == [threads_of["eve"]]


async def test_cursor_pagination_visits_every_thread_once(
    store_db: Database, world: World, threads_of: dict[str, int]
) -> None:
    f = ThreadFilter(company_id=world.company_id)
    seen: list[int] = []
    before: int | None = None
    while True:
        async with store_db.read() as conn:
            page = await list_threads(conn, f, limit=2, before_id=before)
        if not page:
            break
        assert len(page) <= 2
        seen += [t.id for t in page]
        before = page[-1].id
    assert seen == await _ids(store_db, f)
    assert len(seen) == 5
    assert len(await _ids(store_db, f, limit=0)) == 1  # limits are clamped, never unbounded
    assert len(await _ids(store_db, f, limit=MAX_PAGE * 10)) == 5


async def test_filters(store_db: Database, world: World, threads_of: dict[str, int]) -> None:
    base: dict[str, Any] = {"company_id": world.company_id}
    t = threads_of
    assert await _ids(store_db, ThreadFilter(**base, owner_id=world.bob.id)) == [t["b_linked"]]
    # M7: the user's unresolved threads.
    assert await _ids(store_db, ThreadFilter(**base, owner_id=world.alice.id, unlinked=True)) == [
        t["a_stranger"],
        t["a_ambiguous"],
    ]
    d1 = world.ids["deal:d-1"]
    assert await _ids(store_db, ThreadFilter(**base, item_id=d1)) == [
        t["b_linked"],
        t["a_shared"],
        t["a_linked"],
    ]
    p2 = world.ids["person:p-2"]
    assert await _ids(store_db, ThreadFilter(**base, person_id=p2)) == [t["a_ambiguous"]]
    o1 = world.ids["organization:o-1"]
    assert await _ids(store_db, ThreadFilter(**base, organization_id=o1)) == [
        t["b_linked"],
        t["a_shared"],
        t["a_linked"],
    ]
    # T1: another company's filter never reaches into Acme, even with Acme's ids.
    assert await _ids(store_db, ThreadFilter(company_id=world.other_company_id, item_id=d1)) == []


async def test_privacy(store_db: Database, world: World, threads_of: dict[str, int]) -> None:
    t = threads_of
    as_bob = ThreadFilter(company_id=world.company_id, viewer_id=world.bob.id)
    assert await _ids(store_db, as_bob) == [t["b_linked"], t["a_shared"]]  # own + shared
    as_carol = ThreadFilter(company_id=world.company_id, viewer_id=world.carol.id, viewer_is_admin=True)
    assert len(await _ids(store_db, as_carol)) == 5  # admins read every thread of the company
    as_alice = ThreadFilter(company_id=world.company_id, viewer_id=world.alice.id, owner_id=world.bob.id)
    assert await _ids(store_db, as_alice) == []


async def test_get_thread_is_company_scoped(
    store_db: Database, world: World, threads_of: dict[str, int]
) -> None:
    async with store_db.read() as conn:
        thread = await get_thread(conn, threads_of["eve"], company_id=world.other_company_id)
        with pytest.raises(NotFound):
            await get_thread(conn, threads_of["eve"], company_id=world.company_id)
    assert thread.as_json()["item"] == {"type": "deal", "id": "gd-1"}
    summaries = {s["id"]: s for s in await _list_all(store_db, world)}
    full = await _get(store_db, threads_of["a_shared"])
    # The listing's summary is the full thread minus its message, participants, history and authentication.
    assert summaries[threads_of["a_shared"]] == {
        k: v for k, v in full.items() if k not in ("message", "participants", "history", "authentication")
    }


async def _list_all(db: Database, world: World) -> list[dict[str, object]]:
    async with db.read() as conn:
        return [t.as_json() for t in await list_threads(conn, ThreadFilter(company_id=world.company_id))]


async def _get(db: Database, thread_id: int) -> dict[str, object]:
    async with db.read() as conn:
        return (await get_thread(conn, thread_id)).as_json()
