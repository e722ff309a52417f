"""Shared fixtures: real SQLite files, a real PostgreSQL database, and a real bccd app on loopback."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from sqlalchemy.engine import make_url

from bccd.app import BccdApp
from bccd.config import Settings
from bccd.store.database import Database
from bccd.store.migrate import upgrade
from bccd.store.schema import metadata
from tests.dnsserver import quiet_server

PG_ADMIN_DSN = os.environ.get("BCCD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("BCCD_REQUIRE_POSTGRES") == "1" or os.environ.get("CI") == "true"

# Property tests: "dev" (the default, `make test`) runs 50 examples for every test that does not pin its own
# count, and the API fuzz 10 per operation; "ci" (HYPOTHESIS_PROFILE=ci, set by .ci/run) runs 100 and 20, the
# counts the suite always ran with. Neither has a deadline: a loaded 2-core machine misses it for reasons
# that are not bugs.
settings.register_profile("dev", deadline=None, max_examples=50)
settings.register_profile("ci", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Children before parents, in one transaction. DELETE, not TRUNCATE: on these tiny tables it takes ~3 ms
# instead of ~100 ms, which over ~100 PostgreSQL cases is most of their setup time.
_EMPTY_ALL = "; ".join(f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables))  # noqa: S608


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _worker() -> str:
    """pytest-xdist's worker id ("gw0", …), "main" without xdist: each worker owns its own databases."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (one per xdist worker), migrated to head with the
    real Alembic history, dropped afterwards."""
    name = f"bccd_test_{_worker()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
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


async def empty_pg(url: str) -> None:
    """Delete every row of the session's PostgreSQL database (the schema stays)."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"BEGIN; {_EMPTY_ALL}; COMMIT")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated by the real Alembic history once per session (per xdist worker); tests get
    copies (running the migrations costs ~0.1–0.5 s a test). tests/store/test_migrations.py checks the
    copies against schema.py, and runs Alembic on a fresh file of its own."""
    path = tmp_path_factory.mktemp("sqlite-template") / "bccd.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def copy_sqlite_template(template: Path, target: Path) -> str:
    # SQLite's backup API copies a consistent database whatever the journal mode left on disk.
    with closing(sqlite3.connect(template)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return copy_sqlite_template(sqlite_template, tmp_path / "bccd.sqlite3")


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Each backend in turn: the store contract holds on both (one suite, every backend). SQLite starts
    from a copy of the session's migrated template; PostgreSQL's session database is emptied."""
    if request.param == "sqlite":
        return copy_sqlite_template(sqlite_template, tmp_path / "bccd.sqlite3")
    url = str(request.getfixturevalue("pg_url"))
    asyncio.run(empty_pg(url))
    return url


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    yield database
    await database.close()


def app_settings(url: str, *, dns: dict[str, Any] | None = None, **smtp: Any) -> Settings:
    smtp_conf = {"host": "127.0.0.1", "port": 0, "bcc_domains": ["bcc.test"], **smtp}
    return Settings(
        smtp=smtp_conf,
        http={"enabled": False, "port": 0},
        database={"url": url},
        log={"level": "warning"},
        dns=dns if dns is not None else {"servers": [quiet_server().address]},
    )


AppFactory = Callable[..., Awaitable[BccdApp]]


@pytest.fixture
async def make_app(sqlite_url: str) -> AsyncIterator[AppFactory]:
    """Start real bccd apps (SMTP on an ephemeral loopback port); all are stopped at teardown."""
    started: list[BccdApp] = []

    async def factory(url: str | None = None, *, dns: dict[str, Any] | None = None, **smtp: Any) -> BccdApp:
        app = BccdApp(app_settings(url or sqlite_url, dns=dns, **smtp))
        await app.start()
        started.append(app)
        return app

    yield factory
    for app in started:
        await app.stop()
