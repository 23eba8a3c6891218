"""Values built from schemas: tool arguments, JSON mode and json_schema answers, checked valid.

``jsonschema`` is not a dependency, so ``violations`` below checks the keywords the builder
claims to honour (types, enum/const, bounds, lengths, required, nested objects and arrays,
local $ref, anyOf/oneOf/allOf), independently of the code under test.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenkit.catalog import get_model
from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.engine import DefaultEngine, EngineContext, tool_rounds
from qwenkit.emulator.engine.extract import extract
from qwenkit.emulator.engine.schema_args import Filler
from qwenkit.emulator.generation import Generation
from qwenkit.types import ChatRequest

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def violations(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> list[str]:
    """What makes ``value`` invalid against ``schema`` (empty when valid)."""
    root = root if root is not None else schema
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        return violations(value, target, root)
    found = _combinators(value, schema, root)
    if "const" in schema and value != schema["const"]:
        found.append(f"{value!r} != const")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{value!r} not in enum")
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_TYPES[k](value) for k in kinds):
            return [*found, f"{value!r} is not of type {kinds}"]
    if isinstance(value, dict):
        found += _object_violations(value, schema, root)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", math.inf):
            found.append(f"{len(value)} items out of bounds")
        for item in value if isinstance(schema.get("items"), dict) else ():
            found += violations(item, schema["items"], root)
    length = len(value) if isinstance(value, str) else None
    if length is not None and not schema.get("minLength", 0) <= length <= schema.get(
        "maxLength", math.inf
    ):
        found.append(f"{value!r} length out of bounds")
    if _TYPES["number"](value):
        found += _number_violations(value, schema)
    return found


def _combinators(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if "anyOf" in schema and all(violations(value, o, root) for o in schema["anyOf"]):
        found.append(f"{value!r} matches no anyOf option")
    if "oneOf" in schema and sum(not violations(value, o, root) for o in schema["oneOf"]) != 1:
        found.append(f"{value!r} does not match exactly one oneOf option")
    for part in schema.get("allOf", ()):
        found += violations(value, part, root)
    return found


def _object_violations(
    value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any]
) -> list[str]:
    found = [f"missing {key}" for key in schema.get("required", ()) if key not in value]
    props = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        found += [f"extra {key}" for key in value if key not in props]
    for key, item in value.items():
        if key in props:
            found += violations(item, props[key], root)
    return found


def _number_violations(value: float, schema: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if value < schema.get("minimum", -math.inf) or value > schema.get("maximum", math.inf):
        found.append(f"{value} out of bounds")
    if value <= schema.get("exclusiveMinimum", -math.inf):
        found.append(f"{value} not above exclusiveMinimum")
    if value >= schema.get("exclusiveMaximum", math.inf):
        found.append(f"{value} not below exclusiveMaximum")
    if "multipleOf" in schema and not math.isclose(value / schema["multipleOf"] % 1, 0):
        found.append(f"{value} not a multiple of {schema['multipleOf']}")
    return found


def generate(text: str, **fields: Any) -> Generation:
    messages = fields.pop("messages", [{"role": "user", "content": text}])
    request = ChatRequest(model="qwen-plus", messages=messages, **fields)
    ctx = EngineContext(get_model("qwen-plus"), False, EmulatorConfig(), 5, tool_rounds(request))
    return DefaultEngine().generate(request, ctx)


BOOKING = {
    "type": "object",
    "properties": {
        "guest": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 2},
                "email": {"type": "string", "format": "email"},
                "age": {"type": "integer", "minimum": 18, "maximum": 120},
            },
            "required": ["name", "email"],
        },
        "city": {"type": "string"},
        "nights": {"type": "integer", "exclusiveMinimum": 0, "maximum": 30},
        "room": {"type": "string", "enum": ["single", "double", "suite"]},
        "breakfast": {"type": "boolean"},
        "extras": {"type": "array", "items": {"$ref": "#/$defs/extra"}, "minItems": 1},
        "budget": {"anyOf": [{"type": "null"}, {"type": "number", "multipleOf": 0.5}]},
        "note": {"type": "string", "maxLength": 5},
    },
    "required": ["guest", "city", "nights", "room", "extras"],
    "$defs": {"extra": {"type": "string", "enum": ["parking", "late checkout"]}},
}
BOOKING_TOOL = {
    "type": "function",
    "function": {"name": "book_hotel", "description": "Book a hotel room.", "parameters": BOOKING},
}
BOOKING_TEXT = "Book a suite in Lisbon for 3 nights for Ana Silva (ana@example.com) with breakfast."


def test_tool_arguments_hold_required_fields_valid_against_the_schema() -> None:
    generation = generate(BOOKING_TEXT, tools=[BOOKING_TOOL])
    arguments = json.loads(generation.tool_calls[0].arguments)
    assert violations(arguments, BOOKING) == []
    assert arguments == {
        "guest": {"name": "Ana Silva", "email": "ana@example.com"},
        "city": "Lisbon",
        "nights": 3,
        "room": "suite",
        "breakfast": True,
        "extras": ["parking"],
    }


def test_tool_arguments_keep_non_ascii_text() -> None:
    generation = generate("帮我查询杭州市的天气", tools=[BOOKING_TOOL], tool_choice="required")
    assert '"city": "杭州市"' in generation.tool_calls[0].arguments


def test_json_schema_answer_fills_every_property_validly() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "booking", "schema": BOOKING}}
    generation = generate(BOOKING_TEXT, response_format=fmt)
    value = json.loads(generation.content)
    assert violations(value, BOOKING) == []
    assert set(value) == set(BOOKING["properties"])
    assert value["guest"]["age"] == 18
    assert value["note"] == "examp"


def test_json_object_follows_the_example_in_the_prompt() -> None:
    messages = [
        {
            "role": "system",
            "content": 'Answer in JSON like {"name": "...", "age": 0, "tags": ["x"]}.',
        },
        {"role": "user", "content": "John Smith is 42 years old."},
    ]
    generation = generate("", messages=messages, response_format={"type": "json_object"})
    value = json.loads(generation.content)
    assert list(value) == ["name", "age", "tags"]
    assert value["name"] == "John Smith"
    assert value["age"] == 42
    assert isinstance(value["tags"], list)
    assert all(isinstance(t, str) for t in value["tags"])


def test_json_object_without_example_is_a_small_answer_object() -> None:
    generation = generate(
        "Give me a JSON summary of Rome.", response_format={"type": "json_object"}
    )
    value = json.loads(generation.content)
    assert list(value) == ["answer"]
    assert value["answer"].startswith("You asked about JSON, summary and Rome.")
    assert generation.finish_reason == "stop"


def test_json_answer_is_cut_by_max_tokens_too() -> None:
    fmt = {"type": "json_object"}
    generation = generate("JSON please, about Rome.", response_format=fmt, max_tokens=6)
    assert generation.finish_reason == "length"
    assert generation.content.startswith('{"answer": ')


_names = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)


@st.composite
def _bounds(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    low = draw(st.none() | st.integers(-50, 50))
    span = draw(st.none() | st.integers(0, 40))
    exclusive = draw(st.booleans())
    if low is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = low
    if span is not None:
        high = (low if low is not None else 0) + span + (2 if exclusive else 0)
        schema["exclusiveMaximum" if exclusive else "maximum"] = high
    return schema


@st.composite
def _string(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    low = draw(st.integers(0, 6))
    if draw(st.booleans()):
        schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = low + draw(st.integers(0, 6))
    return schema


_leaves = st.one_of(
    _string(),
    _bounds("integer"),
    _bounds("number"),
    st.just({"type": "boolean"}),
    st.lists(_names, min_size=1, max_size=4, unique=True).map(lambda e: {"enum": e}),
)


def _containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.dictionaries(_names, children, max_size=5).flatmap(
        lambda props: st.lists(st.sampled_from(sorted(props) or [""]), unique=True).map(
            lambda req: {
                "type": "object",
                "properties": props,
                "required": [r for r in req if r in props],
            }
        )
    )
    arrays = st.tuples(children, st.integers(0, 3), st.integers(0, 3)).map(
        lambda t: {"type": "array", "items": t[0], "minItems": t[1], "maxItems": t[1] + t[2]}
    )
    return objects | arrays


schemas = st.recursive(_leaves, _containers, max_leaves=12)
messages = st.sampled_from(
    [
        "Weather in Beijing and Shanghai, 21 degrees, in celsius?",
        'Search "quarterly report" for 2024-05-01, limit 500',
        "北京和上海的天气怎么样？温度 -3 度",
        "",
    ]
)


@settings(max_examples=150, deadline=None)
@given(schema=schemas, text=messages, full=st.booleans())
def test_built_values_are_valid_against_generated_schemas(
    schema: dict[str, Any], text: str, full: bool
) -> None:
    value = Filler(extract(text), full=full).build(schema)
    assert violations(value, schema) == []


@settings(max_examples=40, deadline=None)
@given(props=st.dictionaries(_names, schemas, min_size=1, max_size=4), text=messages)
def test_json_schema_answers_are_valid(props: dict[str, Any], text: str) -> None:
    schema = {"type": "object", "properties": props, "required": sorted(props)[:1]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    value = json.loads(generate(text or "hi", response_format=fmt).content)
    assert violations(value, schema) == []
    assert set(value) == set(props)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.3}, 0.15),
        ({"type": "integer", "exclusiveMinimum": 4}, 5),
        ({"type": "integer", "minimum": 7, "multipleOf": 5}, 10),
        ({"type": "number", "maximum": -2.5}, -2.5),
        ({"type": "string", "minLength": 14}, "example_codexx"),
        ({"type": "string", "maxLength": 3}, "exa"),
    ],
)
def test_bounds_without_values_in_the_message(schema: dict[str, Any], expected: Any) -> None:
    value = Filler(extract("nothing here"), full=True).build(schema, "code")
    assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected
    assert violations(value, schema) == []
