"""The quirks that play llama.cpp's ``llama-server``: a named ``tool_choice`` ignored, its error
envelope, no ``x-request-id`` header. Over HTTP in process (httpx ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.config import QuirksConfig

COMPAT = "/compatible-mode/v1/chat/completions"
NATIVE = "/api/v1/services/aigc/text-generation/generation"
KEY = {"Authorization": "Bearer sk-test-llama-quirks"}
TEXT = "Ada Lovelace is 36 and lives at 12 St James's Square, London."
PERSON = {
    "type": "function",
    "function": {
        "name": "person",
        "parameters": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        },
    },
}
NAMED = {"type": "function", "function": {"name": "person"}}
MESSAGES = [{"role": "user", "content": TEXT}]

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def emulator(**quirks: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(EmulatorConfig.model_validate({"quirks": quirks}))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        yield client


async def notes(client: httpx.AsyncClient) -> list[list[str]]:
    entries = (await client.get("/_emulator/requests")).json()["requests"]
    return [entry["notes"] for entry in entries]


def compat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "qwen-plus", "messages": MESSAGES, **fields}


def native_body(**parameters: Any) -> dict[str, Any]:
    return {
        "model": "qwen-plus",
        "input": {"messages": MESSAGES},
        "parameters": {"result_format": "message", **parameters},
    }


def test_defaults_are_dashscopes_behaviour() -> None:
    quirks = QuirksConfig()
    assert quirks.named_tool_choice == "honour"
    assert quirks.error_envelope == "dashscope"
    assert quirks.request_id_header is True


async def test_a_named_choice_is_honoured_by_default() -> None:
    async with emulator() as client:
        answer = await client.post(
            COMPAT, json=compat_body(tools=[PERSON], tool_choice=NAMED), headers=KEY
        )
        (call,) = answer.json()["choices"][0]["message"]["tool_calls"]
        assert call["function"]["name"] == "person"
        assert await notes(client) == [[]]


async def test_ignore_answers_a_named_choice_as_auto_on_the_compatible_wire() -> None:
    async with emulator(named_tool_choice="ignore") as client:
        named = await client.post(
            COMPAT, json=compat_body(tools=[PERSON], tool_choice=NAMED), headers=KEY
        )
        auto = await client.post(
            COMPAT, json=compat_body(tools=[PERSON], tool_choice="auto"), headers=KEY
        )
        required = await client.post(
            COMPAT, json=compat_body(tools=[PERSON], tool_choice="required"), headers=KEY
        )
        native = await client.post(
            NATIVE, json=native_body(tools=[PERSON], tool_choice=NAMED), headers=KEY
        )
        logged = await notes(client)
    named_choice = named.json()["choices"][0]
    assert named_choice["finish_reason"] == "stop"
    assert not named_choice["message"].get("tool_calls")
    assert named_choice["message"] == auto.json()["choices"][0]["message"]  # as under auto
    (forced,) = required.json()["choices"][0]["message"]["tool_calls"]  # strings still work
    assert forced["function"]["name"] == "person"
    (native_call,) = native.json()["output"]["choices"][0]["message"]["tool_calls"]
    assert native_call["function"]["name"] == "person"  # the quirk is the compatible wire's
    assert logged == [["named_tool_choice_ignored"], [], [], []]


async def test_llama_cpp_envelope_has_an_integer_code_a_type_and_no_id() -> None:
    async with emulator(error_envelope="llama.cpp") as client:
        invalid = await client.post(COMPAT, json=compat_body(n=99), headers=KEY)
        streamed = await client.post(COMPAT, json=compat_body(n=99, stream=True), headers=KEY)
        bad_key = await client.post(
            COMPAT, json=compat_body(), headers={"Authorization": "Bearer nope"}
        )
        native = await client.post(NATIVE, json=native_body(n=99), headers=KEY)
    assert invalid.status_code == 400
    message = "<400> InternalError.Algo.InvalidParameter: Range of n should be [1, 4]"
    assert invalid.json() == {
        "error": {"code": 400, "message": message, "type": "invalid_request_error"}
    }
    assert invalid.headers["x-request-id"]  # the header is a quirk of its own
    assert streamed.status_code == 400
    assert streamed.headers["content-type"] == "application/json"
    assert streamed.json() == invalid.json()
    assert bad_key.status_code == 401
    assert bad_key.json()["error"]["code"] == 401
    assert bad_key.json()["error"]["type"] == "authentication_error"
    assert native.status_code == 400
    assert native.json()["code"] == "InvalidParameter"  # the native wire keeps its envelope
    assert native.json()["request_id"]


async def test_dashscope_envelope_by_default() -> None:
    async with emulator() as client:
        invalid = await client.post(COMPAT, json=compat_body(n=99), headers=KEY)
    body = invalid.json()
    assert body["error"]["code"] == "invalid_parameter_error"
    assert body["request_id"] == invalid.headers["x-request-id"]


async def test_no_request_id_header_on_answers_streams_and_errors() -> None:
    async with emulator(request_id_header=False) as client:
        answer = await client.post(COMPAT, json=compat_body(), headers=KEY)
        stream = await client.post(COMPAT, json=compat_body(stream=True), headers=KEY)
        error = await client.post(COMPAT, json=compat_body(n=99), headers=KEY)
        entries = (await client.get("/_emulator/requests")).json()["requests"]
    for response in (answer, stream, error):
        assert "x-request-id" not in response.headers
    assert answer.status_code == stream.status_code == 200
    assert answer.json()["id"] == f"chatcmpl-{entries[0]['request_id']}"
    assert stream.text.startswith("data: ")
    assert error.status_code == 400
