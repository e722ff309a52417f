"""The fast suite's fixtures (issue 8, "a fast suite"): copies of one migrated template, one PostgreSQL
database per xdist worker, and the hypothesis profile chosen by HYPOTHESIS_PROFILE."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from hypothesis import settings

from bccd.store.migrate import current_head


def _revision(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def _path(url: str) -> Path:
    return Path(url.split("///", 1)[1])


def test_sqlite_url_is_a_migrated_copy_of_the_template(sqlite_url: str, sqlite_template: Path) -> None:
    copy = _path(sqlite_url)
    assert copy != sqlite_template
    assert _revision(copy) == current_head()
    with closing(sqlite3.connect(copy)) as conn:
        conn.execute("INSERT INTO companies (name, never_log, created_at) VALUES ('x', '[]', '2025-01-01')")
        conn.commit()
    with closing(sqlite3.connect(sqlite_template)) as conn:
        assert conn.execute("SELECT count(*) FROM companies").fetchone()[0] == 0  # the template is untouched


def test_each_test_gets_its_own_copy(sqlite_url: str, tmp_path: Path) -> None:
    assert _path(sqlite_url).parent == tmp_path


def test_the_postgres_database_is_this_workers_own(pg_url: str) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    assert pg_url.rsplit("/", 1)[1].startswith(f"bccd_test_{worker}_")


def test_the_hypothesis_profile_follows_the_environment() -> None:
    profile = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    assert settings().max_examples == {"dev": 50, "ci": 100}[profile]
    assert settings().deadline is None
