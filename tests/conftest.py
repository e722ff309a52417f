"""Shared fixtures: real SQLite files, a real PostgreSQL database, and a real bccd app on loopback."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bccd.app import BccdApp
from bccd.config import Settings
from bccd.store.database import Database
from bccd.store.migrate import upgrade
from bccd.store.schema import metadata

PG_ADMIN_DSN = os.environ.get("BCCD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("BCCD_REQUIRE_POSTGRES") == "1" or os.environ.get("CI") == "true"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head, dropped afterwards."""
    name = f"bccd_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if REQUIRE_PG:
            raise
        pytest.skip(f"PostgreSQL at {PG_ADMIN_DSN} not reachable: {exc}")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def truncate_all(url: str) -> None:
    db = Database(url)
    try:
        async with db.write() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await db.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn: the store contract holds on both (DESIGN: one suite, every backend)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bccd.sqlite3'}"
        upgrade(url)
        return url
    url = str(request.getfixturevalue("pg_url"))
    asyncio.run(truncate_all(url))
    return url


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    yield database
    await database.close()


def app_settings(url: str, **smtp: Any) -> Settings:
    smtp_conf = {"host": "127.0.0.1", "port": 0, "bcc_domains": ["bcc.test"], **smtp}
    return Settings(
        smtp=smtp_conf,
        http={"enabled": False, "port": 0},
        database={"url": url},
        log={"level": "warning"},
    )


AppFactory = Callable[..., Awaitable[BccdApp]]


@pytest.fixture
async def make_app(sqlite_url: str) -> AsyncIterator[AppFactory]:
    """Start real bccd apps (SMTP on an ephemeral loopback port); all are stopped at teardown."""
    started: list[BccdApp] = []

    async def factory(url: str | None = None, **smtp: Any) -> BccdApp:
        app = BccdApp(app_settings(url or sqlite_url, **smtp))
        await app.start()
        started.append(app)
        return app

    yield factory
    for app in started:
        await app.stop()
