"""Run the Alembic history programmatically, so `bccd db upgrade` needs no alembic.ini next to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision`. Safe to run on every start."""
    command.upgrade(alembic_config(url), revision)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        # WAL is a property of the file: set it once here so every later connection starts in it.
        conn = sqlite3.connect(parsed.database)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()


def current_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("")).get_current_head()
