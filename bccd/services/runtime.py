"""The database handle the interfaces pass to services, and schema upgrades (`bccd db upgrade`)."""

from __future__ import annotations

from bccd.store.database import Database as Database  # re-exported: interfaces hold it, services use it
from bccd.store.migrate import upgrade


def open_database(url: str) -> Database:
    return Database(url)


def upgrade_schema(url: str, revision: str = "head") -> None:
    upgrade(url, revision)
