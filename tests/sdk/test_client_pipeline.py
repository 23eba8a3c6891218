"""How ``AsyncQwen`` composes the pipeline: usage records, the response cache, checks that stop a
call before the network, and the reasoning side channel on replayed answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._core.cache import MemoryCache
from qwenkit._core.usage import ListSink
from qwenkit._exceptions import ValidationError
from qwenkit.client._async import AsyncQwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state

KEY = "sk-test-pipeline"


@pytest.fixture
def app() -> Starlette:
    return create_app(EmulatorConfig())


@asynccontextmanager
async def connect(app: Starlette, **options: Any) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(api_key=KEY, base_url="http://emulator", http_client=http, **options) as client,
    ):
        yield client


@pytest.mark.anyio
async def test_one_usage_record_per_call_with_the_result_figures(app: Starlette) -> None:
    sink = ListSink()
    async with connect(app, usage_sinks=[sink]) as client:
        result = await client.chat("hello", task="classify")
    (record,) = sink.records
    assert (record.status, record.model, record.task) == ("ok", "qwen-flash", "classify")
    assert record.request_id == result.request_id
    assert result.usage is not None
    assert result.cost is not None
    assert record.prompt_tokens == result.usage.prompt_tokens
    assert record.cost == result.cost.total
    assert record.latency_s == result.latency


@pytest.mark.anyio
async def test_a_request_that_cannot_be_valid_never_reaches_the_network(app: Starlette) -> None:
    sink = ListSink()
    async with connect(app, usage_sinks=[sink]) as client:
        with pytest.raises(ValidationError, match="max_tokens"):
            await client.chat("hello", model="qwen-plus", max_tokens=10**6)
    assert app_state(app).log.last() == []
    (record,) = sink.records
    assert record.status == "error"


@pytest.mark.anyio
async def test_a_cache_hit_is_free_timed_and_keeps_reasoning_aside(app: Starlette) -> None:
    deltas: list[str] = []
    options = {"cache": MemoryCache(), "on_reasoning": deltas.append}
    async with connect(app, **options) as client:
        first = await client.chat("hello", temperature=0, thinking=True)
        spoken = "".join(deltas)
        second = await client.chat("hello", temperature=0, thinking=True)
    assert len(app_state(app).log.last()) == 1
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.content == first.content
    assert second.reasoning == first.reasoning == spoken
    assert "".join(deltas) == spoken * 2  # the side channel hears the replay too
    assert second.cost is not None
    assert second.cost.total == 0
    assert second.time_to_first_answer is not None
