"""``AsyncQwen`` against the emulator in process, in both wire modes: calls, results, routing,
streams, thinking and the OpenAI-compatible flavour."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._exceptions import UsageError, ValidationError
from qwenkit._settings import ConfigError, Mode, Settings
from qwenkit._timeouts import Timeout
from qwenkit.catalog import cost
from qwenkit.client._async import AsyncQwen
from qwenkit.client._call import make_call
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.storage import recent_records
from qwenkit.types import (
    ContentDelta,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    SystemMessage,
    ToolCallDelta,
    Usage,
    UsageReported,
    UserMessage,
)

KEY = "sk-test-client"
QUESTION = "Why is the sky blue?"


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


@pytest.fixture
def app() -> Starlette:
    return create_app(EmulatorConfig())


@asynccontextmanager
async def connect(
    app: Starlette, mode: Mode = "compat", **options: Any
) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key=KEY, base_url="http://emulator", mode=mode, http_client=http, **options
        ) as client,
    ):
        yield client


async def logged(app: Starlette) -> list[dict[str, Any]]:
    """The emulator's request log (``GET /_emulator/requests``)."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as control:
        response = await control.get("/_emulator/requests")
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


def parameters(entry: dict[str, Any]) -> dict[str, Any]:
    """The request parameters of a logged body, whichever the wire (native: ``parameters``)."""
    body = entry["body"]
    return {**{k: v for k, v in body.items() if k != "parameters"}, **body.get("parameters", {})}


@pytest.mark.anyio
async def test_messages_as_a_string_dicts_or_canonical_types(app: Starlette, mode: Mode) -> None:
    async with connect(app, mode) as client:
        plain = await client.chat(QUESTION)
        dicts = await client.chat([{"role": "user", "content": QUESTION}])
        typed = await client.chat(
            [SystemMessage(content="Be brief."), UserMessage(content=QUESTION)]
        )
    assert plain.content == dicts.content != ""
    assert typed.content
    first, second, third = await logged(app)
    assert first["body"] == second["body"]
    messages = third["body"]["messages" if mode == "compat" else "input"]
    if mode == "native":
        messages = messages["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]


@pytest.mark.anyio
async def test_the_result_matches_what_the_emulator_did(app: Starlette, mode: Mode) -> None:
    async with connect(app, mode) as client:
        result = await client.chat(QUESTION)
    (entry,) = await logged(app)
    usage = Usage.model_validate(entry["usage"])
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert result.request_id == entry["request_id"]
    assert result.model == "qwen-plus"
    assert result.finish_reason == "stop"
    assert result.cost == cost(result.usage, "qwen-plus", "ap-southeast-1")
    assert result.cost is not None
    assert result.cost.total > 0
    assert result.latency is not None
    assert result.time_to_first_token is not None
    assert 0 < result.time_to_first_token <= result.latency
    assert str(result) == result.content
    assert (result.attempts, result.cache_hit, result.reasoning) == ((), False, None)
    assert result.content in repr(result)


@pytest.mark.anyio
async def test_a_task_routes_and_explicit_arguments_win(app: Starlette, mode: Mode) -> None:
    async with connect(app, mode) as client:
        await client.chat(QUESTION, task="extract")
        await client.chat(QUESTION, task="extract", model="qwen-plus", temperature=0.7)
    routed, explicit = (parameters(entry) for entry in await logged(app))
    assert (routed["model"], routed["temperature"], routed["max_tokens"]) == ("qwen-flash", 0, 4096)
    assert (explicit["model"], explicit["temperature"]) == ("qwen-plus", 0.7)
    assert explicit["max_tokens"] == 4096  # not given: still the route's


@pytest.mark.anyio
async def test_a_stream_yields_typed_events_and_the_same_result(app: Starlette, mode: Mode) -> None:
    async with connect(app, mode) as client:
        answer = await client.chat(QUESTION)
        async with client.stream(QUESTION) as stream:
            events = [event async for event in stream]
        result = stream.result()
    assert isinstance(events[0], ResponseStarted)
    assert {Finished, UsageReported} <= {type(event) for event in events}
    text = "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert text == result.content == answer.content
    assert result.usage == answer.usage
    assert (await logged(app))[1]["stream"] is True


@pytest.mark.anyio
async def test_text_stream_and_get_result(app: Starlette) -> None:
    async with connect(app) as client:
        async with client.stream(QUESTION) as stream:
            with pytest.raises(UsageError, match="not finished"):
                stream.result()
            text = "".join([chunk async for chunk in stream.text_stream])
        assert text == stream.result().content
        async with client.stream(QUESTION) as untouched:
            assert (await untouched.get_result()).content == text


@pytest.mark.anyio
async def test_thinking_without_stream_streams_upstream_and_hides_reasoning(
    app: Starlette, mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="qwenkit.reasoning")
    deltas: list[str] = []
    async with connect(app, mode, on_reasoning=deltas.append) as client:
        result = await client.chat(QUESTION, thinking=True, thinking_budget=200)
    (entry,) = await logged(app)
    assert entry["stream"] is True  # thinking forces a streaming upstream call
    assert parameters(entry)["enable_thinking"] is True
    assert parameters(entry)["thinking_budget"] == 200
    reasoning = result.reasoning
    assert reasoning
    assert result.content
    assert reasoning not in result.content
    assert reasoning not in str(result)
    assert reasoning not in repr(result)
    assert result.message.reasoning_content is None
    assert "reasoning_content" not in result.message.to_wire()
    assert "".join(deltas) == reasoning
    assert [r.getMessage() for r in caplog.records if reasoning in r.getMessage()]
    assert result.usage is not None
    assert result.usage.reasoning_tokens > 0
    ttfr, ttfa = result.time_to_first_reasoning, result.time_to_first_answer
    assert ttfr is not None
    assert ttfa is not None
    assert ttfr < ttfa


@pytest.mark.anyio
async def test_thinking_stream_sends_reasoning_events_first(app: Starlette, mode: Mode) -> None:
    async with connect(app, mode) as client, client.stream(QUESTION, thinking=True) as stream:
        kinds = [
            type(event)
            async for event in stream
            if isinstance(event, ReasoningDelta | ContentDelta)
        ]
    first_answer = kinds.index(ContentDelta)
    assert kinds[0] is ReasoningDelta
    assert ReasoningDelta not in kinds[first_answer:]
    result = stream.result()
    assert result.reasoning
    assert result.reasoning not in result.content


@pytest.mark.anyio
@pytest.mark.parametrize(("model", "streamed"), [("qwen3.5-plus", False), ("qwen3-32b", True)])
async def test_hybrid_models_that_think_by_default_get_an_explicit_false(
    app: Starlette, mode: Mode, model: str, streamed: bool
) -> None:
    async with connect(app, mode) as client:
        result = await client.chat(QUESTION, model=model, thinking=False)
    (entry,) = await logged(app)
    assert parameters(entry)["enable_thinking"] is False
    assert entry["stream"] is streamed  # qwen3-32b only answers streaming calls
    assert entry["status"] == 200
    assert result.content
    assert result.reasoning is None
    if mode == "native":  # the endpoint comes from the model's profile
        kind = "multimodal" if model == "qwen3.5-plus" else "text"
        assert entry["path"].endswith(f"/{kind}-generation/generation")


@pytest.mark.anyio
async def test_openai_compatible_servers_get_chat_template_kwargs(app: Starlette) -> None:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key=KEY,
            base_url="http://emulator/compatible-mode/v1",
            upstream="openai-compatible",
            http_client=http,
        ) as client,
    ):
        result = await client.chat(QUESTION, model="qwen3-32b", thinking=True, thinking_budget=64)
    (entry,) = await logged(app)
    body = entry["body"]
    assert body["chat_template_kwargs"] == {"enable_thinking": True, "thinking_budget": 64}
    assert "enable_thinking" not in body
    assert "thinking_budget" not in body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert result.content
    assert result.cost is None


@pytest.mark.anyio
async def test_a_self_hosted_call_leaves_an_unpriced_ledger_record(tmp_path: Path) -> None:
    """The ledger's record of a call to an OpenAI-compatible server has no cost (it priced the
    catalog's DashScope price once, though ``result.cost`` was ``None``)."""
    store = f"sqlite:///{tmp_path / 'ledger.db'}"
    app = create_app()
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key=KEY,
            base_url="http://emulator/compatible-mode/v1",
            upstream="openai-compatible",
            http_client=http,
            store=store,
        ) as client,
    ):
        result = await client.chat(QUESTION, model="qwen-plus", max_tokens=16)
    [record] = recent_records(store, limit=10)
    assert result.usage is not None
    assert record.prompt_tokens == result.usage.prompt_tokens > 0
    assert (record.cost, record.currency, record.region) == (None, None, None)


@pytest.mark.anyio
async def test_request_urls_and_headers_per_flavour(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DASHSCOPE_API_KEY", "QWENKIT_API_KEY", "QWENKIT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    call = make_call("hi", model="qwen-plus", task=None, thinking=None, params={})
    settings = Settings(api_key=KEY, base_url="http://x", mode="native", workspace="ws-1")
    async with AsyncQwen(settings=settings) as native:
        request = native.upstream.build_request(call)
    assert str(request.url) == "http://x/api/v1/services/aigc/text-generation/generation"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-dashscope-workspace"] == "ws-1"
    async with AsyncQwen(base_url="http://vllm:8000/v1", upstream="openai-compatible") as vllm:
        request = vllm.upstream.build_request(call)
    assert str(request.url) == "http://vllm:8000/v1/chat/completions"
    assert "authorization" not in request.headers
    with pytest.raises(ConfigError, match="API key"):
        AsyncQwen(base_url="http://x")


def test_bad_arguments_fail_before_any_call() -> None:
    with pytest.raises(UsageError, match="stream"):
        make_call("hi", model=None, task=None, thinking=None, params={"stream": True})
    with pytest.raises(ValidationError) as caught:
        make_call("hi", model=None, task=None, thinking=None, params={"temperature": "hot"})
    assert caught.value.param == "temperature"
    with pytest.raises(UsageError, match="total"):
        Timeout(total=0)
    assert Timeout.coerce(5).read == 5.0
    assert Timeout.coerce(None) == Timeout()
    call = make_call("hi", model=None, task="chat", thinking=False, params={"top_p": None})
    assert call.explicit == {"thinking"}
    assert call.request.model == ""


@pytest.mark.anyio
async def test_tool_calls_come_out_alike_streamed_or_not(mode: Mode) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Hangzhou"}, "id": "call_1"}
    app = create_app(EmulatorConfig(scenarios=[{"tool_calls": [call]}]))
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    async with connect(app, mode) as client:
        answer = await client.chat("Weather in Hangzhou?", tools=[tool])
        async with client.stream("Weather in Hangzhou?", tools=[tool]) as stream:
            deltas = [event async for event in stream if isinstance(event, ToolCallDelta)]
    assert answer.finish_reason == stream.result().finish_reason == "tool_calls"
    assert answer.tool_calls == stream.result().tool_calls
    (tool_call,) = answer.tool_calls
    assert (tool_call.id, tool_call.name) == ("call_1", "get_weather")
    assert json.loads(tool_call.arguments) == {"city": "Hangzhou"}
    assert deltas
    assert deltas[0].name == "get_weather"
