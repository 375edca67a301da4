"""Leases: a dispatch's owner holds it until ``lease_expires_at`` (seconds since the epoch,
by the store's clock), renewing it while it runs; after that another service may take it over.
And a whole-dispatch cancel's reason on the dispatch (its flag alone stands for every node).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatches") as batch:
        batch.add_column(sa.Column("lease_expires_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("cancel_reason", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("cancel_reason")
        batch.drop_column("lease_expires_at")
