"""The first schema: usage ledger, budget counters and reservations, cache, keys, environments.

Revision ID: 0001
Revises:
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
        "qk_usage",
        sa.Column("record_id", sa.String(32), primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(128)),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("task", sa.String(64)),
        sa.Column("endpoint", sa.String(128)),
        sa.Column("key_id", sa.String(64)),
        sa.Column("environment", sa.String(64)),
        sa.Column("region", sa.String(32)),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("cache_creation_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Numeric(20, 9)),
        sa.Column("currency", sa.String(8)),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("ttft_s", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error_code", sa.String(128)),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("prompt", sa.Text),
    )
    op.create_index("ix_qk_usage_ts", "qk_usage", ["ts"])
    op.create_index("ix_qk_usage_endpoint_ts", "qk_usage", ["endpoint", "ts"])
    op.create_index("ix_qk_usage_model_ts", "qk_usage", ["model", "ts"])
    op.create_index("ix_qk_usage_key_ts", "qk_usage", ["key_id", "ts"])
    op.create_index("ix_qk_usage_environment_ts", "qk_usage", ["environment", "ts"])

    op.create_table(
        "qk_budget_counters",
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("window", sa.String(64), primary_key=True),
        sa.Column("spent", sa.BigInteger, nullable=False),
        sa.Column("reserved", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_qk_budget_counters_expires", "qk_budget_counters", ["expires_at"])
    op.create_table(
        "qk_budget_reservations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("items", sa.Text, nullable=False),
    )
    op.create_index("ix_qk_budget_reservations_expires", "qk_budget_reservations", ["expires_at"])

    op.create_table(
        "qk_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
        sa.Column("used_at", sa.Float, nullable=False),
    )
    op.create_index("ix_qk_cache_expires", "qk_cache", ["expires_at"])
    op.create_index("ix_qk_cache_used", "qk_cache", ["used_at"])

    op.create_table(
        "qk_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(64)),
        sa.Column("salt", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.Column("daily_budget", sa.Numeric(20, 9)),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("models", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "qk_environments",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("daily_budget", sa.Numeric(20, 9)),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
    )


def downgrade() -> None:
    for table in (
        "qk_environments",
        "qk_keys",
        "qk_cache",
        "qk_budget_reservations",
        "qk_budget_counters",
        "qk_usage",
    ):
        op.drop_table(table)
