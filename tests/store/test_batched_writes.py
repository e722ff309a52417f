"""The group commit's batched message writes (thread_batch.store_messages via submit_message), both backends.

A batch is a few multi-row statements; these tests pin what must still hold message by message: results
line up with the callers, S3 dedupe inside one batch and across batches, a bad message fails alone, and
two nodes' crossing batches neither deadlock nor duplicate.
"""

from __future__ import annotations

import asyncio
import dataclasses

from sqlalchemy import select
from structlog.testing import capture_logs

from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.schema import link_history, messages, thread_participants, threads
from bccd.store.thread_batch import store_messages
from bccd.store.threads import ParticipantRow
from tests.store.factories import World, count, draft, message


async def test_one_batch_many_messages_with_duplicates_and_retries(store_db: Database, world: World) -> None:
    a1, b1 = await draft(store_db, world.alice), await draft(store_db, world.bob)
    old, new1, new2 = message("old"), message("new-1"), message("new-2")
    async with store_db.write() as conn:
        [[stored_old]] = await store_messages(conn, [(old, [a1])])
    async with store_db.write() as conn:
        results = await store_messages(
            conn,
            [
                (new1, [a1, b1]),  # one message, two owners: two threads
                (old, [a1]),  # a retry of a stored message (S3)
                (new2, [a1]),
                (new1, [a1]),  # the same owner + bytes again within the batch: the same thread
            ],
        )
    assert [len(r) for r in results] == [2, 1, 1, 1]
    assert [t.created for r in results for t in r] == [True, True, False, True, False]
    assert results[1][0].id == stored_old.id
    assert results[3][0].id == results[0][0].id
    assert [t.owner_id for t in results[0]] == [world.alice.id, world.bob.id]
    assert await count(store_db, messages) == 3
    assert await count(store_db, threads) == 4
    assert await count(store_db, link_history) == 4  # one automatic history entry per new thread
    assert await count(store_db, thread_participants) == 4


async def test_concurrent_sessions_are_batched_and_each_hears_its_own_threads(
    store_db: Database, world: World, queue: CommitQueue
) -> None:
    drafts = [await draft(store_db, world.alice, subject=f"s{i}") for i in range(20)]
    rows = [message(f"conc-{i}") for i in range(20)]
    results = await asyncio.gather(*(queue.submit_message(r, [d]) for r, d in zip(rows, drafts, strict=True)))
    assert len({r[0].id for r in results}) == 20 and all(r[0].created for r in results)
    async with store_db.read() as conn:
        subjects = {
            int(tid): subject for tid, subject in await conn.execute(select(threads.c.id, threads.c.subject))
        }
    assert [subjects[r[0].id] for r in results] == [f"s{i}" for i in range(20)]  # answers line up


async def test_a_bad_message_fails_alone(store_db: Database, world: World, queue: CommitQueue) -> None:
    good = [await draft(store_db, world.alice, subject=f"g{i}") for i in range(3)]
    bad = dataclasses.replace(
        await draft(store_db, world.alice, subject="bad"),
        participants=[ParticipantRow("x@y.test", None, "to", 987654321)],  # no such person: FK violation
    )
    with capture_logs() as logs:
        outcomes = await asyncio.gather(
            queue.submit_message(message("g0"), [good[0]]),
            queue.submit_message(message("bad"), [bad]),
            queue.submit_message(message("g1"), [good[1]]),
            queue.submit_message(message("g2"), [good[2]]),
            return_exceptions=True,
        )
    # All four were one batch; its multi-row write failed and was redone message by message.
    assert [e["batch"] for e in logs if e["event"] == "batch_write_retried_one_by_one"] == [4]
    assert [isinstance(o, BaseException) for o in outcomes] == [False, True, False, False]
    assert await count(store_db, threads) == 3  # the others committed; the bad one left nothing behind
    assert await count(store_db, messages) == 3


async def test_crossing_batches_on_two_nodes(any_db_url: str, store_db: Database, world: World) -> None:
    nodes = [Database(any_db_url), Database(any_db_url)]
    queues = [CommitQueue(n) for n in nodes]
    for q in queues:
        q.start()
    try:
        alice = await draft(store_db, world.alice)
        rows = [message(f"x-{i}") for i in range(6)]
        outcomes = await asyncio.gather(
            *(queues[0].submit_message(r, [alice]) for r in rows),
            *(queues[1].submit_message(r, [alice]) for r in reversed(rows)),
        )
    finally:
        for q in queues:
            await q.stop()
        for n in nodes:
            await n.close()
    stored = [t for o in outcomes for t in o]
    assert len({t.id for t in stored}) == 6  # every delivery answered with one of six threads
    assert sum(t.created for t in stored) == 6  # each created exactly once, across both nodes
    assert await count(store_db, threads) == 6
