"""Scenario rules: loading (YAML, JSON, data), validation messages, matching, responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qwenkit._exceptions import UsageError
from qwenkit.catalog import get_model
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.engine import (
    DefaultEngine,
    Engine,
    EngineContext,
    ScenarioEngine,
    ScenarioRule,
    build_engine,
    load_scenarios,
    tool_rounds,
)
from qwenkit.emulator.generation import Fault, Generation
from qwenkit.types import ChatRequest, ErrorInfo

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "emulator" / "scenarios.yaml"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def ask(
    engine: Engine, messages: list[dict[str, Any]], *, thinking: bool = False, **fields: Any
) -> Generation:
    request = ChatRequest(model=fields.pop("model", "qwen-plus"), messages=messages, **fields)
    ctx = EngineContext(
        get_model("qwen-plus"), thinking, EmulatorConfig(), 11, tool_rounds(request)
    )
    return engine.generate(request, ctx)


def engine_of(*rules: dict[str, Any]) -> ScenarioEngine:
    return ScenarioEngine(load_scenarios(list(rules)), DefaultEngine())


def test_the_example_file_scripts_the_weather_agent() -> None:
    engine = build_engine(EmulatorConfig(), load_scenarios(EXAMPLE))
    messages = [user("Should I bring an umbrella to Shanghai?")]
    first = ask(engine, messages, tools=[WEATHER], thinking=True)
    assert first.source == "scenario:umbrella-call-weather"
    assert first.finish_reason == "tool_calls"
    assert first.content == ""
    assert "get_weather" in first.reasoning
    (call,) = first.tool_calls
    assert (call.name, json.loads(call.arguments)) == (
        "get_weather",
        {"location": "Shanghai", "unit": "celsius"},
    )
    messages += [
        {"role": "assistant", "content": "", "tool_calls": [call.model_dump(mode="json")]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"condition": "light rain"}'},
    ]
    second = ask(engine, messages, tools=[WEATHER])
    assert second.source == "scenario:umbrella-answer"
    assert second.content.startswith("Yes, bring an umbrella.")
    assert second.finish_reason == "stop"
    assert second.reasoning == ""
    no_tools = ask(engine, [user("Should I bring an umbrella to Shanghai?")])
    assert no_tools.source == "scenario:umbrella-no-tools"


def test_load_from_yaml_json_and_data(tmp_path: Path) -> None:
    rules = [{"name": "hi", "match": {"last_user": "hi"}, "text": "hello"}]
    (tmp_path / "s.yaml").write_text("- name: hi\n  match: {last_user: hi}\n  text: hello\n")
    (tmp_path / "s.json").write_text(json.dumps({"scenarios": rules}))
    expected = [ScenarioRule.model_validate(rules[0])]
    assert load_scenarios(tmp_path / "s.yaml") == expected
    assert load_scenarios(str(tmp_path / "s.json")) == expected
    assert load_scenarios({"scenarios": rules}) == expected
    assert load_scenarios(rules) == expected
    (tmp_path / "empty.yaml").write_text("")
    assert load_scenarios(tmp_path / "empty.yaml") == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"name": "typo", "text": "x", "mathc": {}}, r"rule 1 \(typo\): mathc: Extra inputs"),
        ({"text": "x", "json": {}}, r"rule 1: .*one response, got text and json"),
        ({"match": {"model": "qwen-plus"}}, r"rule 1: .*needs a response"),
        ({"match": {"last_user": "("}, "text": "x"}, r"rule 1: match.last_user: .*invalid regex"),
        ({"error": {"status": 200, "code": "X", "message": "m"}}, r"error.status: .*greater than"),
        ({"fault": {"kind": "explode"}}, r"fault.kind"),
        ({"tool_calls": []}, r"tool_calls: .*at least 1"),
    ],
)
def test_invalid_rules_name_the_rule_and_the_field(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_scenarios([{"text": "fine"}, rule])


def test_invalid_top_level_shapes(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="list of rules or a mapping"):
        load_scenarios({"rules": []})
    (tmp_path / "bad.yaml").write_text("text: x\n")
    with pytest.raises(UsageError, match=r"bad\.yaml"):
        load_scenarios(tmp_path / "bad.yaml")


def test_conditions_and_first_match_wins() -> None:
    engine = engine_of(
        {"name": "max", "match": {"model": "qwen-max*"}, "text": "max"},
        {"name": "tools", "match": {"tools_offered": ["get_weather"], "round": 0}, "text": "tools"},
        {"name": "think", "match": {"thinking": True}, "text": "think"},
        {"name": "hello", "match": {"last_user": "(?i)^hello"}, "text": "hi!"},
        {"name": "results", "match": {"has_tool_results": True}, "text": "done"},
    )
    assert ask(engine, [user("x")], model="qwen-max-latest").source == "scenario:max"
    assert ask(engine, [user("x")], tools=[WEATHER]).source == "scenario:tools"
    assert ask(engine, [user("x")], thinking=True).source == "scenario:think"
    assert ask(engine, [user("Hello there")]).content == "hi!"
    assert ask(engine, [user("oh, hello")]).source == "default"
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history = [
        user("x"),
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert ask(engine, history, tools=[WEATHER]).source == "scenario:results"


def test_tool_call_responses_keep_ids_and_argument_text() -> None:
    engine = engine_of(
        {
            "tool_calls": [
                {"name": "a", "arguments": {"city": "杭州"}, "id": "call_given"},
                {"name": "b", "arguments": '{"raw":1 }'},
            ]
        }
    )
    generation = ask(engine, [user("x")])
    first, second = generation.tool_calls
    assert (first.id, first.arguments, first.index) == ("call_given", '{"city": "杭州"}', 0)
    assert second.arguments == '{"raw":1 }'
    assert second.id.startswith("call_")
    assert second.index == 1
    assert generation.finish_reason == "tool_calls"
    assert ask(engine, [user("x")]) == generation


def test_json_error_and_fault_responses() -> None:
    engine = engine_of(
        {"match": {"last_user": "json"}, "json": {"answer": "是", "n": 1}},
        {
            "match": {"last_user": "busy"},
            "error": {"status": 429, "code": "Throttling", "message": "m"},
        },
        {
            "match": {"last_user": "drop"},
            "text": "partial",
            "fault": {"kind": "drop", "after_chunks": 2},
        },
        {"match": {"last_user": "boom"}, "fault": {"kind": "error_mid_stream", "after_chunks": 1}},
    )
    assert ask(engine, [user("json")]).content == '{"answer": "是", "n": 1}'
    error = ask(engine, [user("busy")])
    assert error.error == ErrorInfo(429, "Throttling", "m")
    assert error.error.request_id is None
    dropped = ask(engine, [user("drop")])
    assert dropped.content == "partial"
    assert dropped.fault == Fault("drop", 2)
    boom = ask(engine, [user("boom")]).fault
    assert boom is not None
    assert boom.kind == "error_mid_stream"
    assert boom.error is not None
    assert boom.error.status == 500
    assert boom.error.code == "InternalError"


def test_scripted_text_respects_limits_and_overrides() -> None:
    engine = engine_of(
        {
            "match": {"last_user": "cut"},
            "text": "one two three four five six",
            "reasoning": "a b c d e f",
        },
        {"match": {"last_user": "odd"}, "text": "fine", "finish_reason": "content_filter"},
    )
    cut = ask(engine, [user("cut")], max_tokens=2, thinking_budget=3, thinking=True)
    assert (cut.content, cut.reasoning, cut.finish_reason) == ("one two", "a b c", "length")
    assert ask(engine, [user("cut")]).reasoning == ""
    assert ask(engine, [user("odd")]).finish_reason == "content_filter"


def test_build_engine_reads_config_scenarios_before_extra_rules() -> None:
    config = EmulatorConfig(
        scenarios=[{"name": "cfg", "match": {"last_user": "x"}, "text": "from config"}]
    )
    extra = load_scenarios([{"name": "extra", "text": "from extra"}])
    engine = build_engine(config, extra)
    assert ask(engine, [user("x")]).content == "from config"
    assert ask(engine, [user("y")]).content == "from extra"
    assert ask(build_engine(config), [user("y")]).source == "default"
