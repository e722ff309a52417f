"""Races between nodes: every Database here is its own engine and connections, as a separate bccd node's is.

The guarantees are the database's to keep (unique keys, compare-and-set, row locks), so they must hold
however the statements of concurrent transactions interleave: L9/M2, S3 and directory uniqueness.
On SQLite the same tests run through separate engines on one file (writers serialize on BEGIN IMMEDIATE).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.directory_models import DealIn, PersonIn
from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.directory import delete_person, get_item, get_person, upsert_item, upsert_person
from bccd.store.schema import (
    item_participants,
    items,
    link_history,
    messages,
    person_emails,
    persons,
    thread_participants,
    thread_persons,
    threads,
    users,
)
from bccd.store.thread_views import get_thread
from bccd.store.threads import (
    AlreadyLinked,
    clear_item,
    set_item,
    set_record_link,
)
from bccd.store.users import Conflict, create_user
from tests.store.factories import (
    PAULA,
    PETER,
    World,
    count,
    draft,
    message,
    new_thread,
    store_message_threads,
)

NODES = 6
T = TypeVar("T")


@pytest.fixture
async def nodes(any_db_url: str) -> AsyncIterator[list[Database]]:
    dbs = [Database(any_db_url) for _ in range(NODES)]
    yield dbs
    for db in dbs:
        await db.close()


async def race(
    nodes: Sequence[Database], work: Callable[[int, AsyncConnection], Awaitable[T]]
) -> list[T | BaseException]:
    """Run work(i, conn) in a write transaction on every node at once; outcomes in node order."""
    start = asyncio.Barrier(len(nodes))

    async def one(i: int) -> T:
        await start.wait()  # every node is ready before any begins, so their transactions overlap
        async with nodes[i].write() as conn:
            return await work(i, conn)

    return await asyncio.gather(*(one(i) for i in range(len(nodes))), return_exceptions=True)


async def _deals(db: Database, world: World, n: int) -> list[int]:
    async with db.write() as conn:
        return [
            (await upsert_item(conn, world.company_id, "deal", f"r-{i}", DealIn(title=f"R{i}")))[0]
            for i in range(n)
        ]


async def _history(db: Database, thread_id: int) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return list((await get_thread(conn, thread_id)).as_json()["history"])


async def test_different_links_to_one_thread_at_once_exactly_one_wins(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    deals = await _deals(store_db, world, NODES)
    for round_ in range(3):
        thread_id = await new_thread(store_db, world.alice, f"l9-{round_}", [PAULA])  # ambiguous: unlinked

        async def link(i: int, conn: AsyncConnection, thread_id: int = thread_id) -> str:
            return await set_item(conn, thread_id, deals[i], actor=f"node:{i}")

        outcomes = await race(nodes, link)
        winners = [i for i, o in enumerate(outcomes) if o == "linked"]
        assert len(winners) == 1, outcomes  # L9 / M2: one item per thread, the database decides
        winner_ref = {"type": "deal", "id": f"r-{winners[0]}"}
        for i, outcome in enumerate(outcomes):
            if i != winners[0]:
                assert isinstance(outcome, AlreadyLinked), outcome  # the 409
                assert outcome.current == winner_ref
        history = await _history(store_db, thread_id)
        assert [(h["action"], h["after"]) for h in history[1:]] == [("link_item", {"item": winner_ref})]


async def test_concurrent_replaces_and_unlinks_keep_an_honest_history(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    deals = await _deals(store_db, world, NODES)
    thread_id = await new_thread(store_db, world.alice, "replace-race")  # auto-linked to d-1

    async def change(i: int, conn: AsyncConnection) -> object:
        if i % 3 == 2:
            return await clear_item(conn, thread_id, actor=f"node:{i}")
        return await set_item(conn, thread_id, deals[i], actor=f"node:{i}", replace=True)

    for _ in range(2):
        outcomes = await race(nodes, change)
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    history = await _history(store_db, thread_id)
    # Each change's `before` is what the previous change left (M5): no write was decided on a stale read.
    for previous, current in itertools.pairwise(history):
        assert current["before"] == previous["after"], history
    async with store_db.read() as conn:
        final = (await get_thread(conn, thread_id)).as_json()["item"]
    assert history[-1]["after"] == {"item": final}


async def test_the_same_message_stored_by_every_node_at_once_is_one_thread(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    msg = message("mx-retry")
    alice, bob = await draft(store_db, world.alice), await draft(store_db, world.bob)

    async def deliver(i: int, conn: AsyncConnection) -> list[Any]:
        # Half the nodes got the owners in the other order; the message row still serializes them.
        return await store_message_threads(conn, msg, [alice, bob] if i % 2 else [bob, alice])

    outcomes = await race(nodes, deliver)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    stored = [t for o in outcomes if isinstance(o, list) for t in o]
    # S3: every node answers for the same two threads; exactly one node created each.
    assert len({(t.owner_id, t.id) for t in stored}) == 2
    assert sorted(t.owner_id for t in stored if t.created) == sorted([world.alice.id, world.bob.id])
    assert await count(store_db, messages) == 1
    assert await count(store_db, threads) == 2
    assert await count(store_db, link_history) == 2
    assert await count(store_db, thread_participants) == 2


async def test_concurrent_upserts_of_one_external_id_make_one_record(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    async def upsert(i: int, conn: AsyncConnection) -> tuple[bool, bool]:
        _, new_person = await upsert_person(
            conn,
            world.company_id,
            "p-race",
            PersonIn(name=f"N{i}", emails=[f"n{i}@race.example", "all@race.example"]),
        )
        _, new_deal = await upsert_item(
            conn,
            world.company_id,
            "deal",
            "d-race",
            DealIn(title=f"D{i}", person="p-race", participants=["p-1", "p-2"][: i % 3]),
        )
        return new_person, new_deal

    outcomes = await race(nodes, upsert)
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    created = [o for o in outcomes if isinstance(o, tuple)]
    assert sum(p for p, _ in created) == 1 and sum(d for _, d in created) == 1
    assert await count(store_db, persons, persons.c.external_id == "p-race") == 1
    assert await count(store_db, items, items.c.external_id == "d-race") == 1
    async with store_db.read() as conn:
        person = await get_person(conn, world.company_id, "p-race")
        deal = await get_item(conn, world.company_id, "deal", "d-race")
    # The record is one writer's version whole, never a mix of two (emails and participants included).
    i = int(person["name"][1:])
    assert person["emails"] == sorted([f"n{i}@race.example", "all@race.example"])
    j = int(deal["title"][1:])
    assert deal["participants"] == ["p-1", "p-2"][: j % 3]
    assert deal["person"] == "p-race"


async def test_directory_upserts_racing_with_ingest_never_half_link_a_thread(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    """Node 0..2 store mail about Peter while nodes 3..5 rewrite Peter and his deal through the API."""
    drafts = [await draft(store_db, world.alice, [PETER], subject=f"m{i}") for i in range(NODES)]
    d1 = world.ids["deal:d-1"]

    async def work(i: int, conn: AsyncConnection) -> object:
        if i < NODES // 2:
            return await store_message_threads(conn, message(f"ingest-{i}"), [drafts[i]])
        await upsert_person(
            conn, world.company_id, "p-1", PersonIn(name=f"Peter {i}", emails=[PETER], organization="o-1")
        )
        return await upsert_item(
            conn,
            world.company_id,
            "deal",
            "d-1",
            DealIn(title=f"Big deal {i}", person="p-1", participants=["p-2"]),
        )

    for _ in range(2):
        outcomes = await race(nodes, work)
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    # One Peter, one d-1: no duplicate records.
    assert await count(store_db, persons, persons.c.external_id == "p-1") == 1
    assert await count(store_db, items, items.c.external_id == "d-1") == 1
    assert await count(store_db, person_emails, person_emails.c.address == PETER) == 2  # Acme's and Globex's
    assert await count(store_db, item_participants, item_participants.c.item_id == d1) == 1
    async with store_db.read() as conn:
        rows = (await conn.execute(select(threads.c.id, threads.c.item_id))).all()
    assert len(rows) == NODES // 2  # the second round's messages were retries of the first (S3)
    for thread_id, item_id in rows:
        # Every thread is whole: its item, its person, its participant row and its one decision record.
        assert item_id == d1
        assert await count(store_db, thread_persons, thread_persons.c.thread_id == thread_id) == 1
        assert await count(store_db, thread_participants, thread_participants.c.thread_id == thread_id) == 1
        assert await count(store_db, link_history, link_history.c.thread_id == thread_id) == 1


async def test_the_same_login_created_on_every_node_at_once_is_one_user(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    async def create(i: int, conn: AsyncConnection) -> int:
        return (await create_user(conn, world.company_id, email="Zed@acme.test", name=f"Zed {i}")).id

    outcomes = await race(nodes, create)
    assert len([o for o in outcomes if isinstance(o, int)]) == 1, outcomes
    # A clear 409-style Conflict for the losers on both backends, not a driver error.
    assert all(isinstance(o, Conflict) for o in outcomes if not isinstance(o, int)), outcomes
    assert await count(store_db, users, users.c.email == "zed@acme.test") == 1


async def test_the_same_manual_person_link_at_once_is_recorded_once(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    thread_id = await new_thread(store_db, world.alice, "record-race", [PAULA])
    p1 = world.ids["person:p-1"]

    async def link(i: int, conn: AsyncConnection) -> bool:
        return await set_record_link(conn, thread_id, "person", p1, actor=f"node:{i}", linked=True)

    outcomes = await race(nodes, link)
    assert sorted(map(str, outcomes)) == ["False"] * (NODES - 1) + ["True"]
    history = await _history(store_db, thread_id)
    assert [h["action"] for h in history] == ["auto_link", "link_person"]


async def test_crossing_batches_of_two_nodes_lose_nothing(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    """Two nodes' group commits receive the same messages in opposite orders (MX retries in flight).

    Unordered, PostgreSQL could deadlock them and abort one statement (a 451 and a retry). CommitQueue runs a
    batch in order_key (sha256) order, so both nodes lock in the same order and neither fails; a retry would
    still be deduplicated (S3).
    """
    alice = await draft(store_db, world.alice)
    msgs = [message(f"cross-{i}") for i in range(2)]
    queues = [CommitQueue(nodes[0]), CommitQueue(nodes[1])]
    for q in queues:
        q.start()

    try:
        first = await asyncio.gather(
            *(queues[0].submit_message(m, [alice]) for m in msgs),
            *(queues[1].submit_message(m, [alice]) for m in reversed(msgs)),
            return_exceptions=True,
        )
        sent = [*msgs, *reversed(msgs)]
        failed = [sent[i] for i, o in enumerate(first) if isinstance(o, BaseException)]
        # Batches run in sha256 order, so the two nodes lock the messages in the same order: no deadlock.
        assert failed == []
        # the MTA's retry
        retried = [await queues[i % 2].submit_message(m, [alice]) for i, m in enumerate(failed)]
    finally:
        for q in queues:
            await q.stop()
    stored = [t for o in [*first, *retried] if isinstance(o, list) for t in o]
    assert len(stored) == 2 * len(msgs)  # every delivery ends with an answer for a stored thread
    assert len({t.id for t in stored}) == len(msgs)
    assert sum(t.created for t in stored) == len(msgs)  # each created exactly once
    assert await count(store_db, threads) == len(msgs)
    assert await count(store_db, link_history) == len(msgs)


async def test_a_person_deleted_while_mail_about_them_is_stored(
    store_db: Database, world: World, nodes: list[Database]
) -> None:
    """Ingest decided with Peter linked; the CRM deletes Peter before the commit. A thread is stored
    whole (and then loses Peter with the rest of the directory) or not at all: the caller answers 451
    and the retry is decided afresh. Never a thread pointing at a person that does not exist."""
    drafts = [await draft(store_db, world.alice, [PETER], subject=f"del-{i}") for i in range(NODES)]

    async def work(i: int, conn: AsyncConnection) -> object:
        if i == 0:
            await delete_person(conn, world.company_id, "p-1")
            return "deleted"
        return await store_message_threads(conn, message(f"del-{i}"), [drafts[i]])

    outcomes = await race(nodes, work)
    stored = [o for o in outcomes[1:] if isinstance(o, list)]
    refused = [o for o in outcomes[1:] if isinstance(o, BaseException)]
    assert outcomes[0] == "deleted"
    assert all(isinstance(o, IntegrityError) for o in refused), refused  # a foreign key, not a crash
    assert len(stored) + len(refused) == NODES - 1
    assert await count(store_db, threads) == len(stored)
    assert await count(store_db, thread_persons) == 0  # Peter is gone, and every link to him
    assert await count(store_db, link_history) == len(stored)
    assert await count(store_db, thread_participants, thread_participants.c.person_id.is_not(None)) == 0
    assert await count(store_db, thread_participants) == len(stored)
