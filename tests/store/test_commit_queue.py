"""Group commit (S2): a caller hears "stored" only after its batch committed; one bad job fails alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.schema import companies, threads
from bccd.store.threads import StoredThread
from bccd.store.users import create_company
from tests.store.factories import World, count, draft, message, store_message_threads


def _named(name: str, seen: list[AsyncConnection] | None = None) -> Any:
    async def job(conn: AsyncConnection) -> int:
        if seen is not None:
            seen.append(conn)
        return (await create_company(conn, name)).id

    return job


async def test_submit_returns_after_a_commit_other_engines_can_see(
    any_db_url: str, store_db: Database, world: World, queue: CommitQueue
) -> None:
    drafts = [await draft(store_db, world.alice, subject=f"s{i}") for i in range(12)]

    def job_for(i: int) -> Any:
        async def job(conn: AsyncConnection) -> list[StoredThread]:
            return await store_message_threads(conn, message(f"gc{i}"), [drafts[i]])

        return job

    results = await asyncio.gather(*(queue.submit(job_for(i)) for i in range(12)))
    # Another engine (another node, or this node after a crash) sees every thread whose caller was told.
    other = Database(any_db_url)
    try:
        async with other.read() as conn:
            stored = {int(r[0]) for r in await conn.execute(select(threads.c.id))}
    finally:
        await other.close()
    assert {r[0].id for r in results} == stored and len(stored) == 12


async def test_a_failing_job_fails_alone_in_its_savepoint(store_db: Database, queue: CommitQueue) -> None:
    seen: list[AsyncConnection] = []

    async def duplicate_key(conn: AsyncConnection) -> None:
        seen.append(conn)
        # A real database error: on PostgreSQL it aborts the transaction unless a savepoint contains it.
        row = {"id": 10**9, "name": "dup", "never_log": [], "created_at": _now()}  # far from the sequence
        await conn.execute(insert(companies).values(**row))
        await conn.execute(insert(companies).values(**row))

    async def python_error(conn: AsyncConnection) -> None:
        seen.append(conn)
        await create_company(conn, "half written")
        raise RuntimeError("job bug")

    outcomes = await asyncio.gather(
        queue.submit(_named("first", seen)),
        queue.submit(duplicate_key),
        queue.submit(python_error),
        queue.submit(_named("last", seen)),
        return_exceptions=True,
    )
    assert len({id(c) for c in seen}) == 1  # one batch, one transaction
    assert isinstance(outcomes[0], int) and isinstance(outcomes[3], int)
    assert isinstance(outcomes[1], IntegrityError)
    assert isinstance(outcomes[2], RuntimeError)
    async with store_db.read() as conn:
        names = sorted(r[0] for r in await conn.execute(select(companies.c.name)))
    assert names == ["first", "last"]  # nothing of the failed jobs, everything of the others


async def test_a_failing_commit_fails_every_job_of_the_batch(store_db: Database, queue: CommitQueue) -> None:
    table = f"deferred_{uuid.uuid4().hex[:8]}"

    async def poison_commit(conn: AsyncConnection) -> None:
        # A deferred constraint is checked at COMMIT, on both backends: the batch's COMMIT fails.
        await conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {table} (id INTEGER PRIMARY KEY, "
            f"ref INTEGER REFERENCES {table}(id) DEFERRABLE INITIALLY DEFERRED)"
        )
        await conn.exec_driver_sql(f"INSERT INTO {table} (id, ref) VALUES (1, 2)")  # noqa: S608

    outcomes = await asyncio.gather(
        queue.submit(_named("a")),
        queue.submit(poison_commit),
        queue.submit(_named("b")),
        return_exceptions=True,
    )
    # S2: nobody is told "stored" when the commit did not happen.
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert await count(store_db, companies) == 0
    # The queue keeps working after a failed batch.
    assert isinstance(await queue.submit(_named("c")), int)
    assert await count(store_db, companies) == 1


async def test_stop_drains_what_is_queued(store_db: Database) -> None:
    commits = CommitQueue(store_db, batch_max=2)
    commits.start()
    pending = [asyncio.ensure_future(commits.submit(_named(f"n{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    await commits.stop()
    assert all(p.done() and isinstance(p.result(), int) for p in pending)
    assert await count(store_db, companies) == 5
    with pytest.raises(RuntimeError):
        await commits.submit(_named("late"))


def _now() -> datetime:
    return datetime.now(UTC)


async def test_callers_are_answered_even_when_logging_fails(
    store_db: Database, queue: CommitQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bccd.store import commit_queue

    class BrokenLog:
        def error(self, *args: object, **kw: object) -> None:
            raise ValueError("I/O operation on closed file")  # e.g. a log stream that went away

    table = f"deferred_{uuid.uuid4().hex[:8]}"

    async def failing_commit(conn: AsyncConnection) -> None:  # the batch's COMMIT fails (deferred FK)
        await conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {table} (id INTEGER PRIMARY KEY, "
            f"ref INTEGER REFERENCES {table}(id) DEFERRABLE INITIALLY DEFERRED)"
        )
        await conn.exec_driver_sql(f"INSERT INTO {table} (id, ref) VALUES (1, 2)")  # noqa: S608

    monkeypatch.setattr(commit_queue, "log", BrokenLog())
    outcome = await asyncio.wait_for(asyncio.gather(queue.submit(failing_commit), return_exceptions=True), 10)
    assert isinstance(outcome[0], Exception)  # answered (451 upstream), not left waiting
    assert isinstance(await asyncio.wait_for(queue.submit(_named("after")), 10), int)
