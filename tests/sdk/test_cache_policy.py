"""CachePolicy: when it applies, hits replay, misses store only complete successful streams."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import pytest

from qwenkit._core.cache import CachedResponse, CachePolicy, MemoryCache, cache_key
from qwenkit._core.pipeline import Call, EventStream, Pipeline, Policy
from qwenkit._exceptions import StreamInterruptedError
from qwenkit.catalog import get_model
from qwenkit.streaming import assemble
from qwenkit.types import (
    ChatRequest,
    ContentDelta,
    Event,
    Finished,
    ResponseStarted,
    StreamError,
    Usage,
    UsageReported,
)
from qwenkit.wire.errors import make_error

USAGE = Usage(prompt_tokens=10, completion_tokens=2, total_tokens=12)
ANSWER: tuple[Event, ...] = (
    ResponseStarted(id="chatcmpl-1", model="qwen-plus", request_id="upstream-req"),
    ContentDelta("Hel"),
    ContentDelta("lo"),
    Finished("stop"),
    UsageReported(USAGE),
)


class Upstream:
    """A fake send step that counts its calls; ``error`` is raised after the events."""

    def __init__(self, *events: Event, error: BaseException | None = None) -> None:
        self.events = events or ANSWER
        self.error = error
        self.calls = 0

    async def __call__(self, call: Call) -> EventStream:
        self.calls += 1
        for event in self.events:
            yield event
        if self.error is not None:
            raise self.error


def make_call(**request: Any) -> Call:
    req = ChatRequest.model_validate(
        {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], **request}
    )
    return Call(request=req)


async def run(
    policies: Sequence[Policy], send: Upstream, call: Call, *, stop_after: int | None = None
) -> list[Event]:
    seen: list[Event] = []
    events = Pipeline(policies, send).run(call)
    assert isinstance(events, AsyncGenerator)
    async with aclosing(events) as stream:
        async for event in stream:
            seen.append(event)
            if stop_after is not None and len(seen) >= stop_after:
                break
    return seen


@pytest.mark.anyio
async def test_temperature_zero_hits_the_second_time() -> None:
    cache, send = MemoryCache(), Upstream()
    first = make_call(temperature=0)
    assert await run([CachePolicy(cache)], send, first) == list(ANSWER)
    assert first.cache_hit is False
    assert send.calls == 1

    second = make_call(temperature=0)
    second.request_id = "local-2"
    replay = await run([CachePolicy(cache)], send, second)
    assert send.calls == 1
    assert second.cache_hit is True
    assert any(note.startswith("cache: hit") for note in second.notes)
    assert replay[0] == ResponseStarted(id="chatcmpl-1", model="qwen-plus", request_id="local-2")
    answer = assemble(replay)
    assert answer.choices[0].message.content == "Hello"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage == USAGE


@pytest.mark.anyio
@pytest.mark.parametrize("temperature", [None, 0.7])
async def test_sampled_requests_are_not_cached(temperature: float | None) -> None:
    cache, send = MemoryCache(), Upstream()
    for _ in range(2):
        call = make_call(temperature=temperature)
        await run([CachePolicy(cache)], send, call)
        assert call.cache_hit is False
    assert send.calls == 2
    assert len(cache) == 0


@pytest.mark.anyio
async def test_opt_in_caches_any_temperature() -> None:
    cache, send = MemoryCache(), Upstream()
    for _ in range(2):
        await run([CachePolicy(cache, opt_in=True)], send, make_call(temperature=0.9))
    assert send.calls == 1


@pytest.mark.anyio
async def test_per_call_opt_in_and_opt_out() -> None:
    cache, send = MemoryCache(), Upstream()
    for _ in range(2):
        call = make_call(temperature=0.9)
        call.state["cache"] = True
        await run([CachePolicy(cache)], send, call)
    assert send.calls == 1
    opted_out = make_call(temperature=0.9)
    opted_out.state["cache"] = False
    await run([CachePolicy(cache, opt_in=True)], send, opted_out)
    assert send.calls == 2
    assert opted_out.cache_hit is False


@pytest.mark.anyio
async def test_temperature_set_by_an_earlier_policy_counts() -> None:
    async def route(call: Call, call_next: Any) -> EventStream:
        call.request = call.request.model_copy(update={"temperature": 0.0})
        async for event in call_next(call):
            yield event

    cache, send = MemoryCache(), Upstream()
    for _ in range(2):
        await run([route, CachePolicy(cache)], send, make_call())
    assert send.calls == 1


@pytest.mark.anyio
async def test_different_requests_do_not_share_an_entry() -> None:
    cache, send = MemoryCache(), Upstream()
    await run([CachePolicy(cache)], send, make_call(temperature=0))
    await run([CachePolicy(cache)], send, make_call(temperature=0, seed=1))
    await run([CachePolicy(cache)], send, make_call(temperature=0, custom_extra="x"))
    assert send.calls == 3


@pytest.mark.anyio
async def test_callers_share_entries_whatever_their_key_or_endpoint() -> None:
    cache, send = MemoryCache(), Upstream()
    alice, bob = make_call(temperature=0), make_call(temperature=0)
    alice.tags.update(key_id="alice", endpoint="compat")
    bob.tags.update(key_id="bob", endpoint="native")
    await run([CachePolicy(cache)], send, alice)
    await run([CachePolicy(cache)], send, bob)
    assert (send.calls, bob.cache_hit) == (1, True)
    assert alice.state["cache_key"] == bob.state["cache_key"]


@pytest.mark.anyio
async def test_effective_thinking_of_the_profile_is_in_the_key() -> None:
    cache, send = MemoryCache(), Upstream()
    implicit = make_call(temperature=0)
    implicit.profile = get_model("qwen-plus")  # thinks only when asked
    await run([CachePolicy(cache)], send, implicit)
    explicit = make_call(temperature=0, enable_thinking=False)
    await run([CachePolicy(cache)], send, explicit)
    assert explicit.cache_hit is True
    assert implicit.state["cache_key"] == cache_key(explicit.request, thinking=False)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "upstream",
    [
        Upstream(ContentDelta("par"), error=StreamInterruptedError("connection reset")),
        Upstream(ContentDelta("a"), StreamError(make_error("InternalError", "boom"))),
        Upstream(
            ContentDelta("a"), Finished("stop"), StreamError(make_error("InternalError", "x"))
        ),
        Upstream(ContentDelta("no finish"), UsageReported(USAGE)),
    ],
    ids=["exception", "stream-error", "error-after-finish", "no-finished"],
)
async def test_failed_streams_are_not_stored(upstream: Upstream) -> None:
    cache = MemoryCache()
    try:
        await run([CachePolicy(cache)], upstream, make_call(temperature=0))
    except StreamInterruptedError:
        assert upstream.error is not None
    assert len(cache) == 0


@pytest.mark.anyio
async def test_a_consumer_that_stops_early_stores_nothing() -> None:
    cache, send = MemoryCache(), Upstream()
    await run([CachePolicy(cache)], send, make_call(temperature=0), stop_after=4)  # before usage
    assert len(cache) == 0
    await run([CachePolicy(cache)], send, make_call(temperature=0))
    assert len(cache) == 1


class BrokenCache:
    async def get(self, key: str) -> CachedResponse | None:
        raise ConnectionError("redis down")

    async def set(self, key: str, value: CachedResponse, ttl: float | None = None) -> None:
        raise ConnectionError("redis down")


@pytest.mark.anyio
async def test_a_failing_cache_never_fails_the_call(caplog: pytest.LogCaptureFixture) -> None:
    send = Upstream()
    with caplog.at_level(logging.WARNING, logger="qwenkit._core.cache"):
        events = await run([CachePolicy(BrokenCache())], send, make_call(temperature=0))
    assert events == list(ANSWER)
    assert len([r for r in caplog.records if r.exc_info]) == 2  # lookup and store


@pytest.mark.anyio
async def test_ttl_is_passed_to_the_cache() -> None:
    stored: list[float | None] = []

    class Recording(MemoryCache):
        async def set(self, key: str, value: CachedResponse, ttl: float | None = None) -> None:
            stored.append(ttl)
            await super().set(key, value, ttl)

    await run([CachePolicy(Recording(), ttl=30)], Upstream(), make_call(temperature=0))
    assert stored == [30]
