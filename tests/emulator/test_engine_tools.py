"""The default engine's tool calls: tool_choice auto/none/required/named, parallel calls, names."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from qwenkit.catalog import get_model
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.engine import DefaultEngine, EngineContext, tool_rounds
from qwenkit.emulator.engine.extract import extract
from qwenkit.emulator.generation import Generation
from qwenkit.types import ChatRequest


def function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    parameters = {"type": "object", "properties": properties, "required": required}
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


WEATHER = function(
    "get_weather",
    "Get the current weather for a city.",
    {
        "location": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    ["location"],
)
TIME = function(
    "get_local_time",
    "Current local time in a city.",
    {"city": {"type": "string"}},
    ["city"],
)
STOCK = function(
    "get_stock_price",
    "Latest stock price of a company.",
    {"ticker": {"type": "string"}},
    ["ticker"],
)
TOOLS = [STOCK, WEATHER, TIME]


def generate(text: str, *, seed: int = 3, thinking: bool = False, **fields: Any) -> Generation:
    messages = fields.pop("messages", [{"role": "user", "content": text}])
    fields.setdefault("tools", TOOLS)
    request = ChatRequest(model="qwen-plus", messages=messages, **fields)
    ctx = EngineContext(
        get_model("qwen-plus"), thinking, EmulatorConfig(), seed, tool_rounds(request)
    )
    return DefaultEngine().generate(request, ctx)


def calls(generation: Generation) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, json.loads(c.arguments)) for c in generation.tool_calls]


def test_auto_calls_the_best_matching_tool() -> None:
    generation = generate("What's the weather in Shanghai today?")
    assert calls(generation) == [("get_weather", {"location": "Shanghai"})]
    assert (generation.content, generation.finish_reason) == ("", "tool_calls")
    call = generation.tool_calls[0]
    assert re.fullmatch(r"call_[0-9a-f]{24}", call.id)
    assert call.index == 0
    assert call.type == "function"


def test_auto_understands_what_a_weather_question_looks_like() -> None:
    assert calls(generate("Should I bring an umbrella to Shanghai?")) == [
        ("get_weather", {"location": "Shanghai"})
    ]
    assert calls(generate("上海明天会下雨吗？")) == [("get_weather", {"location": "上海"})]


def test_auto_answers_in_text_when_no_tool_matches() -> None:
    generation = generate("Hello, how are you?")
    assert generation.tool_calls == ()
    assert generation.content
    assert generation.finish_reason == "stop"


def test_none_never_calls() -> None:
    generation = generate("What's the weather in Shanghai?", tool_choice="none")
    assert generation.tool_calls == ()
    assert generation.content


def test_named_choice_always_calls_that_function() -> None:
    choice = {"type": "function", "function": {"name": "get_stock_price"}}
    generation = generate("What's the weather in Shanghai?", tool_choice=choice)
    assert [name for name, _ in calls(generation)] == ["get_stock_price"]
    history = [
        {"role": "user", "content": "Price of ACME?"},
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "get_stock_price")]},
        {"role": "tool", "tool_call_id": "c1", "content": "12.5"},
    ]
    again = generate("", messages=history, tool_choice=choice)
    assert [name for name, _ in calls(again)] == ["get_stock_price"]


def _call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def test_required_calls_the_best_match_or_the_first_tool() -> None:
    assert [n for n, _ in calls(generate("ACME stock price?", tool_choice="required"))] == [
        "get_stock_price"
    ]
    fallback = calls(generate("Hello there", tool_choice="required"))
    assert [name for name, _ in fallback] == ["get_stock_price"]


def test_auto_after_tool_results_answers_instead_of_calling() -> None:
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [_call("c1", "get_weather")]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"},
    ]
    generation = generate("", messages=history)
    assert generation.tool_calls == ()
    assert '"rain"' in generation.content


def test_parallel_calls_one_tool_per_name_found() -> None:
    text = "What's the weather in Beijing and Shanghai?"
    assert extract(text).names == ("Beijing", "Shanghai")
    generation = generate(text, parallel_tool_calls=True)
    assert calls(generation) == [
        ("get_weather", {"location": "Beijing"}),
        ("get_weather", {"location": "Shanghai"}),
    ]
    assert [c.index for c in generation.tool_calls] == [0, 1]
    assert len({c.id for c in generation.tool_calls}) == 2
    assert calls(generate(text)) == [("get_weather", {"location": "Beijing"})]


def test_parallel_calls_every_matching_tool_best_first() -> None:
    generation = generate("Weather and local time in Tokyo, please.", parallel_tool_calls=True)
    assert calls(generation) == [
        ("get_local_time", {"city": "Tokyo"}),
        ("get_weather", {"location": "Tokyo"}),
    ]


def test_chinese_names_for_parallel_calls() -> None:
    generation = generate("北京和上海的天气怎么样？", parallel_tool_calls=True)
    assert calls(generation) == [
        ("get_weather", {"location": "北京"}),
        ("get_weather", {"location": "上海"}),
    ]


def test_optional_arguments_only_when_the_message_gives_them() -> None:
    assert calls(generate("Weather in Paris in fahrenheit?")) == [
        ("get_weather", {"location": "Paris", "unit": "fahrenheit"})
    ]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Should I bring an umbrella to New York?", ("New York",)),
        ("Is it sunny in San Francisco or Los Angeles?", ("San Francisco", "Los Angeles")),
        ('Search for "deep sea fish" please', ()),
        ("帮我查询杭州市的天气", ("杭州市",)),
    ],
)
def test_names_found_in_messages(text: str, names: tuple[str, ...]) -> None:
    assert extract(text).names == names


def test_ids_are_stable_per_seed() -> None:
    first = generate("Weather in Paris?", seed=1).tool_calls[0].id
    assert generate("Weather in Paris?", seed=1).tool_calls[0].id == first
    assert generate("Weather in Paris?", seed=2).tool_calls[0].id != first


def test_thinking_reasons_about_the_tools_before_calling() -> None:
    generation = generate("Weather in Paris?", thinking=True)
    assert "Tools available: get_stock_price, get_weather, get_local_time." in generation.reasoning
    assert "I should call get_weather." in generation.reasoning
    assert calls(generation) == [("get_weather", {"location": "Paris"})]
