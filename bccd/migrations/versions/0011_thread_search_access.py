"""thread search on PostgreSQL: who may read a thread, and its id's blocks, in its tsvector

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:10:00.000000

Issue 13 target 5 (search at 1M threads on PostgreSQL). A search ranks the newest 1,000 matches the
caller may read; finding them read every match's document row and threads row (a common word: tens of
thousands of 1 KB rows). The PostgreSQL document now also holds lexemes for the thread's owner, for
"shared in this company", and for the aligned blocks of ids its id lies in (bccd.store.search_index),
so that one GIN scan yields only the visible matches of the newest ids. A trigger keeps the owner and
shared lexemes equal to the threads row. SQLite (FTS5) is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from bccd.store import search_index

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in search_index.POSTGRES_ACCESS_DDL:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in search_index.POSTGRES_ACCESS_DROP:
            op.execute(statement)
