"""Answers in JSON mode: ``json_object`` follows the prompt's example, ``json_schema`` its schema.

- ``json_object``: the first JSON object written in a system or user message (``{"name": "...",
  "age": 0}``) is the example; the answer has the same keys, in the same order, with values of
  the same types taken from the user message where they fit (see ``schema_args``). Without an
  example the answer is ``{"answer": "<the default prose answer>"}``.
- ``json_schema``: a value valid against ``response_format.json_schema.schema`` with every
  property filled (required and optional).

The answer is JSON text (``ensure_ascii=False``), cut like any answer by ``max_tokens``.
"""

from __future__ import annotations

import json
import random
from typing import Any

from qwenkit.emulator.engine.extract import Extraction
from qwenkit.emulator.engine.schema_args import Filler
from qwenkit.emulator.engine.text import answer_text
from qwenkit.tokens import QwenTokenizer
from qwenkit.types import ChatRequest, DeveloperMessage, SystemMessage, UserMessage

__all__ = ["find_example", "json_answer", "requested_schema", "schema_from_example"]

_DECODER = json.JSONDecoder()


def schema_from_example(example: Any) -> dict[str, Any]:
    """A schema that an example JSON value fits (keys kept, in order, all required)."""
    if isinstance(example, dict):
        props = {str(k): schema_from_example(v) for k, v in example.items()}
        return {"type": "object", "properties": props, "required": list(props)}
    if isinstance(example, list):
        items = schema_from_example(example[0]) if example else {"type": "string"}
        return {"type": "array", "items": items, "minItems": 1 if example else 0}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number"}
    if example is None:
        return {"type": "null"}
    return {"type": "string"}


def find_example(request: ChatRequest) -> dict[str, Any] | None:
    """The first JSON object written in a system, developer or user message."""
    for message in request.messages:
        if not isinstance(message, (SystemMessage, DeveloperMessage, UserMessage)):
            continue
        text = message.text
        start = text.find("{")
        while start != -1:
            try:
                value, _ = _DECODER.raw_decode(text, start)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
            start = text.find("{", start + 1)
    return None


def requested_schema(request: ChatRequest) -> dict[str, Any] | None:
    """The schema of a ``json_schema`` request (``json_schema.schema``, or the object itself)."""
    fmt = request.response_format
    if fmt is None or fmt.type != "json_schema":
        return None
    spec = fmt.json_schema or {}
    schema = spec.get("schema")
    if isinstance(schema, dict):
        return schema
    return spec if "type" in spec or "properties" in spec else {"type": "object"}


def json_answer(
    request: ChatRequest, source: Extraction, rng: random.Random, tokenizer: QwenTokenizer
) -> str | None:
    """The JSON text answering a JSON-mode request; ``None`` when the request is not JSON mode."""
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    schema = requested_schema(request)
    if schema is not None:
        value = Filler(source, full=True, root=schema).build(schema)
    else:
        example = find_example(request)
        if example is None:
            value = {"answer": answer_text(source.text, rng, tokenizer)}
        else:
            value = Filler(source, full=True).build(schema_from_example(example))
    return json.dumps(value, ensure_ascii=False)
