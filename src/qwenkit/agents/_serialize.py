"""Text in and out of tools: canonical arguments (to spot identical calls) and the tool message
text of a return value (``str`` as is, anything else as JSON with non-ASCII text unescaped), and
validation errors as short lines a model can act on."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
from pydantic_core import to_jsonable_python


def canonical_arguments(arguments: str | Mapping[str, Any]) -> str:
    """Arguments as canonical JSON (sorted keys, compact, unescaped non-ASCII), to tell identical
    calls apart; empty text is ``{}``, text that is not JSON comes back stripped."""
    value: Any = dict(arguments) if isinstance(arguments, Mapping) else arguments
    if isinstance(arguments, str):
        text = arguments.strip()
        if not text:
            return "{}"
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def serialize_result(value: Any) -> str:
    """The tool message text of a return value: a ``str`` as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    return to_jsonable_python(value, fallback=str)  # dataclasses, dates, enums, sets, UUIDs...


def short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_errors(exc: pydantic.ValidationError, *, allowed: Iterable[str]) -> list[str]:
    """One line per problem (at most 10): ``days: Input should be a valid integer (got "three")``."""
    names = ", ".join(allowed) or "none"
    lines = []
    for error in exc.errors(include_url=False)[:10]:
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        if error["type"] == "missing":
            lines.append(f"{where}: missing required argument")
        elif error["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown argument (allowed: {names})")
        else:
            got = short(json.dumps(error.get("input"), ensure_ascii=False, default=str), 80)
            lines.append(f"{where}: {error['msg']} (got {got})")
    return lines
