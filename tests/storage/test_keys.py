"""Virtual keys: created once and verified, refused when wrong, malformed, unknown or revoked
(in the revoking process at once, in another within its verify TTL); stored as scrypt hashes
with nothing of the secret; last use recorded at most once a minute; environment limits."""

from __future__ import annotations

import hashlib
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from qwenkit._exceptions import UsageError
from qwenkit.storage import Limits, parse_store_url
from qwenkit.storage._keys import SCRYPT_PARAMS, SQLKeys, open_keys, split_key
from qwenkit.storage._schema import keys as keys_table
from qwenkit.storage._sql import sync_engine

LIMITS = Limits(daily_cost=Decimal("2.50"), requests_per_minute=60, tokens_per_minute=100_000)
KEY = re.compile(r"qk-([0-9a-f]{12})-([A-Za-z0-9_-]{43})")


class FakeClock:
    def __init__(self, now: float = 1_765_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def other_secret(key: str) -> str:
    """``key`` with the last character of its secret changed."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.mark.anyio
async def test_create_verify_revoke(sql_url: str) -> None:
    clock = FakeClock()
    store = open_keys(sql_url, clock=clock)
    elsewhere = SQLKeys(sql_url, migrate=False, clock=clock)  # another gateway replica
    try:
        created = await store.create(
            "billing-service", environment="prod", limits=LIMITS, models=["qwen-plus", "qwen-max"]
        )
        match = KEY.fullmatch(created.key)
        assert match is not None
        assert match.group(1) == created.info.id
        info = await store.verify(created.key)
        assert info is not None
        assert (info.id, info.name, info.environment) == (
            created.info.id,
            "billing-service",
            "prod",
        )
        assert info.limits == LIMITS
        assert info.models == ("qwen-plus", "qwen-max")
        assert info.active
        assert await store.get(info.id) == info
        assert await elsewhere.verify(created.key) == info

        assert await store.revoke(info.id) is True
        assert await store.verify(created.key) is None  # this process: at once
        assert await store.revoke(info.id) is False
        revoked = await store.get(info.id)
        assert revoked is not None
        assert revoked.revoked_at is not None
        assert not revoked.active
        assert await elsewhere.verify(created.key) is not None  # trusted until its TTL...
        clock.now += elsewhere.verify_ttl + 1
        assert await elsewhere.verify(created.key) is None  # ...and no longer
        assert [k.id for k in await store.list()] == []
        assert [k.id for k in await store.list(include_revoked=True)] == [info.id]
    finally:
        await store.aclose()
        await elsewhere.aclose()


@pytest.mark.anyio
async def test_wrong_malformed_and_unknown_keys_are_refused(sqlite_url: str) -> None:
    store = open_keys(sqlite_url)
    try:
        first = await store.create("a")
        second = await store.create("b")
        key_id, secret = first.key.split("-", 2)[1:]
        other = second.key.split("-", 2)[2]
        refused = [
            other_secret(first.key),
            f"qk-{key_id}-{other}",  # another key's secret
            f"qk-{'0' * 12}-{secret}",  # an id that does not exist
            "",
            "qk",
            "qk-",
            f"qk-{key_id}-",
            f"qk-{key_id.upper()}-{secret}",
            f"sk-{key_id}-{secret}",
            f" {first.key}",
            f"qk-{key_id}-{secret}\n",
            f"qk-{key_id}-{secret * 4}",
            f"qk-{key_id}{secret}",
        ]
        for key in refused:
            assert await store.verify(key) is None, key
        assert await store.verify(first.key) is not None
        assert await store.verify(second.key) is not None
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_an_unknown_id_costs_the_same_scrypt(sqlite_url: str) -> None:
    """Refusing an unknown id is not measurably faster than refusing a wrong secret."""
    store = open_keys(sqlite_url, verify_ttl=0)
    try:
        created = await store.create("a")
        secret = created.key.split("-", 2)[2]

        async def fastest(key: str) -> float:
            times = []
            for _ in range(3):
                started = time.perf_counter()
                assert await store.verify(key) is None
                times.append(time.perf_counter() - started)
            return min(times)

        wrong = await fastest(other_secret(created.key))
        unknown = await fastest(f"qk-{'0' * 12}-{secret}")
        assert unknown > 0.3 * wrong
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_the_stored_row_holds_nothing_of_the_secret(sqlite_url: str) -> None:
    store = open_keys(sqlite_url)
    try:
        created = await store.create("a", limits=LIMITS)
    finally:
        await store.aclose()
    secret = created.key.split("-", 2)[2]
    engine = sync_engine(parse_store_url(sqlite_url, part="keys"))
    try:
        with engine.connect() as conn:
            row = conn.execute(select(keys_table)).one()
    finally:
        engine.dispose()
    assert row.hash == hashlib.scrypt(secret.encode(), salt=row.salt, **SCRYPT_PARAMS)
    assert len(row.salt) == 16
    raw = b"".join(
        value if isinstance(value, bytes) else str(value).encode()
        for value in row._mapping.values()
    )
    files = b"".join(p.read_bytes() for p in Path(sqlite_url[10:]).parent.glob("store.db*"))
    for window in {secret[i : i + 8] for i in range(len(secret) - 7)}:
        assert window.encode() not in raw
        assert window.encode() not in files  # nor anywhere in the database files


@pytest.mark.anyio
async def test_last_use_is_recorded_at_most_once_a_minute(sql_url: str) -> None:
    clock = FakeClock()
    store = open_keys(sql_url, clock=clock)
    other = SQLKeys(sql_url, migrate=False, clock=clock)
    try:
        created = await store.create("a")
        assert created.info.last_used_at is None
        first = await store.verify(created.key)
        assert first is not None
        assert first.last_used_at is not None
        assert first.last_used_at.timestamp() == pytest.approx(clock.now)
        used = first.last_used_at
        clock.now += 30
        assert await store.verify(created.key) is not None
        assert await other.verify(created.key) is not None  # another process, same minute
        recorded = await store.get(created.info.id)
        assert recorded is not None
        assert recorded.last_used_at == used
        clock.now += 31
        again = await store.verify(created.key)
        assert again is not None
        assert again.last_used_at is not None
        assert again.last_used_at.timestamp() == pytest.approx(clock.now)
        stored = await store.get(created.info.id)
        assert stored is not None
        assert stored.last_used_at == again.last_used_at
    finally:
        await store.aclose()
        await other.aclose()


@pytest.mark.anyio
async def test_listing_shows_everything_but_the_key(sqlite_url: str) -> None:
    store = open_keys(sqlite_url)
    try:
        created = [await store.create(name, models=None) for name in ("one", "two")]
        listed = await store.list()
        assert [info.name for info in listed] == ["one", "two"]
        assert [info.models for info in listed] == [None, None]
        shown = repr(listed)
        for item in created:
            assert item.key.split("-", 2)[2] not in shown
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_environment_limits_are_upserted(sql_url: str) -> None:
    store = open_keys(sql_url)
    try:
        assert await store.environment("prod") is None
        await store.set_environment("prod", Limits(daily_cost=Decimal("100")))
        assert await store.environment("prod") == Limits(daily_cost=Decimal("100"))
        await store.set_environment("prod", Limits(requests_per_minute=600))
        assert await store.environment("prod") == Limits(requests_per_minute=600)
    finally:
        await store.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "limits", "models", "needle"),
    [
        ("", Limits(), None, "name"),
        ("x" * 201, Limits(), None, "name"),
        ("a", Limits(daily_cost=Decimal("-1")), None, "daily budget"),
        ("a", Limits(daily_cost=Decimal("NaN")), None, "daily budget"),
        ("a", Limits(requests_per_minute=0), None, "rpm"),
        ("a", Limits(tokens_per_minute=-5), None, "tpm"),
        ("a", Limits(), [], "models"),
        ("a", Limits(), ["qwen-plus", " "], "models"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_stored(
    sqlite_url: str, name: str, limits: Limits, models: list[str] | None, needle: str
) -> None:
    store = open_keys(sqlite_url)
    try:
        with pytest.raises(UsageError, match=needle):
            await store.create(name, limits=limits, models=models)
        with pytest.raises(UsageError):
            await store.set_environment("prod", Limits(requests_per_minute=0))
        assert await store.list(include_revoked=True) == []
    finally:
        await store.aclose()


@given(
    key_id=st.text("0123456789abcdef", min_size=12, max_size=12),
    secret=st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        min_size=16,
        max_size=64,
    ),
)
def test_a_key_splits_on_its_first_two_dashes(key_id: str, secret: str) -> None:
    assert split_key(f"qk-{key_id}-{secret}") == (key_id, secret)
