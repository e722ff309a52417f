"""Thread writes: storing accepted mail (§3, S3), item links (L9, M2–M5) and their history."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bccd.store.database import Database
from bccd.store.schema import link_history, messages, thread_participants, thread_persons, threads
from bccd.store.thread_views import get_raw, get_thread
from bccd.store.threads import (
    AlreadyLinked,
    clear_item,
    set_item,
    set_record_link,
    set_visibility,
    thread_header,
)
from bccd.store.users import NotFound
from tests.store.factories import PAULA, PETER, STRANGER, World, count, draft, message, new_thread, store


async def test_a_stored_thread_reads_back_whole(store_db: Database, world: World) -> None:
    msg = message("m1", subject="Quarterly numbers")
    (stored,) = await store(
        store_db, msg, [await draft(store_db, world.alice, [PETER, STRANGER], subject="Q")]
    )
    assert stored.created and stored.owner_id == world.alice.id
    async with store_db.read() as conn:
        thread = (await get_thread(conn, stored.id)).as_json()
        raw = await get_raw(conn, stored.id)
    assert raw == msg.raw  # verbatim bytes (§3)
    assert thread["owner"] == world.alice.id and thread["subject"] == "Q"
    assert thread["visibility"] == "private"
    # L1 + L6: Peter and his organization are linked, and his one open deal.
    assert thread["item"] == {"type": "deal", "id": "d-1"}
    assert thread["persons"] == ["p-1"] and thread["organizations"] == ["o-1"]
    assert thread["decision"] == {
        "outcome": "linked",
        "reason": "linked",
        "rule": "L6",
        "candidates": [{"type": "deal", "id": "d-1"}],
    }
    assert [(p["address"], p["person"]) for p in thread["participants"]] == [(PETER, "p-1"), (STRANGER, None)]
    assert thread["message"]["subject"] == "Quarterly numbers"
    assert thread["message"]["from"] == [{"address": "alice@acme.test", "name": "Alice"}]
    assert thread["message"]["size"] == len(msg.raw)
    assert [(h["actor"], h["action"], h["after"]) for h in thread["history"]] == [
        ("bccd", "auto_link", {"item": {"type": "deal", "id": "d-1"}})
    ]


async def test_a_retry_of_the_same_bytes_for_the_same_owner_is_the_same_thread(
    store_db: Database, world: World
) -> None:
    msg = message("retry")
    first = await store(store_db, msg, [await draft(store_db, world.alice)])
    # S3: the client did not see our 250 and sends the same bytes again (maybe to another node).
    again = await store(store_db, msg, [await draft(store_db, world.alice)])
    assert first[0].created and not again[0].created
    assert again[0].id == first[0].id
    assert await count(store_db, threads) == 1
    assert await count(store_db, messages) == 1
    assert await count(store_db, link_history) == 1
    assert await count(store_db, thread_participants) == 1


async def test_one_message_for_n_owners_is_n_threads_each_decided_alone(
    store_db: Database, world: World
) -> None:
    bob_no_autolink = dataclasses.replace(world.bob, autolink=False)
    drafts = [
        await draft(store_db, world.alice, [PETER]),
        await draft(store_db, bob_no_autolink, [PETER]),
        await draft(store_db, world.carol, [PAULA]),
    ]
    stored = await store(store_db, message("fanout"), drafts)
    assert [s.owner_id for s in stored] == [world.alice.id, world.bob.id, world.carol.id]
    assert all(s.created for s in stored) and len({s.id for s in stored}) == 3
    assert await count(store_db, messages) == 1
    async with store_db.read() as conn:
        got = [(await get_thread(conn, s.id)).as_json() for s in stored]
    assert [(t["item"], t["decision"]["reason"]) for t in got] == [
        ({"type": "deal", "id": "d-1"}, "linked"),
        (None, "autolink_disabled"),  # L2; L1 still links the person
        (None, "ambiguous"),  # L7: Paula has an open lead and an open project
    ]
    assert got[1]["persons"] == ["p-1"]
    # The same bytes later for a new owner make a new thread; for a known owner, the known one (S3).
    # Eve is in Globex: her thread links Globex's Peter and deal, never Acme's (T1).
    again = await store(store_db, message("fanout"), [await draft(store_db, world.eve), drafts[0]])
    assert again[0].created and not again[1].created and again[1].id == stored[0].id
    assert await count(store_db, threads) == 4
    async with store_db.read() as conn:
        eves = (await get_thread(conn, again[0].id)).as_json()
    assert (eves["item"], eves["persons"]) == ({"type": "deal", "id": "gd-1"}, ["g-1"])


async def test_thread_owner_and_message_pair_is_unique_in_the_database(
    store_db: Database, world: World
) -> None:
    thread_id = await new_thread(store_db, world.alice, "unique")
    async with store_db.read() as conn:
        row = (await conn.execute(select(threads).where(threads.c.id == thread_id))).mappings().one()
    values = {k: v for k, v in row.items() if k != "id"}
    # S3 is the database's job, not only insert_ignore's: a plain INSERT of the same pair is refused.
    with pytest.raises(IntegrityError):
        async with store_db.write() as conn:
            await conn.execute(threads.insert().values(**values))


async def test_set_item_compare_and_set(store_db: Database, world: World) -> None:
    thread_id = await new_thread(store_db, world.alice, "cas", [PAULA])  # ambiguous: unlinked
    lead, project = world.ids["lead:l-1"], world.ids["project:pr-1"]
    async with store_db.write() as conn:
        assert await set_item(conn, thread_id, lead, actor="user:1") == "linked"
    async with store_db.write() as conn:
        assert await set_item(conn, thread_id, lead, actor="user:1") == "unchanged"  # M2: same item again
    with pytest.raises(AlreadyLinked) as refused:
        async with store_db.write() as conn:
            await set_item(conn, thread_id, project, actor="user:1")
    assert refused.value.current == {"type": "lead", "id": "l-1"}
    async with store_db.write() as conn:
        assert await set_item(conn, thread_id, project, actor="user:2", replace=True) == "replaced"
        # M4: any item of the company, whatever its status or age.
        assert (
            await set_item(conn, thread_id, world.ids["deal:d-2"], actor="user:2", replace=True) == "replaced"
        )
        thread = (await get_thread(conn, thread_id)).as_json()
    assert thread["item"] == {"type": "deal", "id": "d-2"}
    assert [(h["actor"], h["action"], h["before"], h["after"]) for h in thread["history"][1:]] == [
        ("user:1", "link_item", {"item": None}, {"item": {"type": "lead", "id": "l-1"}}),
        (
            "user:2",
            "replace_item",
            {"item": {"type": "lead", "id": "l-1"}},
            {"item": {"type": "project", "id": "pr-1"}},
        ),
        (
            "user:2",
            "replace_item",
            {"item": {"type": "project", "id": "pr-1"}},
            {"item": {"type": "deal", "id": "d-2"}},
        ),
    ]


async def test_clear_item(store_db: Database, world: World) -> None:
    thread_id = await new_thread(store_db, world.alice, "clear")  # auto-linked to d-1
    async with store_db.write() as conn:
        assert await clear_item(conn, thread_id, actor="user:1") is True
        assert await clear_item(conn, thread_id, actor="user:1") is False
        thread = (await get_thread(conn, thread_id)).as_json()
    assert thread["item"] is None
    assert thread["persons"] == ["p-1"]  # M3: unlink takes the item only
    assert [(h["action"], h["before"], h["after"]) for h in thread["history"]] == [
        ("auto_link", None, {"item": {"type": "deal", "id": "d-1"}}),
        ("unlink_item", {"item": {"type": "deal", "id": "d-1"}}, {"item": None}),
    ]


async def test_linking_to_an_item_that_does_not_exist_is_refused_by_the_database(
    store_db: Database, world: World
) -> None:
    thread_id = await new_thread(store_db, world.alice, "fk", [STRANGER])
    with pytest.raises(IntegrityError):
        async with store_db.write() as conn:
            await set_item(conn, thread_id, 987654, actor="user:1")
    async with store_db.read() as conn:
        assert (await thread_header(conn, thread_id)).item_id is None


async def test_person_and_organization_links_by_hand(store_db: Database, world: World) -> None:
    thread_id = await new_thread(store_db, world.alice, "records", [STRANGER])
    p2, o1 = world.ids["person:p-2"], world.ids["organization:o-1"]
    async with store_db.write() as conn:
        assert await set_record_link(conn, thread_id, "person", p2, actor="user:1", linked=True)
        assert not await set_record_link(conn, thread_id, "person", p2, actor="user:1", linked=True)
        assert await set_record_link(conn, thread_id, "organization", o1, actor="user:1", linked=True)
        assert await set_record_link(conn, thread_id, "person", p2, actor="user:1", linked=False)
        assert not await set_record_link(conn, thread_id, "person", p2, actor="user:1", linked=False)
        thread = (await get_thread(conn, thread_id)).as_json()
    assert thread["persons"] == [] and thread["organizations"] == ["o-1"]
    assert [h["action"] for h in thread["history"]] == [
        "auto_link",
        "link_person",
        "link_organization",
        "unlink_person",
    ]
    assert await count(store_db, thread_persons, thread_persons.c.thread_id == thread_id) == 0


async def test_visibility(store_db: Database, world: World) -> None:
    thread_id = await new_thread(store_db, world.alice, "vis")
    async with store_db.write() as conn:
        assert await set_visibility(conn, thread_id, "shared", actor="user:1")
        assert not await set_visibility(conn, thread_id, "shared", actor="user:1")
        with pytest.raises(ValueError):
            await set_visibility(conn, thread_id, "public", actor="user:1")
        header = await thread_header(conn, thread_id)
    assert header.visibility == "shared" and header.owner_id == world.alice.id


async def test_unknown_thread_is_not_found(store_db: Database, world: World) -> None:
    async with store_db.write() as conn:
        with pytest.raises(NotFound):
            await thread_header(conn, 424242)
        with pytest.raises(NotFound):
            await set_item(conn, 424242, world.ids["deal:d-1"], actor="user:1")
        with pytest.raises(NotFound):
            await clear_item(conn, 424242, actor="user:1")
        with pytest.raises(NotFound):
            await get_raw(conn, 424242)


async def test_sender_authentication_is_stored_per_thread_and_null_when_off(
    store_db: Database, world: World
) -> None:
    """A5 on every backend: the authentication JSON comes back key for key; a draft without it is null."""
    auth = {
        "spf": {"result": "pass", "domain": "acme.test"},
        "dkim": [{"result": "pass", "domain": "acme.test", "selector": "s1"}],
        "dmarc": {"result": "pass", "policy": "reject", "aligned": ["spf", "dkim"]},
        "verdict": "pass",
    }
    checked = dataclasses.replace(await draft(store_db, world.alice), authentication=auth)
    unchecked = await draft(store_db, world.carol)
    first, second = await store(store_db, message("auth"), [checked, unchecked])
    async with store_db.read() as conn:
        assert (await get_thread(conn, first.id)).as_json()["authentication"] == auth
        assert (await get_thread(conn, second.id)).as_json()["authentication"] is None
