"""API fixtures: a real bccd app (SMTP on loopback), its API in-process over httpx, one token per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bccd.api.app import create_api
from bccd.api.service import api_context
from bccd.app import BccdApp
from bccd.store.users import create_token
from tests.api.support import ROLES, Api
from tests.conftest import app_settings, copy_sqlite_template
from tests.helpers import seed_world


@pytest.fixture
def api_db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A copy of the session's migrated template (tests/conftest.py): migrating costs ~0.5 s a test."""
    return copy_sqlite_template(sqlite_template, tmp_path / "bccd.sqlite3")


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
