"""Fixtures of the store contract suite; every test here runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from bccd.store.migrate import upgrade
from bccd.store.schema import metadata
from tests.store.factories import World, seed

# Children before parents, in one transaction. DELETE, not the shared fixture's TRUNCATE: on these tiny
# tables it takes ~3 ms instead of ~100 ms, which over ~70 PostgreSQL cases is most of their setup time.
_EMPTY_ALL = "; ".join(f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables))  # noqa: S608


async def _empty(url: str) -> None:
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"BEGIN; {_EMPTY_ALL}; COMMIT")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store-template") / "bccd.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """tests/conftest.py's any_db_url made cheaper: SQLite starts from a copy of a database migrated once
    per session (the template is itself a fresh migration, which test_migrations.py checks against
    schema.py), and PostgreSQL's shared database is emptied with DELETE."""
    if request.param == "sqlite":
        target = tmp_path / "bccd.sqlite3"
        shutil.copyfile(sqlite_template, target)
        return f"sqlite+aiosqlite:///{target}"
    url = str(request.getfixturevalue("pg_url"))
    asyncio.run(_empty(url))
    return url


@pytest.fixture
async def store_db(any_db_url: str) -> AsyncIterator[Database]:
    database = Database(any_db_url)
    yield database
    await database.close()


@pytest.fixture
async def world(store_db: Database) -> World:
    return await seed(store_db)


@pytest.fixture
async def queue(store_db: Database) -> AsyncIterator[CommitQueue]:
    """A running group-commit queue on the backend under test."""
    commits = CommitQueue(store_db, batch_max=64)
    commits.start()
    yield commits
    await commits.stop()
