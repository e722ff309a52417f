"""Migration 0013: on SQLite, person_emails and item_participants are their primary key (WITHOUT ROWID).

The linker's address look-up and the participant half of its candidate-items query then read a covering
index (no second look-up in the table), and the rebuild in either direction keeps every row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from bccd.store import hot_reads
from bccd.store.migrate import alembic_config, upgrade

TABLES = ("person_emails", "item_participants")


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _ddl(conn: sqlite3.Connection, table: str) -> str:
    return str(conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0])


def _seed(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        INSERT INTO companies (id, name, never_log, created_at)
            VALUES (1, 'Acme', '[]', '2026-01-01 00:00:00');
        INSERT INTO persons (id, company_id, external_id, name, created_at) VALUES
            (1, 1, 'p1', 'Carol', '2026-01-01 00:00:00'), (2, 1, 'p2', 'Dan', '2026-01-01 00:00:00');
        INSERT INTO person_emails (person_id, address, company_id) VALUES
            (1, 'carol@client.test', 1), (1, 'c@client.test', 1), (2, 'dan@client.test', 1);
        INSERT INTO items (id, company_id, type, external_id, title, person_id, status, created_at,
                           status_changed_at)
            VALUES (7, 1, 'deal', 'd7', 'Deal', 1, 'open', '2026-01-01 00:00:00', '2026-01-01 00:00:00');
        INSERT INTO item_participants (item_id, person_id) VALUES (7, 1), (7, 2);
        """
    )


def _rows(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {
        "person_emails": conn.execute(
            "SELECT person_id, address, company_id FROM person_emails ORDER BY 1, 2"
        ).fetchall(),
        "item_participants": conn.execute(
            "SELECT item_id, person_id FROM item_participants ORDER BY 1, 2"
        ).fetchall(),
    }


def test_0013_rebuilds_both_tables_without_rowid_and_back_keeping_every_row(tmp_path: Path) -> None:
    path = tmp_path / "bccd.db"
    command.upgrade(alembic_config(_url(path)), "0012")
    with sqlite3.connect(path) as conn:
        _seed(conn)
        before = _rows(conn)
        assert all("WITHOUT ROWID" not in _ddl(conn, t) for t in TABLES)
    upgrade(_url(path))
    with sqlite3.connect(path) as conn:
        assert all(_ddl(conn, t).rstrip().endswith("WITHOUT ROWID") for t in TABLES)
        assert _rows(conn) == before
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"ix_person_emails_company_address", "ix_item_participants_person_id"} <= indexes
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("DELETE FROM persons WHERE id = 2")  # the foreign keys still cascade
        assert (2, "dan@client.test", 1) not in _rows(conn)["person_emails"]
        assert (7, 2) not in _rows(conn)["item_participants"]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.rollback()
    command.downgrade(alembic_config(_url(path)), "0012")
    with sqlite3.connect(path) as conn:
        assert all("WITHOUT ROWID" not in _ddl(conn, t) for t in TABLES)
        assert _rows(conn) == before


def test_the_linker_reads_addresses_and_participants_from_covering_indexes(tmp_path: Path) -> None:
    """One b-tree descent per address and per participant: the plan never looks the row up in the table."""
    path = tmp_path / "bccd.db"
    upgrade(_url(path))
    with sqlite3.connect(path) as conn:
        _seed(conn)
        conn.execute("ANALYZE")
        persons = [
            str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + hot_reads._persons_sql(2), (1, "a", "b"))
        ]
        items = [
            str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + hot_reads._items_sql(1), (1, 1, 1, 1))
        ]
    assert any("person_emails USING COVERING INDEX ix_person_emails_company_address" in p for p in persons), (
        persons
    )
    assert any("item_participants USING COVERING INDEX ix_item_participants_person_id" in p for p in items), (
        items
    )
