"""The tool schema lint: each rule fires where it should and stays quiet elsewhere."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from qwenkit.agents import Finding, flatten_suggestion, lint_schema, tool
from qwenkit.types import FunctionDefinition, Tool

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {
            "type": "object",
            "description": "Where to look",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "country": {"type": "string", "description": "ISO country code"},
                "coords": {
                    "type": "object",
                    "description": "Coordinates",
                    "properties": {
                        "lat": {"type": "number", "description": "Latitude"},
                        "lon": {"type": "number", "description": "Longitude"},
                    },
                    "required": ["lat", "lon"],
                },
            },
            "required": ["city", "coords"],
        },
        "unit": {"type": "string", "enum": ["c", "f"], "description": "Unit", "default": "c"},
    },
    "required": ["location"],
}


def make(parameters: dict[str, Any], description: str | None = "A tool.") -> Tool:
    return Tool(
        function=FunctionDefinition(name="t", description=description, parameters=parameters)
    )


def rules(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.path) for f in findings]


def test_clean_schema_has_no_findings() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City"},
            "days": {"type": "integer", "description": "Days", "default": 1},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert lint_schema(make(schema)) == []


def test_clean_function_tool_has_no_findings() -> None:
    @tool
    def forecast(city: str, days: int = 1) -> str:
        """Get the forecast.

        Args:
            city: City name.
            days: Days ahead.
        """
        return city

    assert lint_schema(forecast) == []
    assert lint_schema(forecast.definition) == []
    assert lint_schema(forecast.definition.function) == []


def test_nested_object_with_the_flattened_names() -> None:
    findings = lint_schema(make(WEATHER))
    assert rules(findings) == [("nested-object", "location")]
    [finding] = findings
    assert finding.severity == "warning"
    assert finding.tool == "t"
    assert finding.suggestion == (
        "Flatten it into top-level parameters: location_city, location_country, "
        "location_coords_lat, location_coords_lon."
    )


def test_flatten_suggestion_for_a_nested_weather_schema() -> None:
    assert flatten_suggestion(WEATHER) == {
        "type": "object",
        "properties": {
            "location_city": {"type": "string", "description": "City name"},
            "location_country": {"type": "string", "description": "ISO country code"},
            "location_coords_lat": {"type": "number", "description": "Latitude"},
            "location_coords_lon": {"type": "number", "description": "Longitude"},
            "unit": {"type": "string", "enum": ["c", "f"], "description": "Unit", "default": "c"},
        },
        "required": ["location_city", "location_coords_lat", "location_coords_lon"],
    }


class Address(BaseModel):
    """A postal address."""

    street: str = Field(description="Street and number")
    zip_code: str | None = Field(None, description="Postal code")


class Stop(BaseModel):
    name: str = Field(description="Stop name")


def test_nested_object_via_ref_and_optional_parent() -> None:
    @tool
    def ship(to: Address, billing: Address | None = None) -> str:
        """Ship a parcel.

        Args:
            to: Destination.
            billing: Billing address, when different.
        """
        return ""

    assert rules(lint_schema(ship)) == [
        ("nested-object", "to"),
        ("optional-could-be-required", "billing"),
        ("nested-object", "billing"),
    ]
    flat = flatten_suggestion(ship.parameters)
    assert list(flat["properties"]) == [
        "to_street",
        "to_zip_code",
        "billing_street",
        "billing_zip_code",
    ]
    assert flat["required"] == ["to_street"]  # an optional parent makes its children optional
    assert flat["properties"]["to_street"] == {"type": "string", "description": "Street and number"}
    assert "$defs" not in flat


def test_array_of_objects_is_nested() -> None:
    @tool
    def route(stops: list[Stop], names: list[str]) -> str:
        """Plan a route.

        Args:
            stops: Stops in order.
            names: Plain names.
        """
        return ""

    findings = lint_schema(route)
    assert rules(findings) == [("nested-object", "stops")]
    assert "once per item" in (findings[0].suggestion or "")


def test_optional_could_be_required() -> None:
    @tool
    def f(a: str | None = None, b: int = 3, c: str | None = "x", d: str = "") -> str:
        """Tool.

        Args:
            a: A.
            b: B.
            c: C.
            d: D.
        """
        return ""

    assert rules(lint_schema(f)) == [("optional-could-be-required", "a")]
    no_default = {"type": "object", "properties": {"x": {"type": "string", "description": "X"}}}
    assert rules(lint_schema(make(no_default))) == [("optional-could-be-required", "x")]


def test_missing_descriptions_of_tool_and_parameters_at_any_depth() -> None:
    schema = {
        "type": "object",
        "properties": {
            "q": {"type": "string"},
            "opts": {
                "type": "object",
                "description": "Options",
                "properties": {"lang": {"type": "string"}},
                "required": ["lang"],
            },
        },
        "required": ["q", "opts"],
    }
    assert rules(lint_schema(make(schema, description=None))) == [
        ("missing-description", ""),
        ("missing-description", "q"),
        ("nested-object", "opts"),
        ("missing-description", "opts.lang"),
    ]
    assert rules(lint_schema(make({"type": "object", "properties": {}}, description="  "))) == [
        ("missing-description", "")
    ]


def test_ref_target_description_counts() -> None:
    schema = {
        "type": "object",
        "properties": {"unit": {"$ref": "#/$defs/Unit"}},
        "required": ["unit"],
        "$defs": {"Unit": {"enum": ["c", "f"], "type": "string", "description": "Unit"}},
    }
    assert lint_schema(make(schema)) == []


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "object", "description": "Anything"},
        {"type": "object", "description": "Anything", "additionalProperties": True},
        {"type": "object", "description": "Counts", "additionalProperties": {"type": "integer"}},
    ],
)
def test_free_form_object(prop: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"extra": prop}, "required": ["extra"]}
    findings = lint_schema(make(schema))
    assert rules(findings) == [("free-form-object", "extra")]


def test_free_form_from_dict_any_and_free_root() -> None:
    @tool
    def f(meta: dict[str, Any]) -> str:
        """Tool.

        Args:
            meta: Metadata.
        """
        return ""

    assert rules(lint_schema(f)) == [("free-form-object", "meta")]
    root = {"type": "object", "properties": {}, "additionalProperties": True}
    assert rules(lint_schema(make(root))) == [("free-form-object", "")]


def test_too_many_parameters() -> None:
    def schema(n: int) -> dict[str, Any]:
        props = {f"p{i}": {"type": "string", "description": "P"} for i in range(n)}
        return {"type": "object", "properties": props, "required": list(props)}

    assert lint_schema(make(schema(8))) == []
    assert rules(lint_schema(make(schema(9)))) == [("too-many-parameters", "")]
    assert rules(lint_schema(make(schema(4)), max_parameters=3)) == [("too-many-parameters", "")]


def test_strict_makes_errors() -> None:
    findings = lint_schema(make(WEATHER), strict=True)
    assert [f.severity for f in findings] == ["error"]
    assert str(findings[0]).startswith("error: t.location: [nested-object]")
    assert findings[0].to_dict()["rule"] == "nested-object"


class Node(BaseModel):
    """A tree node."""

    name: str = Field(description="Name")
    parent: Node | None = Field(None, description="Parent node")
    children: list[Node] = Field(default_factory=list, description="Child nodes")


def test_recursive_models_terminate() -> None:
    @tool
    def visit(node: Node) -> str:
        """Visit a node.

        Args:
            node: The node.
        """
        return ""

    assert ("nested-object", "node") in rules(lint_schema(visit))
    flat = flatten_suggestion(visit.parameters)
    assert "node_name" in flat["properties"]
    assert "node_parent_parent_parent_name" in flat["properties"]
    assert "$defs" in flat  # the deepest level keeps its reference
