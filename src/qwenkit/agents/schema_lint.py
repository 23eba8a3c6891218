"""Lint a tool's JSON schema for shapes models fill badly, and suggest the flattened form.

Rules (each ``Finding`` names the tool, the argument path such as ``location.city`` or
``stops[].name``, the rule, a message and a suggestion):

- ``nested-object``: a parameter that is an object, or an array of objects (depth > 1, also
  through ``$ref``/``$defs``). Models drop or misplace nested fields; flat parameters
  (``location_city``) are filled more reliably. ``flatten_suggestion`` builds the flat schema.
- ``optional-could-be-required``: an optional parameter whose default is ``None`` (or none at
  all). The model either guesses a value or leaves out one that mattered.
- ``missing-description``: the tool or any parameter without a description.
- ``free-form-object``: ``type: object`` without ``properties``, ``additionalProperties: true``
  or a schema of free keys (``dict[str, Any]``): the model has to guess the keys.
- ``too-many-parameters``: more than ``max_parameters`` (8) top-level parameters.

Findings are warnings; ``strict=True`` makes them errors (``Toolbox(strict=True)`` and
``qwenkit lint tools --strict`` refuse the tools).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from qwenkit._exceptions import ValidationError
from qwenkit.types import FunctionDefinition, Tool

Severity = Literal["warning", "error"]
Schema = Mapping[str, Any]
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Finding:
    """One problem of a tool schema; ``path`` is the argument path ("" for the tool itself)."""

    tool: str
    path: str
    rule: str
    severity: Severity
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.tool}.{self.path}" if self.path else self.tool
        hint = f" ({self.suggestion})" if self.suggestion else ""
        return f"{self.severity}: {where}: [{self.rule}] {self.message}{hint}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Defined(Protocol):
    """Anything with a tool ``definition`` (a ``FunctionTool``)."""

    @property
    def definition(self) -> Tool: ...


class SchemaLintError(ValidationError):
    """Tool schemas refused in strict mode; ``findings`` lists every finding."""

    def __init__(self, findings: Iterable[Finding]) -> None:
        self.findings = list(findings)
        lines = "\n".join(f"  {finding}" for finding in self.findings)
        super().__init__(f"{len(self.findings)} tool schema finding(s):\n{lines}")


def _definition(tool: Tool | Defined | FunctionDefinition) -> FunctionDefinition:
    if isinstance(tool, FunctionDefinition):
        return tool
    if isinstance(tool, Tool):
        return tool.function
    return tool.definition.function


def _resolve(schema: Schema, defs: Schema, seen: frozenset[str] = frozenset()) -> Schema:
    """Follow a local ``$ref`` (siblings such as ``description`` win over the target)."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in seen:
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, Mapping):
            merged = {**_resolve(target, defs, seen | {ref}), **schema}
            merged.pop("$ref")
            return merged
    return schema


def _variants(schema: Schema, defs: Schema) -> tuple[list[Schema], bool]:
    """The non-null alternatives of a schema (through ``anyOf``/``oneOf``) and if null is one."""
    schema = _resolve(schema, defs)
    options = schema.get("anyOf") or schema.get("oneOf")
    if not isinstance(options, list):
        return [schema], schema.get("type") == "null"
    resolved = [_resolve(option, defs) for option in options if isinstance(option, Mapping)]
    variants = [option for option in resolved if option.get("type") != "null"]
    return variants, len(variants) < len(resolved)


def _refs(schema: Schema) -> frozenset[str]:
    options = [schema, *(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]
    return frozenset(str(o["$ref"]) for o in options if isinstance(o, Mapping) and "$ref" in o)


def _is_object(schema: Schema) -> bool:
    return schema.get("type") == "object" or "properties" in schema


def _is_free_form(schema: Schema) -> bool:
    extra = schema.get("additionalProperties")
    if extra is True or isinstance(extra, Mapping):
        return True
    return _is_object(schema) and not schema.get("properties") and extra is not False


def _description(schema: Schema, defs: Schema) -> str:
    own = schema.get("description")
    return str(own or _resolve(schema, defs).get("description") or "").strip()


def _lift(
    name: str,
    schema: Schema,
    required: bool,
    defs: Schema,
    *,
    out: dict[str, Any],
    req: list[str],
    depth: int = 0,
) -> None:
    """Add ``schema`` to ``out`` as ``name``, or its properties as ``name_child`` (recursively,
    at most ``_MAX_DEPTH`` levels, so a self-referencing model stays finite)."""
    variants, nullable = _variants(schema, defs)
    core = variants[0] if len(variants) == 1 else {}
    children = core.get("properties") if _is_object(core) else None
    if isinstance(children, Mapping) and children and depth < _MAX_DEPTH:
        inner = set(core.get("required", []))
        for child, child_schema in children.items():
            keep = required and not nullable and child in inner
            _lift(f"{name}_{child}", child_schema, keep, defs, out=out, req=req, depth=depth + 1)
        return
    flat = dict(_resolve(schema, defs))
    if not flat.get("description") and _description(schema, defs):
        flat["description"] = _description(schema, defs)
    out[name] = flat
    if required:
        req.append(name)


def flatten_suggestion(schema: Schema) -> dict[str, Any]:
    """The parameters schema with nested object properties lifted to the top level as
    ``parent_child`` (descriptions kept; required only if the parent and the child both are)."""
    defs: Schema = schema.get("$defs") or schema.get("definitions") or {}
    root = _resolve(schema, defs)
    required = set(root.get("required", []))
    properties: dict[str, Any] = {}
    flat_required: list[str] = []
    for name, prop in (root.get("properties") or {}).items():
        _lift(name, prop, name in required, defs, out=properties, req=flat_required)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if flat_required:
        out["required"] = flat_required
    if defs and "$ref" in json.dumps(properties):
        out["$defs"] = dict(defs)
    return out


class _Linter:
    def __init__(self, name: str, defs: Schema, severity: Severity, max_parameters: int) -> None:
        self.name, self.defs, self.severity = name, defs, severity
        self.max_parameters = max_parameters
        self.findings: list[Finding] = []

    def add(self, path: str, rule: str, message: str, suggestion: str | None) -> None:
        self.findings.append(Finding(self.name, path, rule, self.severity, message, suggestion))

    def root(self, schema: Schema) -> None:
        root = _resolve(schema, self.defs)
        props: Mapping[str, Any] = root.get("properties") or {}
        if root.get("additionalProperties") is True or isinstance(
            root.get("additionalProperties"), Mapping
        ):
            self.add(
                "",
                "free-form-object",
                "the arguments accept any keys",
                "List every argument as a typed parameter.",
            )
        if len(props) > self.max_parameters:
            self.add(
                "",
                "too-many-parameters",
                f"{len(props)} parameters (more than {self.max_parameters}): models fill long lists badly",
                "Split the tool by task, or drop rarely used options in favour of sensible defaults.",
            )
        required = set(root.get("required", []))
        for name, prop in props.items():
            if name not in required and prop.get("default") is None:
                self.add(
                    name,
                    "optional-could-be-required",
                    "optional with no real default (None): the model guesses it or leaves it out",
                    f"Make {name!r} required, or give it a real default value.",
                )
            self.prop(name, prop, top=True)

    def prop(
        self, path: str, schema: Schema, *, top: bool, seen: frozenset[str] = frozenset()
    ) -> None:
        if not _description(schema, self.defs):
            self.add(
                path,
                "missing-description",
                "the parameter has no description",
                f"Describe {path!r} in the docstring's Args section or with Annotated[..., Field(description=...)].",
            )
        refs = _refs(schema)
        if refs & seen:  # a model that contains itself: its fields were checked one level up
            return
        seen |= refs
        for variant in _variants(schema, self.defs)[0]:
            self.shape(path, variant, top=top, seen=seen)

    def shape(self, path: str, schema: Schema, *, top: bool, seen: frozenset[str]) -> None:
        if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
            if _refs(schema["items"]) & seen:
                return
            seen |= _refs(schema["items"])
            items = _resolve(schema["items"], self.defs)
            if top and _is_object(items) and items.get("properties"):
                self.add(
                    path,
                    "nested-object",
                    "an array of objects (depth 2)",
                    "Take a list of scalars (ids, names), or let the model call the tool once per item.",
                )
            self.shape(f"{path}[]", items, top=False, seen=seen)
            return
        if _is_free_form(schema):
            self.add(
                path,
                "free-form-object",
                "an object with free keys: the model has to guess them",
                "Use a pydantic model or separate typed parameters instead of dict[str, Any].",
            )
        children: Mapping[str, Any] = schema.get("properties") or {}
        if top and _is_object(schema) and children:
            lifted: dict[str, Any] = {}
            _lift(path, schema, True, self.defs, out=lifted, req=[])
            self.add(
                path,
                "nested-object",
                "a nested object (depth 2): models drop or misplace nested fields",
                f"Flatten it into top-level parameters: {', '.join(lifted)}.",
            )
        for child, child_schema in children.items():
            self.prop(f"{path}.{child}", child_schema, top=False, seen=seen)


def lint_schema(
    tool: Tool | Defined | FunctionDefinition,
    *,
    max_parameters: int = 8,
    strict: bool = False,
) -> list[Finding]:
    """Every finding of one tool; severity ``warning``, or ``error`` when ``strict``."""
    definition = _definition(tool)
    schema: Schema = definition.parameters or {"type": "object", "properties": {}}
    defs: Schema = schema.get("$defs") or schema.get("definitions") or {}
    linter = _Linter(definition.name, defs, "error" if strict else "warning", max_parameters)
    if not (definition.description or "").strip():
        linter.add(
            "",
            "missing-description",
            "the tool has no description: the model chooses tools by their description",
            "Start the docstring with a paragraph saying what the tool does and when to use it.",
        )
    linter.root(schema)
    return linter.findings


__all__ = ["Finding", "SchemaLintError", "Severity", "flatten_suggestion", "lint_schema"]
