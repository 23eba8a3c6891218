"""ContextWindowPolicy alone: the prompt counted with the tokenizer against the model's window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from qwenkit._core.pipeline import Call
from qwenkit._core.policies import ContextLengthError, ContextWindowPolicy
from qwenkit._exceptions import ValidationError
from qwenkit.catalog import ModelProfile
from qwenkit.tokens import count_messages
from qwenkit.types import ChatRequest, ContentDelta, Event, Finished

EVENTS: list[Event] = [ContentDelta("hi"), Finished("stop")]
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a careful assistant."},
    {"role": "user", "content": "Summarise the history of Hangzhou in three sentences."},
]
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
PROMPT = count_messages(MESSAGES, "qwen").total


class FakeNext:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncIterator[Event]:
        self.calls.append(call)
        for event in EVENTS:
            yield event


def profile(max_input: int, window: int, **fields: Any) -> ModelProfile:
    return ModelProfile.model_validate(
        {
            "name": "tiny-model",
            "context_window": window,
            "max_input_tokens": max_input,
            "max_output_tokens": 100,
            "default_max_tokens": 50,
            "max_reasoning_tokens": 100,
            "thinking": "hybrid_off",
            "tools": True,
            "json_mode": True,
            "json_schema": False,
            "modalities": ["text"],
            "endpoint": "text",
            "tokenizer": "qwen",
            "confidence": "documented",
            **fields,
        }
    )


def make_call(
    model: ModelProfile | None, max_tokens: int | None = 10, thinking: bool = False, **extra: Any
) -> Call:
    request = ChatRequest.model_validate(
        {"model": "tiny-model", "messages": MESSAGES, "max_tokens": max_tokens, **extra}
    )
    call = Call(request=request, profile=model)
    call.state["thinking"] = thinking
    return call


def check(call: Call, enabled: bool = True) -> None:
    ContextWindowPolicy(enabled=enabled).prepare(call)


def test_a_prompt_exactly_at_both_limits_passes_and_the_count_is_stored() -> None:
    call = make_call(profile(PROMPT, PROMPT + 10))
    check(call)
    assert call.state["prompt_tokens"] == PROMPT


def test_one_token_over_the_max_input_fails() -> None:
    with pytest.raises(ContextLengthError) as info:
        check(make_call(profile(PROMPT - 1, PROMPT + 10)))
    error = info.value
    assert isinstance(error, ValidationError)
    assert (error.prompt_tokens, error.max_input_tokens) == (PROMPT, PROMPT - 1)
    assert error.model == "tiny-model"
    assert f"{PROMPT} prompt tokens exceed the max input of tiny-model ({PROMPT - 1})" in str(error)
    assert "trim or summarise the history, lower max_tokens" in str(error)


def test_one_token_over_the_window_with_max_tokens_fails() -> None:
    with pytest.raises(ContextLengthError) as info:
        check(make_call(profile(PROMPT, PROMPT + 9)))
    error = info.value
    assert (error.max_tokens, error.context_window) == (10, PROMPT + 9)
    assert f"+ max_tokens 10 = {PROMPT + 10} exceed the context window" in str(error)


def test_without_max_tokens_the_models_default_answer_budget_counts() -> None:
    check(make_call(profile(PROMPT, PROMPT + 50), max_tokens=None))
    with pytest.raises(ContextLengthError):
        check(make_call(profile(PROMPT, PROMPT + 49), max_tokens=None))


def test_the_thinking_mode_input_limit_applies_when_thinking() -> None:
    model = profile(PROMPT, PROMPT + 10, max_input_tokens_thinking=PROMPT - 1)
    check(make_call(model, thinking=False))
    with pytest.raises(ContextLengthError, match="in thinking mode"):
        check(make_call(model, thinking=True))


def test_tool_definitions_count_and_the_estimate_is_marked() -> None:
    with_tools = count_messages(MESSAGES, "qwen", TOOLS).total
    assert with_tools > PROMPT
    call = make_call(profile(with_tools, with_tools + 10), tools=TOOLS)
    check(call)
    assert call.state["prompt_tokens"] == with_tools
    with pytest.raises(ContextLengthError, match=r"\(estimated\)"):
        check(make_call(profile(with_tools - 1, with_tools + 10), tools=TOOLS))


def test_the_models_tokenizer_family_is_used() -> None:
    count = count_messages(MESSAGES, "qwen3.5").total
    call = make_call(profile(count, count + 10, tokenizer="qwen3.5"))
    check(call)
    assert call.state["prompt_tokens"] == count


def test_an_unknown_model_is_not_checked() -> None:
    call = make_call(None, max_tokens=10**9)
    check(call)
    assert "prompt_tokens" not in call.state


def test_a_disabled_policy_checks_nothing() -> None:
    call = make_call(profile(1, 2))
    check(call, enabled=False)
    assert "prompt_tokens" not in call.state


@pytest.mark.anyio
async def test_policy_passes_events_and_fails_before_call_next() -> None:
    fake = FakeNext()
    call = make_call(profile(PROMPT, PROMPT + 10))
    assert [event async for event in ContextWindowPolicy()(call, fake)] == EVENTS
    assert fake.calls == [call]
    fake = FakeNext()
    with pytest.raises(ContextLengthError):
        _ = [event async for event in ContextWindowPolicy()(make_call(profile(1, 20)), fake)]
    assert fake.calls == []
