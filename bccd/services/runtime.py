"""The database handle the interfaces pass to services, and schema upgrades (`bccd db upgrade`)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from bccd.store.database import Database as Database  # re-exported: interfaces hold it, services use it
from bccd.store.migrate import current_head, upgrade


def open_database(url: str) -> Database:
    return Database(url)


def upgrade_schema(url: str, revision: str = "head", *, create: bool = False) -> None:
    """Migrate to `revision`; with `create`, make the SQLite file's directory first (`bccd db upgrade`)."""
    path = _sqlite_path(url)
    if path is None:
        asyncio.run(_current_revision(url, 5.0))  # unreachable → one clear sentence, not a traceback
    elif create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseNotReady(
                f"cannot create {path.parent} ({exc.strerror}): fix database.data_dir"
            ) from None
    elif not path.exists():
        raise DatabaseNotReady(f"no database at {path}")
    if path is not None and not os.access(path.parent, os.W_OK):
        raise DatabaseNotReady(f"{path.parent} is read-only: bccd cannot write {path.name} there")
    upgrade(url, revision)


class DatabaseNotReady(Exception):
    """The configured database cannot be used as it is; the message names the cause and the fix."""


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


def check_database(url: str, *, writable: bool = False, timeout: float = 5.0) -> None:
    """Before a command uses the database: it exists, answers, is migrated to head and (for the server)
    its directory can be written. Never creates a database: only `bccd db upgrade` does (issue 12 item 9).
    """
    path = _sqlite_path(url)
    if path is not None:
        if not path.exists():
            raise DatabaseNotReady(
                f"no database at {path}: run `bccd db upgrade` to create it, or point --config / "
                "BCCD_DATABASE__URL at the database you meant"
            )
        if writable and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
            raise DatabaseNotReady(
                f"{path} (or its directory) is read-only: bccd needs to write the file and its -wal and "
                "-shm files next to it; fix the permissions or move database.url"
            )
    revision = asyncio.run(_current_revision(url, timeout))
    head = current_head()
    if revision != head:
        where = path if path is not None else _safe_target(url)
        raise DatabaseNotReady(
            f"the database at {where} is at schema {revision or 'none (empty)'}, this bccd needs {head}: "
            "run `bccd db upgrade`"
        )


def _safe_target(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


async def _current_revision(url: str, wait: float) -> str | None:
    path = _sqlite_path(url)
    if path is not None:
        # Read-only URI: asking must never create or change the file.
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=wait)
        try:
            tables = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchall()
            if not tables:
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return None if row is None else str(row[0])
        except sqlite3.DatabaseError as exc:
            raise DatabaseNotReady(f"{path} is not a usable SQLite database ({exc})") from None
        finally:
            conn.close()
    import asyncpg

    parsed = make_url(url)
    try:
        conn = await asyncpg.connect(
            host=parsed.host or "localhost",
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database,
            timeout=wait,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        reason = type(exc).__name__ if not isinstance(exc, asyncpg.PostgresError) else str(exc)
        raise DatabaseNotReady(
            f"cannot reach PostgreSQL at {_safe_target(url)} ({reason}): is the server running and "
            "database.url right?"
        ) from None
    try:
        has = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not has:
            return None
        value = await conn.fetchval("SELECT version_num FROM alembic_version")
        return None if value is None else str(value)
    finally:
        await conn.close()
