"""Group commit: the write jobs of concurrent SMTP sessions share one transaction and one fsync.

Each job runs inside its own SAVEPOINT, so one failing job fails alone; a failing COMMIT fails every job of
the batch, and each caller then answers 451 (SPEC S2): no caller is told "stored" before the commit returned.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.logs import get_logger
from bccd.store.database import Database

T = TypeVar("T")
Job = Callable[[AsyncConnection], Awaitable[Any]]
log = get_logger(__name__)


class CommitQueue:
    def __init__(self, db: Database, *, batch_max: int = 64) -> None:
        self._db = db
        self._batch_max = batch_max
        self._queue: asyncio.Queue[tuple[str, Job, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

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

    async def submit(self, job: Callable[[AsyncConnection], Awaitable[T]], *, order_key: str = "") -> T:
        """Run `job` in the next batch; returns once its transaction is durably committed.

        Jobs of a batch run sorted by `order_key` (ingest passes the message's sha256). Every node then
        takes the unique-key locks of the same messages in the same order, so two nodes' batches holding
        the same MX retries can wait for each other but never deadlock (PostgreSQL).
        """
        if self._task is None:
            raise RuntimeError("commit queue is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put((order_key, job, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[tuple[str, Job, asyncio.Future[Any]]]) -> None:
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            async with self._db.write() as conn:
                for _, job, future in sorted(batch, key=lambda entry: entry[0]):
                    if future.cancelled():
                        continue
                    if len(batch) == 1:
                        # Alone in its transaction: the rollback isolates a failure, no savepoint needed
                        # (two statements fewer per message when the server is not busy).
                        results.append((future, True, await job(conn)))
                        continue
                    try:
                        async with conn.begin_nested():
                            results.append((future, True, await job(conn)))
                    except Exception as exc:  # this job alone fails; the others still commit
                        results.append((future, False, exc))
        except Exception as exc:
            log.error("commit_failed", batch=len(batch), error=type(exc).__name__)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, ok, value in results:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
