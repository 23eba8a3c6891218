"""The gateway's asynchronous tasks (``qk_tasks``), shared by every gateway process.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qk_tasks",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("key_id", sa.String(64)),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("task", sa.String(64)),
        sa.Column("endpoint", sa.String(128)),
        sa.Column("environment", sa.String(64)),
        sa.Column("request_id", sa.String(128)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("recorded_at", sa.Float),
    )
    op.create_index("ix_qk_tasks_expires_at", "qk_tasks", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_qk_tasks_expires_at", table_name="qk_tasks")
    op.drop_table("qk_tasks")
