"""The switchable quirks, each at rate 0 and 1: JSON fences, the tool loop, dropped nested args."""

from __future__ import annotations

import json
from typing import Any

from qwenkit.catalog import get_model
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.engine import EngineContext, ScenarioRule, build_engine, tool_rounds
from qwenkit.emulator.generation import Generation
from qwenkit.tokens import get_tokenizer
from qwenkit.types import ChatRequest

WEATHER = {
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
ADDRESS = {
    "type": "object",
    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
    "required": ["street", "city"],
}
SHIP = {
    "type": "function",
    "function": {
        "name": "ship_parcel",
        "description": "Ship a parcel to an address.",
        "parameters": {
            "type": "object",
            "properties": {"recipient": {"type": "string"}, "address": ADDRESS},
            "required": ["recipient", "address"],
        },
    },
}


def run(
    messages: list[dict[str, Any]],
    rules: tuple[ScenarioRule, ...] = (),
    *,
    seed: int = 1,
    **quirks: Any,
) -> Generation:
    fields = {
        k: quirks.pop(k)
        for k in ("tools", "tool_choice", "response_format", "max_tokens")
        if k in quirks
    }
    request = ChatRequest(model="qwen-plus", messages=messages, **fields)
    config = EmulatorConfig(quirks=quirks)
    ctx = EngineContext(get_model("qwen-plus"), False, config, seed, tool_rounds(request))
    return build_engine(config, rules).generate(request, ctx)


JSON_ASK = [{"role": "user", "content": "Reply in JSON: the capital of France."}]
JSON_MODE = {"type": "json_object"}


def test_json_fence_rate_zero_never_fences() -> None:
    for seed in range(30):
        generation = run(JSON_ASK, seed=seed, response_format=JSON_MODE)
        assert json.loads(generation.content)
        assert generation.notes == ()


def test_json_fence_rate_one_always_fences() -> None:
    for seed in range(30):
        generation = run(JSON_ASK, seed=seed, response_format=JSON_MODE, json_fence_rate=1.0)
        assert generation.content.startswith("```json\n{")
        assert generation.content.endswith("}\n```")
        assert json.loads(generation.content[len("```json\n") : -len("\n```")])
        assert generation.notes == ("json_fenced",)


def test_json_fence_rate_half_is_a_stable_share() -> None:
    fenced = [
        run(JSON_ASK, seed=s, response_format=JSON_MODE, json_fence_rate=0.5).notes
        for s in range(40)
    ]
    assert 5 < fenced.count(("json_fenced",)) < 35
    again = [
        run(JSON_ASK, seed=s, response_format=JSON_MODE, json_fence_rate=0.5).notes
        for s in range(40)
    ]
    assert fenced == again


def test_json_fence_leaves_text_answers_alone_and_respects_max_tokens() -> None:
    text = run([{"role": "user", "content": "The capital of France?"}], json_fence_rate=1.0)
    assert "```" not in text.content
    assert text.notes == ()
    cut = run(JSON_ASK, response_format=JSON_MODE, max_tokens=3, json_fence_rate=1.0)
    assert get_tokenizer("qwen").count(cut.content) == 3
    assert cut.content.startswith("```")
    assert cut.finish_reason == "length"


def history(rounds: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    for index in range(rounds):
        call = {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
        }
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append({"role": "tool", "tool_call_id": f"call_{index}", "content": "rain"})
    return messages


def test_tool_loop_off_answers_after_the_first_results() -> None:
    generation = run(history(1), tools=[WEATHER])
    assert generation.tool_calls == ()
    assert '"rain"' in generation.content


def test_tool_loop_repeats_the_same_call_until_the_round_count() -> None:
    for rounds in (1, 2):
        generation = run(history(rounds), tools=[WEATHER], tool_loop_rounds=3)
        assert [(c.name, c.arguments) for c in generation.tool_calls] == [
            ("get_weather", '{"location": "Paris"}')
        ]
        assert generation.finish_reason == "tool_calls"
        assert generation.notes == ("tool_loop",)
    done = run(history(3), tools=[WEATHER], tool_loop_rounds=3)
    assert done.tool_calls == ()
    assert done.finish_reason == "stop"
    assert done.notes == ()


def test_tool_loop_only_under_auto() -> None:
    generation = run(history(1), tools=[WEATHER], tool_choice="none", tool_loop_rounds=3)
    assert generation.tool_calls == ()
    assert generation.notes == ()


SHIP_ASK = [{"role": "user", "content": "Ship a parcel to Ana Silva at 5 Rua Augusta, Lisbon."}]


def test_drop_nested_rate_zero_keeps_every_argument() -> None:
    generation = run(SHIP_ASK, tools=[SHIP])
    arguments = json.loads(generation.tool_calls[0].arguments)
    assert set(arguments["address"]) == {"street", "city"}
    assert generation.notes == ()


def test_drop_nested_rate_one_drops_one_nested_property() -> None:
    generation = run(SHIP_ASK, tools=[SHIP], drop_nested_rate=1.0)
    arguments = json.loads(generation.tool_calls[0].arguments)
    assert set(arguments) == {"recipient", "address"}
    assert len(arguments["address"]) == 1
    assert generation.notes == ("dropped_nested",)


def test_drop_nested_ignores_flat_arguments() -> None:
    generation = run(
        [{"role": "user", "content": "Weather in Paris?"}], tools=[WEATHER], drop_nested_rate=1.0
    )
    assert json.loads(generation.tool_calls[0].arguments) == {"location": "Paris"}
    assert generation.notes == ()


def test_drop_nested_takes_a_deepest_property() -> None:
    deep = {"a": 1, "b": {"c": 2, "d": {"e": 3, "f": 4}}}
    rule = ScenarioRule.model_validate({"tool_calls": [{"name": "f", "arguments": deep}]})
    generation = run(SHIP_ASK, (rule,), drop_nested_rate=1.0)
    arguments = json.loads(generation.tool_calls[0].arguments)
    assert arguments["a"] == 1
    assert arguments["b"]["c"] == 2
    assert len(arguments["b"]["d"]) == 1


def test_a_rule_can_opt_out_of_quirks() -> None:
    data = {"json": {"city": "Paris"}, "quirks": False}
    generation = run(
        JSON_ASK,
        (ScenarioRule.model_validate(data),),
        response_format=JSON_MODE,
        json_fence_rate=1.0,
    )
    assert generation.content == '{"city": "Paris"}'
    assert generation.notes == ()
    data["quirks"] = True
    fenced = run(
        JSON_ASK,
        (ScenarioRule.model_validate(data),),
        response_format=JSON_MODE,
        json_fence_rate=1.0,
    )
    assert fenced.content == '```json\n{"city": "Paris"}\n```'


def test_errors_are_never_changed_by_quirks() -> None:
    rule = ScenarioRule.model_validate(
        {"error": {"status": 500, "code": "InternalError", "message": "x"}}
    )
    generation = run(history(1), (rule,), tools=[WEATHER], tool_loop_rounds=5)
    assert generation.error is not None
    assert generation.tool_calls == ()
    assert generation.notes == ()
