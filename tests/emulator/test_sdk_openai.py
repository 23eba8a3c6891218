"""The official ``openai`` SDK against the emulator over real HTTP (compatible mode).

One uvicorn server per module (``emulator_server.serve``), one ``OpenAI`` client with
``max_retries=0`` (so each error surfaces once, as the SDK's own exception type). Tests that change
settings do it through the control API and put them back (``restored_config``).

What the SDK does with each failure, as observed:

- 400/401/404/429/500 → ``BadRequestError`` / ``AuthenticationError`` / ``NotFoundError`` /
  ``RateLimitError`` / ``InternalServerError``, with the service's ``message`` and ``code``;
- a stream whose connection drops (``faults.drop_after_chunks``) raises ``openai.APIConnectionError``
  ("Connection error.") while iterating, after the chunks that did arrive; its ``__cause__`` is
  the transport's ``httpx2.RemoteProtocolError`` (the SDK wraps every request-level error).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest
from emulator_server import restored_config, serve
from openai import OpenAI
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.tokens import count_messages, get_tokenizer

MODEL = "qwen-plus"
KEY = "sk-test-openai-sdk"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Who are you?"},
]
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "A city, e.g. Hangzhou"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
    "additionalProperties": False,
}
TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "parameters": WEATHER_SCHEMA,
        },
    }
]
TWO_CITIES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the weather like in Beijing and Shanghai right now?"}
]
TOKENIZER = get_tokenizer(MODEL)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(create_app(EmulatorConfig())) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[OpenAI]:
    with OpenAI(api_key=KEY, base_url=f"{base_url}/compatible-mode/v1", max_retries=0) as c:
        yield c


@pytest.fixture(scope="module")
def control(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


def check_schema(value: Any, schema: dict[str, Any]) -> None:
    """The subset of JSON Schema the tools here use (object, string, enum, required)."""
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict)
        properties: dict[str, Any] = schema.get("properties", {})
        assert set(schema.get("required", [])) <= set(value)
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(properties)
        for name, item in value.items():
            if name in properties:
                check_schema(item, properties[name])
    elif kind == "string":
        assert isinstance(value, str)
        assert value
    if "enum" in schema:
        assert value in schema["enum"]


def function_calls(reply: ChatCompletion) -> list[tuple[str, str, Any]]:
    """``(id, name, parsed arguments)`` of each tool call of the first choice."""
    calls = reply.choices[0].message.tool_calls
    assert calls is not None
    parsed: list[tuple[str, str, Any]] = []
    for call in calls:
        assert isinstance(call, ChatCompletionMessageFunctionToolCall)
        parsed.append((call.id, call.function.name, json.loads(call.function.arguments)))
    return parsed


def message_of(error: openai.APIStatusError) -> str:
    """The service's ``error.message`` (the exception's own message has "Error code: N - " first)."""
    body = error.body
    assert isinstance(body, dict)
    message = body["message"]
    assert isinstance(message, str)
    assert str(error) == f"Error code: {error.status_code} - {message}"
    return message


def reasoning_of(chunk: ChatCompletionChunk) -> str | None:
    """``delta.reasoning_content`` (a DashScope field the SDK keeps as an extra attribute)."""
    if not chunk.choices:
        return None
    extra = chunk.choices[0].delta.model_extra or {}
    value = extra.get("reasoning_content")
    assert value is None or isinstance(value, str)
    return value


# -- answers ------------------------------------------------------------------------------------


def test_chat_non_stream(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES)
    reply = raw.parse()
    assert reply.id == "chatcmpl-" + raw.headers["x-request-id"]
    assert reply.object == "chat.completion"
    assert reply.model == MODEL
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content
    assert content
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_messages(MESSAGES, MODEL).total
    assert reply.usage.completion_tokens == TOKENIZER.count_ordinary(content)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 0


def test_stream_with_include_usage(client: OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as stream:
        chunks = list(stream)
    *answer, last = chunks
    assert last.choices == []
    assert last.usage == reply.usage
    assert all(chunk.usage is None for chunk in answer)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].id.startswith("chatcmpl-")
    assert answer[0].choices[0].delta.role == "assistant"
    assert answer[-1].choices[0].finish_reason == "stop"
    assert all(chunk.choices[0].finish_reason is None for chunk in answer[:-1])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in answer)
    assert text == reply.choices[0].message.content
    assert len(answer) > 3  # one token per chunk: the answer really streamed


# -- tools --------------------------------------------------------------------------------------


def test_single_tool_call(client: OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What's the weather in Hangzhou today?"}
    ]
    reply = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1  # parallel_tool_calls defaults to false
    call = calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    check_schema(arguments, WEATHER_SCHEMA)
    assert arguments["location"] == "Hangzhou"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == count_messages(messages, MODEL, TOOLS).total


def test_parallel_tool_calls_non_stream_and_stream(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL, messages=TWO_CITIES, tools=TOOLS, parallel_tool_calls=True
    )
    assert reply.choices[0].finish_reason == "tool_calls"
    expected = function_calls(reply)
    assert [args["location"] for _, _, args in expected] == ["Beijing", "Shanghai"]
    assert len({call_id for call_id, _, _ in expected}) == 2
    for _, name, args in expected:
        assert name == "get_weather"
        check_schema(args, WEATHER_SCHEMA)

    # Streamed: fragments keyed by index; id and name arrive with the first fragment of each.
    assembled: dict[int, dict[str, str]] = {}
    finish: list[str] = []
    with client.chat.completions.create(
        model=MODEL, messages=TWO_CITIES, tools=TOOLS, parallel_tool_calls=True, stream=True
    ) as stream:
        for chunk in stream:
            choice = chunk.choices[0]
            if choice.finish_reason is not None:
                finish.append(choice.finish_reason)
            for fragment in choice.delta.tool_calls or ():
                if fragment.index not in assembled:
                    assert fragment.id
                    assert fragment.function is not None
                    assert fragment.function.name
                    assembled[fragment.index] = {
                        "id": fragment.id,
                        "name": fragment.function.name,
                        "arguments": "",
                    }
                else:
                    assert not fragment.id  # later fragments repeat an empty id
                assert fragment.function is not None
                assembled[fragment.index]["arguments"] += fragment.function.arguments or ""
    assert finish == ["tool_calls"]
    assert sorted(assembled) == [0, 1]
    streamed = [
        (item["id"], item["name"], json.loads(item["arguments"]))
        for _, item in sorted(assembled.items())
    ]
    assert streamed == expected

    # The SDK's own stream assembler agrees.
    with client.chat.completions.stream(
        model=MODEL, messages=TWO_CITIES, tools=TOOLS, parallel_tool_calls=True
    ) as helper:
        final = helper.get_final_completion()
    assert function_calls(final) == expected


def test_tool_results_round_trip(client: OpenAI) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=TWO_CITIES, tools=TOOLS, parallel_tool_calls=True
    )
    calls = function_calls(first)
    results = {
        "Beijing": "Beijing: sunny, 26 degrees celsius",
        "Shanghai": "Shanghai: light rain, 19 degrees celsius",
    }
    assistant: ChatCompletionAssistantMessageParam = {
        "role": "assistant",
        "content": first.choices[0].message.content,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for call_id, name, args in calls
        ],
    }
    messages: list[ChatCompletionMessageParam] = [*TWO_CITIES, assistant]
    for call_id, _, args in calls:
        messages.append(
            {"role": "tool", "tool_call_id": call_id, "content": results[args["location"]]}
        )
    reply = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.tool_calls is None
    content = reply.choices[0].message.content
    assert content
    for text in results.values():
        assert text in content


# -- thinking and JSON mode ---------------------------------------------------------------------


def test_thinking_stream(client: OpenAI) -> None:
    budget = 24
    phases: list[str] = []
    reasoning = content = ""
    with client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"enable_thinking": True, "thinking_budget": budget},
    ) as stream:
        chunks = list(stream)
    for chunk in chunks:
        if piece := reasoning_of(chunk):
            phases.append("reasoning")
            reasoning += piece
        if chunk.choices and (piece := chunk.choices[0].delta.content):
            phases.append("content")
            content += piece
    assert reasoning
    assert content
    first_content = phases.index("content")
    assert set(phases[:first_content]) == {"reasoning"}
    assert set(phases[first_content:]) == {"content"}
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens_details is not None
    reasoning_tokens = usage.completion_tokens_details.reasoning_tokens
    assert reasoning_tokens == TOKENIZER.count_ordinary(reasoning)
    assert reasoning_tokens is not None
    assert 0 < reasoning_tokens <= budget
    assert usage.completion_tokens == reasoning_tokens + TOKENIZER.count_ordinary(content)


def test_json_mode(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "List three primary colors as JSON."}],
        response_format={"type": "json_object"},
    )
    content = reply.choices[0].message.content
    assert content is not None
    assert isinstance(json.loads(content), dict)

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "List three primary colors."}],
            response_format={"type": "json_object"},
        )
    assert caught.value.status_code == 400
    assert caught.value.code == "invalid_parameter_error"
    assert caught.value.type == "invalid_request_error"
    assert message_of(caught.value) == (
        "<400> InternalError.Algo.InvalidParameter: 'messages' must contain the word 'json' in "
        "some form, to use 'response_format' of type 'json_object'."
    )


# -- errors -------------------------------------------------------------------------------------


def test_bad_requests(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, extra_body={"enable_thinking": True}
        )
    assert caught.value.code == "invalid_parameter_error"
    assert message_of(caught.value) == (
        "parameter.enable_thinking must be set to false for non-streaming calls"
    )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["param"] is None

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": "Weather?"},
                {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
            ],
        )
    assert message_of(caught.value) == (
        '<400> InternalError.Algo.InvalidParameter: messages with role "tool" must be a '
        'response to a preceeding message with "tool_calls".'
    )
    request_id = caught.value.response.headers["x-request-id"]
    assert caught.value.request_id == request_id


def test_authentication_error(base_url: str) -> None:
    url = f"{base_url}/compatible-mode/v1"
    with (
        OpenAI(api_key="not-a-key", base_url=url, max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        bad.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert message_of(caught.value) == "Incorrect API key provided."


def test_not_found_error(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="qwen9", messages=MESSAGES)
    assert caught.value.code == "model_not_found"
    assert (
        message_of(caught.value)
        == "The model `qwen9` does not exist or you do not have access to it."
    )


def test_rate_limit_error(client: OpenAI, control: httpx.Client) -> None:
    with restored_config(control, {"throttle": {"after_requests": 1}}):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 429
    assert "retry-after" not in caught.value.response.headers  # none seen on the real service
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices


def test_internal_server_error(client: OpenAI, control: httpx.Client) -> None:
    with restored_config(control, {"faults": {"fail_first": 1}}):
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices
    assert caught.value.status_code == 500
    assert message_of(caught.value) == (
        "An internal error has occurred, please try again later or contact service support."
    )
    with (
        restored_config(control, {"faults": {"fail_first": 1, "error_status": 503}}),
        pytest.raises(openai.InternalServerError) as caught,
    ):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 503


def test_mid_stream_drop_raises_while_iterating(client: OpenAI, control: httpx.Client) -> None:
    received: list[ChatCompletionChunk] = []
    with restored_config(control, {"faults": {"drop_after_chunks": 3}}):
        stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        with stream, pytest.raises(openai.APIConnectionError) as caught:
            received.extend(stream)
    assert len(received) == 3  # the chunks that arrived were handed out first
    assert caught.value.message == "Connection error."
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES).choices
