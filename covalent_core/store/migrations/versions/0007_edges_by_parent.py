"""Edges looked up by their parent: a cancel of named tasks walks what is downstream of them
in the store, without reading the whole graph.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_edges_dispatch_parent", "edges", ["dispatch_id", "parent"])


def downgrade() -> None:
    op.drop_index("ix_edges_dispatch_parent", table_name="edges")
