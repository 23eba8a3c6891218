"""The persistent response cache, one contract on SQLite, PostgreSQL and Redis: a streamed answer
stored through ``CachePolicy`` replays as the same stream from another instance (another
process), entries expire by the clock, the least recently used are evicted at the bound, stores
of one key race safely, an entry this version cannot read is a miss; and a store that is down is a
clear ``StorageError`` (at open, or at call time, where ``CachePolicy`` turns it into a miss)."""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from sqlalchemy import text, update

from qwenkit import StorageError
from qwenkit._core.cache import CachedResponse, CachePolicy
from qwenkit._core.pipeline import Call, EventStream, Pipeline, Policy
from qwenkit._settings import ConfigError
from qwenkit.storage import parse_store_url
from qwenkit.storage._cache import open_cache
from qwenkit.storage._schema import cache_entries
from qwenkit.storage._sql import sync_engine
from qwenkit.streaming import assemble
from qwenkit.types import (
    ChatRequest,
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    ToolCallDelta,
    Usage,
    UsageReported,
)

USAGE = Usage.model_validate(
    {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21, "reasoning_tokens": 4}
    | {"image_tokens": 3}
)
STARTED = ResponseStarted(id="chatcmpl-7", model="qwen-plus", created=1765000000, request_id="u1")
ANSWER: tuple[Event, ...] = (
    STARTED,
    ReasoningDelta("The user "),
    ReasoningDelta("wants weather."),
    ContentDelta("Let me "),
    ContentDelta("check."),
    ToolCallDelta(0, id="call_1", name="get_weather", arguments='{"city": '),
    ToolCallDelta(0, arguments='"Paris"}'),
    Finished("tool_calls"),
    UsageReported(USAGE),
)


class Upstream:
    """A fake send step that counts its calls."""

    def __init__(self, events: Sequence[Event] = ANSWER) -> None:
        self.events = tuple(events)
        self.calls = 0

    async def __call__(self, call: Call) -> EventStream:
        self.calls += 1
        for event in self.events:
            yield event


class FakeClock:
    def __init__(self, now: float = 1_765_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_call(**request: Any) -> Call:
    req = ChatRequest.model_validate(
        {"model": "qwen-plus", "messages": [{"role": "user", "content": "weather?"}], **request}
    )
    return Call(request=req)


async def run(policies: Sequence[Policy], send: Upstream, call: Call) -> list[Event]:
    events = Pipeline(policies, send).run(call)
    assert isinstance(events, AsyncGenerator)
    async with aclosing(events) as stream:
        return [event async for event in stream]


def key(n: int) -> str:
    return hashlib.sha256(f"request {n}".encode()).hexdigest()


def answer(n: int) -> CachedResponse:
    return CachedResponse((ContentDelta(f"answer {n}"), Finished("stop")))


def write_raw(url: str, entry: str, data: bytes) -> None:
    """Overwrite the stored bytes of ``entry`` behind the cache's back."""
    parsed = parse_store_url(url, part="cache")
    if parsed.backend == "redis":
        client = redis.Redis.from_url(parsed.redis())
        try:
            client.set(f"{parsed.prefix}cache:{entry}", b"\0" * 8 + data)
        finally:
            client.close()
        return
    engine = sync_engine(parsed)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(cache_entries).where(cache_entries.c.key == entry).values(value=data)
            )
    finally:
        engine.dispose()


# -- the contract, on every backend --------------------------------------------------------------


@pytest.mark.anyio
async def test_a_streamed_answer_replays_as_the_same_stream_elsewhere(any_url: str) -> None:
    send = Upstream()
    writer = open_cache(any_url)
    first = make_call(temperature=0)
    try:
        assert await run([CachePolicy(writer)], send, first) == list(ANSWER)
    finally:
        await writer.aclose()

    reader = open_cache(any_url, migrate=False)  # another process, the same store
    second = make_call(temperature=0, stream=True)  # how it travels is not part of the key
    second.request_id = "local-2"
    try:
        replay = await run([CachePolicy(reader)], send, second)
    finally:
        await reader.aclose()
    assert send.calls == 1
    assert second.cache_hit is True
    stored = CachedResponse.from_events(ANSWER).events
    assert replay == [replace(STARTED, request_id="local-2"), *stored[1:]]
    original, replayed = assemble(list(ANSWER)), assemble(replay)
    assert replayed.choices == original.choices
    assert replayed.usage is not None
    assert replayed.usage.to_wire() == USAGE.to_wire()  # extras (image_tokens) survive


@pytest.mark.anyio
async def test_entries_expire_by_the_clock(any_url: str) -> None:
    clock = FakeClock()
    cache = open_cache(any_url, ttl=60, clock=clock)
    try:
        await cache.set(key(1), answer(1))  # the cache's default lifetime
        await cache.set(key(2), answer(2), ttl=5)  # its own
        clock.now += 4
        assert await cache.get(key(1)) == answer(1)
        assert await cache.get(key(2)) == answer(2)
        clock.now += 1
        assert await cache.get(key(2)) is None
        assert await cache.get(key(1)) == answer(1)
        clock.now += 55
        assert await cache.get(key(1)) is None
        assert await cache.size() == 0  # a lookup of an expired entry removes it
        await cache.set(key(3), answer(3), ttl=0)  # no lifetime: nothing stored
        assert await cache.get(key(3)) is None
    finally:
        await cache.aclose()


@pytest.mark.anyio
async def test_the_least_recently_used_entries_go_at_the_bound(any_url: str) -> None:
    clock = FakeClock()
    cache = open_cache(any_url, max_entries=3, clock=clock)
    try:
        for n in range(3):
            await cache.set(key(n), answer(n))
            clock.now += 10
        assert await cache.get(key(0)) == answer(0)  # now the most recently used
        clock.now += 10
        for n in (3, 4):
            await cache.set(key(n), answer(n))
            assert await cache.size() == 3
            clock.now += 10
        kept = {n for n in range(5) if await cache.get(key(n)) is not None}
        assert kept == {0, 3, 4}
        for n in range(5, 25):
            await cache.set(key(n), answer(n))
            clock.now += 1
            assert await cache.size() <= 3
    finally:
        await cache.aclose()


@pytest.mark.anyio
async def test_concurrent_stores_of_one_key_leave_one_of_them(any_url: str) -> None:
    caches = [open_cache(any_url), open_cache(any_url, migrate=False)]
    candidates = [answer(n) for n in range(12)]
    try:
        async with anyio.create_task_group() as group:
            for n, value in enumerate(candidates):
                group.start_soon(caches[n % 2].set, key(0), value)
        assert await caches[0].get(key(0)) in candidates
        assert await caches[1].size() == 1
    finally:
        for cache in caches:
            await cache.aclose()


@pytest.mark.anyio
async def test_an_entry_this_version_cannot_read_is_a_miss_and_removed(any_url: str) -> None:
    cache = open_cache(any_url)
    try:
        await cache.set(key(0), answer(0))
        await cache.set(key(1), answer(1))
        write_raw(any_url, key(0), b'{"v":99,"events":[]}')  # a newer qwenkit wrote it
        assert await cache.get(key(0)) is None
        assert await cache.size() == 1
        assert await cache.get(key(1)) == answer(1)
        await cache.set(key(0), answer(0))
        assert await cache.get(key(0)) == answer(0)
    finally:
        await cache.aclose()


@pytest.mark.anyio
async def test_clear_removes_every_entry(any_url: str) -> None:
    cache = open_cache(any_url)
    try:
        for n in range(4):
            await cache.set(key(n), answer(n))
        assert await cache.size() == 4
        await cache.clear()
        assert await cache.size() == 0
        assert await cache.get(key(1)) is None
    finally:
        await cache.aclose()


def test_bad_bounds_and_urls_are_refused(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        open_cache(sqlite_url, max_entries=0)
    with pytest.raises(ValueError, match="ttl"):
        open_cache(sqlite_url, ttl=0)
    with pytest.raises(ConfigError, match="not one of"):
        open_cache("memcached://127.0.0.1:11211")


# -- a store that is down ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["postgresql://root:hunter2@127.0.0.1:9/qwenkit", "redis://:hunter2@127.0.0.1:9/0"],
    ids=["postgresql", "redis"],
)
def test_an_unreachable_store_is_an_error_at_open_naming_it(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        open_cache(url)
    assert time.monotonic() - started < 8
    assert "127.0.0.1:9" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert caught.value.url is not None
    assert "***" in caught.value.url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A Redis server of this test only, and a function that stops it (as a crash would)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
    server = subprocess.Popen(
        ["redis-server", *(part for item in options.items() for part in ("--" + item[0], item[1]))],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)

    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0", stop
    finally:
        stop()


@pytest.mark.anyio
async def test_a_redis_that_goes_down_is_a_miss_not_a_failed_call(
    private_redis: tuple[str, Callable[[], None]], caplog: pytest.LogCaptureFixture
) -> None:
    url, stop = private_redis
    cache = open_cache(url)
    send = Upstream()
    try:
        await run([CachePolicy(cache)], send, make_call(temperature=0))
        assert await cache.get(key(0)) is None
        stop()
        started = time.monotonic()
        with pytest.raises(StorageError, match=r"response cache at redis://127\.0\.0\.1"):
            await cache.get(key(0))
        assert time.monotonic() - started < 5
        with caplog.at_level(logging.WARNING, logger="qwenkit._core.cache"):
            events = await run([CachePolicy(cache)], send, make_call(temperature=0))
    finally:
        await cache.aclose()
    assert events == list(ANSWER)  # answered by the upstream, not failed
    assert send.calls == 2
    warned = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], StorageError)]
    assert len(warned) == 2  # the lookup and the store


@pytest.mark.anyio
async def test_a_sql_store_without_its_schema_is_a_clear_error(sqlite_url: str) -> None:
    cache = open_cache(sqlite_url, migrate=False)  # nobody ran `qwenkit db upgrade`
    try:
        with pytest.raises(StorageError, match="qk_cache") as caught:
            await cache.get(key(0))
        assert caught.value.url == sqlite_url
    finally:
        await cache.aclose()
    engine = sync_engine(parse_store_url(sqlite_url, part="cache"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar_one() == 0
    finally:
        engine.dispose()
