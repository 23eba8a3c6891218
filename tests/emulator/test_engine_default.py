"""The default engine's text: determinism, max_tokens cuts, thinking, Chinese, tool-result answers."""

from __future__ import annotations

from typing import Any

import pytest

from qwenkit.catalog import get_model
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.engine import (
    DefaultEngine,
    EngineContext,
    build_engine,
    pending_tool_results,
    tool_rounds,
)
from qwenkit.emulator.generation import Generation
from qwenkit.tokens import get_tokenizer
from qwenkit.types import ChatRequest

ENGLISH = "Can you explain how photosynthesis works in desert plants?"
CHINESE = "请介绍一下长城的历史和建造过程。"


def make_request(*messages: dict[str, Any], **fields: Any) -> ChatRequest:
    return ChatRequest(model=fields.pop("model", "qwen-plus"), messages=list(messages), **fields)


def context(
    request: ChatRequest, *, seed: int = 7, thinking: bool = False, model: str = "qwen-plus"
) -> EngineContext:
    return EngineContext(get_model(model), thinking, EmulatorConfig(), seed, tool_rounds(request))


def answer(request: ChatRequest, **kwargs: Any) -> Generation:
    return DefaultEngine().generate(request, context(request, **kwargs))


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_same_request_and_seed_give_the_same_generation() -> None:
    request = make_request(user(ENGLISH))
    first = answer(request)
    assert first == answer(request.model_copy(deep=True))
    assert first == build_engine(EmulatorConfig()).generate(request, context(request))
    assert first.content
    assert first.finish_reason == "stop"
    assert first.source == "default"


def test_streaming_flag_does_not_change_the_answer() -> None:
    assert answer(make_request(user(ENGLISH))) == answer(make_request(user(ENGLISH), stream=True))


def test_seed_and_prompt_vary_the_answer() -> None:
    request = make_request(user(ENGLISH))
    assert len({answer(request, seed=seed).content for seed in range(6)}) > 1
    assert answer(make_request(user("Tell me about volcanoes."))).content != answer(request).content


def test_answer_acknowledges_the_prompt_and_has_a_bounded_length() -> None:
    tokenizer = get_tokenizer("qwen")
    for seed in range(20):
        content = answer(make_request(user(ENGLISH)), seed=seed).content
        assert content.startswith("You asked about explain, photosynthesis and works.")
        assert 40 <= tokenizer.count(content) <= 140


@pytest.mark.parametrize("prompt", [ENGLISH, CHINESE])
@pytest.mark.parametrize("model", ["qwen-plus", "qwen3.5-plus"])
def test_max_tokens_cuts_the_content_to_exactly_that_many_tokens(prompt: str, model: str) -> None:
    tokenizer = get_tokenizer(get_model(model).tokenizer)
    full = answer(make_request(user(prompt), model=model), model=model).content
    length = tokenizer.count(full)
    for limit in (1, 2, 3, 5, 8, 13, 21, length - 1):
        cut = answer(make_request(user(prompt), model=model, max_tokens=limit), model=model)
        assert cut.finish_reason == "length"
        assert tokenizer.count(cut.content) == limit
        assert full.startswith(cut.content)
    for limit in (length, length + 50):
        kept = answer(make_request(user(prompt), model=model, max_tokens=limit), model=model)
        assert (kept.content, kept.finish_reason) == (full, "stop")


def test_chinese_prompt_gets_a_chinese_answer() -> None:
    content = answer(make_request(user(CHINESE))).content
    assert content.startswith("关于“")
    assert "。" in content
    assert not any(c.isascii() and c.isalpha() for c in content)


def test_thinking_puts_reasoning_first_and_keeps_it_out_of_the_content() -> None:
    request = make_request(user(ENGLISH))
    plain = answer(request)
    thought = answer(request, thinking=True)
    assert plain.reasoning == ""
    assert thought.reasoning.startswith("The user is asking about explain, photosynthesis")
    assert thought.content == plain.content
    assert thought.reasoning not in thought.content
    assert 30 <= get_tokenizer("qwen").count(thought.reasoning) <= 100


def test_thinking_budget_bounds_the_reasoning_only() -> None:
    tokenizer = get_tokenizer("qwen")
    full = answer(make_request(user(ENGLISH)), thinking=True)
    for budget in (1, 4, 9, 17):
        limited = answer(make_request(user(ENGLISH), thinking_budget=budget), thinking=True)
        assert tokenizer.count(limited.reasoning) == budget
        assert full.reasoning.startswith(limited.reasoning)
        assert (limited.content, limited.finish_reason) == (full.content, "stop")


def test_max_tokens_bounds_the_content_not_the_reasoning() -> None:
    tokenizer = get_tokenizer("qwen")
    limited = answer(make_request(user(ENGLISH), max_tokens=4), thinking=True)
    assert tokenizer.count(limited.content) == 4
    assert limited.finish_reason == "length"
    assert tokenizer.count(limited.reasoning) > 4


def test_chinese_reasoning_for_a_chinese_prompt() -> None:
    generation = answer(make_request(user(CHINESE)), thinking=True)
    assert generation.reasoning.startswith("用户在问“")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def tool_history(*results: str) -> list[dict[str, Any]]:
    calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"},
        }
        for i in range(len(results))
    ]
    return [
        user("Weather in Paris and Rome?"),
        {"role": "assistant", "content": "", "tool_calls": calls},
        *(
            {"role": "tool", "tool_call_id": f"call_{i}", "content": r}
            for i, r in enumerate(results)
        ),
    ]


def test_after_tool_results_the_answer_quotes_them() -> None:
    request = make_request(
        *tool_history("Paris: rain, 12°C", "Rome: sunny, 24°C"), tools=[WEATHER_TOOL]
    )
    generation = answer(request)
    assert generation.tool_calls == ()
    assert generation.finish_reason == "stop"
    assert 'According to get_weather: "Paris: rain, 12°C".' in generation.content
    assert 'According to get_weather: "Rome: sunny, 24°C".' in generation.content


def test_history_helpers() -> None:
    request = make_request(*tool_history("a", "b"))
    assistant, results = pending_tool_results(request)
    assert assistant is not None
    assert [r.text for r in results] == ["a", "b"]
    assert tool_rounds(request) == 1
    follow_up = make_request(
        *tool_history("a"), {"role": "assistant", "content": "ok"}, user("thanks")
    )
    assert pending_tool_results(follow_up) == (None, [])
    assert tool_rounds(follow_up) == 1
    orphan = make_request({"role": "tool", "tool_call_id": "x", "content": "c"})
    assert pending_tool_results(orphan) == (None, [])
    assert tool_rounds(make_request(user("hi"))) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [WEATHER_TOOL], "parallel_tool_calls": True},
        {"response_format": {"type": "json_object"}},
        {"max_tokens": 9},
    ],
)
def test_the_built_engine_is_deterministic_with_quirks_on(fields: dict[str, Any]) -> None:
    quirks = {"json_fence_rate": 0.5, "drop_nested_rate": 0.5, "tool_loop_rounds": 2}
    config = EmulatorConfig(quirks=quirks)
    request = make_request(user("JSON: weather in Oslo and Bergen?"), **fields)
    results = set()
    for _ in range(3):
        ctx = EngineContext(get_model("qwen3-32b"), True, config, 99, tool_rounds(request))
        results.add(repr(build_engine(config).generate(request.model_copy(deep=True), ctx)))
    assert len(results) == 1


def test_reasoning_after_tool_results_says_it_can_answer() -> None:
    request = make_request(*tool_history("Paris: rain"), tools=[WEATHER_TOOL])
    generation = answer(request, thinking=True)
    assert "The tool results are in, so I can answer now." in generation.reasoning
    assert generation.content.startswith('According to get_weather: "Paris: rain".')
