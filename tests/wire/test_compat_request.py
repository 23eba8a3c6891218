"""Compatible-mode request bodies: decoding, encoding, round trips, invalid bodies."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from qwenkit.types import (
    AssistantMessage,
    ChatRequest,
    ImageURLPart,
    NamedToolChoice,
    StreamOptions,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from qwenkit.wire.compat import CompatError, CompatRequestError, decode_request, encode_request

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Query the weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}

# What the openai SDK posts for `client.chat.completions.create(..., extra_body={...})`: the
# extra_body keys land top-level (reference §2).
THINKING_BODY: dict[str, Any] = {
    "model": "qwen-plus",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "9.9 和 9.11 哪个大？"},
    ],
    "stream": True,
    "stream_options": {"include_usage": True},
    "enable_thinking": True,
    "thinking_budget": 4000,
    "top_k": 20,
    "repetition_penalty": 1.05,
    "temperature": 0.7,
    "top_p": 0.8,
}

TOOL_HISTORY_BODY: dict[str, Any] = {
    "model": "qwen3-max",
    "messages": [
        {"role": "user", "content": "杭州天气怎么样？"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_8f08d2b0fc0c4d8fab7123",
                    "type": "function",
                    "index": 0,
                    "function": {
                        "name": "get_current_weather",
                        "arguments": '{"location": "杭州市"}',
                    },
                }
            ],
        },
        {
            "role": "tool",
            "content": "晴，25°C",
            "tool_call_id": "call_8f08d2b0fc0c4d8fab7123",
        },
    ],
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "function", "function": {"name": "get_current_weather"}},
    "parallel_tool_calls": False,
    "max_tokens": 512,
    "seed": 1234,
    "stop": ["\n\nObservation:"],
}

MULTIMODAL_BODY: dict[str, Any] = {
    "model": "qwen3-vl-plus",
    "messages": [
        {
            "role": "system",
            "content": [
                {
                    "type": "text",
                    "text": "A long system prompt worth caching.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "What is this?"},
                {"type": "video", "video": ["https://example.com/f1.jpg"]},
            ],
        },
    ],
    "response_format": {"type": "json_object"},
    "enable_search": True,
    "search_options": {"search_strategy": "max", "forced_search": True},
    "n": 2,
    "logprobs": True,
    "top_logprobs": 3,
    "presence_penalty": 0.5,
}

UNKNOWN_FIELDS_BODY: dict[str, Any] = {
    "model": "qwen3-max-2026-01-23",
    "messages": [
        {"role": "user", "content": "Plot y = x^2", "x_trace": {"span": "abc"}},
        {
            "role": "user",
            "content": [{"type": "input_file", "file_id": "file-123", "extra": [1, 2]}],
        },
    ],
    "stream": True,
    "enable_code_interpreter": True,
    "enable_thinking": True,
    "modalities": ["text"],
    "x_future_param": {"nested": [1, {"deep": None}]},
    "tools": None,
}

REALISTIC_BODIES = [THINKING_BODY, TOOL_HISTORY_BODY, MULTIMODAL_BODY, UNKNOWN_FIELDS_BODY]


@pytest.mark.parametrize("body", REALISTIC_BODIES, ids=["thinking", "tools", "vl", "unknown"])
def test_encode_of_decode_is_the_body(body: dict[str, Any]) -> None:
    original = copy.deepcopy(body)
    encoded = encode_request(decode_request(body))
    assert encoded == original
    assert json.loads(json.dumps(encoded)) == original  # JSON-ready, nothing left as a model
    assert body == original  # the input was not modified


@pytest.mark.parametrize("body", REALISTIC_BODIES, ids=["thinking", "tools", "vl", "unknown"])
def test_decode_of_encode_is_the_request(body: dict[str, Any]) -> None:
    request = decode_request(body)
    assert decode_request(encode_request(request)) == request


def test_qwen_parameters_are_first_class_fields() -> None:
    request = decode_request(THINKING_BODY)
    assert request.enable_thinking is True
    assert request.thinking_budget == 4000
    assert request.top_k == 20
    assert request.repetition_penalty == 1.05
    assert request.includes_usage
    assert request.extras == {}
    assert isinstance(request.messages[0], SystemMessage)
    assert isinstance(request.messages[1], UserMessage)


def test_tool_history_is_typed() -> None:
    request = decode_request(TOOL_HISTORY_BODY)
    assistant = request.messages[1]
    assert isinstance(assistant, AssistantMessage)
    assert assistant.tool_calls is not None
    assert assistant.tool_calls[0].name == "get_current_weather"
    assert assistant.tool_calls[0].index == 0
    assert isinstance(request.messages[2], ToolMessage)
    assert isinstance(request.tool_choice, NamedToolChoice)
    assert request.tools is not None
    assert request.tools[0].name == "get_current_weather"


def test_content_parts_and_cache_marker() -> None:
    request = decode_request(MULTIMODAL_BODY)
    system = request.messages[0]
    assert isinstance(system.content, list)
    part = system.content[0]
    assert isinstance(part, TextPart)
    assert part.cache_control is not None
    user = request.messages[1]
    assert isinstance(user.content, list)
    assert isinstance(user.content[0], ImageURLPart)
    assert request.search_options == {"search_strategy": "max", "forced_search": True}


def test_unknown_fields_are_kept_at_every_level() -> None:
    request = decode_request(UNKNOWN_FIELDS_BODY)
    assert request.extras == {
        "enable_code_interpreter": True,
        "modalities": ["text"],
        "x_future_param": {"nested": [1, {"deep": None}]},
    }
    assert request.messages[0].extras == {"x_trace": {"span": "abc"}}
    encoded = encode_request(request)
    assert encoded["enable_code_interpreter"] is True
    assert encoded["messages"][1]["content"][0] == {
        "type": "input_file",
        "file_id": "file-123",
        "extra": [1, 2],
    }
    assert "tools" in encoded
    assert encoded["tools"] is None  # an explicit null stays null


def test_encode_puts_qwen_parameters_and_extras_top_level() -> None:
    request = ChatRequest(
        model="qwen-plus",
        messages=[UserMessage(content="hi")],
        stream=True,
        stream_options=StreamOptions(include_usage=True),
        enable_thinking=False,
        enable_search=True,
        top_k=50,
        enable_code_interpreter=True,  # an extra
    )
    assert encode_request(request) == {
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "enable_thinking": False,
        "enable_search": True,
        "top_k": 50,
        "enable_code_interpreter": True,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"model": "qwen-plus"}], "must be a JSON object, not list"),
        ("{}", "must be a JSON object, not str"),
        (None, "must be a JSON object, not NoneType"),
        ({"messages": [{"role": "user", "content": "hi"}]}, 'no "model"'),
        ({"model": None, "messages": []}, 'no "model"'),
        ({"model": "qwen-plus"}, 'no "messages"'),
        ({"model": "qwen-plus", "messages": None}, 'no "messages"'),
    ],
)
def test_malformed_bodies_raise_a_clear_error(body: Any, message: str) -> None:
    with pytest.raises(CompatRequestError, match=message) as info:
        decode_request(body)
    assert isinstance(info.value, CompatError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "qwen-plus", "messages": [{"role": "robot", "content": "hi"}]},
        {"model": "qwen-plus", "messages": [{"role": "tool", "content": "x"}]},  # no tool_call_id
        {"model": "qwen-plus", "messages": "hi"},
        {"model": 42, "messages": [{"role": "user", "content": "hi"}]},
        {"model": "m", "messages": [], "temperature": "hot"},
        {"model": "m", "messages": [], "response_format": {"type": "yaml"}},
        {"model": "m", "messages": [], "tool_choice": "sometimes"},
    ],
)
def test_invalid_fields_raise_validation_error(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        decode_request(body)
