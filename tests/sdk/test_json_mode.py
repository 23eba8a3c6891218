"""``json``/``json_result``/``stream_json`` against the emulator in process: JSON mode set, the
keyword added only when missing, thinking off, defensive parsing, errors carrying the raw text."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from qwenkit._core.usage import ListSink
from qwenkit._exceptions import UsageError, ValidationError
from qwenkit._settings import Mode
from qwenkit.client._async import AsyncQwen
from qwenkit.client._structured import JSON_INSTRUCTION, JSONResult
from qwenkit.client._sync import Qwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state
from qwenkit.structured import JSONParseError, is_more_complete
from qwenkit.types import AnyMessage, SystemMessage, TextPart, UserMessage

KEY = "sk-test-json"
EXAMPLE = 'Reply as JSON like {"name": "", "age": 0}. Alice is 31.'


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


def emulator(**config: Any) -> Starlette:
    return create_app(EmulatorConfig.model_validate(config))


@asynccontextmanager
async def connect(
    app: Starlette, mode: Mode = "compat", sink: ListSink | None = None
) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key=KEY,
            base_url="http://emulator",
            mode=mode,
            http_client=http,
            usage_sinks=[sink] if sink else [],
        ) as client,
    ):
        yield client


def sent(app: Starlette) -> list[dict[str, Any]]:
    """The request bodies the emulator received, parameters flattened (native: ``parameters``)."""
    bodies = []
    for entry in app_state(app).log.last():
        body = dict(entry["body"])
        body.update(body.pop("parameters", {}))
        if "input" in body:
            body["messages"] = body.pop("input")["messages"]
        bodies.append(body)
    return bodies


@pytest.mark.anyio
async def test_a_fenced_answer_is_parsed(mode: Mode) -> None:
    app = emulator(quirks={"json_fence_rate": 1.0})
    async with connect(app, mode) as client:
        answer = await client.json_result(EXAMPLE)
    assert isinstance(answer, JSONResult)
    fenced = answer.result.content
    assert fenced.startswith("```json\n")  # the emulator did fence it
    assert fenced.endswith("\n```")
    assert answer.value == json.loads(fenced[len("```json") : -len("```")])
    assert list(answer.value) == ["name", "age"]
    (body,) = sent(app)
    assert body["response_format"] == {"type": "json_object"}
    assert app_state(app).log.last()[0]["notes"] == ["json_fenced"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "text",
    [
        'Here you go: {"temp": 21} hope it helps',
        '\ufeff{"temp": 21}',
        'Sure!\n```\n{"temp": 21}\n```\nAnything else?',
    ],
)
async def test_prose_fences_and_a_bom_around_the_object_are_skipped(text: str) -> None:
    app = emulator(scenarios=[{"match": {"last_user": "weather"}, "text": text}])
    async with connect(app) as client:
        assert await client.json("The weather in JSON, please") == {"temp": 21}


@pytest.mark.anyio
async def test_nothing_parseable_raises_with_the_raw_text() -> None:
    raw = "Sorry, I cannot answer {that} in JSON."
    app = emulator(scenarios=[{"text": raw}])
    async with connect(app) as client:
        with pytest.raises(JSONParseError) as caught:
            await client.json("json please")
    assert caught.value.raw == raw


@pytest.mark.anyio
async def test_expect_list_and_any() -> None:
    app = emulator(scenarios=[{"text": "[1, 2, 3]"}])
    async with connect(app) as client:
        assert await client.json("a JSON list", expect=list) == [1, 2, 3]
        assert await client.json("a JSON list", expect=None) == [1, 2, 3]
        with pytest.raises(JSONParseError):
            await client.json("a JSON list")  # an object was expected: the array is not dug into


@pytest.mark.anyio
async def test_the_keyword_is_added_to_a_new_system_message_when_missing(
    mode: Mode, caplog: pytest.LogCaptureFixture
) -> None:
    app = emulator()
    with caplog.at_level(logging.DEBUG, logger="qwenkit"):
        async with connect(app, mode) as client:
            await client.json("Alice is 31")
    (body,) = sent(app)
    assert body["messages"][0] == {"role": "system", "content": JSON_INSTRUCTION}
    assert body["messages"][1]["content"] == "Alice is 31"
    assert any("no 'JSON' in the prompt" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_the_keyword_is_appended_to_the_first_system_message() -> None:
    app = emulator()
    messages: list[AnyMessage] = [
        SystemMessage(content="Be terse."),
        UserMessage(content="Alice is 31"),
        SystemMessage(content="Second system."),
    ]
    parts: list[AnyMessage] = [
        SystemMessage(content=[TextPart(text="Parts.")]),
        UserMessage(content="Bob is 40"),
    ]
    async with connect(app) as client:
        await client.json(messages)
        await client.json(parts)
    first, second = sent(app)
    assert first["messages"][0]["content"] == f"Be terse.\n\n{JSON_INSTRUCTION}"
    assert first["messages"][2]["content"] == "Second system."
    assert len(first["messages"]) == 3
    texts = [part["text"] for part in second["messages"][0]["content"]]
    assert "".join(texts) == f"Parts.\n\n{JSON_INSTRUCTION}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "messages",
    [
        "Give me json",
        [{"role": "system", "content": "Answer in Json."}, {"role": "user", "content": "hi"}],
    ],
)
async def test_a_prompt_saying_json_in_any_case_is_left_alone(
    messages: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = emulator()
    with caplog.at_level(logging.DEBUG, logger="qwenkit"):
        async with connect(app) as client:
            await client.json(messages)
    (body,) = sent(app)
    assert all(JSON_INSTRUCTION not in str(m["content"]) for m in body["messages"])
    assert not any("no 'JSON'" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_thinking_is_turned_off_and_asking_for_it_is_an_error() -> None:
    app = emulator()
    async with connect(app) as client:
        await client.json(EXAMPLE, model="qwen3-32b")  # thinks by default: must be told not to
        with pytest.raises(ValidationError) as caught:
            await client.json(EXAMPLE, thinking=True)
        with pytest.raises(ValidationError):
            await client.json(EXAMPLE, enable_thinking=True)
        with pytest.raises(ValidationError):  # always thinks: JSON mode is impossible
            await client.json(EXAMPLE, model="qwq-plus")
    assert caught.value.param == "enable_thinking"
    (body,) = sent(app)  # nothing else was sent
    assert body["enable_thinking"] is False


@pytest.mark.anyio
async def test_response_format_belongs_to_the_method() -> None:
    async with connect(emulator()) as client:
        with pytest.raises(UsageError, match="response_format"):
            await client.json(EXAMPLE, response_format={"type": "text"})


@pytest.mark.anyio
async def test_stream_json_yields_ever_more_complete_dicts(mode: Mode) -> None:
    app = emulator(quirks={"json_fence_rate": 1.0})
    async with connect(app, mode) as client:
        snapshots = [snapshot async for snapshot in client.stream_json(EXAMPLE)]
    assert list(snapshots[-1]) == ["name", "age"]
    assert len(snapshots) >= 3
    assert all(is_more_complete(a, b) for a, b in itertools.pairwise(snapshots))
    (body,) = sent(app)
    assert body.get("stream") is True or mode == "native"


@pytest.mark.anyio
async def test_stream_json_stopped_early_closes_the_stream() -> None:
    sink = ListSink()
    async with connect(emulator(), sink=sink) as client:
        items = client.stream_json(EXAMPLE)
        first = await items.__anext__()
        assert sink.records == []  # the call is still open
        await items.aclose()  # type: ignore[attr-defined]
        assert [record.status for record in sink.records] == ["cancelled"]
    assert first == {}


def test_the_sync_client_has_the_same_methods() -> None:
    app, sink = emulator(), ListSink()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    with Qwen(api_key=KEY, base_url="http://emulator", http_client=http, usage_sinks=[sink]) as q:
        try:
            check_sync(q, app, sink)
        finally:
            q._runner.run(http.aclose())


def check_sync(client: Qwen, app: Starlette, sink: ListSink) -> None:
    value = client.json(EXAMPLE)
    assert list(value) == ["name", "age"]
    assert client.json_result(EXAMPLE).value == value
    snapshots = list(client.stream_json(EXAMPLE))
    assert snapshots[-1] == value
    stream = client.stream_json(EXAMPLE)
    next(stream)
    stream.close()  # closes the async generator on the runner
    assert len(app_state(app).log.last()) == 4
    assert [record.status for record in sink.records] == ["ok", "ok", "ok", "cancelled"]
