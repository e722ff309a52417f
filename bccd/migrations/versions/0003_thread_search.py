"""full-text search over threads

Revision ID: 0003
Revises: 0006
Create Date: 2026-12-04 22:00:00.000000

Issue 9 ("Search"): SQLite gets an FTS5 table `thread_search` (rowid = thread id) and a trigger that
removes a deleted thread's row; PostgreSQL a `thread_search` table with a `tsvector` document per thread
and a GIN index. Threads stored before this migration are indexed here, in batches.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from bccd.store import search_index

revision: str = "0003"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    ddl = search_index.SQLITE_DDL if bind.dialect.name == "sqlite" else search_index.POSTGRES_DDL
    for statement in ddl:
        op.execute(statement)
    search_index.backfill(bind)


def downgrade() -> None:
    bind = op.get_bind()
    drop = search_index.SQLITE_DROP if bind.dialect.name == "sqlite" else search_index.POSTGRES_DROP
    for statement in drop:
        op.execute(statement)
