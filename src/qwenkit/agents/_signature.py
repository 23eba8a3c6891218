"""From a Python function to a tool's pieces: the docstring's summary and per-parameter text
(Google, NumPy and Sphinx styles), and a pydantic model of the arguments built from the signature.

The arguments model uses positional field names (``p0``, ``p1``...) with the parameter names as
aliases, so a parameter may be called ``json``, ``schema`` or ``_private`` without clashing with
``BaseModel``. It forbids unknown arguments: a misspelt argument is an error the model can fix, not
a value silently dropped in favour of the default. Titles are stripped from the JSON schema: they
repeat the names and cost tokens in every request.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

from qwenkit._exceptions import ValidationError

_GOOGLE_ARGS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_SECTIONS = _GOOGLE_ARGS | {
    "returns", "return", "yields", "raises", "example", "examples", "note", "notes", "see also",
    "attributes", "warning", "warnings", "todo", "other parameters", "references",
}  # fmt: skip
_HEADER = re.compile(r"^\s*(?P<name>[A-Za-z][A-Za-z ]*):\s*$")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_GOOGLE_ITEM = re.compile(r"^(?P<name>\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:(?P<desc>.*)$")
_NUMPY_ITEM = re.compile(r"^(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")
_SPHINX_ITEM = re.compile(
    r"^:(?:param|parameter|arg|argument|key|keyword)\s+(?:[^:]*\s)?(?P<name>\*{0,2}\w+)\s*:(?P<desc>.*)$"
)


@dataclass(frozen=True)
class Docstring:
    """The first paragraph of a docstring and the description of each parameter it documents."""

    summary: str | None
    params: dict[str, str] = field(default_factory=dict)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_section_start(lines: list[str], i: int) -> bool:
    header = _HEADER.match(lines[i])
    if header and header["name"].strip().lower() in _SECTIONS:
        return True
    if i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1]) and lines[i].strip():
        return True
    return lines[i].lstrip().startswith((":param", ":parameter", ":arg", ":return", ":raise"))


def _add(params: dict[str, str], name: str, text: str) -> None:
    key = name.lstrip("*")
    params[key] = " ".join(part for part in (params.get(key, ""), text.strip()) if part)


def _google(lines: list[str], params: dict[str, str]) -> None:
    i = 0
    while i < len(lines):
        header = _HEADER.match(lines[i])
        i += 1
        if not header or header["name"].strip().lower() not in _GOOGLE_ARGS:
            continue
        base, item_indent, current = _indent(lines[i - 1]), None, None
        while i < len(lines):
            line = lines[i]
            if line.strip():
                if _indent(line) <= base:
                    break
                item_indent = item_indent if item_indent is not None else _indent(line)
                item = _GOOGLE_ITEM.match(line.strip()) if _indent(line) == item_indent else None
                if item:
                    current = item["name"]
                    _add(params, current, item["desc"])
                elif current is not None and _indent(line) > item_indent:
                    _add(params, current, line)
            i += 1


def _numpy(lines: list[str], params: dict[str, str]) -> None:
    for start in range(len(lines) - 1):
        title = lines[start].strip().lower()
        if title not in ("parameters", "other parameters") or not _UNDERLINE.match(
            lines[start + 1]
        ):
            continue
        base, current = _indent(lines[start]), list[str]()
        for i in range(start + 2, len(lines)):
            line = lines[i]
            if not line.strip():
                continue
            if _indent(line) < base or (i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1])):
                break
            item = _NUMPY_ITEM.match(line.strip()) if _indent(line) == base else None
            if item:
                current = [name.strip() for name in item["names"].split(",")]
                for name in current:
                    _add(params, name, "")
            else:
                for name in current:
                    _add(params, name, line)


def _sphinx(lines: list[str], params: dict[str, str]) -> None:
    current: str | None = None
    for line in lines:
        item = _SPHINX_ITEM.match(line.strip())
        if item:
            current = item["name"]
            _add(params, current, item["desc"])
        elif current is not None and line.strip() and not line.lstrip().startswith(":"):
            _add(params, current, line)
        else:
            current = None


def parse_docstring(doc: str | None) -> Docstring:
    """Summary (first paragraph, lines joined) and parameter descriptions of a docstring."""
    if not doc or not doc.strip():
        return Docstring(None)
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip() or _is_section_start(lines, i):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    _google(lines, params)
    _numpy(lines, params)
    _sphinx(lines, params)
    return Docstring(" ".join(summary) or None, {k: v for k, v in params.items() if v})


@dataclass(frozen=True)
class Arguments:
    """The pydantic model of a function's arguments and how to pass them back to the function."""

    model: type[BaseModel]
    fields: dict[str, str]  # field name -> parameter name
    positional: tuple[str, ...]  # parameter names that are positional-only

    def call_args(self, instance: BaseModel) -> tuple[list[Any], dict[str, Any]]:
        values = {param: getattr(instance, fld) for fld, param in self.fields.items()}
        args = [values.pop(name) for name in self.positional]
        return args, values


def _has_description(annotation: Any) -> bool:
    if get_origin(annotation) is not Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in get_args(annotation)[1:])


def _type_hints(func: Callable[..., Any], name: str) -> dict[str, Any]:
    target = func if inspect.isroutine(func) else getattr(func, "__call__", func)  # noqa: B004 - the method, not a test
    try:
        return typing.get_type_hints(target, include_extras=True)
    except NameError as exc:
        raise ValidationError(
            f"tool {name!r}: cannot resolve a type hint ({exc}); define the types at module level",
            param=name,
        ) from exc
    except TypeError:
        return {}


def build_arguments(func: Callable[..., Any], name: str, doc: Docstring) -> Arguments:
    """The arguments model of ``func``; ``ValidationError`` for signatures a tool cannot have."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"tool {name!r}: no signature ({exc})", param=name) from exc
    hints = _type_hints(func, name)
    definitions: dict[str, Any] = {}
    fields: dict[str, str] = {}
    positional: list[str] = []
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise ValidationError(
                f"tool {name!r}: {star}{param.name} is not allowed; a tool takes named, typed "
                "parameters only",
                param=param.name,
            )
        if index == 0 and param.name in ("self", "cls"):
            raise ValidationError(
                f"tool {name!r}: first parameter {param.name!r} looks like an unbound method; "
                "decorate a plain function, or pass the bound method: tool(instance.method)",
                param=param.name,
            )
        annotation = hints.get(param.name, Any)
        default = param.default
        if isinstance(default, FieldInfo):  # def f(x: int = Field(3, ge=0)): keep it whole
            annotation, default = Annotated[annotation, default], param.empty
        extra: dict[str, Any] = {}
        if not _has_description(annotation) and param.name in doc.params:
            extra["description"] = doc.params[param.name]
        info = pydantic.Field(... if default is param.empty else default, alias=param.name, **extra)
        definitions[f"p{index}"] = (annotation, info)
        fields[f"p{index}"] = param.name
        if param.kind is param.POSITIONAL_ONLY:
            positional.append(param.name)
    try:
        model = pydantic.create_model(
            f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **definitions
        )
        model.model_json_schema()
    except pydantic.PydanticUserError as exc:
        raise ValidationError(f"tool {name!r}: {exc}", param=name) from exc
    except pydantic.errors.PydanticInvalidForJsonSchema as exc:
        raise ValidationError(f"tool {name!r}: {exc}", param=name) from exc
    return Arguments(model, fields, tuple(positional))


_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains")


def strip_titles(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a JSON schema without ``title`` keywords (property *names* are left alone)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {
                k: strip_titles(v) if isinstance(v, Mapping) else v for k, v in value.items()
            }
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [strip_titles(v) if isinstance(v, Mapping) else v for v in value]
        elif key in _SUBSCHEMA_ONE and isinstance(value, Mapping):
            out[key] = strip_titles(value)
        else:
            out[key] = value
    return out
