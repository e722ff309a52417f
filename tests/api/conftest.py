"""API fixtures: a real bccd app (SMTP on loopback), its API in-process over httpx, one token per role."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from bccd.api.app import create_api
from bccd.api.service import api_context
from bccd.app import BccdApp
from bccd.store.migrate import upgrade
from bccd.store.users import create_token
from tests.api.support import ROLES, Api
from tests.conftest import app_settings
from tests.helpers import seed_world


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database per session; each test gets a copy (migrating costs ~0.5 s a test)."""
    path = tmp_path_factory.mktemp("api-template") / "bccd.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def api_db_url(migrated_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "bccd.sqlite3"
    # SQLite's backup API copies a consistent database whatever the journal mode left on disk.
    with closing(sqlite3.connect(migrated_template)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def api(api_db_url: str) -> AsyncIterator[Api]:
    app = BccdApp(app_settings(api_db_url))
    await app.start()
    try:
        world = await seed_world(app.db)
        async with app.db.write() as conn:
            tokens = {role: await create_token(conn, getattr(world, role).id) for role in ROLES}
        transport = httpx.ASGITransport(app=create_api(api_context(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://bccd.test") as client:
            yield Api(app, world, client, tokens)
    finally:
        await app.stop()
