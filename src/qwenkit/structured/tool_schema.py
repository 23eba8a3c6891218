"""A Pydantic model as the one tool of a forced function call (``AsyncQwen.extract``).

``model_tool(Model)`` is ``{"type": "function", "function": {name, description, parameters}}``:

- **name**: ``model_config["title"]`` when set, else the class name in snake_case
  (``InvoiceLine`` → ``invoice_line``); characters a function name may not hold become ``_`` and
  it is cut at 64 characters;
- **description**: the class docstring (cleaned), else none;
- **parameters**: ``Model.model_json_schema()`` (validation mode, by alias: exactly the keys
  ``model_validate_json`` accepts), *flattened as far as the schema allows*. That means exactly:

  1. every ``$ref`` to a ``$defs`` entry is replaced by a copy of the definition (keys written next
     to the ``$ref``, such as a field's ``description``, win over the definition's), and ``$defs``
     goes away. Definitions on a cycle (recursive models) cannot be inlined forever: they stay in
     ``$defs`` and are referenced; whatever they reference that is not on a cycle is inlined;
  2. ``title`` keywords are dropped (they repeat the names and cost tokens in every request). A
     *property named* ``title`` is a field and stays;
  3. an optional field whose default is ``None`` (``x: int | None = None``) becomes its
     non-null type (``{"type": "integer"}``) without the ``null`` default, and it stays out of
     ``required``: leaving it out means ``None``, which validates to the same instance. A field
     that is nullable but required, or whose default is something else, keeps its ``null``
     branch, since dropping it would change what the model can express;
  4. descriptions, constraints, enums, formats and defaults are kept; a ``discriminator``'s
     ``mapping`` (a list of ``$ref``s) is dropped once the references are inlined.

Fields are never renamed and nesting is never restructured (no ``location.city`` →
``location_city``): the arguments must validate back into the model unchanged. The top-level
``description`` moves to the function's description.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from qwenkit.types import FunctionDefinition, NamedFunction, NamedToolChoice, Tool

__all__ = ["flatten_schema", "model_tool", "tool_choice", "tool_name", "tool_parameters"]

Schema = dict[str, Any]

_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"})
_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_ONE = frozenset(
    {"items", "additionalProperties", "not", "contains", "if", "then", "else", "propertyNames"}
)
_PREFIX = "#/$defs/"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


def tool_name(model: type[BaseModel]) -> str:
    """``model_config["title"]`` or the snake_case class name, as a valid function name."""
    title = model.model_config.get("title")
    raw = title if isinstance(title, str) and title.strip() else _CAMEL.sub("_", model.__name__)
    name = _BAD_NAME_CHARS.sub("_", raw.strip()).strip("_")
    return (name if title else name.lower())[:64] or "extract"


def tool_parameters(model: type[BaseModel]) -> Schema:
    """The flattened JSON schema of ``model`` (see the module docstring), without description."""
    schema = flatten_schema(model.model_json_schema(mode="validation"))
    schema.pop("description", None)
    return schema


def model_tool(model: type[BaseModel]) -> Tool:
    """The tool whose forced call fills ``model``."""
    doc = model.__doc__
    description = inspect.cleandoc(doc) if doc and doc.strip() else None
    function = FunctionDefinition(
        name=tool_name(model), description=description, parameters=tool_parameters(model)
    )
    return Tool(function=function)


def tool_choice(tool: Tool) -> NamedToolChoice:
    """``{"type": "function", "function": {"name": ...}}`` forcing ``tool``."""
    return NamedToolChoice(function=NamedFunction(name=tool.name))


def flatten_schema(schema: Mapping[str, Any]) -> Schema:
    """Inline ``$defs``, drop titles and collapse ``None``-default optionals (module docstring)."""
    defs: dict[str, Any] = dict(schema.get("$defs") or {})
    flattener = _Flattener(defs, _on_cycles(defs))
    root = {key: value for key, value in schema.items() if key != "$defs"}
    ref = root.get("$ref")
    if isinstance(ref, str) and ref.startswith(_PREFIX):  # a recursive root: inline it once
        root = _merge(defs.get(ref[len(_PREFIX) :], {}), root)
    out = flattener.node(root)
    if flattener.recursive:
        out["$defs"] = {name: flattener.node(defs[name]) for name in sorted(flattener.recursive)}
    return out


class _Flattener:
    def __init__(self, defs: Mapping[str, Any], recursive: frozenset[str]) -> None:
        self.defs = defs
        self.recursive = recursive

    def node(self, schema: Mapping[str, Any]) -> Schema:
        """One schema object, flattened; data keywords (``default``, ``enum``...) are copied."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_PREFIX):
            name = ref[len(_PREFIX) :]
            if name not in self.recursive and name in self.defs:
                return self.node(_merge(self.defs[name], schema))
        out: Schema = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in _MAPS and isinstance(value, Mapping):
                out[key] = {k: self._any(v) for k, v in value.items()}
            elif key in _LISTS and isinstance(value, list):
                out[key] = [self._any(v) for v in value]
            elif key in _ONE:
                out[key] = self._any(value)
            elif key == "discriminator" and isinstance(value, Mapping):
                out[key] = {k: v for k, v in value.items() if k != "mapping"}
            else:
                out[key] = value
        properties = out.get("properties")
        if isinstance(properties, dict):
            required = set(out.get("required") or ())
            for name, prop in properties.items():
                if name not in required and isinstance(prop, dict):
                    properties[name] = _collapse_optional(prop)
        return out

    def _any(self, value: Any) -> Any:
        return self.node(value) if isinstance(value, Mapping) else value


def _merge(definition: Mapping[str, Any], at_ref: Mapping[str, Any]) -> Schema:
    """The definition with the keys written beside the ``$ref`` on top (``$ref`` itself gone)."""
    merged = dict(definition)
    merged.update({key: value for key, value in at_ref.items() if key != "$ref"})
    return merged


def _collapse_optional(prop: Schema) -> Schema:
    """``anyOf [X, null]`` with default ``None`` → ``X`` (module docstring, rule 3)."""
    if "default" not in prop or prop["default"] is not None:
        return prop
    options = prop.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == len(options) or not rest:
            return prop
        out = {key: value for key, value in prop.items() if key not in ("anyOf", "default")}
        if len(rest) == 1 and isinstance(rest[0], Mapping):
            return {**rest[0], **out}
        return {"anyOf": rest, **out}
    kinds = prop.get("type")
    if isinstance(kinds, list) and "null" in kinds and len(kinds) > 1:
        out = {key: value for key, value in prop.items() if key != "default"}
        others = [kind for kind in kinds if kind != "null"]
        out["type"] = others[0] if len(others) == 1 else others
        return out
    return prop


def _refs(value: Any, found: set[str]) -> set[str]:
    """The ``$defs`` names referenced anywhere inside ``value``."""
    if isinstance(value, Mapping):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(_PREFIX):
            found.add(ref[len(_PREFIX) :])
        for item in value.values():
            _refs(item, found)
    elif isinstance(value, list):
        for item in value:
            _refs(item, found)
    return found


def _on_cycles(defs: Mapping[str, Any]) -> frozenset[str]:
    """The definitions that can reach themselves through references (recursive models)."""
    edges = {name: _refs(body, set()) & set(defs) for name, body in defs.items()}
    cyclic: set[str] = set()
    for start, targets in edges.items():
        seen: set[str] = set()
        todo = list(targets)
        while todo:
            name = todo.pop()
            if name == start:
                cyclic.add(start)
                break
            if name not in seen:
                seen.add(name)
                todo.extend(edges.get(name, ()))
    return frozenset(cyclic)
