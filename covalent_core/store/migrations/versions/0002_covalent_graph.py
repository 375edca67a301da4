"""Graphs and results as Covalent has them: every edge has Covalent's ``edge_name``; the result
is the output of the graph's ``:postprocess:reconstruct`` node, so neither a return template
nor a second copy of the result is stored; the dispatched lattice and its inputs are kept for
``result.lattice`` and ``result.inputs``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("edges") as batch:
        batch.alter_column("param_name", new_column_name="edge_name")
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("result_template")
        batch.drop_column("result")
        batch.add_column(sa.Column("lattice", sa.LargeBinary, nullable=True))
        batch.add_column(sa.Column("inputs", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("inputs")
        batch.drop_column("lattice")
        batch.add_column(sa.Column("result_template", sa.LargeBinary, nullable=True))
        batch.add_column(sa.Column("result", sa.LargeBinary, nullable=True))
    with op.batch_alter_table("edges") as batch:
        batch.alter_column("edge_name", new_column_name="param_name")
