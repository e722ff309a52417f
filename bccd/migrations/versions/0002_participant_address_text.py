"""thread participant addresses are text

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000

A header may carry an address longer than 320 characters. SQLite stored it (it ignores VARCHAR lengths),
PostgreSQL refused the whole message, so SMTP answered 451 to it forever (SPEC S6). The thread records the
address as the mail carried it; only directory addresses keep their bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("thread_participants", schema=None) as batch_op:
        batch_op.alter_column(
            "address", existing_type=sa.String(length=320), type_=sa.Text(), existing_nullable=False
        )


def downgrade() -> None:
    # Over-long addresses would not fit back; cut them rather than fail the downgrade.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE thread_participants SET address = left(address, 320) WHERE length(address) > 320")
    with op.batch_alter_table("thread_participants", schema=None) as batch_op:
        batch_op.alter_column(
            "address", existing_type=sa.Text(), type_=sa.String(length=320), existing_nullable=False
        )
