"""Store URLs: each backend by its URL, the parts each may serve, and refusals that say why."""

from __future__ import annotations

import pytest

from qwenkit import ConfigError, Settings
from qwenkit.storage import StoreURL, parse_store_url
from qwenkit.storage._urls import configured_url, default_store_url


@pytest.mark.parametrize(
    ("url", "backend", "sync", "aio"),
    [
        ("sqlite:///q.db", "sqlite", "sqlite+pysqlite:///q.db", "sqlite+aiosqlite:///q.db"),
        ("sqlite:////tmp/q.db", "sqlite", "sqlite+pysqlite:////tmp/q.db", None),
        ("postgresql://u@h:5432/d", "postgresql", "postgresql+psycopg://u@h:5432/d", None),
        ("postgres://u@h/d", "postgresql", "postgresql+psycopg://u@h/d", None),
        ("postgresql+psycopg://u@h/d", "postgresql", "postgresql+psycopg://u@h/d", None),
    ],
)
def test_sql_urls_name_their_backend_and_driver(
    url: str, backend: str, sync: str, aio: str | None
) -> None:
    parsed = parse_store_url(url, part="ledger")
    assert parsed.backend == backend
    assert parsed.sqlalchemy(asyncio=False) == sync
    if aio is not None:
        assert parsed.sqlalchemy(asyncio=True) == aio


def test_redis_url_takes_a_prefix_and_passes_the_rest_to_redis_py() -> None:
    parsed = parse_store_url(
        "redis://127.0.0.1:6379/2?prefix=team:&health_check_interval=5", part="budgets"
    )
    assert parsed.backend == "redis"
    assert parsed.prefix == "team:"
    assert parsed.redis() == "redis://127.0.0.1:6379/2?health_check_interval=5"
    assert parse_store_url("rediss://h:6380/0", part="cache").prefix == "qwenkit:"


@pytest.mark.parametrize("part", ["ledger", "keys"])
def test_the_ledger_and_the_keys_need_sql(part: str) -> None:
    with pytest.raises(ConfigError, match=f"the {part} store needs postgresql or sqlite"):
        parse_store_url("redis://127.0.0.1:6379/0", part=part)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["mysql://h/d", "qwenkit.db", "http://h/x", "sqlite:///:memory:", "sqlite://"]
)
def test_unusable_urls_are_refused_with_the_accepted_forms(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_store_url(url, part="ledger")
    assert "sqlite:///" in str(caught.value)


def test_passwords_never_show() -> None:
    parsed = parse_store_url("postgresql://app:s3cret@db:5432/prod", part="ledger")
    assert "s3cret" not in str(parsed)
    assert "s3cret" not in repr(parsed)
    assert parsed.masked == "postgresql://app:***@db:5432/prod"
    with pytest.raises(ConfigError) as caught:
        parse_store_url("mysql://app:s3cret@db/prod", part="ledger")
    assert "s3cret" not in str(caught.value)


def test_each_part_takes_its_own_url_then_the_shared_one() -> None:
    settings = Settings(store_url="redis://r:6379/0", ledger_url="postgresql://p/d")
    assert configured_url(settings, "ledger") == "postgresql://p/d"
    assert configured_url(settings, "budgets") == "redis://r:6379/0"
    assert configured_url(settings, "keys", default="sqlite:///k.db") == "sqlite:///k.db"
    assert configured_url(Settings(), "cache") is None


def test_settings_read_the_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWENKIT_STORE_URL", "sqlite:///all.db")
    monkeypatch.setenv("QWENKIT_BUDGETS_URL", "redis://r/0")
    monkeypatch.setenv("QWENKIT_BUDGET_TIMEZONE", "Asia/Shanghai")
    settings = Settings.load()
    assert configured_url(settings, "ledger") == "sqlite:///all.db"
    assert configured_url(settings, "budgets") == "redis://r/0"
    assert settings.budget_timezone == "Asia/Shanghai"


def test_the_default_store_lives_in_qwenkit_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("QWENKIT_HOME", str(tmp_path))
    assert default_store_url() == f"sqlite:///{tmp_path}/qwenkit.db"
    assert isinstance(parse_store_url(default_store_url(), part="ledger"), StoreURL)
