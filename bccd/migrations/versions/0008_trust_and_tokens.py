"""token lifetimes, company sender authentication, per-thread authentication results, alias confirmation

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-06 01:10:00.000000

Issue 9: API tokens gain an optional expiry and a last-used time (listed, revocable).
Issue 11: companies choose `sender_auth` = off | record | require (new companies: record); each thread
keeps the SPF/DKIM/DMARC results it was judged by; an alternative sender address counts only once it is
confirmed, by a one-time code mailed to it (stored as a sha256 hash) or by an admin.
Existing aliases stay confirmed: they were added by an admin before confirmation existed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", _TS, nullable=True))
        batch.add_column(sa.Column("last_used_at", _TS, nullable=True))
    with op.batch_alter_table("companies") as batch:
        batch.add_column(sa.Column("sender_auth", sa.String(length=16), nullable=False, server_default="record"))
        batch.create_check_constraint("sender_auth", "sender_auth IN ('off', 'record', 'require')")
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("authentication", sa.JSON(), nullable=True))
    with op.batch_alter_table("user_addresses") as batch:
        batch.add_column(sa.Column("confirmation_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("confirmation_expires_at", _TS, nullable=True))
        batch.add_column(sa.Column("confirmed_at", _TS, nullable=True))
        batch.add_column(sa.Column("confirmed_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_addresses") as batch:
        for name in ("confirmed_by", "confirmed_at", "confirmation_expires_at", "confirmation_hash"):
            batch.drop_column(name)
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("authentication")
    with op.batch_alter_table("companies") as batch:
        batch.drop_constraint("sender_auth", type_="check")
        batch.drop_column("sender_auth")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
