"""Idempotency keys: ``ct.dispatch(wf, key=...)`` stores the key with the dispatch, and a
second dispatch with the same key returns the first one's id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatches") as batch:
        batch.add_column(sa.Column("dispatch_key", sa.String(255), nullable=True))
    op.create_index("ux_dispatches_key", "dispatches", ["dispatch_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_dispatches_key", table_name="dispatches")
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("dispatch_key")
