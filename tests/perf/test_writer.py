"""Issue 8 "One writer": every write goes through the process's one writer; readers cannot write."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from bccd.store import sqlite_inline
from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.schema import companies
from bccd.store.threads import MessageRow
from bccd.store.users import create_company


async def test_a_sqlite_reader_cannot_write(db: Database) -> None:
    """Issue 8: read connections run with `PRAGMA query_only=ON`; a write through one fails."""
    async with db.read() as conn:
        with pytest.raises(OperationalError, match="readonly"):
            await create_company(conn, "Sneaky")
    async with db.write() as conn:
        await create_company(conn, "Proper")
    async with db.read() as conn:
        names = (await conn.execute(select(companies.c.name))).scalars().all()
        assert (await conn.execute(select(func.count()).select_from(companies))).scalar_one() == 1
    assert names == ["Proper"]


async def test_a_cancelled_commit_finishes_before_the_caller_sees_the_cancellation() -> None:
    """Issue 8: a cancelled caller cannot leave a COMMIT running in a thread while the loop rolls back."""
    events: list[str] = []

    class SlowCommit:
        in_transaction = True

        def commit(self) -> None:
            time.sleep(0.3)
            events.append("commit done")

    conn = sqlite_inline.InlineConnection(SlowCommit(), 0)  # type: ignore[arg-type]
    task = asyncio.create_task(conn.commit())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    events.append("caller cancelled")
    assert events == ["commit done", "caller cancelled"]


async def test_large_blob_statements_leave_the_event_loop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8: a statement binding a multi-megabyte blob runs in a thread; small ones stay inline."""
    threaded: list[int] = []
    original = sqlite_inline.finish_in_thread

    async def spy(fn: Any) -> Any:
        threaded.append(1)
        return await original(fn)

    monkeypatch.setattr(sqlite_inline, "finish_in_thread", spy)
    async with db.write() as conn:
        before = len(threaded)  # BEGIN may or may not have waited for the lock in a thread
        await conn.execute(text("SELECT length(:b)"), {"b": b"x" * 10})
        assert len(threaded) == before
        big = (await conn.execute(text("SELECT length(:b)"), {"b": b"x" * (2 * 1024 * 1024)})).scalar()
        assert big == 2 * 1024 * 1024 and len(threaded) == before + 1


async def test_message_batches_are_bounded_in_bytes(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 8: a batch holds at most batch_max messages and (beyond its first) batch_max_bytes of them."""
    sizes: list[list[int]] = []
    queue = CommitQueue(db, batch_max=64, batch_max_bytes=2500)

    async def record(batch: list[Any]) -> None:
        sizes.append([len(e.work.row.raw) for e in batch])
        for entry in batch:
            entry.future.set_result([])

    monkeypatch.setattr(queue, "_commit", record)
    queue.start()
    try:
        rows = [MessageRow(sha256=f"{i:064d}", raw=b"x" * 1000) for i in range(5)]
        await asyncio.gather(*(queue.submit_message(r, []) for r in rows))
    finally:
        await queue.stop()
    assert sum(len(b) for b in sizes) == 5
    assert all(sum(b) <= 2500 for b in sizes) and max(len(b) for b in sizes) == 2
