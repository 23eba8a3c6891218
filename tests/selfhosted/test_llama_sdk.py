"""The SDK's self-hosted path against a real engine: ``AsyncQwen(upstream="openai-compatible")``
in front of llama.cpp's ``llama-server`` (SmolLM2-135M-Instruct with Qwen3's chat template; see
tests/support/llama_server.py), over real HTTP.

The model is tiny and runs at temperature 0, so what it says is fixed but not clever: where a
test needs the model to produce something particular (a ``<think>`` block, a tool call), the
server's own constraint makes it (a GBNF ``grammar``; the answer prefilled with the tool-call
tag), and the test checks what the SDK makes of what the engine sent. The model is called
``qwen3-0.6b`` on our side (a hybrid-thinking Qwen3, as such a server usually serves), which is
what decides how the SDK sends the thinking switch; llama.cpp ignores the name."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_server import free_port
from llama_server import THINK_GRAMMAR, WEATHER_TOOL, LlamaServer, city_tool, start, stop

from qwenkit import (
    APIConnectionError,
    APITimeoutError,
    AsyncQwen,
    BadRequestError,
    RetryPolicy,
    Timeout,
)
from qwenkit.storage import recent_records
from qwenkit.types import ContentDelta, Finished, ReasoningDelta, ToolCallDelta, UsageReported

pytestmark = [pytest.mark.llama, pytest.mark.anyio]

MODEL = "qwen3-0.6b"
CAPITAL = "What is the capital of France?"
OTHER_TOOL = city_tool("get_time", "The local time in a city.")
FAST = RetryPolicy(max_attempts=1)


@asynccontextmanager
async def qwen(base_url: str, **options: Any) -> AsyncIterator[AsyncQwen]:
    options.setdefault("retry", FAST)
    async with AsyncQwen(
        upstream="openai-compatible", base_url=base_url, default_model=MODEL, **options
    ) as client:
        yield client


# -- answers --------------------------------------------------------------------------------------


async def test_a_chat_is_answered_with_the_servers_usage_and_id(llama: LlamaServer) -> None:
    async with qwen(llama.base_url) as client:
        result = await client.chat(CAPITAL, max_tokens=32, temperature=0)
    assert "Paris" in result.content
    assert result.finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.request_id  # llama.cpp sends no x-request-id: the body's id
    assert result.cost is None  # a self-hosted model is not priced
    assert result.reasoning is None


async def test_a_stream_carries_the_same_answer_as_the_whole_response(llama: LlamaServer) -> None:
    async with qwen(llama.base_url) as client:
        whole = await client.chat(CAPITAL, max_tokens=32, temperature=0)
        events = []
        async with client.stream(CAPITAL, max_tokens=32, temperature=0) as stream:
            async for event in stream:
                events.append(event)
    pieces = [event.text for event in events if isinstance(event, ContentDelta)]
    assert len(pieces) > 1
    assert "".join(pieces) == whole.content
    assert [e.reason for e in events if isinstance(e, Finished)] == ["stop"]
    [usage] = [event.usage for event in events if isinstance(event, UsageReported)]
    assert whole.usage is not None
    assert usage.completion_tokens == whole.usage.completion_tokens


async def test_max_tokens_cuts_the_answer_with_finish_reason_length(llama: LlamaServer) -> None:
    async with qwen(llama.base_url) as client:
        result = await client.chat("Tell me a long story about a dragon.", max_tokens=5)
        async with client.stream("Tell me a long story.", max_tokens=5) as stream:
            streamed = await stream.get_result()
    assert result.finish_reason == "length"
    assert result.usage is not None
    assert result.usage.completion_tokens == 5
    assert streamed.finish_reason == "length"
    assert streamed.usage is not None
    assert streamed.usage.completion_tokens == 5


async def test_the_usage_record_has_the_servers_counts_and_no_price(
    llama: LlamaServer, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    async with qwen(llama.base_url, store=store, tags={"endpoint": "selfhosted"}) as client:
        result = await client.chat(CAPITAL, max_tokens=16, temperature=0)
    [record] = recent_records(store, limit=10)
    assert result.usage is not None
    assert (record.prompt_tokens, record.completion_tokens) == (
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
    )
    assert record.status == "ok"
    assert record.endpoint == "selfhosted"
    assert not record.cost


async def test_json_mode_with_a_schema_is_held_to_it_by_the_server(llama: LlamaServer) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    async with qwen(llama.base_url) as client:
        result = await client.chat(
            "Name a city and its country, as JSON.",
            max_tokens=64,
            temperature=0,
            response_format=response_format,
        )
        person = await client.json(
            "Give the name and age of a person as JSON.", max_tokens=64, temperature=0
        )
    place = json.loads(result.content)
    assert set(place) == {"city", "country"}
    assert all(isinstance(v, str) and v for v in place.values())
    assert isinstance(person, dict)  # json_object: the server's grammar makes it an object
    assert isinstance(person.get("name"), str)


# -- tool calls -----------------------------------------------------------------------------------


def prefilled(question: str) -> list[dict[str, Any]]:
    """The question, and the answer begun with Qwen's tool-call tag (llama.cpp continues a last
    assistant message): the tiny model would otherwise talk instead of calling."""
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "<tool_call>\n"},
    ]


async def test_a_call_forced_by_name_comes_back_as_tool_calls(llama: LlamaServer) -> None:
    forced = {"type": "function", "function": {"name": "get_weather"}}
    async with qwen(llama.base_url) as client:
        result = await client.chat(
            prefilled("What is the weather in Paris?"),
            tools=[OTHER_TOOL, WEATHER_TOOL],
            tool_choice=forced,
            max_tokens=40,
            temperature=0,
        )
        events = []
        async with client.stream(
            prefilled("What is the weather in Paris?"),
            tools=[OTHER_TOOL, WEATHER_TOOL],
            tool_choice=forced,
            max_tokens=40,
            temperature=0,
        ) as stream:
            async for event in stream:
                events.append(event)
            streamed = await stream.get_result()
    assert result.tool_calls
    first = result.tool_calls[0]
    assert first.name == "get_weather"  # the other tool was not on offer
    assert json.loads(first.arguments) == {"city": "Paris"}
    assert first.id
    assert result.content == ""
    fragments = [event for event in events if isinstance(event, ToolCallDelta)]
    assert len(fragments) > 2  # the arguments arrive in pieces
    assert [(c.name, json.loads(c.arguments)) for c in streamed.tool_calls] == [
        (c.name, json.loads(c.arguments)) for c in result.tool_calls
    ]


# -- thinking -------------------------------------------------------------------------------------


async def test_the_thinking_switch_reaches_the_servers_template(llama: LlamaServer) -> None:
    """Qwen3's template writes an empty ``<think>\\n\\n</think>\\n\\n`` into the prompt when
    ``enable_thinking`` is false: the prompt the server counted grows by exactly those tokens,
    so the switch arrived where the template reads it (``chat_template_kwargs``)."""
    async with qwen(llama.base_url) as client:
        off = await client.chat(CAPITAL, max_tokens=4, thinking=False)
        on = await client.chat(CAPITAL, max_tokens=4, thinking=True)
    assert off.usage is not None
    assert on.usage is not None
    empty_block = llama.tokens("<think>\n\n</think>\n\n")
    assert empty_block > 0
    assert off.usage.prompt_tokens - on.usage.prompt_tokens == empty_block


@pytest.mark.parametrize("reasoning_format", ["deepseek", "none"])
async def test_reasoning_never_lands_in_the_content(
    llama: LlamaServer, reasoning_format: str
) -> None:
    """The same grammar-made answer ``<think>\\n...\\n</think>\\n\\nAnswer.`` parsed by the server
    (``deepseek``: ``reasoning_content``) or sent inline (``none``, as servers without a
    reasoning parser do): either way the reasoning is ``result.reasoning`` and not content."""
    params: dict[str, Any] = {"grammar": THINK_GRAMMAR, "max_tokens": 90, "temperature": 0}
    if reasoning_format == "none":
        params["reasoning_format"] = "none"
    inline = {
        **params,
        "reasoning_format": "none",
        "messages": [{"role": "user", "content": CAPITAL}],
    }
    raw = httpx.post(f"{llama.base_url}/chat/completions", json=inline, timeout=60).json()
    raw = raw["choices"][0]["message"]["content"]
    reasoning, _, answer = raw.removeprefix("<think>\n").partition("\n</think>\n\n")
    async with qwen(llama.base_url) as client:
        result = await client.chat(CAPITAL, thinking=True, **params)
        events = []
        async with client.stream(CAPITAL, thinking=True, **params) as stream:
            async for event in stream:
                events.append(event)
    assert "think>" not in result.content
    assert result.content == answer
    assert result.reasoning is not None
    assert result.reasoning.strip() == reasoning.strip()
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    thought = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert content == answer
    assert thought.strip() == reasoning.strip()


# -- the connection -------------------------------------------------------------------------------


async def test_leaving_a_stream_early_stops_the_generation(llama: LlamaServer) -> None:
    async with (
        qwen(llama.base_url) as client,
        client.stream("Write a very long essay.", max_tokens=2000) as stream,
    ):
        seen = 0
        async for event in stream:
            seen += isinstance(event, ContentDelta)
            if seen == 3:
                break
        assert llama.busy_slots() == 1
    # 2,000 tokens take the server over 20 s; closing the stream closes the connection and the
    # server drops the task.
    assert llama.wait_idle(timeout=5) < 2.0


async def test_a_server_that_is_down_fails_after_the_retries(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    retry = RetryPolicy(max_attempts=3, initial_delay=0.05, max_delay=0.05)
    async with qwen(down, retry=retry) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.chat(CAPITAL, max_tokens=8)
    assert len(caught.value.attempts) == 3


async def test_a_server_still_starting_is_retried_until_it_answers(tmp_path: Path) -> None:
    """Refused connections, then 503 "Loading model" while the weights load: both retried."""
    port = free_port()
    server = start(tmp_path / "llama-server.log", port=port)
    try:
        retry = RetryPolicy(max_attempts=40, initial_delay=0.05, max_delay=0.25, deadline=60)
        async with qwen(f"http://127.0.0.1:{port}/v1", retry=retry) as client:
            result = await client.chat(CAPITAL, max_tokens=8, temperature=0)
        assert result.content
        assert result.attempts  # it was not ready at the first attempt
        assert {a.status for a in result.attempts} <= {None, 503}
    finally:
        stop(server)


async def test_a_slow_answer_times_out_per_attempt(llama: LlamaServer) -> None:
    """A long prompt keeps llama.cpp busy before its first byte (prefill at ~160 tokens/s on
    one thread): the read timeout ends each attempt, and the error lists both."""
    retry = RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0)
    options: dict[str, Any] = {"retry": retry, "timeout": Timeout(read=0.3)}
    async with qwen(llama.base_url, check_context=False, **options) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as caught:
            await client.chat("hello there " * 250, max_tokens=8)
        took = time.monotonic() - started
    assert [attempt.number for attempt in caught.value.attempts] == [1, 2]
    assert took < 3  # two attempts of 0.3 s, not the seconds the prompt takes
    # llama.cpp goes on with a prompt whose client has gone (it only notices between tokens):
    # wait, so the next test finds the server free.
    llama.wait_idle(timeout=60)


async def test_the_servers_own_errors_come_through_with_its_message(llama: LlamaServer) -> None:
    async with qwen(llama.base_url, check_context=False) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.chat("hello " * 5000, max_tokens=8)
    error = caught.value
    assert error.status == 400
    assert "exceeds the available context size" in error.message
    assert error.code == "exceed_context_size_error"
    assert error.request_id is None  # llama.cpp names no request
