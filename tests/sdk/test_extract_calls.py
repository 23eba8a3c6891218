"""``extract``/``stream_extract`` against the emulator in process: the forced call, re-asks with
the validation errors, giving up with every attempt, partial instances while streaming."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from starlette.applications import Starlette

from qwenkit._core.usage import CallbackSink, ListSink, UsageRecord, UsageSink
from qwenkit._exceptions import UsageError
from qwenkit._settings import Mode
from qwenkit.client._async import AsyncQwen
from qwenkit.client._extraction import ExtractionError
from qwenkit.client._sync import Qwen
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state
from qwenkit.structured import is_more_complete
from qwenkit.types import Usage

KEY = "sk-test-extract"
TEXT = "Ada Lovelace is 36 and lives at 12 St James's Square, London."


class Person(BaseModel):
    """A person named in the text."""

    name: str
    age: int


class Address(BaseModel):
    street: str
    city: str


class Resident(BaseModel):
    """Someone and where they live."""

    name: str
    home: Address


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


def emulator(**config: Any) -> Starlette:
    return create_app(EmulatorConfig.model_validate(config))


def person_call(arguments: dict[str, Any] | str, round_: int | None = None) -> dict[str, Any]:
    match = {"tools_offered": ["person"]} | ({} if round_ is None else {"round": round_})
    return {"match": match, "tool_calls": [{"name": "person", "arguments": arguments}]}


@asynccontextmanager
async def connect(
    app: Starlette, mode: Mode = "compat", sinks: list[UsageSink] | None = None
) -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(
            api_key=KEY,
            base_url="http://emulator",
            mode=mode,
            http_client=http,
            usage_sinks=sinks or [],
        ) as client,
    ):
        yield client


async def requests(app: Starlette) -> list[dict[str, Any]]:
    """The logged request bodies through the control API, parameters flattened."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as control:
        entries = (await control.get("/_emulator/requests")).json()["requests"]
    bodies = []
    for entry in entries:
        body = dict(entry["body"])
        body.update(body.pop("parameters", {}))
        if "input" in body:
            body["messages"] = body.pop("input")["messages"]
        bodies.append(body)
    return bodies


@pytest.mark.anyio
async def test_a_valid_call_is_one_forced_request(mode: Mode) -> None:
    app = emulator()
    async with connect(app, mode) as client:
        person = await client.extract(TEXT, Person, model="qwen-plus")
    assert isinstance(person, Person)
    (body,) = await requests(app)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "person"}}
    (tool,) = body["tools"]
    assert tool["function"]["name"] == "person"
    assert tool["function"]["description"] == "A person named in the text."
    assert tool["function"]["parameters"]["required"] == ["name", "age"]
    assert body["temperature"] == 0


@pytest.mark.anyio
async def test_invalid_arguments_are_sent_back_and_asked_again(mode: Mode) -> None:
    app = emulator(
        scenarios=[person_call({"name": "Ada"}, 0), person_call('{"name": "Ada", "age": 36}', 1)]
    )
    async with connect(app, mode) as client:
        person = await client.extract(TEXT, Person, temperature=0.3)
    assert person == Person(name="Ada", age=36)
    first, second = await requests(app)
    assert first["temperature"] == 0.3  # given: kept
    assistant, reply = second["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"name": "Ada"}'
    assert reply["role"] == "tool"
    assert reply["tool_call_id"] == assistant["tool_calls"][0]["id"]
    errors = json.loads(reply["content"].split("are not valid: ")[1].rsplit(". Call", 1)[0])
    assert errors == [{"loc": "age", "msg": "Field required", "input": {"name": "Ada"}}]


@pytest.mark.anyio
async def test_after_max_retries_every_attempt_is_in_the_error() -> None:
    sink = ListSink()
    app = emulator(scenarios=[person_call('{"name": "Ada", "age": "old"}')])
    async with connect(app, sinks=[sink]) as client:
        with pytest.raises(ExtractionError) as caught:
            await client.extract(TEXT, Person, max_retries=2)
    error = caught.value
    assert len(error.attempts) == 3
    assert len(await requests(app)) == 3
    for attempt in error.attempts:
        assert attempt.raw_arguments == '{"name": "Ada", "age": "old"}'
        assert attempt.errors[0]["loc"] == "age"
        assert attempt.errors[0]["input"] == "old"
        assert attempt.result.tool_calls[0].name == "person"
    total = Usage()
    for record in sink.records:
        total = total + Usage(
            prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens
        )
    assert (error.usage.prompt_tokens, error.usage.completion_tokens) == (
        total.prompt_tokens,
        total.completion_tokens,
    )
    assert error.usage.prompt_tokens > 0
    assert "no valid Person after 3 attempt(s)" in str(error)


@pytest.mark.anyio
async def test_max_retries_zero_asks_once() -> None:
    app = emulator(scenarios=[person_call("{}")])
    async with connect(app) as client:
        with pytest.raises(ExtractionError) as caught:
            await client.extract(TEXT, Person, max_retries=0)
        with pytest.raises(UsageError):
            await client.extract(TEXT, Person, max_retries=-1)
    assert len(caught.value.attempts) == 1
    assert len(await requests(app)) == 1


@pytest.mark.anyio
async def test_arguments_that_are_not_json_and_answers_without_a_call() -> None:
    broken = person_call('{"name": "Ada", "age": 3', 0)
    prose = {"match": {"round": 1}, "text": "Ada is 36."}
    app = emulator(scenarios=[broken, prose])
    async with connect(app) as client:
        with pytest.raises(ExtractionError) as caught:
            await client.extract(TEXT, Person, max_retries=2)
    first, second, third = caught.value.attempts
    assert first.errors[0]["msg"].startswith("Invalid JSON")
    assert second.raw_arguments is None
    assert second.errors[0]["msg"] == "no call to person"
    assert third.raw_arguments is None
    bodies = await requests(app)
    last = bodies[2]["messages"][-1]
    assert last["role"] == "user"
    assert "Answer with the function call only" in last["content"]


@pytest.mark.anyio
async def test_a_dropped_nested_field_triggers_a_reask() -> None:
    app = emulator(quirks={"drop_nested_rate": 1.0})

    def heal(record: UsageRecord) -> None:  # after the first answer the quirk stops
        app_state(app).patch_config({"quirks": {"drop_nested_rate": 0.0}})

    async with connect(app, sinks=[CallbackSink(heal)]) as client:
        resident = await client.extract(TEXT, Resident)
    assert isinstance(resident.home, Address)
    entries = app_state(app).log.last()
    assert [entry["notes"] for entry in entries] == [["dropped_nested"], []]
    reply = (await requests(app))[1]["messages"][-1]
    assert reply["role"] == "tool"
    assert "home." in reply["content"]
    assert "Field required" in reply["content"]


@pytest.mark.anyio
async def test_always_dropping_gives_up() -> None:
    app = emulator(quirks={"drop_nested_rate": 1.0})
    async with connect(app) as client:
        with pytest.raises(ExtractionError) as caught:
            await client.extract(TEXT, Resident, max_retries=1)
    assert [a.errors[0]["msg"] for a in caught.value.attempts] == ["Field required"] * 2


@pytest.mark.anyio
async def test_parameters_owned_by_the_method() -> None:
    async with connect(emulator()) as client:
        with pytest.raises(UsageError, match="tool_choice"):
            await client.extract(TEXT, Person, tool_choice="auto")
        with pytest.raises(UsageError, match="tools"):
            await client.extract(TEXT, Person, tools=[])


@pytest.mark.anyio
async def test_stream_extract_partials_then_the_instance(mode: Mode) -> None:
    app = emulator()
    async with connect(app, mode) as client:
        items = [item async for item in client.stream_extract(TEXT, Resident)]
    *partials, final = items
    assert isinstance(final, Resident)
    assert len(partials) >= 3
    assert not any(isinstance(item, Resident) for item in partials)
    shapes = [item.model_dump(mode="json", exclude_unset=True) for item in items]
    *growing, last = shapes
    assert all(is_more_complete(a, b) for a, b in itertools.pairwise(growing))
    assert last == growing[-1] or is_more_complete(growing[-1], last)
    (body,) = await requests(app)
    assert body["tool_choice"]["function"]["name"] == "resident"


@pytest.mark.anyio
async def test_stream_extract_does_not_reask_and_raises() -> None:
    app = emulator(scenarios=[person_call('{"name": "Ada"}')])
    async with connect(app) as client:
        with pytest.raises(ExtractionError) as caught:
            async for _ in client.stream_extract(TEXT, Person):
                pass
    (attempt,) = caught.value.attempts
    assert attempt.raw_arguments == '{"name": "Ada"}'
    assert attempt.errors[0]["loc"] == "age"
    assert attempt.result.tool_calls[0].arguments == '{"name": "Ada"}'
    assert len(await requests(app)) == 1


@pytest.mark.anyio
async def test_stream_extract_stopped_early_closes_the_call() -> None:
    sink = ListSink()
    async with connect(emulator(), sinks=[sink]) as client:
        items = client.stream_extract(TEXT, Resident)
        await items.__anext__()
        await items.aclose()  # type: ignore[attr-defined]
    assert [record.status for record in sink.records] == ["cancelled"]


def test_the_sync_client_extracts_and_streams() -> None:
    app = emulator(
        scenarios=[person_call({"name": "Ada"}, 0), person_call({"name": "Ada", "age": 36}, 1)]
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    with Qwen(api_key=KEY, base_url="http://emulator", http_client=http, usage_sinks=[]) as q:
        try:
            assert q.extract(TEXT, Person) == Person(name="Ada", age=36)
            items = list(q.stream_extract(TEXT, Resident))
            assert isinstance(items[-1], Resident)
        finally:
            q._runner.run(http.aclose())
