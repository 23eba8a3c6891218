"""What the SQL cache promises beyond the contract: the table bound with its documented slack
when several processes write, expired rows purged even when nobody looks them up, and hits that
rewrite ``used_at`` only once per ``TOUCH_RESOLUTION``."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from qwenkit._core.cache import CachedResponse
from qwenkit.storage import parse_store_url
from qwenkit.storage._cache_sql import TOUCH_RESOLUTION, SQLCache
from qwenkit.storage._schema import cache_entries
from qwenkit.storage._sql import sync_engine
from qwenkit.types import ContentDelta, Finished


class FakeClock:
    def __init__(self, now: float = 1_765_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(n: int) -> str:
    return hashlib.sha256(f"request {n}".encode()).hexdigest()


ANSWER = CachedResponse((ContentDelta("hi"), Finished("stop")))


class Table:
    """The raw ``qk_cache`` rows, read behind the cache's back."""

    def __init__(self, url: str) -> None:
        self.engine = sync_engine(parse_store_url(url, part="cache"))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(cache_entries)).scalar_one())

    def used_at(self, entry: str) -> float:
        with self.engine.connect() as conn:
            query = select(cache_entries.c.used_at).where(cache_entries.c.key == entry)
            return float(conn.execute(query).scalar_one())

    def close(self) -> None:
        self.engine.dispose()


@pytest.mark.anyio
async def test_one_writer_never_passes_the_bound_and_several_only_by_the_slack(
    sql_url: str,
) -> None:
    clock = FakeClock()
    writers = [SQLCache(sql_url, max_entries=200, clock=clock)]
    writers.append(SQLCache(sql_url, max_entries=200, clock=clock, migrate=False))
    assert writers[0].check_every == 2
    table = Table(sql_url)
    try:
        for n in range(210):
            await writers[0].set(key(n), ANSWER)
            clock.now += 0.01
            assert table.count() <= 200
        most = 0
        for n in range(210, 400):
            await writers[n % 2].set(key(n), ANSWER)
            clock.now += 0.01
            most = max(most, table.count())
        # N processes: at most max_entries + (N - 1) * (check_every - 1)
        assert 199 <= most <= 200 + (2 - 1) * (2 - 1)
        assert await writers[0].get(key(399)) == ANSWER  # the newest stay
        assert await writers[1].get(key(0)) is None  # the oldest went
    finally:
        table.close()
        for writer in writers:
            await writer.aclose()


@pytest.mark.anyio
async def test_expired_rows_are_purged_without_a_lookup(sql_url: str) -> None:
    clock = FakeClock()
    cache = SQLCache(sql_url, max_entries=50, ttl=30, clock=clock)  # checks on every store
    table = Table(sql_url)
    try:
        for n in range(10):
            await cache.set(key(n), ANSWER)
        assert table.count() == 10
        clock.now += 31
        await cache.set(key(99), ANSWER)
        assert table.count() == 1
    finally:
        table.close()
        await cache.aclose()


@pytest.mark.anyio
async def test_a_hit_rewrites_used_at_once_per_resolution(sqlite_url: str) -> None:
    clock = FakeClock()
    cache = SQLCache(sqlite_url, clock=clock)
    table = Table(sqlite_url)
    try:
        await cache.set(key(0), ANSWER)
        stored = table.used_at(key(0))
        clock.now += TOUCH_RESOLUTION / 2
        assert await cache.get(key(0)) == ANSWER
        assert table.used_at(key(0)) == stored
        clock.now += TOUCH_RESOLUTION
        assert await cache.get(key(0)) == ANSWER
        assert table.used_at(key(0)) == clock.now
    finally:
        table.close()
        await cache.aclose()
