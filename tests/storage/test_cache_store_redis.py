"""What the Redis cache promises beyond the contract: its documented key layout under the URL's
prefix (so two prefixes never see each other's entries), Redis's own expiry set from the
lifetime (memory is freed without a lookup), and eviction that deletes the values, not only
their place in the LRU set."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import redis

from qwenkit._core.cache import CachedResponse
from qwenkit.storage import parse_store_url
from qwenkit.storage._cache_redis import RedisCache
from qwenkit.types import ContentDelta, Finished

ANSWER = CachedResponse((ContentDelta("hi"), Finished("stop")))


def key(n: int) -> str:
    return hashlib.sha256(f"request {n}".encode()).hexdigest()


@pytest.fixture
def server(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    """A plain client of the test's Redis, and the test's key prefix."""
    parsed = parse_store_url(redis_url, part="cache")
    client = redis.Redis.from_url(parsed.redis())
    try:
        yield client, parsed.prefix
    finally:
        client.close()


@pytest.mark.anyio
async def test_the_key_layout_and_redis_expiry(
    redis_url: str, server: tuple[redis.Redis, str]
) -> None:
    client, prefix = server
    cache = RedisCache(redis_url, ttl=30)
    try:
        await cache.set(key(1), ANSWER)
        await cache.set(key(2), ANSWER, ttl=5)
        no_expiry = RedisCache(redis_url)
        try:
            await no_expiry.set(key(3), ANSWER)
        finally:
            await no_expiry.aclose()
    finally:
        await cache.aclose()
    names = {name.decode() for name in client.scan_iter(match=f"{prefix}*")}
    assert names == {f"{prefix}cache:lru", *(f"{prefix}cache:{key(n)}" for n in (1, 2, 3))}
    assert 25_000 < client.pttl(f"{prefix}cache:{key(1)}") <= 30_000
    assert 0 < client.pttl(f"{prefix}cache:{key(2)}") <= 5_000
    assert client.pttl(f"{prefix}cache:{key(3)}") == -1  # until evicted
    assert client.zcard(f"{prefix}cache:lru") == 3


@pytest.mark.anyio
async def test_two_prefixes_are_two_caches(redis_url: str) -> None:
    assert redis_url.endswith(":")  # ...?prefix=qktest:<id>: (its keys are deleted after the test)
    other_url = redis_url + "other:"  # a prefix under it, so its keys are deleted too
    first, second = RedisCache(redis_url), RedisCache(other_url)
    try:
        await first.set(key(1), ANSWER)
        assert await second.get(key(1)) is None
        assert await first.get(key(1)) == ANSWER
        await second.clear()
        assert await first.size() == 1
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.anyio
async def test_eviction_deletes_the_values(redis_url: str, server: tuple[redis.Redis, str]) -> None:
    client, prefix = server
    cache = RedisCache(redis_url, max_entries=5)
    try:
        for n in range(20):
            await cache.set(key(n), ANSWER)
    finally:
        await cache.aclose()
    values = [name for name in client.scan_iter(match=f"{prefix}cache:*") if b":lru" not in name]
    assert len(values) == 5
    assert client.zcard(f"{prefix}cache:lru") == 5
