"""A key's ``max_tokens`` cap: the most output tokens one call of the key may ask for
(``NULL``: only the gateway's and the model's caps).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qk_keys") as batch:
        batch.add_column(sa.Column("max_tokens", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("qk_keys") as batch:
        batch.drop_column("max_tokens")
