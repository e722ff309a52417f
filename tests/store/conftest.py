"""Fixtures of the store contract suite; every test here runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bccd.store.commit_queue import CommitQueue
from bccd.store.database import Database
from tests.store.factories import World, seed

# any_db_url (SQLite copied from a template migrated once per session, PostgreSQL emptied with DELETE)
# comes from tests/conftest.py.


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
