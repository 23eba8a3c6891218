"""``upstream="openai-compatible"`` in front of a server that behaves like llama.cpp's
``llama-server``: a named ``tool_choice`` is ignored, errors carry an integer ``code`` and no id,
and there is no ``x-request-id`` header.

The request translation is checked on the bodies ``Upstream.build_request`` builds (both
flavours); the rest against the emulator with its llama.cpp quirks on, over real HTTP (one uvicorn
server for the module, ``emulator_server.serve``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from emulator_server import restored_config, serve
from pydantic import BaseModel

from qwenkit import AsyncQwen, BadRequestError, RetryPolicy, ServerError
from qwenkit._settings import Settings
from qwenkit.client._call import make_call
from qwenkit.client._extraction import ExtractionError
from qwenkit.emulator import EmulatorConfig, create_app

KEY = "sk-test-llama-compat"
MODEL = "qwen-plus"
TEXT = "Ada Lovelace is 36 and lives at 12 St James's Square, London."
LONG_MARKER = "a very long document"
CONTEXT_ERROR = (
    "request (5010 tokens) exceeds the available context size (4096 tokens), try increasing it"
)
NO_RETRY = RetryPolicy(max_attempts=1)
QUICK_RETRY = RetryPolicy(max_attempts=3, initial_delay=0, max_delay=0)


def function_tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} of a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }


WEATHER, TIME = function_tool("get_weather"), function_tool("get_time")
FORCED = {"type": "function", "function": {"name": "get_weather"}}


class Person(BaseModel):
    """A person named in the text."""

    name: str
    age: int


# -- the request translation ----------------------------------------------------------------------


async def built_body(
    flavour: str, params: dict[str, Any], *, stream: bool = False
) -> dict[str, Any]:
    """The JSON body ``Upstream.build_request`` makes of a call with ``params``."""
    call = make_call(
        "Weather?", model=MODEL, task=None, thinking=None, params=params, stream=stream
    )
    if flavour == "dashscope":
        client = AsyncQwen(settings=Settings(api_key=KEY, base_url="http://x", mode="compat"))
    else:
        client = AsyncQwen(base_url="http://vllm:8000/v1", upstream="openai-compatible")
    async with client:
        request = client.upstream.build_request(call)
    body: dict[str, Any] = json.loads(request.content)
    return body


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DASHSCOPE_API_KEY", "QWENKIT_API_KEY", "QWENKIT_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_a_named_tool_choice_becomes_required_over_that_tool(stream: bool) -> None:
    body = await built_body(
        "openai-compatible", {"tools": [TIME, WEATHER], "tool_choice": FORCED}, stream=stream
    )
    assert body["tool_choice"] == "required"
    assert body["tools"] == [WEATHER]
    assert body["parallel_tool_calls"] is False


@pytest.mark.anyio
async def test_the_callers_parallel_tool_calls_is_kept() -> None:
    params = {"tools": [TIME, WEATHER], "tool_choice": FORCED, "parallel_tool_calls": True}
    body = await built_body("openai-compatible", params)
    assert (body["tool_choice"], body["tools"]) == ("required", [WEATHER])
    assert body["parallel_tool_calls"] is True


@pytest.mark.anyio
async def test_string_choices_and_unknown_names_are_sent_as_given() -> None:
    for choice in ("auto", "none", "required"):
        body = await built_body(
            "openai-compatible", {"tools": [TIME, WEATHER], "tool_choice": choice}
        )
        assert body["tool_choice"] == choice
        assert body["tools"] == [TIME, WEATHER]
        assert "parallel_tool_calls" not in body
    unknown = {"type": "function", "function": {"name": "get_tide"}}
    body = await built_body("openai-compatible", {"tools": [TIME, WEATHER], "tool_choice": unknown})
    assert body["tool_choice"] == unknown
    assert body["tools"] == [TIME, WEATHER]


@pytest.mark.anyio
async def test_dashscope_keeps_the_named_tool_choice() -> None:
    body = await built_body("dashscope", {"tools": [TIME, WEATHER], "tool_choice": FORCED})
    assert body["tool_choice"] == FORCED
    assert body["tools"] == [TIME, WEATHER]
    assert "parallel_tool_calls" not in body


# -- against an emulator that behaves like llama.cpp ----------------------------------------------

LLAMA_QUIRKS: dict[str, Any] = {
    "named_tool_choice": "ignore",
    "error_envelope": "llama.cpp",
    "request_id_header": False,
}
CONTEXT_RULE = {
    "name": "context-size",
    "match": {"last_user": LONG_MARKER},
    "error": {"status": 400, "code": "exceed_context_size_error", "message": CONTEXT_ERROR},
}
FORMAT_ERROR = "The model produced output that does not match the expected peg-native format"
FORMAT_RULE = {  # a DashScope code: the llama.cpp envelope names it by its status
    "name": "bad-format",
    "match": {"last_user": "peg"},
    "error": {"status": 500, "code": "InternalError", "message": FORMAT_ERROR},
}


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    rules = [CONTEXT_RULE, FORMAT_RULE]
    config = EmulatorConfig.model_validate({"quirks": LLAMA_QUIRKS, "scenarios": rules})
    with serve(create_app(config)) as url:
        yield url


@pytest.fixture
def control(root: str) -> Iterator[httpx.Client]:
    """The control API; the log and counters are reset around each test."""
    with httpx.Client(base_url=root, timeout=10) as client, restored_config(client, {}):
        yield client


@asynccontextmanager
async def qwen(root: str, **options: Any) -> AsyncIterator[AsyncQwen]:
    options.setdefault("retry", NO_RETRY)
    options.setdefault("upstream", "openai-compatible")
    base_url = f"{root}/compatible-mode/v1" if options["upstream"] != "dashscope" else root
    async with AsyncQwen(api_key=KEY, base_url=base_url, default_model=MODEL, **options) as client:
        yield client


def logged(control: httpx.Client) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = control.get("/_emulator/requests").json()["requests"]
    return entries


@pytest.mark.anyio
async def test_extract_gets_its_object_although_the_server_ignores_named_choices(
    root: str, control: httpx.Client
) -> None:
    async with qwen(root) as client:
        person = await client.extract(TEXT, Person, max_retries=0)
    assert person == Person(name="Ada Lovelace", age=36)
    (entry,) = logged(control)
    assert entry["body"]["tool_choice"] == "required"
    assert [tool["function"]["name"] for tool in entry["body"]["tools"]] == ["person"]
    assert entry["body"]["parallel_tool_calls"] is False
    assert entry["notes"] == []  # nothing named: nothing ignored


@pytest.mark.anyio
async def test_a_named_choice_sent_as_it_is_gets_no_call(root: str, control: httpx.Client) -> None:
    """The quirk at work: what the SDK's translation avoids."""
    tool = {"type": "function", "function": {"name": "person", "parameters": {}}}
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": TEXT}],
        "tools": [tool],
        "tool_choice": {"type": "function", "function": {"name": "person"}},
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    answer = control.post("/compatible-mode/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == 200
    (choice,) = answer.json()["choices"]
    assert not choice["message"].get("tool_calls")
    assert choice["finish_reason"] == "stop"
    (entry,) = logged(control)
    assert entry["notes"] == ["named_tool_choice_ignored"]
    # DashScope's flavour sends the named choice as it is, so extract() gets no call here.
    async with qwen(root, upstream="dashscope", mode="compat") as client:
        with pytest.raises(ExtractionError):
            await client.extract(TEXT, Person, max_retries=0)


@pytest.mark.anyio
async def test_an_error_keeps_its_type_as_code_and_has_no_request_id(
    root: str, control: httpx.Client
) -> None:
    async with qwen(root) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.chat(f"Summarise {LONG_MARKER}.")
        with pytest.raises(ServerError) as failed:
            await client.chat("Answer in peg format.")
    error = caught.value
    assert error.status == 400
    assert error.code == "exceed_context_size_error"
    assert error.message == CONTEXT_ERROR
    assert error.request_id is None
    assert error.body == {
        "error": {"code": 400, "message": CONTEXT_ERROR, "type": "exceed_context_size_error"}
    }
    assert not error.retryable
    server = failed.value
    assert (server.status, server.code, server.message) == (500, "server_error", FORMAT_ERROR)
    assert server.request_id is None
    assert server.retryable  # a 500: retried by the policy (this client tries once)
    assert [entry["status"] for entry in logged(control)] == [400, 500]


@pytest.mark.anyio
async def test_a_503_while_the_model_loads_is_retried(root: str, control: httpx.Client) -> None:
    with restored_config(control, {"faults": {"fail_first": 1, "error_status": 503}}):
        async with qwen(root, retry=QUICK_RETRY) as client:
            result = await client.chat("Hello")
        first, second = logged(control)
    assert result.content
    assert (first["status"], second["status"]) == (503, 200)
    with restored_config(control, {"faults": {"fail_first": 5, "error_status": 503}}):
        async with qwen(root, retry=RetryPolicy(max_attempts=2, initial_delay=0, max_delay=0)) as c:
            with pytest.raises(ServerError) as caught:
                await c.chat("Hello")
    error = caught.value
    assert (error.status, error.code, error.request_id) == (503, "unavailable_error", None)
    assert error.retryable
    assert [attempt.code for attempt in error.attempts] == ["unavailable_error"] * 2


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_without_a_request_id_header_the_body_id_is_the_request_id(
    root: str, control: httpx.Client, stream: bool
) -> None:
    async with qwen(root) as client:
        if stream:
            async with client.stream("Hello") as events:
                result = await events.get_result()
        else:
            result = await client.chat("Hello")
    (entry,) = logged(control)
    assert result.request_id == entry["request_id"]  # from the body's chatcmpl-<id>
    raw = control.post(
        "/compatible-mode/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hello"}]},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert raw.status_code == 200
    assert "x-request-id" not in raw.headers
