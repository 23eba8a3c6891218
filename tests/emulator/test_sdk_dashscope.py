"""The official ``dashscope`` SDK (2.0.2) against the emulator over real HTTP (native mode).

One uvicorn server per module (``emulator_server.serve``). The SDK's base URL is a module-level
global (``dashscope.base_http_api_url``): the module fixture sets it and puts the old value back,
and closes the SDK's shared ``requests`` session (kept for the process otherwise). The key is
passed explicitly on every call.

What the SDK does with errors, as observed:

- an error answered up front (non-2xx, JSON body or, for a streaming call, an SSE ``event:error``
  body) becomes a response whose ``status_code`` is the HTTP status and ``code``/``message`` those
  of the body: a stream yields exactly one such response;
- an ``event:error`` after some results (HTTP 200 already sent) ends the stream with a response
  whose ``code``/``message`` are right but whose ``status_code`` is 400 whatever the event's
  ``:HTTP_STATUS/NNN`` comment says: the SDK reads a status only from a ``status:`` line, which the
  service does not send (reference §3.4).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import Generation
from dashscope.api_entities.dashscope_response import GenerationResponse, Message
from dashscope.api_entities.http_request import close_shared_sync_session
from emulator_server import restored_config, serve

from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.tokens import count_messages, get_tokenizer

MODEL = "qwen-plus"
KEY = "sk-test-dashscope-sdk"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Who are you?"},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city.",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]
WEATHER = [{"role": "user", "content": "What's the weather in Hangzhou today?"}]
TOKENIZER = get_tokenizer(MODEL)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    previous = dashscope.base_http_api_url
    with serve(create_app(EmulatorConfig())) as url:
        dashscope.base_http_api_url = f"{url}/api/v1"
        try:
            yield url
        finally:
            dashscope.base_http_api_url = previous
            close_shared_sync_session()  # its pooled connections point at this server


@pytest.fixture(scope="module")
def control(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as c:
        yield c


def call(**kwargs: Any) -> GenerationResponse:
    """``Generation.call`` without streaming (the key is given unless the test gives one)."""
    kwargs.setdefault("api_key", KEY)
    response = Generation.call(**kwargs)
    assert isinstance(response, GenerationResponse)
    return response


def stream(**kwargs: Any) -> list[GenerationResponse]:
    """Every response of a streaming ``Generation.call``."""
    kwargs.setdefault("api_key", KEY)
    responses = Generation.call(stream=True, **kwargs)
    assert isinstance(responses, Iterator)
    items: list[GenerationResponse] = []
    for response in responses:
        assert isinstance(response, GenerationResponse)
        items.append(response)
    return items


def message(response: GenerationResponse) -> Message:
    assert response.status_code == 200, response
    choice = response.output.choices[0]
    return choice.message


def text(response: GenerationResponse, field: str = "content") -> str:
    value = message(response).get(field)
    assert isinstance(value, str)
    return value


@pytest.fixture(scope="module")
def answer(base_url: str) -> GenerationResponse:
    """The non-streaming answer to ``MESSAGES`` (``result_format="message"``)."""
    return call(model=MODEL, messages=MESSAGES, result_format="message")


# -- answers ------------------------------------------------------------------------------------


def test_message_format(answer: GenerationResponse) -> None:
    assert answer.status_code == 200
    assert answer.code == ""
    assert answer.request_id
    assert answer.output.choices[0].finish_reason == "stop"
    assert message(answer).role == "assistant"
    content = text(answer)
    assert content
    assert answer.usage.input_tokens == count_messages(MESSAGES, MODEL).total
    assert answer.usage.output_tokens == TOKENIZER.count_ordinary(content)
    assert answer.usage["total_tokens"] == answer.usage.input_tokens + answer.usage.output_tokens
    assert answer.headers["x-request-id"] == answer.request_id


def test_text_format(answer: GenerationResponse) -> None:
    response = call(model=MODEL, messages=MESSAGES, result_format="text")
    assert response.status_code == 200
    assert response.output.text == text(answer)
    assert response.output.finish_reason == "stop"
    assert response.output.choices is None
    assert response.usage.input_tokens == answer.usage.input_tokens


def test_incremental_stream(answer: GenerationResponse) -> None:
    responses = stream(
        model=MODEL, messages=MESSAGES, result_format="message", incremental_output=True
    )
    assert len(responses) > 3
    assert all(r.status_code == 200 for r in responses)
    assert "".join(text(r) for r in responses) == text(answer)
    finishes = [r.output.choices[0].finish_reason for r in responses]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {"null"}  # the wire's string "null", passed through by the SDK
    inputs = {r.usage.input_tokens for r in responses}
    assert inputs == {answer.usage.input_tokens}
    outputs = [r.usage.output_tokens for r in responses]
    assert outputs == sorted(outputs)  # cumulative
    assert outputs[-1] == answer.usage.output_tokens
    assert len({r.request_id for r in responses}) == 1


def test_sdk_merges_a_non_incremental_stream(answer: GenerationResponse) -> None:
    # With incremental_output=False the SDK asks for deltas and accumulates them itself.
    responses = stream(
        model=MODEL, messages=MESSAGES, result_format="message", incremental_output=False
    )
    texts = [text(r) for r in responses]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1] == text(answer)


def test_tool_call_and_result(base_url: str) -> None:
    response = call(model=MODEL, messages=WEATHER, tools=TOOLS, result_format="message")
    assert response.output.choices[0].finish_reason == "tool_calls"
    calls = message(response)["tool_calls"]
    assert len(calls) == 1
    tool_call = calls[0]
    assert tool_call["type"] == "function"
    assert tool_call["id"].startswith("call_")
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == {"location": "Hangzhou"}
    assert response.usage.input_tokens == count_messages(WEATHER, MODEL, TOOLS).total

    result = "Hangzhou: cloudy, 21 degrees celsius"
    history = [
        *WEATHER,
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": tool_call["id"], "content": result},
    ]
    reply = call(model=MODEL, messages=history, tools=TOOLS, result_format="message")
    assert reply.output.choices[0].finish_reason == "stop"
    assert result in text(reply)


def test_thinking_stream(base_url: str) -> None:
    responses = stream(
        model=MODEL,
        messages=[{"role": "user", "content": "Why is the sky blue?"}],
        result_format="message",
        incremental_output=True,
        enable_thinking=True,
        thinking_budget=30,
    )
    phases = []
    reasoning = content = ""
    for response in responses:
        if piece := message(response).get("reasoning_content"):
            phases.append("reasoning")
            reasoning += piece
        if piece := text(response):
            phases.append("content")
            content += piece
    assert reasoning
    assert content
    first_content = phases.index("content")
    assert set(phases[:first_content]) == {"reasoning"}
    assert set(phases[first_content:]) == {"content"}
    usage = responses[-1].usage
    assert usage["output_tokens_details"]["reasoning_tokens"] == TOKENIZER.count_ordinary(reasoning)
    assert usage.output_tokens == (
        TOKENIZER.count_ordinary(reasoning) + TOKENIZER.count_ordinary(content)
    )
    assert 0 < usage["output_tokens_details"]["reasoning_tokens"] <= 30


# -- errors -------------------------------------------------------------------------------------


def test_thinking_without_stream_is_a_400(base_url: str) -> None:
    response = call(model=MODEL, messages=MESSAGES, enable_thinking=True)
    assert response.status_code == 400
    assert response.code == "InvalidParameter"
    assert (
        response.message == "parameter.enable_thinking must be set to false for non-streaming calls"
    )
    assert response.output is None


def test_bad_key_is_a_401(base_url: str) -> None:
    response = call(model=MODEL, messages=MESSAGES, api_key="not-a-key")
    assert response.status_code == 401
    assert response.code == "InvalidApiKey"
    assert response.message == "Invalid API-key provided."


def test_unknown_model_is_a_404(base_url: str) -> None:
    response = call(model="qwen9", messages=MESSAGES)
    assert response.status_code == 404
    assert response.code == "ModelNotFound"
    assert response.message == "Model can not be found."


def test_stream_error_before_any_result(base_url: str) -> None:
    responses = stream(model="qwen9", messages=MESSAGES, incremental_output=True)
    assert len(responses) == 1
    (response,) = responses
    assert response.status_code == 404  # the HTTP status: the SDK reads the body as a failure
    assert response.code == "ModelNotFound"
    assert response.message == "Model can not be found."
    assert response.request_id == response.headers["x-request-id"]


def test_stream_error_after_results(control: httpx.Client) -> None:
    rule = {
        "match": {"last_user": "flaky"},
        "text": "This answer breaks off after a few words and never ends.",
        "fault": {
            "kind": "error_mid_stream",
            "after_chunks": 3,
            "error": {"status": 500, "code": "InternalError", "message": "Boom."},
        },
    }
    with restored_config(control, {"scenarios": [rule]}):
        responses = stream(
            model=MODEL,
            messages=[{"role": "user", "content": "A flaky answer, please."}],
            result_format="message",
            incremental_output=True,
        )
    *results, error = responses
    assert len(results) == 3
    assert all(r.status_code == 200 for r in results)
    assert "".join(text(r) for r in results)
    assert error.code == "InternalError"
    assert error.message == "Boom."
    # The event carried ":HTTP_STATUS/500"; the SDK only knows "status:" lines, so it says 400.
    assert error.status_code == 400
