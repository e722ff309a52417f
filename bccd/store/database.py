"""Engines and transactions: one serialized writer, concurrent readers, on SQLite or PostgreSQL.

SQLite runs in WAL mode with `synchronous=FULL` so a committed transaction survives a crash (SPEC S2), and
every write transaction starts with `BEGIN IMMEDIATE` so two writers never deadlock on lock upgrades.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bccd.health import WriteHealth, is_storage_failure
from bccd.store import sqlite_inline

SQLITE_READERS = 32
SQLITE_RAW_READERS = 16  # idle plain connections kept for raw_read (bccd.store.hot_reads)
SQLITE_BUSY_TIMEOUT_MS = 30_000  # other processes (CLI, a second worker) may hold the write lock briefly


class Database:
    """The two engines bccd uses. `write()` serializes writers in this process; `read()` never blocks them."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self._write_lock = asyncio.Lock()
        self.write_health = WriteHealth()
        self._sqlite_path = ""
        self._raw_idle: list[sqlite3.Connection] = []
        self._closed = False
        if self.is_sqlite:
            path = parsed.database or ""
            self._sqlite_path = path
            if not path or path == ":memory:":
                raise ValueError("bccd needs an SQLite database file (durability, S2), not :memory:")

            def creator() -> Any:
                return sqlite_inline.connect(path, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)

            def read_only_creator() -> Any:  # issue 8: readers cannot write
                return sqlite_inline.connect(path, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, query_only=True)

            self.writer = create_async_engine(url, pool_size=1, max_overflow=0, async_creator=creator)
            # Inline connections are plain sqlite3 handles: keep plenty so concurrent SMTP sessions never
            # open and close one per read (that churn showed up as ~5% of the DATA path in profiles).
            self.reader = create_async_engine(
                url,
                pool_size=max(pool_size, SQLITE_READERS),
                max_overflow=0,
                async_creator=read_only_creator,
            )
            _sqlite_setup(self.writer, immediate=True)
            _sqlite_setup(self.reader, immediate=False)
        else:
            # 2 × pool_size connections kept open (no overflow): overflow connections were opened and
            # closed per use under 16 SMTP sessions, each a server backend and fresh prepared statements.
            self.writer = create_async_engine(url, pool_size=2 * pool_size, max_overflow=0)
            _postgresql_setup(self.writer)
            self.reader = self.writer

    @asynccontextmanager
    async def write(self, *, synced: bool = True) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block exits normally, rolled back on error.

        `synced=False` (SQLite; a bulk import's turns): the COMMIT is not synced to the disk
        (`synchronous=NORMAL` for this transaction only). It survives the process being killed; after a
        power loss it may be lost until a later synced commit or a checkpoint, which sync it too."""
        try:
            if self.is_sqlite and not synced:
                async with self._write_lock, self.writer.connect() as conn:
                    raw: Any = (await conn.get_raw_connection()).driver_connection
                    raw._connection.execute("PRAGMA synchronous=NORMAL")  # not allowed inside the transaction
                    try:
                        async with conn.begin():
                            yield conn
                    finally:
                        raw._connection.execute("PRAGMA synchronous=FULL")
            elif self.is_sqlite:
                async with self._write_lock, self.writer.begin() as conn:
                    yield conn
            else:
                async with self.writer.begin() as conn:
                    yield conn
        except BaseException as exc:
            if is_storage_failure(exc):
                self.write_health.failed(exc)  # readiness (bccd.health)
            raise
        self.write_health.succeeded()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.reader.connect() as conn:
            yield conn
            await conn.rollback()

    @asynccontextmanager
    async def raw_read(self) -> AsyncIterator[sqlite3.Connection]:
        """SQLite only: a plain read-only sqlite3 connection in one snapshot (`BEGIN` … `ROLLBACK`), for
        the few statements every delivery runs (bccd.store.hot_reads) without SQLAlchemy's per-statement
        cost. Statements on it run on the event loop: use it only for small indexed reads."""
        if not self.is_sqlite:
            raise RuntimeError("raw_read is for SQLite databases")
        conn = self._raw_idle.pop() if self._raw_idle else None
        if conn is None:
            conn = await asyncio.to_thread(
                sqlite_inline.open_connection, self._sqlite_path, SQLITE_BUSY_TIMEOUT_MS, True, False
            )
        healthy = False
        try:
            conn.execute("BEGIN")
            yield conn
            healthy = True
        finally:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                healthy = False
            if healthy and not self._closed and len(self._raw_idle) < SQLITE_RAW_READERS:
                self._raw_idle.append(conn)
            else:
                conn.close()

    async def ping(self) -> bool:
        try:
            async with self.read() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        self._closed = True  # a raw connection still in use is closed when it is given back
        while self._raw_idle:
            self._raw_idle.pop().close()
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def _postgresql_setup(engine: AsyncEngine) -> None:
    """A pooled connection the server has closed (a PostgreSQL restart, pg_terminate_backend) is replaced
    at checkout, so its first use does not fail. asyncpg sees the close on the event loop, so checking
    `is_closed()` costs nothing, where SQLAlchemy's pre-ping cost a round trip on every checkout (three
    per delivery)."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def _sqlite_setup(engine: AsyncEngine, *, immediate: bool) -> None:
    sync_engine = engine.sync_engine

    # The pragmas (WAL, synchronous=FULL, foreign keys, busy timeout) are set by sqlite_inline.connect.
    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
