"""indexes for the hot path and for every foreign key's child side

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-04 21:40:00.000000

Issue 13 ("flat in directory size"). Inserting a message made SQLite walk the whole `threads` unique index
(its foreign-key check looks up children by `message_pk`, the second column of that index); deleting a
person, an organization or a message walked `thread_participants`, `persons` or `items`. Each foreign key's
child column now leads an index, so both backends answer those checks with a seek.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("threads", "ix_threads_message_pk", ["message_pk"]),
    ("thread_participants", "ix_thread_participants_person_id", ["person_id"]),
    ("persons", "ix_persons_organization_id", ["organization_id"]),
    ("items", "ix_items_organization_id", ["organization_id"]),
)


def upgrade() -> None:
    for table, name, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
