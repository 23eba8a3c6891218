"""Native non-streaming responses: §3.2 bodies of both result formats, usage, unknown fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from qwenkit.types import (
    AssistantMessage,
    ChatResponse,
    Choice,
    FunctionCall,
    TextPart,
    ToolCall,
    Usage,
)
from qwenkit.wire.native import NativeResponseError, decode_response, encode_response

RID = "902fee3b-f7f0-9a8c-96a1-6b4ea25af114"
MESSAGE_BODY: dict[str, Any] = {  # §3.2, verbatim
    "output": {
        "choices": [
            {
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "I am a large-scale language model developed by Alibaba Cloud. "
                    "My name is Qwen.",
                },
            }
        ]
    },
    "usage": {"input_tokens": 22, "output_tokens": 17, "total_tokens": 39},
    "request_id": RID,
}
TEXT_BODY: dict[str, Any] = {
    "output": {"text": "Hello! How can I help?", "finish_reason": "stop"},
    "usage": {"input_tokens": 6, "output_tokens": 50, "total_tokens": 56},
    "request_id": "c0ffee00-0000-0000-0000-000000000001",
}
TOOL_BODY: dict[str, Any] = {  # §6.2
    "output": {
        "choices": [
            {
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "function": {
                                "name": "get_current_weather",
                                "arguments": '{"location":"杭州市"}',
                            },
                            "index": 0,
                            "id": "call_8f08d2b0fc0c4d8fab7123",
                            "type": "function",
                        }
                    ],
                },
            }
        ]
    },
    "usage": {"input_tokens": 200, "output_tokens": 20, "total_tokens": 220},
    "request_id": "tool-1",
}


def test_message_format_decodes() -> None:
    response = decode_response(MESSAGE_BODY, model="qwen-plus")
    assert response.id == "chatcmpl-" + RID
    assert response.request_id == RID
    assert response.model == "qwen-plus"
    assert response.content.endswith("My name is Qwen.")
    assert response.finish_reason == "stop"
    assert response.usage == Usage(prompt_tokens=22, completion_tokens=17, total_tokens=39)


def test_text_format_decodes() -> None:
    response = decode_response(TEXT_BODY)
    assert (response.content, response.finish_reason) == ("Hello! How can I help?", "stop")
    assert response.usage is not None
    assert response.usage.completion_tokens == 50


@pytest.mark.parametrize(
    ("body", "result_format"),
    [(MESSAGE_BODY, "message"), (TEXT_BODY, "text"), (TOOL_BODY, "message")],
)
def test_bodies_re_encode_equal(body: dict[str, Any], result_format: str) -> None:
    original = copy.deepcopy(body)
    response = decode_response(body, model="qwen-plus")
    assert encode_response(response, result_format=result_format) == original  # type: ignore[arg-type]
    assert body == original  # the input is not modified


def test_tool_calls_decode() -> None:
    [call] = decode_response(TOOL_BODY).tool_calls
    assert call == ToolCall(
        id="call_8f08d2b0fc0c4d8fab7123",
        function=FunctionCall(name="get_current_weather", arguments='{"location":"杭州市"}'),
        index=0,
    )


def test_the_other_result_format_from_the_same_response() -> None:
    response = decode_response(MESSAGE_BODY)
    assert encode_response(response, result_format="text")["output"] == {
        "text": response.content,
        "finish_reason": "stop",
    }
    assert encode_response(decode_response(TEXT_BODY))["output"]["choices"] == [
        {
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": TEXT_BODY["output"]["text"]},
        }
    ]


def test_usage_details_and_unknown_usage_keys() -> None:
    body = copy.deepcopy(MESSAGE_BODY)
    body["usage"] = {
        "input_tokens": 3000,
        "output_tokens": 300,
        "total_tokens": 3300,
        "prompt_tokens_details": {
            "cached_tokens": 2048,
            "cache_creation_input_tokens": 512,
            "cache_type": "ephemeral",
        },
        "output_tokens_details": {"reasoning_tokens": 120},
        "image_tokens": 1200,
        "plugins": {"code_interpreter": {"count": 1}},
    }
    response = decode_response(body)
    usage = response.usage
    assert usage is not None
    assert (usage.cached_tokens, usage.cache_creation_tokens, usage.reasoning_tokens) == (
        2048,
        512,
        120,
    )
    assert usage.extras == {
        "prompt_tokens_details": {"cache_type": "ephemeral"},
        "image_tokens": 1200,
        "plugins": {"code_interpreter": {"count": 1}},
    }
    assert encode_response(response) == body


def test_missing_total_is_computed() -> None:
    body = copy.deepcopy(MESSAGE_BODY)
    body["usage"] = {"input_tokens": 5, "output_tokens": 7}
    usage = decode_response(body).usage
    assert usage is not None
    assert usage.total_tokens == 12


def test_search_info_and_unknown_keys_are_kept() -> None:
    body = copy.deepcopy(MESSAGE_BODY)
    search = {
        "search_results": [
            {"site_name": "x", "icon": "", "index": 1, "title": "t", "url": "https://x"}
        ]
    }
    body["output"]["search_info"] = search
    body["output"]["choices"][0]["logprobs"] = None
    body["output"]["choices"][0]["message"]["future_field"] = {"a": 1}
    response = decode_response(body)
    assert response.extras == {"search_info": search}
    assert response.message.extras == {"future_field": {"a": 1}}
    assert encode_response(response) == body


def test_sdk_wrapper_fields_are_dropped() -> None:
    printed = copy.deepcopy(MESSAGE_BODY)  # as the dashscope SDK prints a response
    printed.update({"status_code": 200, "code": "", "message": ""})
    printed["output"].update({"text": None, "finish_reason": None})
    assert encode_response(decode_response(printed)) == MESSAGE_BODY


def test_multimodal_answer_keeps_its_list_shape() -> None:
    body = copy.deepcopy(MESSAGE_BODY)
    body["output"]["choices"][0]["message"]["content"] = [{"text": "图中是一只猫。"}]
    body["usage"]["image_tokens"] = 1024
    response = decode_response(body)
    assert response.message.content == [TextPart(text="图中是一只猫。")]
    assert response.content == "图中是一只猫。"
    assert encode_response(response) == body


def test_error_body_is_not_a_response() -> None:
    with pytest.raises(NativeResponseError, match="InvalidApiKey"):
        decode_response({"code": "InvalidApiKey", "message": "Invalid API-key provided."})
    with pytest.raises(NativeResponseError):
        decode_response({"output": {"task_id": "t", "task_status": "PENDING"}, "request_id": "r"})


def test_encode_a_compatible_response() -> None:
    response = ChatResponse(
        id="chatcmpl-abc",
        model="qwen-plus",
        created=1_700_000_000,
        choices=[
            Choice(
                index=0,
                message=AssistantMessage(content="Hi", reasoning_content="greet"),
                finish_reason="stop",
            )
        ],
        usage=Usage(prompt_tokens=3, completion_tokens=5, total_tokens=8, reasoning_tokens=2),
        object="chat.completion",
    )
    assert encode_response(response) == {
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "Hi", "reasoning_content": "greet"},
                    "index": 0,
                }
            ]
        },
        "usage": {
            "input_tokens": 3,
            "output_tokens": 5,
            "total_tokens": 8,
            "output_tokens_details": {"reasoning_tokens": 2},
        },
        "request_id": "abc",
    }
