"""A key's reasoning policy: ``strip``, ``pass`` or ``log`` (``NULL``: the gateway's default).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qk_keys") as batch:
        batch.add_column(sa.Column("reasoning", sa.String(8)))


def downgrade() -> None:
    with op.batch_alter_table("qk_keys") as batch:
        batch.drop_column("reasoning")
