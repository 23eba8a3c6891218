"""``qwenkit.structured.tool_schema``: a Pydantic model as a forced tool; what "flattened" does and does not do."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qwenkit.structured.tool_schema import (
    flatten_schema,
    model_tool,
    tool_choice,
    tool_name,
    tool_parameters,
)


class Address(BaseModel):
    """A postal address."""

    city: str = Field(description="The city")
    zip: str | None = None


class Cat(BaseModel):
    kind: Literal["cat"]
    meows: int


class Dog(BaseModel):
    kind: Literal["dog"]
    barks: int


class Node(BaseModel):
    value: int
    children: list[Node] = []


class InvoiceLine(BaseModel):
    """One line of an invoice.

    Read from the document."""

    title: str
    shipping: Address = Field(description="Where it goes")
    billing: Address | None = None
    discount: float | None
    note: str | None = "none"
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]


def walk(value: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found.extend(walk(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(walk(item))
    return found


def test_refs_are_inlined_and_titles_dropped() -> None:
    params = tool_parameters(InvoiceLine)
    text = json.dumps(params)
    assert "$ref" not in text
    assert "$defs" not in params
    assert all("title" not in node or not isinstance(node["title"], str) for node in walk(params))
    assert params["type"] == "object"
    assert "description" not in params  # it is the function's description
    shipping = params["properties"]["shipping"]
    assert shipping["type"] == "object"
    assert shipping["description"] == "Where it goes"  # the field's text wins over the class's
    assert shipping["properties"]["city"] == {"description": "The city", "type": "string"}


def test_a_field_named_title_stays() -> None:
    params = tool_parameters(InvoiceLine)
    assert params["properties"]["title"] == {"type": "string"}
    assert "title" in params["required"]


def test_none_default_optionals_collapse_others_keep_null() -> None:
    props = tool_parameters(InvoiceLine)["properties"]
    required = tool_parameters(InvoiceLine)["required"]
    billing = props["billing"]
    assert billing["type"] == "object"
    assert "anyOf" not in billing
    assert "default" not in billing
    assert billing["description"] == "A postal address."
    assert billing["properties"]["zip"] == {"type": "string"}  # nested ones too
    assert "billing" not in required
    # required but nullable: null must stay expressible
    assert props["discount"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert "discount" in required
    # a default other than None: leaving it out would not mean null, so null stays
    assert {"type": "null"} in props["note"]["anyOf"]
    assert props["note"]["default"] == "none"


def test_discriminated_unions_keep_their_branches_without_ref_mapping() -> None:
    pet = tool_parameters(InvoiceLine)["properties"]["pet"]
    assert pet["discriminator"] == {"propertyName": "kind"}
    assert [branch["properties"]["kind"]["const"] for branch in pet["oneOf"]] == ["cat", "dog"]


def test_recursive_models_keep_only_the_cycle_in_defs() -> None:
    class Tree(BaseModel):
        root: Node
        label: Address

    params = tool_parameters(Tree)
    assert set(params["$defs"]) == {"Node"}
    assert params["properties"]["root"] == {"$ref": "#/$defs/Node"}
    assert params["properties"]["label"]["type"] == "object"  # not on a cycle: inlined
    node = params["$defs"]["Node"]
    assert node["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "title" not in node

    top = tool_parameters(Node)  # a recursive root is inlined once
    assert top["type"] == "object"
    assert top["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}


def test_aliases_are_the_keys_and_instances_round_trip() -> None:
    class Aliased(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        first_name: str = Field(alias="firstName")

    params = tool_parameters(Aliased)
    assert list(params["properties"]) == ["firstName"]
    instance = Aliased(first_name="Ada")
    arguments = json.dumps(instance.model_dump(by_alias=True))
    assert Aliased.model_validate_json(arguments) == instance


def test_data_keywords_are_copied_untouched() -> None:
    schema = {
        "type": "object",
        "title": "T",
        "properties": {"x": {"type": "object", "default": {"title": "kept", "$ref": "data"}}},
        "$defs": {},
    }
    out = flatten_schema(schema)
    assert out == {
        "type": "object",
        "properties": {"x": {"type": "object", "default": {"title": "kept", "$ref": "data"}}},
    }


def test_type_lists_with_null_collapse_too() -> None:
    schema = {"type": "object", "properties": {"x": {"type": ["string", "null"], "default": None}}}
    assert flatten_schema(schema)["properties"]["x"] == {"type": "string"}


def test_tool_name_description_and_choice() -> None:
    class HTTPRequestInfo(BaseModel):
        url: str

    class Titled(BaseModel):
        model_config = ConfigDict(title="Contact card!")
        name: str

    assert tool_name(InvoiceLine) == "invoice_line"
    assert tool_name(HTTPRequestInfo) == "http_request_info"
    assert tool_name(Titled) == "Contact_card"
    tool = model_tool(InvoiceLine)
    assert tool.function.description == "One line of an invoice.\n\nRead from the document."
    assert model_tool(Cat).function.description is None
    assert tool_choice(tool).model_dump() == {
        "type": "function",
        "function": {"name": "invoice_line"},
    }
