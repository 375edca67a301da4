"""Triggers, and dispatches registered but not started.

- ``dispatches.held``: registered, not started (``disable_run``, a lattice with triggers);
  no service claims it until it is started.
- ``dispatches.triggered_by``: the trigger that made a run.
- ``triggers``: each trigger, its dispatch, the pickled trigger, the host that runs it,
  whether it is armed, how often it fired.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatches") as batch:
        batch.add_column(sa.Column("held", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("triggered_by", sa.String(64), nullable=True))
    op.create_table(
        "triggers",
        sa.Column("trigger_id", sa.String(64), primary_key=True),
        sa.Column("dispatch_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("trigger", sa.LargeBinary, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("armed", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("stopped_at", sa.Float, nullable=True),
        sa.Column("fired", sa.Integer, nullable=False),
        sa.Column("last_fired_at", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_triggers_dispatch_id", "triggers", ["dispatch_id"])
    op.create_index("ix_triggers_armed", "triggers", ["armed"])


def downgrade() -> None:
    op.drop_index("ix_triggers_armed", table_name="triggers")
    op.drop_index("ix_triggers_dispatch_id", table_name="triggers")
    op.drop_table("triggers")
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("triggered_by")
        batch.drop_column("held")
