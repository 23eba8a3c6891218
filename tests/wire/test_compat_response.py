"""Compatible-mode non-streaming responses, usage objects and error envelopes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from qwenkit.types import AssistantMessage, ChatResponse, Choice, ErrorInfo, Usage
from qwenkit.wire.compat import (
    CompatResponseError,
    decode_error,
    decode_response,
    decode_usage,
    encode_error,
    encode_response,
    encode_usage,
)

# Reference §2.2, verbatim except the elided answer text.
WEB_SEARCH_EXAMPLE: dict[str, Any] = {
    "choices": [
        {
            "message": {"role": "assistant", "content": "根据已有的知识库信息，杭州今天晴。"},
            "finish_reason": "stop",
            "index": 0,
            "logprobs": None,
        }
    ],
    "object": "chat.completion",
    "usage": {
        "prompt_tokens": 1789,
        "completion_tokens": 412,
        "total_tokens": 2201,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
    "created": 1758011574,
    "system_fingerprint": None,
    "model": "qwen-plus",
    "id": "chatcmpl-c87a80cc-8d89-4de8-9e50-370bc45fdd51",
}

# Reference §6.2 (tool call with the Qwen `index` quirk) with the nulls the openai SDK's
# model_dump adds (S12: service_tier, function_call, tool_calls), and §5.4 reasoning usage.
TOOL_CALL_EXAMPLE: dict[str, Any] = {
    "id": "chatcmpl-07df985b-2ff2-4f7c-a6e7-f022f075133b",
    "object": "chat.completion",
    "created": 1761899724,
    "model": "qwen3-max-2026-01-23",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "",
                "reasoning_content": "The user wants the weather in Hangzhou.",
                "function_call": None,
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
            "finish_reason": "tool_calls",
            "logprobs": None,
        }
    ],
    "usage": {
        "prompt_tokens": 719,
        "completion_tokens": 245,
        "total_tokens": 964,
        "completion_tokens_details": {"reasoning_tokens": 153},
        "prompt_tokens_details": None,
    },
    "system_fingerprint": None,
    "service_tier": None,
}


@pytest.mark.parametrize("body", [WEB_SEARCH_EXAMPLE, TOOL_CALL_EXAMPLE], ids=["text", "tools"])
def test_examples_decode_and_reencode_to_an_equal_dict(body: dict[str, Any]) -> None:
    original = copy.deepcopy(body)
    response = decode_response(body)
    encoded = encode_response(response)
    assert encoded == original
    assert json.loads(json.dumps(encoded, ensure_ascii=False)) == original
    assert body == original
    assert decode_response(encoded) == response


def test_web_search_example_fields() -> None:
    response = decode_response(WEB_SEARCH_EXAMPLE)
    assert response.id == "chatcmpl-c87a80cc-8d89-4de8-9e50-370bc45fdd51"
    assert response.request_id == "c87a80cc-8d89-4de8-9e50-370bc45fdd51"
    assert response.model == "qwen-plus"
    assert response.created == 1758011574
    assert response.content == "根据已有的知识库信息，杭州今天晴。"
    assert response.finish_reason == "stop"
    assert response.usage == Usage(
        prompt_tokens=1789, completion_tokens=412, total_tokens=2201, cached_tokens=0
    )
    assert response.extras == {}  # object and system_fingerprint are not kept as extras


def test_tool_call_example_fields() -> None:
    response = decode_response(TOOL_CALL_EXAMPLE)
    assert response.reasoning == "The user wants the weather in Hangzhou."
    assert response.content == ""
    [call] = response.tool_calls
    assert (call.id, call.name, call.index) == (
        "call_8f08d2b0fc0c4d8fab7123",
        "get_current_weather",
        0,
    )
    assert json.loads(call.arguments) == {"location": "杭州市"}
    assert response.usage is not None
    assert response.usage.reasoning_tokens == 153
    assert response.usage.answer_tokens == 92
    assert response.extras == {"service_tier": None}
    assert response.message.extras == {"function_call": None}


def test_encode_canonical_response_has_the_service_shape() -> None:
    response = ChatResponse(
        id="f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45",  # a bare request id, as from the native wire
        request_id="f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45",
        model="qwen-plus",
        created=1758011574,
        choices=[Choice(message=AssistantMessage(content="Hi"), finish_reason="stop")],
        usage=Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, cached_tokens=0),
    )
    assert encode_response(response) == {
        "id": "chatcmpl-f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45",
        "object": "chat.completion",
        "created": 1758011574,
        "model": "qwen-plus",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "system_fingerprint": None,
    }


def test_message_without_content_gets_empty_content() -> None:
    response = ChatResponse(
        id="chatcmpl-1",
        model="m",
        choices=[Choice(message=AssistantMessage(), finish_reason="tool_calls")],
    )
    encoded = encode_response(response)
    assert encoded["choices"][0]["message"] == {"role": "assistant", "content": ""}
    assert "usage" not in encoded
    assert "request_id" not in encoded


def test_request_id_unrelated_to_the_id_is_written() -> None:
    body = {**WEB_SEARCH_EXAMPLE, "id": "chatcmpl-x", "request_id": "other"}
    response = decode_response(body)
    assert response.request_id == "other"
    assert encode_response(response)["request_id"] == "other"


def test_unknown_fields_survive_at_every_level() -> None:
    body = copy.deepcopy(WEB_SEARCH_EXAMPLE)
    body["x_top"] = {"a": [1, 2]}
    body["object"] = "chat.completion.v2"
    body["system_fingerprint"] = "fp_1"
    body["choices"][0]["x_choice"] = True
    body["choices"][0]["logprobs"] = {"content": [{"token": "根", "logprob": -0.1}]}
    body["choices"][0]["message"]["x_message"] = "m"
    body["usage"]["x_usage"] = 7
    body["usage"]["prompt_tokens_details"]["audio_tokens"] = 3
    original = copy.deepcopy(body)
    response = decode_response(body)
    assert response.extras == {
        "x_top": {"a": [1, 2]},
        "object": "chat.completion.v2",
        "system_fingerprint": "fp_1",
    }
    assert response.choices[0].extras == {"x_choice": True}
    assert encode_response(response) == original


def test_usage_null_and_missing_fields() -> None:
    body = {**WEB_SEARCH_EXAMPLE, "usage": None}
    response = decode_response(body)
    assert response.usage is None
    assert encode_response(response)["usage"] is None


@pytest.mark.parametrize("body", [[], "text", 3])
def test_non_object_response_body(body: Any) -> None:
    with pytest.raises(CompatResponseError, match="must be a JSON object"):
        decode_response(body)


@pytest.mark.parametrize("missing", ["id", "model", "choices"])
def test_response_missing_required_field(missing: str) -> None:
    body = {k: v for k, v in WEB_SEARCH_EXAMPLE.items() if k != missing}
    with pytest.raises(ValidationError):
        decode_response(body)


# -- usage ----------------------------------------------------------------------------------------

USAGE_VARIANTS: list[dict[str, Any]] = [
    {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "prompt_tokens_details": None},
    {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 0},
    },
    {
        "prompt_tokens": 3000,
        "completion_tokens": 20,
        "total_tokens": 3020,
        "prompt_tokens_details": {
            "cached_tokens": 0,
            "cache_creation_input_tokens": 2048,
            "cache_creation": {"ephemeral_5m_input_tokens": 2048},
            "cache_type": "ephemeral",
        },
    },
    {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 1, "cache_creation_input_tokens": 0},
    },
    {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
    {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "completion_tokens_details": {"reasoning_tokens": 1, "audio_tokens": None},
        "prompt_tokens_details": {"cached_tokens": None},
    },
    {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "completion_tokens_details": None,
        "input_tokens": 1,
    },
]


@pytest.mark.parametrize("usage", USAGE_VARIANTS)
def test_usage_round_trips_exactly(usage: dict[str, Any]) -> None:
    assert encode_usage(decode_usage(usage)) == usage


def test_usage_flattening() -> None:
    usage = decode_usage(USAGE_VARIANTS[3])
    assert usage.cached_tokens == 0
    assert usage.cache_creation_tokens == 2048
    assert usage.reasoning_tokens == 0
    reasoning = decode_usage(USAGE_VARIANTS[6])
    assert reasoning.reasoning_tokens == 1
    assert reasoning.cached_tokens == 0
    assert decode_usage(USAGE_VARIANTS[7]).extras == {
        "completion_tokens_details": None,
        "input_tokens": 1,
    }
    assert decode_usage(USAGE_VARIANTS[2]).extras == {}  # the default shape keeps nothing extra


def test_usage_encoding_rules_for_canonical_usage() -> None:
    assert encode_usage(Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3)) == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }
    summed = Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3) + Usage(
        prompt_tokens=10, completion_tokens=20, total_tokens=30, cached_tokens=4, reasoning_tokens=5
    )
    assert encode_usage(summed) == {
        "prompt_tokens": 11,
        "completion_tokens": 22,
        "total_tokens": 33,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }


def test_changed_counts_override_kept_details() -> None:
    usage = decode_usage(USAGE_VARIANTS[3])
    changed = usage.model_copy(update={"cached_tokens": 7, "cache_creation_tokens": 0})
    details = encode_usage(changed)["prompt_tokens_details"]
    assert details["cached_tokens"] == 7
    assert details["cache_creation_input_tokens"] == 0
    assert details["cache_type"] == "ephemeral"
    nulled = decode_usage(USAGE_VARIANTS[1]).model_copy(update={"cached_tokens": 9})
    assert encode_usage(nulled)["prompt_tokens_details"] == {"cached_tokens": 9}


def test_encoded_usage_does_not_alias_the_model() -> None:
    usage = decode_usage(USAGE_VARIANTS[3])
    encoded = encode_usage(usage)
    encoded["prompt_tokens_details"]["cache_creation"]["ephemeral_5m_input_tokens"] = 0
    assert encode_usage(usage) == USAGE_VARIANTS[3]


# -- errors ---------------------------------------------------------------------------------------

# Reference §5.2 and §8.1, verbatim.
THINKING_ERROR = (
    '{"error":{"code":"invalid_parameter_error","param":null,"message":"parameter.enable_thinking '
    'must be set to false for non-streaming calls","type":"invalid_request_error"},'
    '"id":"chatcmpl-f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45",'
    '"request_id":"f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45"}'
)
BAD_KEY_ERROR = (
    '{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error",'
    '"param":null,"code":"invalid_api_key"},"request_id":"x"}'
)


@pytest.mark.parametrize(("status", "text"), [(400, THINKING_ERROR), (401, BAD_KEY_ERROR)])
def test_error_envelopes_round_trip(status: int, text: str) -> None:
    error = decode_error(status, text)
    assert encode_error(error) == (status, json.loads(text))
    assert decode_error(status, text.encode()) == error


def test_error_fields() -> None:
    error = decode_error(400, THINKING_ERROR)
    assert error.code == "InvalidParameter"
    assert error.request_id == "f5a1f1ee-dac6-9c1b-9bdb-2f0c22b8af45"
    assert error.message.startswith("parameter.enable_thinking")
    status, body = encode_error(ErrorInfo(429, "Throttling.RateQuota", "slow down", "r1"))
    assert status == 429
    assert body["error"]["code"] == "limit_requests"  # the compatible name of RateQuota
    assert body["request_id"] == "r1"


def test_error_from_a_proxy_page() -> None:
    error = decode_error(502, b"<html>Bad Gateway</html>")
    assert error.status == 502
    assert "Bad Gateway" in error.message


def test_native_usage_details_land_under_compat_names() -> None:
    from qwenkit.wire import native

    usage = native.decode_usage(
        {
            "input_tokens": 287,
            "output_tokens": 6,
            "total_tokens": 293,
            "prompt_tokens_details": {"cached_tokens": 256},
            "output_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 1},
        }
    )
    out = encode_usage(usage)
    assert out["completion_tokens_details"] == {"reasoning_tokens": 4, "audio_tokens": 1}
    assert out["prompt_tokens_details"] == {"cached_tokens": 256}
    assert "output_tokens_details" not in out
