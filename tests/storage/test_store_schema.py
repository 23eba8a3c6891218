"""The migrations create exactly the tables of ``_schema.py``, once, on SQLite and PostgreSQL;
a database from a newer qwenkit is refused; an unreachable one is an error naming it, fast."""

from __future__ import annotations

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from qwenkit import StorageError
from qwenkit.storage import parse_store_url, upgrade_store
from qwenkit.storage._migrate import current_revision, head_revision
from qwenkit.storage._schema import metadata
from qwenkit.storage._sql import sync_engine


def test_migrations_match_the_schema(sql_url: str) -> None:
    upgrade_store(sql_url)
    engine = sync_engine(parse_store_url(sql_url, part="ledger"))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": "qk_alembic_version"})
            diff = compare_metadata(context, metadata)
        assert diff == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_reports_where_it_was(sqlite_url: str) -> None:
    assert upgrade_store(sqlite_url) is None
    assert upgrade_store(sqlite_url) == head_revision()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    upgrade_store(sqlite_url)
    engine = sync_engine(parse_store_url(sqlite_url, part="ledger"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    finally:
        engine.dispose()


def test_a_schema_newer_than_this_qwenkit_is_refused(sqlite_url: str) -> None:
    upgrade_store(sqlite_url)
    engine = sync_engine(parse_store_url(sqlite_url, part="ledger"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE qk_alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StorageError, match="newer than this qwenkit knows"):
        upgrade_store(sqlite_url)


def test_an_unreachable_server_is_an_error_naming_it_not_a_hang() -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        upgrade_store("postgresql://app:hunter2@127.0.0.1:1/db")
    assert time.monotonic() - started < 10
    assert "postgresql://app:***@127.0.0.1:1/db" in str(caught.value)
    assert "hunter2" not in str(caught.value)
