"""Initial schema: dispatches, nodes, edges, jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispatches",
        sa.Column("dispatch_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("parent_dispatch_id", sa.String(64), nullable=True, index=True),
        sa.Column("parent_node_id", sa.Integer, nullable=True),
        sa.Column("root_dispatch_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.LargeBinary, nullable=True),
        sa.Column("result_template", sa.LargeBinary, nullable=True),
        sa.Column("environment", sa.JSON, nullable=False),
        sa.Column("num_nodes", sa.Integer, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dispatch_id", sa.String(64), nullable=False, index=True),
        sa.Column("executor", sa.String(64), nullable=False),
        sa.Column("executor_config", sa.JSON, nullable=False),
        sa.Column("handle", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cancel_attempts", sa.Integer, nullable=False),
        sa.Column("cancel_error", sa.Text, nullable=True),
    )
    op.create_table(
        "nodes",
        sa.Column(
            "dispatch_id",
            sa.String(64),
            sa.ForeignKey("dispatches.dispatch_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("node_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("cancel_reason", sa.String(32), nullable=True),
        sa.Column("cancel_stage", sa.String(16), nullable=True),
        sa.Column("executor", sa.String(64), nullable=True),
        sa.Column("executor_config", sa.JSON, nullable=True),
        sa.Column("timeout", sa.Float, nullable=True),
        sa.Column("function", sa.LargeBinary, nullable=True),
        sa.Column("output", sa.LargeBinary, nullable=True),
        sa.Column("output_repr", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("stdout", sa.Text, nullable=True),
        sa.Column("stderr", sa.Text, nullable=True),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.job_id"), nullable=True, index=True),
        sa.Column("sub_dispatch_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_nodes_dispatch_status", "nodes", ["dispatch_id", "status"])
    op.create_table(
        "edges",
        sa.Column("dispatch_id", sa.String(64), primary_key=True),
        sa.Column("edge_index", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("parent", sa.Integer, nullable=False),
        sa.Column("child", sa.Integer, nullable=False),
        sa.Column("param_type", sa.String(8), nullable=False),
        sa.Column("param_name", sa.String(255), nullable=True),
        sa.Column("arg_index", sa.Integer, nullable=True),
        sa.ForeignKeyConstraint(["dispatch_id"], ["dispatches.dispatch_id"], ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("edges")
    op.drop_table("nodes")
    op.drop_table("jobs")
    op.drop_table("dispatches")
