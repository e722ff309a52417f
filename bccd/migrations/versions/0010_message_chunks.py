"""big messages' raw bytes in pieces, each written in its own short transaction

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:30:00.000000

Issue 13 target 4 (big messages never stall small ones). On SQLite one writer serves every session, and a
20 MB message stored in one statement held it for 100-300 ms while every other delivery waited. A big
message's raw bytes now go to `message_chunks` (1 MiB a row, one short transaction each, other sessions'
batches in between) before its `messages` row is stored with `raw` empty and `raw_chunks` = the number of
pieces. Existing messages keep their bytes in `messages.raw` (`raw_chunks` = 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("raw_chunks", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "message_chunks",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "seq", name="pk_message_chunks"),
    )


def downgrade() -> None:
    op.drop_table("message_chunks")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("raw_chunks")
