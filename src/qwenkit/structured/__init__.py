"""JSON mode and structured output, the pure parts: read JSON out of a model's text, and follow a
JSON object (as dicts or as Pydantic instances) while it streams. No I/O: the SDK drives these."""

from qwenkit.structured.parse import JSONParseError, extract_json_text, parse_json, strict_loads
from qwenkit.structured.partial import (
    PartialJSON,
    apartial_instances,
    asnapshots,
    is_more_complete,
    partial_instances,
    partial_model,
    snapshots,
)

__all__ = [
    "JSONParseError",
    "PartialJSON",
    "apartial_instances",
    "asnapshots",
    "extract_json_text",
    "is_more_complete",
    "parse_json",
    "partial_instances",
    "partial_model",
    "snapshots",
    "strict_loads",
]
