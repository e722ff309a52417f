"""The group commit's writes on the plain sqlite3 connection under the SQLAlchemy one (issue 13 target 2).

`bccd.store.thread_batch.store_messages_reference` writes a batch through SQLAlchemy Core; for the seven
small statements of a batch, SQLAlchemy's parameter processing, compiled-cache lookups and result wrapping
cost more Python time than SQLite took to run them. Here the same rows go through `sqlite3` directly, in
the caller's transaction (and SAVEPOINT), with each value converted exactly as SQLAlchemy's types convert
it (JSON → `json.dumps`, UtcDateTime → naive UTC text with microseconds, LargeBinary → BLOB), so the
database ends up byte for byte the same: tests/store/test_raw_writes.py stores the same batches both ways
and compares every table.

Statements binding a value of `LARGE_PARAMETER_BYTES` or more run in a thread, as bccd.store.sqlite_inline
runs them (issue 8: copying 20 MB into the pages must not hold the event loop). A driver error is raised
as SQLAlchemy's wrapper of it (`DBAPIError.instance`), as the reference path raises it, so readiness
(bccd.health) and the error codes see the same exception.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, LargeBinary, Table
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from bccd.store.schema import UtcDateTime
from bccd.store.sqlite_inline import LARGE_PARAMETER_BYTES, InlineConnection, finish_in_thread

Converter = Callable[[Any], Any]


def timestamp(value: datetime | None) -> str | None:
    """A UtcDateTime as SQLAlchemy's SQLite DATETIME stores it: naive UTC, always with microseconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    v = value.astimezone(UTC)
    day = f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    return f"{day} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


def _json(value: Any) -> str:
    # SQLAlchemy's JSON (none_as_null=False) stores Python None as the JSON text `null`, not SQL NULL.
    return json.dumps(value)


def _boolean(value: Any) -> Any:
    return None if value is None else int(bool(value))


def _identity(value: Any) -> Any:
    return value


def converters(table: Table) -> dict[str, Converter]:
    """Per column of `table`, how SQLAlchemy's type turns a Python value into what SQLite is given."""
    out: dict[str, Converter] = {}
    for column in table.columns:
        kind = column.type
        if isinstance(kind, UtcDateTime):
            out[column.name] = timestamp
        elif isinstance(kind, JSON):
            out[column.name] = _json
        elif isinstance(kind, Boolean):
            out[column.name] = _boolean
        elif isinstance(kind, LargeBinary):
            out[column.name] = _identity
        else:
            out[column.name] = _identity
    return out


def _octets(value: Any) -> int:
    cls = value.__class__
    if cls is str or cls is bytes or cls is bytearray:
        return len(value)
    return value.nbytes if cls is memoryview else 0


def _large(params: Iterable[Any]) -> bool:
    """As sqlite_inline decides it: a str, bytes, bytearray or memoryview of LARGE_PARAMETER_BYTES or more."""
    return any(_octets(v) >= LARGE_PARAMETER_BYTES for v in params)


def _wrap(sql: str, exc: sqlite3.Error) -> StatementError:
    """The driver's error as SQLAlchemy raises it (IntegrityError, OperationalError, … around `exc`).
    hide_parameters: the parameters are message contents, kept out of the error's text."""
    return DBAPIError.instance(sql, None, exc, sqlite3.Error, hide_parameters=True)


class RawWriter:
    """Statements on one plain sqlite3 connection inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def one(self, sql: str, params: Sequence[Any]) -> Any:
        """Run one statement; its first row (or None)."""
        try:
            if _large(params):
                return await finish_in_thread(lambda: self._conn.execute(sql, params).fetchone())
            return self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _wrap(sql, exc) from exc

    def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _wrap(sql, exc) from exc

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """executemany: one prepared statement for every row."""
        try:
            if any(_large(r) for r in rows):
                await finish_in_thread(lambda: self._conn.executemany(sql, rows))
            else:
                self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _wrap(sql, exc) from exc


class InsertStatement:
    """`INSERT INTO table (the given columns) VALUES (?, …)` plus a suffix, with SQLAlchemy's conversions.

    The columns are those of the first row given (as an executemany through SQLAlchemy takes them); the
    statement text is built once per column set."""

    def __init__(self, table: Table, suffix: str = "") -> None:
        self._table = table
        self._suffix = suffix
        self._convert = converters(table)
        self._sql: dict[tuple[str, ...], str] = {}
        self._plans: dict[tuple[str, ...], list[tuple[str, Converter | None]]] = {}

    def sql(self, columns: tuple[str, ...]) -> str:
        found = self._sql.get(columns)
        if found is None:
            unknown = [c for c in columns if c not in self._convert]
            if unknown:
                raise KeyError(f"no such columns in {self._table.name}: {unknown}")
            marks = ", ".join("?" * len(columns))
            found = self._sql[columns] = (
                f"INSERT INTO {self._table.name} ({', '.join(columns)}) VALUES ({marks}){self._suffix}"  # noqa: S608 - schema names only
            )
            self._plans[columns] = [
                (c, None if self._convert[c] is _identity else self._convert[c]) for c in columns
            ]
        return found

    def params(self, columns: tuple[str, ...], row: dict[str, Any]) -> list[Any]:
        """The row's values in `columns` order, converted as SQLAlchemy's column types convert them."""
        if columns not in self._plans:
            self.sql(columns)
        return [row[c] if convert is None else convert(row[c]) for c, convert in self._plans[columns]]


async def plain_sqlite3(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The plain sqlite3 connection under an SQLAlchemy one of bccd's SQLite engines (None elsewhere)."""
    if conn.dialect.name != "sqlite":
        return None
    driver = (await conn.get_raw_connection()).driver_connection
    return driver._connection if isinstance(driver, InlineConnection) else None


_SAVEPOINT = "bccd_batch"


@asynccontextmanager
async def savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """`conn.begin_nested()`: a SAVEPOINT released when the block ends, rolled back to when it raises.
    On SQLite as three plain statements (SQLAlchemy's nested transaction cost ~2 % of a delivery)."""
    raw = await plain_sqlite3(conn)
    if raw is None:
        async with conn.begin_nested():
            yield
        return
    writer = RawWriter(raw)
    writer.rows(f"SAVEPOINT {_SAVEPOINT}", ())
    try:
        yield
    except BaseException:
        writer.rows(f"ROLLBACK TO {_SAVEPOINT}", ())
        writer.rows(f"RELEASE {_SAVEPOINT}", ())
        raise
    writer.rows(f"RELEASE {_SAVEPOINT}", ())
