"""Idempotency keys, node notes, and no environment variables in the store.

- ``dispatches.dispatch_key``: ``ct.dispatch(wf, key=...)`` stores the caller's key, and a
  second dispatch with the same key returns the first one's id.
- ``nodes.note``: what a user should know about how a node ran that is not an error (its
  tasks ran with another host's environment, say).
- The dispatching process's environment variables are no longer stored (they stay on its
  host): those stored by earlier releases are removed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

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
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("note", sa.Text, nullable=True))
    conn = op.get_bind()
    table = sa.table(
        "dispatches", sa.column("dispatch_id", sa.String), sa.column("environment", sa.JSON)
    )
    rows = conn.execute(sa.select(table.c.dispatch_id, table.c.environment)).all()
    for dispatch_id, environment in rows:
        if isinstance(environment, str):
            environment = json.loads(environment)
        if isinstance(environment, dict) and "variables" in environment:
            environment.pop("variables")
            conn.execute(
                table.update()
                .where(table.c.dispatch_id == dispatch_id)
                .values(environment=environment)
            )


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("note")
    op.drop_index("ux_dispatches_key", table_name="dispatches")
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("dispatch_key")
