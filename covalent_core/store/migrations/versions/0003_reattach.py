"""Jobs re-attached to: which dispatcher service took a job over from one that died, and when.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("attached_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("attached_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attached_at")
        batch.drop_column("attached_by")
