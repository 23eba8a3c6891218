"""The canonical types: dicts in, the same dicts out; unknown fields and parts kept."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from qwenkit.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    OtherPart,
    TextPart,
    ToolMessage,
    Usage,
    UserMessage,
    parse_messages,
)

REQUEST = {
    "model": "qwen-plus",
    "messages": [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "Long policy", "cache_control": {"type": "ephemeral"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                {"type": "text", "text": "What is it?"},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "index": 0,
                    "function": {"name": "look", "arguments": '{"q": "杭州"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
        {"role": "user", "content": [{"type": "hologram", "hologram": {"id": 7}}]},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "look", "parameters": {"type": "object", "properties": {}}},
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "look"}},
    "enable_thinking": False,
    "stream_options": {"include_usage": True},
    "x_vendor_flag": {"nested": [1, 2]},
}


def test_request_round_trips_exactly_with_unknown_fields() -> None:
    req = ChatRequest.model_validate(REQUEST)
    assert req.to_wire() == REQUEST
    assert req.extras == {"x_vendor_flag": {"nested": [1, 2]}}
    assert req.includes_usage


def test_messages_are_typed_by_role_and_parts_by_type() -> None:
    req = ChatRequest.model_validate(REQUEST)
    assert isinstance(req.messages[2], AssistantMessage)
    assert isinstance(req.messages[3], ToolMessage)
    user = req.messages[1]
    assert isinstance(user, UserMessage)
    assert user.text == "What is it?"
    system_part = req.messages[0].content[0]  # type: ignore[index]  # content is a list here
    assert isinstance(system_part, TextPart)
    assert system_part.cache_control is not None
    unknown = req.messages[4].content[0]  # type: ignore[index]
    assert isinstance(unknown, OtherPart)
    assert unknown.to_wire() == {"type": "hologram", "hologram": {"id": 7}}


def test_bad_messages_fail_loudly() -> None:
    with pytest.raises(ValidationError, match="tool_call_id"):
        parse_messages([{"role": "tool", "content": "x"}])
    with pytest.raises(ValidationError):
        parse_messages([{"role": "robot", "content": "x"}])


def test_parse_messages_accepts_models_and_dicts_mixed() -> None:
    msgs = parse_messages([UserMessage(content="a"), {"role": "assistant", "content": "b"}])
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[0].to_wire() == {"role": "user", "content": "a"}


def test_response_keeps_reasoning_out_of_its_text() -> None:
    resp = ChatResponse.model_validate(
        {
            "id": "chatcmpl-1",
            "model": "qwen-plus",
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "content": "42",
                        "reasoning_content": "think...",
                    },
                    "finish_reason": "stop",
                }
            ],
        }
    )
    assert str(resp) == "42"
    assert resp.reasoning == "think..."
    assert "think" not in resp.content


def test_usage_adds_and_splits_reasoning() -> None:
    total = Usage(
        prompt_tokens=10, completion_tokens=5, total_tokens=15, reasoning_tokens=3
    ) + Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2, cached_tokens=1)
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (11, 6, 17)
    assert total.cached_tokens == 1
    assert total.answer_tokens == 3
