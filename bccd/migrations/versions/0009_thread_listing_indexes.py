"""thread listings and searches read the newest threads of a company, a user, or the unlinked ones

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:30:00.000000

Issue 13 target 5 (listings at 1M threads). Listings order by id (newest first), but the company's and the
owner's indexes were on (…, created_at): with a million threads in a company, `GET /threads` sorted all of
them for every page (0.8 s on SQLite). The indexes are now on (company_id, id) and (owner_id, id), and the
unlinked list (`?unlinked=true`, the web inbox's default view) has its own partial index, so every listing
page is a walk of the newest entries of one index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNLINKED = sa.text("item_id IS NULL")


def upgrade() -> None:
    op.create_index("ix_threads_company_id", "threads", ["company_id", "id"])
    op.create_index("ix_threads_owner_id", "threads", ["owner_id", "id"])
    op.create_index(
        "ix_threads_unlinked",
        "threads",
        ["company_id", "id"],
        sqlite_where=_UNLINKED,
        postgresql_where=_UNLINKED,
    )
    op.drop_index("ix_threads_company_created", table_name="threads")
    op.drop_index("ix_threads_owner_created", table_name="threads")


def downgrade() -> None:
    op.create_index("ix_threads_owner_created", "threads", ["owner_id", "created_at"])
    op.create_index("ix_threads_company_created", "threads", ["company_id", "created_at"])
    op.drop_index("ix_threads_unlinked", table_name="threads")
    op.drop_index("ix_threads_owner_id", table_name="threads")
    op.drop_index("ix_threads_company_id", table_name="threads")
