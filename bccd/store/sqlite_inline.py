"""An SQLite connection for SQLAlchemy's async engine that runs statements on the event loop thread.

aiosqlite hands every statement to a per-connection thread and back: ~0.2 ms of latency and GIL traffic per
statement, on a path (SMTP DATA) that runs ~15 small statements per message. SQLite statements on a warm
page cache take microseconds, so this shim runs them inline and sends only the calls that can wait on the
disk — connecting and `COMMIT` (the fsync) — to a thread. `BEGIN IMMEDIATE` takes the write lock inline when
it is free; when another process holds it, the connection tries again every few milliseconds from the loop
(not with SQLite's busy handler, whose sleeps grow to 100 ms and miss a lock given back between turns).

It speaks the small part of aiosqlite's interface that SQLAlchemy's aiosqlite dialect uses, and is plugged
in through `create_async_engine(..., async_creator=...)`. One connection is never used by two tasks at once
(SQLAlchemy checks connections out of its pool exclusively), so the thread hand-offs never overlap.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

# Statements that may block on the disk (fsync). BEGIN IMMEDIATE/EXCLUSIVE wait on the loop (begin_write).
_THREADED_PREFIXES = ("COMMIT", "END", "PRAGMA WAL_CHECKPOINT")


# How often a write waiting for another process's lock tries again (issue 8). SQLite's own busy handler
# sleeps up to 100 ms between tries, so a process that gives the lock back for a few milliseconds between
# its turns (a CLI import) would almost never be seen free: the waiter starved for the whole import.
LOCK_POLL_S = 0.002

# A statement binding a blob this large runs in a thread: copying 20 MB into SQLite's pages would hold
# the event loop (and every other session) for tens of milliseconds (issue 8). SQLAlchemy's LargeBinary
# hands SQLite a memoryview, not bytes: until that was counted, every stored 20 MB message was copied on the
# loop (issue 13 target 4: 30-250 ms per big message, every session waiting).
LARGE_PARAMETER_BYTES = 1024 * 1024


def _octets(value: Any) -> int:
    if isinstance(value, bytes | bytearray | str):
        return len(value)
    if isinstance(value, memoryview):
        return value.nbytes
    return 0


def _large(parameters: Sequence[Any] | dict[str, Any]) -> bool:
    values = parameters.values() if isinstance(parameters, dict) else parameters
    return any(_octets(v) >= LARGE_PARAMETER_BYTES for v in values)


async def finish_in_thread(fn: Callable[[], T]) -> T:
    """Run `fn` in a thread and wait for it to end even if the caller is cancelled meanwhile.

    A cancelled `await asyncio.to_thread(conn.commit)` returns at once while the COMMIT goes on in its
    thread; SQLAlchemy would then roll the same connection back on the loop, racing the COMMIT (issue 8).
    Here the cancellation is re-raised only after the thread is done with the connection.
    """
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True  # keep waiting: the connection is still in use by the thread
    if cancelled:
        raise asyncio.CancelledError
    return result


def _is_begin_write(sql: str) -> bool:
    return sql.lstrip()[:15].upper() in ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")


def _threaded(sql: str) -> bool:
    return sql.lstrip()[:24].upper().startswith(_THREADED_PREFIXES)


class InlineCursor:
    def __init__(self, conn: InlineConnection) -> None:
        self._owner = conn
        self._cursor = conn._conn.cursor()
        self.arraysize = 1

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        if _is_begin_write(sql):
            await self._owner.begin_write(sql)
            return self
        if _threaded(sql) or _large(parameters):
            await finish_in_thread(lambda: self._cursor.execute(sql, parameters))
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any] | dict[str, Any]]) -> InlineCursor:
        self._cursor.executemany(sql, seq)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self.arraysize)

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection, busy_timeout_ms: int = 0) -> None:
        self._conn = conn
        self._busy_timeout_ms = busy_timeout_ms

    def try_begin_inline(self, sql: str, *, last: bool = False) -> bool:
        """Take the write lock without leaving the loop when nobody holds it (the usual case).

        With the busy timeout at 0 SQLite answers at once; False when another process holds the lock
        (`last`: raise SQLite's own "database is locked" error instead).
        """
        self._conn.execute("PRAGMA busy_timeout=0")
        try:
            self._conn.execute(sql)
            return True
        except sqlite3.OperationalError as exc:
            if last or ("locked" not in str(exc) and "busy" not in str(exc)):
                raise
            return False
        finally:
            self._conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")

    async def begin_write(self, sql: str) -> None:
        """Take the write lock: at once when it is free, else by trying again every `LOCK_POLL_S` on the
        event loop (which keeps serving everything else) until the busy timeout has passed."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:  # another process's lock: nothing in this process can signal its release
            if self.try_begin_inline(sql, last=time.monotonic() >= deadline):
                return
            await asyncio.sleep(LOCK_POLL_S)

    @property
    def _connection(self) -> sqlite3.Connection:  # SQLAlchemy checks it to see the connection is open
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        if self._conn.in_transaction:
            await finish_in_thread(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)


def _enable_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """Switch the file to WAL. Switching needs an exclusive lock and SQLite does not wait for it (the busy
    handler does not apply), so retry while another process holds the database, up to the busy timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal":
                return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError("could not switch the database to WAL mode")
        time.sleep(0.05)


READER_MMAP_BYTES = 2**31 - 2**16  # SQLite's default ceiling (SQLITE_MAX_MMAP_SIZE); address space only


def open_connection(
    path: str, busy_timeout_ms: int, query_only: bool = False, mapped: bool = True
) -> sqlite3.Connection:
    """A plain sqlite3 connection with bccd's pragmas (WAL, synchronous=FULL, foreign keys). A read
    connection (`query_only`) reads through a memory map unless `mapped` is false."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    _enable_wal(conn, busy_timeout_ms / 1000)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    if query_only:  # a read connection: any write through it fails ("attempt to write a readonly database")
        conn.execute("PRAGMA query_only=ON")
        # Reads through a memory map instead of a read() per page: searches and listings at 1M threads
        # look up thousands of rows across the file (issue 13 target 5: -35 % CPU at 1M threads).
        # Not for the delivery path's few look-ups (Database.raw_read): SQLite drops a connection's map
        # whenever another connection has written since its last transaction, so under a delivering
        # writer every page those look-ups touch faulted in again (18 faults a message at 1M persons).
        if mapped:
            conn.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
    return conn


async def connect(path: str, *, busy_timeout_ms: int, query_only: bool = False) -> InlineConnection:
    """Open (in a thread: it may create the file and recover a WAL) with bccd's pragmas set."""
    conn = await asyncio.to_thread(open_connection, path, busy_timeout_ms, query_only)
    return InlineConnection(conn, busy_timeout_ms)
