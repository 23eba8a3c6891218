"""Fixtures shared by the test suite. One conftest for all (mypy needs module names to be unique);
plain helpers live beside their tests (``agent_support.py``, ``usage_support.py``,
``emulator_server.py``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from services import service_missing

from qwenkit._settings import Mode

# The Playwright fixtures (``browser``, ``page``) of tests/support/browser.py and the
# llama.cpp server (``llama``) of tests/support/llama_server.py.
pytest_plugins = ["browser", "llama_server"]


@pytest.fixture
def anyio_backend() -> str:
    """``@pytest.mark.anyio`` tests run on asyncio (the in-process transport needs it)."""
    return "asyncio"


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each test that takes it runs over both DashScope wire formats."""
    value: Mode = request.param
    return value


# -- real stores: SQLite files, the machine's PostgreSQL and Redis ------------------------------
# PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) run on every development and
# CI machine. Without them these fixtures skip with a message, unless QWENKIT_REQUIRE_SERVICES=1
# (set by .ci/run): then a missing service fails the test. Override the servers with
# QWENKIT_TEST_POSTGRES (an admin URL) and QWENKIT_TEST_REDIS.

POSTGRES_ADMIN = os.environ.get("QWENKIT_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("QWENKIT_TEST_REDIS", "redis://127.0.0.1:6379/0")
_STORE_TABLES = (
    "qk_usage",
    "qk_budget_counters",
    "qk_budget_reservations",
    "qk_cache",
    "qk_keys",
    "qk_environments",
    "qk_tasks",
)


def _service_missing(what: str, error: BaseException) -> NoReturn:
    service_missing(
        f"{what} is not reachable ({type(error).__name__}: {error})",
        "start it or set QWENKIT_TEST_POSTGRES / QWENKIT_TEST_REDIS",
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite store file."""
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(scope="session")
def _postgres_database() -> Iterator[str]:
    """One fresh database for the session, migrated; dropped at the end."""
    import psycopg

    name = f"qk_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = POSTGRES_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _service_missing(f"PostgreSQL at {admin}", exc)
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(_postgres_database: str) -> str:
    """The session's PostgreSQL database, migrated, with every qwenkit table empty."""
    import psycopg

    from qwenkit.storage import upgrade_store

    upgrade_store(_postgres_database)
    with psycopg.connect(_postgres_database, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(_STORE_TABLES))
    return _postgres_database


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The machine's Redis with a key prefix of this test only; its keys deleted afterwards."""
    import redis

    prefix = f"qktest:{uuid.uuid4().hex[:10]}:"
    client = redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _service_missing(f"Redis at {REDIS_SERVER}", exc)
    sep = "&" if "?" in REDIS_SERVER else "?"
    try:
        yield f"{REDIS_SERVER}{sep}prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def any_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs on SQLite, PostgreSQL and Redis."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url", "redis": "redis_url"}
    url: str = request.getfixturevalue(fixture[request.param])
    return url
