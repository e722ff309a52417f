"""Group commit (S2): a caller hears "stored" only after its batch committed; one bad message fails alone."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store import commit_queue, thread_batch
from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.schema import messages, threads
from bccd.store.threads import MessageRow, StoredThread, ThreadDraft
from tests.store.factories import World, count, draft, message

Payload = Sequence[tuple[MessageRow, Sequence[ThreadDraft]]]


def _spy_on_batches(monkeypatch: pytest.MonkeyPatch, *, poison: str | None = None) -> list[AsyncConnection]:
    """Record the connection of every batch write; with `poison`, the write holding that message also
    leaves a deferred constraint violation behind, so its batch's COMMIT fails (on both backends)."""
    seen: list[AsyncConnection] = []
    real = thread_batch.store_messages

    async def spy(conn: AsyncConnection, payload: Payload) -> list[list[StoredThread]]:
        seen.append(conn)
        if poison is not None and any(row.sha256 == poison for row, _ in payload):
            table = f"deferred_{uuid.uuid4().hex[:8]}"
            await conn.exec_driver_sql(
                f"CREATE TEMPORARY TABLE {table} (id INTEGER PRIMARY KEY, "
                f"ref INTEGER REFERENCES {table}(id) DEFERRABLE INITIALLY DEFERRED)"
            )
            await conn.exec_driver_sql(f"INSERT INTO {table} (id, ref) VALUES (1, 2)")  # noqa: S608
        return await real(conn, payload)

    monkeypatch.setattr(commit_queue, "store_messages", spy)
    return seen


async def test_submit_returns_after_a_commit_other_engines_can_see(
    any_db_url: str, store_db: Database, world: World, queue: CommitQueue
) -> None:
    drafts = [await draft(store_db, world.alice, subject=f"s{i}") for i in range(12)]
    results = await asyncio.gather(*(queue.submit_message(message(f"gc{i}"), [drafts[i]]) for i in range(12)))
    # Another engine (another node, or this node after a crash) sees every thread whose caller was told.
    other = Database(any_db_url)
    try:
        async with other.read() as conn:
            stored = {int(r[0]) for r in await conn.execute(select(threads.c.id))}
    finally:
        await other.close()
    assert {r[0].id for r in results} == stored and len(stored) == 12


async def test_a_failing_message_fails_alone_in_its_batch(
    store_db: Database, world: World, queue: CommitQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy_on_batches(monkeypatch)
    good = await draft(store_db, world.alice)
    orphan = dataclasses.replace(good, owner_id=10**9)  # no such user: a real foreign-key error
    outcomes = await asyncio.gather(
        queue.submit_message(message("first"), [good]),
        queue.submit_message(message("broken"), [orphan]),
        queue.submit_message(message("last"), [good]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], list) and isinstance(outcomes[2], list)
    assert isinstance(outcomes[1], IntegrityError)
    assert len({id(c) for c in seen}) == 1  # one batch, one transaction (then one savepoint per message)
    assert await count(store_db, threads) == 2  # nothing of the failed message, everything of the others
    assert await count(store_db, messages) == 2


async def test_a_failing_commit_fails_every_message_of_the_batch(
    store_db: Database, world: World, queue: CommitQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    poisoned = message("poison")
    _spy_on_batches(monkeypatch, poison=poisoned.sha256)
    alice = await draft(store_db, world.alice)
    outcomes = await asyncio.gather(
        queue.submit_message(message("a"), [alice]),
        queue.submit_message(poisoned, [alice]),
        queue.submit_message(message("b"), [alice]),
        return_exceptions=True,
    )
    # S2: nobody is told "stored" when the commit did not happen.
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert await count(store_db, threads) == 0
    # The queue keeps working after a failed batch.
    assert isinstance(await queue.submit_message(message("c"), [alice]), list)
    assert await count(store_db, threads) == 1


async def test_stop_drains_what_is_queued(store_db: Database, world: World) -> None:
    commits = CommitQueue(store_db, batch_max=2)
    commits.start()
    alice = await draft(store_db, world.alice)
    pending = [asyncio.ensure_future(commits.submit_message(message(f"n{i}"), [alice])) for i in range(5)]
    await asyncio.sleep(0)
    await commits.stop()
    assert all(p.done() and isinstance(p.result(), list) for p in pending)
    assert await count(store_db, threads) == 5
    with pytest.raises(RuntimeError):
        await commits.submit_message(message("late"), [alice])


async def test_callers_are_answered_even_when_logging_fails(
    store_db: Database, world: World, queue: CommitQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    class BrokenLog:
        def error(self, *args: object, **kw: object) -> None:
            raise ValueError("I/O operation on closed file")  # e.g. a log stream that went away

        def warning(self, *args: object, **kw: object) -> None:
            raise ValueError("I/O operation on closed file")

    poisoned = message("fails-at-commit")
    _spy_on_batches(monkeypatch, poison=poisoned.sha256)
    monkeypatch.setattr(commit_queue, "log", BrokenLog())
    alice = await draft(store_db, world.alice)
    outcome: list[Any] = list(
        await asyncio.wait_for(
            asyncio.gather(queue.submit_message(poisoned, [alice]), return_exceptions=True), 10
        )
    )
    assert isinstance(outcome[0], Exception)  # answered (451 upstream), not left waiting
    assert isinstance(await asyncio.wait_for(queue.submit_message(message("after"), [alice]), 10), list)
