"""``@tool``: the JSON schema and description a typed function and its docstring produce."""

from __future__ import annotations

import datetime as dt
import enum
import json
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from qwenkit import ValidationError
from qwenkit.agents import FunctionTool, tool


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Location(BaseModel):
    """A place on Earth."""

    city: str = Field(description="City name, e.g. Hangzhou")
    country: str = Field("CN", description="ISO country code")


def _all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _all_keys(v)}
    return set()


def test_scalar_types_defaults_and_required() -> None:
    @tool
    def search(
        query: str,
        limit: int,
        ratio: float,
        exact: bool,
        tags: list[str],
        mode: Literal["fast", "deep"] = "fast",
        unit: Unit = Unit.CELSIUS,
    ) -> str:
        """Search the index."""
        return query

    schema = search.parameters
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["query", "limit", "ratio", "exact", "tags"]
    props = schema["properties"]
    assert props["query"] == {"type": "string"}
    assert props["limit"] == {"type": "integer"}
    assert props["ratio"] == {"type": "number"}
    assert props["exact"] == {"type": "boolean"}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["mode"] == {"enum": ["fast", "deep"], "type": "string", "default": "fast"}
    assert props["unit"]["default"] == "celsius"
    assert schema["$defs"]["Unit"]["enum"] == ["celsius", "fahrenheit"]
    assert "title" not in _all_keys(schema)
    assert search.description == "Search the index."


def test_optional_nested_model_annotated_field_and_datetime() -> None:
    @tool
    def book(
        where: Location,
        when: dt.date,
        note: str | None = None,
        seats: Annotated[int, Field(description="How many seats", ge=1, le=8)] = 2,
    ) -> str:
        """Book a table."""
        return "ok"

    props = book.parameters["properties"]
    assert props["where"] == {"$ref": "#/$defs/Location"}
    assert book.parameters["$defs"]["Location"]["required"] == ["city"]
    assert props["when"] == {"type": "string", "format": "date"}
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert props["seats"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 8,
        "default": 2,
        "description": "How many seats",
    }
    assert book.parameters["required"] == ["where", "when"]


def test_field_as_default_is_kept_whole() -> None:
    @tool
    def f(days: int = Field(3, ge=1, description="Days")) -> int:
        """Tool."""
        return days

    assert f.parameters["properties"]["days"] == {
        "type": "integer",
        "minimum": 1,
        "default": 3,
        "description": "Days",
    }


def test_parameter_names_that_clash_with_basemodel_work() -> None:
    @tool
    def f(json: str, schema: int, title: str) -> str:
        """Tool."""
        return f"{json}{schema}{title}"

    assert list(f.parameters["properties"]) == ["json", "schema", "title"]
    assert f.parameters["properties"]["title"] == {"type": "string"}


def test_no_docstring_no_parameters_and_untyped_parameter() -> None:
    @tool
    def ping() -> str:
        return "pong"

    @tool
    def echo(value) -> str:  # type: ignore[no-untyped-def]
        """Echo."""
        return str(value)

    assert ping.description is None
    assert ping.parameters["properties"] == {}
    assert "description" not in ping.definition.to_wire()["function"]
    assert echo.parameters["properties"]["value"] == {}


def test_options_override_name_and_description() -> None:
    @tool(name="lookup-city", description="Find a city.", timeout=5, max_errors=1)
    def find(name: str) -> str:
        """Docstring summary."""
        return name

    assert isinstance(find, FunctionTool)
    assert (find.name, find.description, find.timeout, find.max_errors) == (
        "lookup-city",
        "Find a city.",
        5,
        1,
    )
    assert tool(find).name == "find"  # wrapping a tool again starts from its function


def test_definition_is_the_wire_shape() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    wire = add.definition.to_wire()
    assert wire == {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
        },
    }
    wire["function"]["parameters"]["properties"].clear()
    assert add.parameters["properties"]  # the definition is a copy
    json.dumps(wire)


def test_function_stays_callable() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    assert add(2, b=3) == 5
    assert add.__name__ == "add"
    assert add.__doc__ == "Add."


def test_bound_method_works_unbound_self_is_rejected() -> None:
    class Service:
        def greet(self, name: str) -> str:
            """Greet someone."""
            return f"hi {name}"

    bound = tool(Service().greet)
    assert list(bound.parameters["properties"]) == ["name"]
    with pytest.raises(ValidationError, match="unbound method"):
        tool(Service.greet)


def test_var_args_are_rejected() -> None:
    def star(*names: str) -> str:
        return ""

    def kw(**options: str) -> str:
        return ""

    with pytest.raises(ValidationError, match=r"\*names is not allowed"):
        tool(star)
    with pytest.raises(ValidationError, match=r"\*\*options is not allowed") as info:
        tool(kw)
    assert info.value.param == "options"


def test_invalid_names_and_options_are_rejected() -> None:
    def f() -> None:
        return None

    with pytest.raises(ValidationError, match="1-64 letters"):
        tool(name="has space")(f)
    with pytest.raises(ValidationError, match="timeout"):
        tool(timeout=0)(f)
    with pytest.raises(ValidationError, match="max_errors"):
        tool(max_errors=-1)(f)


class _NotSchemable:
    pass


def test_unschemable_type_is_a_clear_error() -> None:
    def f(thing: _NotSchemable) -> None:
        return None

    with pytest.raises(ValidationError, match="tool 'f'"):
        tool(f)


def test_unresolvable_hint_is_a_clear_error() -> None:
    def f(thing: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(ValidationError, match="cannot resolve a type hint"):
        tool(f)
