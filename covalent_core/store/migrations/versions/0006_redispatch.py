"""Redispatch with reuse: each node's content key (what it computes: its code, options,
executor and inputs, recursively), the dispatch a reused output came from, and the dispatch a
redispatch was made from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("content_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reused_from", sa.String(64), nullable=True))
    with op.batch_alter_table("dispatches") as batch:
        batch.add_column(sa.Column("redispatched_from", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("redispatched_from")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("reused_from")
        batch.drop_column("content_key")
