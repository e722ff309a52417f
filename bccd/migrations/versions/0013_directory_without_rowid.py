"""SQLite: person_emails and item_participants keyed by their primary key alone (WITHOUT ROWID)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:50:00.000000

Issue 13 targets 1 and 3 (a 1M-person directory). Both tables are nothing but their key, yet SQLite kept
each as a rowid table plus a separate index for the primary key: three b-trees per row, where two do. As
WITHOUT ROWID tables the primary key is the table, and every secondary index holds the key's columns:
`ix_person_emails_company_address` now yields the person id, and `ix_item_participants_person_id` the item
id, without a second look-up in the table (one b-tree descent less per delivery for each), and an import
writes one b-tree less per e-mail address and per participant. The tables are rebuilt (a few seconds per
million rows). PostgreSQL has no rowid: nothing changes there. The SQL is frozen here, as this revision
made the tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PERSON_EMAILS = (
    "CREATE TABLE person_emails_rebuilt ("
    "person_id INTEGER NOT NULL, address VARCHAR(320) NOT NULL, company_id INTEGER NOT NULL, "
    "CONSTRAINT pk_person_emails PRIMARY KEY (person_id, address), "
    "CONSTRAINT fk_person_emails_company_id_companies FOREIGN KEY(company_id) "
    "REFERENCES companies (id) ON DELETE CASCADE, "
    "CONSTRAINT fk_person_emails_person_id_persons FOREIGN KEY(person_id) "
    "REFERENCES persons (id) ON DELETE CASCADE)"
)
_ITEM_PARTICIPANTS = (
    "CREATE TABLE item_participants_rebuilt ("
    "item_id INTEGER NOT NULL, person_id INTEGER NOT NULL, "
    "CONSTRAINT pk_item_participants PRIMARY KEY (item_id, person_id), "
    "CONSTRAINT fk_item_participants_item_id_items FOREIGN KEY(item_id) REFERENCES items (id) ON DELETE CASCADE, "
    "CONSTRAINT fk_item_participants_person_id_persons FOREIGN KEY(person_id) "
    "REFERENCES persons (id) ON DELETE CASCADE)"
)
_INDEXES = {
    "person_emails": (
        "CREATE INDEX ix_person_emails_company_address ON person_emails (company_id, address)",
    ),
    "item_participants": ("CREATE INDEX ix_item_participants_person_id ON item_participants (person_id)",),
}
_COLUMNS = {"person_emails": "person_id, address, company_id", "item_participants": "item_id, person_id"}
_CREATE = {"person_emails": _PERSON_EMAILS, "item_participants": _ITEM_PARTICIPANTS}


def _rebuild(name: str, suffix: str) -> None:
    """Copy `name` into a new table (CREATE … + `suffix`) in key order, swap it in, rebuild its indexes.
    Nothing references these two tables, so dropping the old one checks and cascades nothing."""
    columns = _COLUMNS[name]
    op.execute(_CREATE[name] + suffix)
    op.execute(
        f"INSERT INTO {name}_rebuilt ({columns}) SELECT {columns} FROM {name} ORDER BY {columns}"  # noqa: S608
    )
    op.execute(f"DROP TABLE {name}")
    op.execute(f"ALTER TABLE {name}_rebuilt RENAME TO {name}")
    for statement in _INDEXES[name]:
        op.execute(statement)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("person_emails", "item_participants"):
            _rebuild(name, " WITHOUT ROWID")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("person_emails", "item_participants"):
            _rebuild(name, "")
