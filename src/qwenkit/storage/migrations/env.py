"""Alembic environment: always run with a connection passed in by ``qwenkit.storage._migrate``."""

from __future__ import annotations

from alembic import context

from qwenkit.storage._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="qk_alembic_version",
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
