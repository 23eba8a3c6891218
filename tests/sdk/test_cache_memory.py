"""MemoryCache (bounded LRU with TTL) and CachedResponse."""

from __future__ import annotations

import pytest

from qwenkit._core.cache import CachedResponse, MemoryCache
from qwenkit.types import (
    ContentDelta,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    ToolCallDelta,
    Usage,
    UsageReported,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def response(text: str) -> CachedResponse:
    return CachedResponse((ContentDelta(text), Finished("stop")))


@pytest.mark.anyio
async def test_get_returns_what_was_set() -> None:
    cache = MemoryCache()
    assert await cache.get("k") is None
    await cache.set("k", response("a"))
    assert await cache.get("k") == response("a")
    await cache.set("k", response("b"))
    assert await cache.get("k") == response("b")
    assert len(cache) == 1


@pytest.mark.anyio
async def test_least_recently_used_entry_is_evicted() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", response("a"))
    await cache.set("b", response("b"))
    assert await cache.get("a") is not None  # "a" is now the most recent
    await cache.set("c", response("c"))
    assert "b" not in cache
    assert await cache.get("a") == response("a")
    assert await cache.get("c") == response("c")
    assert len(cache) == 2


@pytest.mark.anyio
async def test_size_stays_bounded() -> None:
    cache = MemoryCache(max_entries=3)
    for i in range(50):
        await cache.set(str(i), response(str(i)))
    assert len(cache) == 3
    assert [k for k in map(str, range(50)) if k in cache] == ["47", "48", "49"]


@pytest.mark.anyio
async def test_default_ttl_expires_entries() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl=60, clock=clock)
    await cache.set("k", response("a"))
    clock.now += 59.9
    assert await cache.get("k") is not None
    clock.now += 0.1
    assert await cache.get("k") is None
    assert "k" not in cache  # expired entries are dropped, not kept around


@pytest.mark.anyio
async def test_ttl_per_entry_overrides_the_default() -> None:
    clock = FakeClock()
    cache = MemoryCache(ttl=60, clock=clock)
    await cache.set("short", response("a"), ttl=5)
    await cache.set("default", response("b"))
    clock.now += 10
    assert await cache.get("short") is None
    assert await cache.get("default") is not None
    forever = MemoryCache(clock=clock)
    await forever.set("k", response("c"))
    clock.now += 1e9
    assert await forever.get("k") is not None


@pytest.mark.parametrize(("max_entries", "ttl"), [(0, None), (10, 0), (10, -1)])
def test_invalid_bounds_are_refused(max_entries: int, ttl: float | None) -> None:
    with pytest.raises(ValueError, match=r"max_entries|ttl"):
        MemoryCache(max_entries=max_entries, ttl=ttl)


def test_cached_response_merges_adjacent_text_of_a_choice() -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=4)
    stored = CachedResponse.from_events(
        [
            ResponseStarted(id="r", model="m"),
            ReasoningDelta("th"),
            ReasoningDelta("ink"),
            ContentDelta("Hel"),
            ContentDelta("lo"),
            ContentDelta("x", choice=1),
            ContentDelta("!"),
            ToolCallDelta(0, id="c", name="f", arguments='{"a"'),
            ToolCallDelta(0, arguments=": 1}"),
            Finished("stop"),
            UsageReported(usage),
        ]
    )
    assert stored.events == (
        ResponseStarted(id="r", model="m"),
        ReasoningDelta("think"),
        ContentDelta("Hello"),
        ContentDelta("x", choice=1),
        ContentDelta("!"),
        ToolCallDelta(0, id="c", name="f", arguments='{"a"'),
        ToolCallDelta(0, arguments=": 1}"),
        Finished("stop"),
        UsageReported(usage),
    )
    assert stored.usage == usage
    assert response("a").usage is None
