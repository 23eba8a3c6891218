"""The SQL tables of every store part (SQLAlchemy Core), shared by SQLite and PostgreSQL.

The migrations in ``qwenkit/storage/migrations`` create exactly these; a test compares the two.
Every name starts with ``qk_`` so the tables can share a database with an application's own.
Timestamps users query (``qk_usage.ts``, key times) are ``DateTime`` in UTC; internal expiry times
of budgets and cache entries are epoch seconds (``Float``), compared with plain arithmetic.
Money is ``Numeric(20, 9)`` in the ledger (exact); budget counters hold integer nano-units.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)

__all__ = [
    "budget_counters",
    "budget_reservations",
    "cache_entries",
    "environments",
    "keys",
    "metadata",
    "tasks",
    "usage",
]

metadata = MetaData()

usage = Table(
    "qk_usage",
    metadata,
    Column("record_id", String(32), primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("request_id", String(128)),
    Column("model", String(128), nullable=False),
    Column("task", String(64)),
    Column("endpoint", String(128)),
    Column("key_id", String(64)),
    Column("environment", String(64)),
    Column("region", String(32)),
    Column("stream", Boolean, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("cache_creation_tokens", Integer, nullable=False),
    Column("reasoning_tokens", Integer, nullable=False),
    Column("cost", Numeric(20, 9)),
    Column("currency", String(8)),
    Column("latency_s", Float, nullable=False),
    Column("ttft_s", Float),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer),
    Column("error_code", String(128)),
    Column("cache_hit", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("finish_reason", String(32)),
    Column("prompt", Text),
    Index("ix_qk_usage_ts", "ts"),
    Index("ix_qk_usage_endpoint_ts", "endpoint", "ts"),
    Index("ix_qk_usage_model_ts", "model", "ts"),
    Index("ix_qk_usage_key_ts", "key_id", "ts"),
    Index("ix_qk_usage_environment_ts", "environment", "ts"),
)

budget_counters = Table(
    "qk_budget_counters",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("window", String(64), primary_key=True),
    Column("spent", BigInteger, nullable=False, default=0),
    Column("reserved", BigInteger, nullable=False, default=0),
    Column("expires_at", Float, nullable=False),
    Index("ix_qk_budget_counters_expires", "expires_at"),
)
"""One row per (scope, window): ``window`` is ``day:2026-12-06`` (nano-units of money),
``rpm:<minute>`` (requests) or ``tpm:<minute>`` (tokens). Rows past ``expires_at`` are deleted."""

budget_reservations = Table(
    "qk_budget_reservations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Column("items", Text, nullable=False),
    Index("ix_qk_budget_reservations_expires", "expires_at"),
)
"""Reservations not yet settled: ``items`` is JSON ``[[scope, window, amount], ...]``. A process
that dies leaves its rows; they are released when they expire."""

cache_entries = Table(
    "qk_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("used_at", Float, nullable=False),
    Index("ix_qk_cache_expires", "expires_at"),
    Index("ix_qk_cache_used", "used_at"),
)

keys = Table(
    "qk_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("environment", String(64)),
    Column("salt", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
    Column("daily_budget", Numeric(20, 9)),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("models", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Column("reasoning", String(8)),
    Column("max_tokens", Integer),
)
"""Virtual keys: ``qk-<id>-<secret>``; only ``scrypt(secret, salt)`` is stored. ``models`` is a
JSON list (``NULL``: any model); ``reasoning`` the key's reasoning policy (``NULL``: the
gateway's default); ``max_tokens`` the key's cap on one call's output (``NULL``: none of its
own)."""

environments = Table(
    "qk_environments",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("daily_budget", Numeric(20, 9)),
    Column("rpm", Integer),
    Column("tpm", Integer),
)
"""Limits of a whole environment (``prod``, ``staging``), over all of its keys."""

tasks = Table(
    "qk_tasks",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("key_id", String(64)),
    Column("model", String(128), nullable=False),
    Column("task", String(64)),
    Column("endpoint", String(128)),
    Column("environment", String(64)),
    Column("request_id", String(128)),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("recorded_at", Float),
    Index("ix_qk_tasks_expires_at", "expires_at"),
)
"""The gateway's asynchronous tasks: which key submitted each (only it may poll it), what the
usage record needs (model, tags, the submission's request id), and ``recorded_at`` once one
process has written the task's usage record (a conditional update: exactly one does)."""
