"""Group commit: the writes of concurrent SMTP sessions share one transaction and one fsync.

The messages of a batch are stored together by `thread_batch.store_messages`: a fixed handful of multi-row
statements for the whole batch. Should that fail, each message is retried alone in its own SAVEPOINT so one
bad message fails alone. A failing COMMIT fails every caller of the batch, and each then answers 451 (SPEC
S2): nobody is told "stored" before the COMMIT returned.

The queue is not a second writer: each batch is one `Database.write()` transaction, the process's single
write path, which it shares in FIFO order with every other write (directory upserts, import chunks, link
changes). The queue only decides which messages share a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.logs import error_fields, get_logger
from bccd.store.database import Database
from bccd.store.raw_chunks import wants_chunks, write_ahead
from bccd.store.sqlite_writes import savepoint
from bccd.store.thread_batch import store_messages
from bccd.store.threads import MessageRow, StoredThread, ThreadDraft

# A batch's messages together stay under this many bytes (issue 8): 64 × 20 MB in one transaction would
# hold tens of megabytes of statements in memory and the writer for seconds.
BATCH_MAX_BYTES = 32 * 1024 * 1024
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MessageWrite:
    row: MessageRow
    drafts: Sequence[ThreadDraft]


@dataclass(slots=True)
class _Entry:
    work: MessageWrite
    future: asyncio.Future[list[StoredThread]]


def _size(entry: _Entry) -> int:
    return len(entry.work.row.raw)


class CommitQueue:
    def __init__(self, db: Database, *, batch_max: int = 64, batch_max_bytes: int = BATCH_MAX_BYTES) -> None:
        self._db = db
        self._batch_max = batch_max
        self._batch_max_bytes = batch_max_bytes
        self._carry: _Entry | None = None  # taken from the queue but over the byte budget: next batch
        self._queue: asyncio.Queue[_Entry] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Writes waiting for the writer (exported as bccd_commit_queue_depth)."""
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="bccd-commit-queue")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit_message(self, row: MessageRow, drafts: Sequence[ThreadDraft]) -> list[StoredThread]:
        """Store one accepted message as threads, batched with the other sessions' messages; returns once
        the batch's transaction is durably committed."""
        if self._task is None:
            raise RuntimeError("commit queue is not running")
        if wants_chunks(self._db, row):  # big: its bytes first, piece by piece (bccd.store.raw_chunks)
            row = await write_ahead(self._db, row)
        future: asyncio.Future[list[StoredThread]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Entry(MessageWrite(row, drafts), future))
        return await future

    def _next_batch_rest(self, batch: list[_Entry]) -> None:
        """Fill `batch` with waiting entries, up to `batch_max` entries and `batch_max_bytes` of messages."""
        size = sum(_size(e) for e in batch)
        while len(batch) < self._batch_max and not self._queue.empty():
            entry = self._queue.get_nowait()
            if size + _size(entry) > self._batch_max_bytes:
                self._carry = entry  # one transaction never holds more than the budget (plus one message)
                return
            size += _size(entry)
            batch.append(entry)

    async def _run(self) -> None:
        while True:
            if self._carry is not None:
                batch, self._carry = [self._carry], None
            else:
                batch = [await self._queue.get()]
            self._next_batch_rest(batch)
            try:
                await self._commit(batch)
            except BaseException as exc:
                # Whatever went wrong (even in logging), no SMTP session may wait forever for its answer.
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(
                            exc if isinstance(exc, Exception) else RuntimeError("commit queue stopped")
                        )
                if not isinstance(exc, Exception):
                    raise
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Entry]) -> None:
        # A batch runs in sha256 order: every node then takes the unique-key locks of the same messages in
        # the same order, so two nodes' batches holding the same MX retries can wait for each other but
        # never deadlock (PostgreSQL).
        entries = sorted((e for e in batch if not e.future.cancelled()), key=lambda e: e.work.row.sha256)
        results: list[tuple[asyncio.Future[list[StoredThread]], bool, Any]] = []
        try:
            if entries:
                async with self._db.write() as conn:
                    results = await self._store_messages(conn, entries, alone=len(entries) == 1)
        except Exception as exc:
            for entry in batch:  # answer every caller first: nothing below may leave a session waiting
                if not entry.future.done():
                    entry.future.set_exception(exc)
            log.error("commit_failed", batch=len(batch), **error_fields(exc))
            return
        for future, ok, value in results:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def _store_messages(
        self, conn: AsyncConnection, writes: list[_Entry], *, alone: bool
    ) -> list[tuple[asyncio.Future[list[StoredThread]], bool, Any]]:
        payload = [(e.work.row, e.work.drafts) for e in writes]
        if alone:  # alone in its transaction: the rollback isolates a failure, no savepoint needed
            stored = await store_messages(conn, payload)
            return [(e.future, True, s) for e, s in zip(writes, stored, strict=True)]
        try:
            async with savepoint(conn):
                stored = await store_messages(conn, payload)
            return [(e.future, True, s) for e, s in zip(writes, stored, strict=True)]
        except Exception as exc:
            log.warning("batch_write_retried_one_by_one", batch=len(writes), **error_fields(exc))
        results: list[tuple[asyncio.Future[list[StoredThread]], bool, Any]] = []
        for entry, item in zip(writes, payload, strict=True):
            try:
                async with savepoint(conn):
                    results.append((entry.future, True, (await store_messages(conn, [item]))[0]))
            except Exception as exc:  # this message alone fails (451); the others still commit
                results.append((entry.future, False, exc))
        return results
