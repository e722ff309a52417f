"""API fixtures: a real bccd app (SMTP on loopback), its API in-process over httpx, one token per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.support import Api, api_for
from tests.conftest import app_settings, copy_sqlite_template


@pytest.fixture
def api_db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A copy of the session's migrated template (tests/conftest.py): migrating costs ~0.5 s a test."""
    return copy_sqlite_template(sqlite_template, tmp_path / "bccd.sqlite3")


@pytest.fixture
async def api(api_db_url: str) -> AsyncIterator[Api]:
    async with api_for(app_settings(api_db_url)) as api:
        yield api
