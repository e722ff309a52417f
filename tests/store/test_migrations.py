"""Migrations: one Alembic history brings either backend to the schema the code declares."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url

from bccd.store.database import Database
from bccd.store.migrate import current_head, upgrade
from bccd.store.schema import metadata
from bccd.store.search_index import include_in_schema_compare
from tests.conftest import _pg_admin


def _revision_and_diffs(conn: Connection) -> tuple[str | None, list[Any], set[str]]:
    # The search index (issue 9) is raw DDL (FTS5 / tsvector), outside schema.py's metadata.
    opts = {"compare_type": True, "include_name": include_in_schema_compare}
    ctx = MigrationContext.configure(conn, opts=opts)
    return ctx.get_current_revision(), compare_metadata(ctx, metadata), set(inspect(conn).get_table_names())


async def _inspect(url: str) -> tuple[str | None, list[Any], set[str]]:
    db = Database(url)
    try:
        async with db.read() as conn:
            return await conn.run_sync(_revision_and_diffs)
    finally:
        await db.close()


async def test_upgrade_reaches_head_and_matches_the_declared_schema(any_db_url: str) -> None:
    revision, diffs, tables = await _inspect(any_db_url)
    assert revision == current_head()
    assert {t.name for t in metadata.sorted_tables} <= tables
    # Autogenerate finds nothing to do: the migrations and schema.py describe the same database.
    assert diffs == []


async def test_alembic_upgrade_of_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """The real migration run on a new file, not a copy of the session template the other tests get."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    revision, diffs, tables = await _inspect(url)
    assert revision == current_head()
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert diffs == []


async def test_upgrade_again_is_a_no_op(any_db_url: str) -> None:
    await asyncio.to_thread(upgrade, any_db_url)
    revision, diffs, _ = await _inspect(any_db_url)
    assert revision == current_head()
    assert diffs == []


async def test_nodes_upgrading_a_fresh_database_at_once_all_succeed(pg_url: str) -> None:
    """Every node of a deployment may run `bccd db upgrade` at start; the advisory lock serializes them."""
    name = f"bccd_upgrade_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        # Processes, as real nodes are (Alembic's `context` is process-global). Each imports first and
        # then waits for "go" on stdin, so the two migrations really run at the same moment.
        code = f"import sys; from bccd.store.migrate import upgrade; sys.stdin.readline(); upgrade({url!r})"
        nodes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, stdin=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        outputs = await asyncio.wait_for(
            asyncio.gather(*(node.communicate(b"go\n") for node in nodes)), timeout=60
        )
        assert [node.returncode for node in nodes] == [0, 0], [err.decode()[-1500:] for _, err in outputs]
        revision, diffs, _ = await _inspect(url)
        assert revision == current_head()
        assert diffs == []
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
