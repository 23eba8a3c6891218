"""The stored form of a cached response: its canonical events as compact, versioned JSON bytes.

Layout: ``{"v":1,"events":[{"type":"started","id":"chatcmpl-1","model":"qwen-plus"},
{"type":"content","text":"Hello"},{"type":"finished","reason":"stop"},...]}``. Each event is an
object with a ``type`` tag and its fields by name; a field equal to its default is left out (a
cached answer is mostly ``{"type":"content","text":"..."}``). Nested values: a ``Usage`` as its
wire dict (``to_wire``: the fields that were set and the extras, so ``image_tokens``... survive and
the decoded model equals the original), an ``ErrorInfo`` as its fields. Text is UTF-8 with
``surrogatepass``: a lone surrogate that a JSON decoder let through round-trips instead of
failing the store.

Why JSON and not pickle: one store is shared by processes of different qwenkit versions, and
unpickling a value from a shared Redis would run code for whoever can write to it. The encoder is
written here (rather than a generic dataclass serialiser) because it is on the request path of
every cache hit: it walks precomputed field tables of the event classes, nothing else.

``FORMAT_VERSION`` guards the layout. An entry this version cannot read (another version, bytes
that are not this JSON, an event type or field it does not know, a value of the wrong type)
raises ``UndecodableEntry``, a ``ValueError``: the cache backends treat it as a miss and delete the
entry, so a format change costs a cold cache, never a failed call.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from qwenkit._core.cache import CachedResponse
from qwenkit.types import (
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    UsageReported,
)

__all__ = ["EVENT_TAGS", "FORMAT_VERSION", "UndecodableEntry", "decode_response", "encode_response"]

FORMAT_VERSION = 1

EVENT_TAGS: dict[type[Any], str] = {
    ResponseStarted: "started",
    ReasoningDelta: "reasoning",
    ContentDelta: "content",
    ToolCallDelta: "tool_call",
    UsageReported: "usage",
    Finished: "finished",
    StreamError: "error",
}
"""The ``type`` tag of each canonical event class (a test checks it covers ``Event``)."""


class UndecodableEntry(ValueError):
    """Stored bytes this version of qwenkit cannot turn back into a ``CachedResponse``."""


_MISSING: Any = dataclasses.MISSING


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    """How one field of a stored class is written and read back."""

    name: str
    default: Any
    """The value left out when encoding (``dataclasses.MISSING``: always written)."""
    encode: Callable[[Any], Any] | None
    """Turns a nested value into JSON data (``None``: the value is JSON already)."""
    decode: Callable[[Any], Any]
    """Checks a JSON value and builds the field's value from it."""


def _plain_types(hint: Any) -> tuple[type[Any], ...]:
    """The runtime types a value of annotation ``hint`` may have (``str | None`` → str, None)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arg in typing.get_args(hint) for t in _plain_types(arg))
    if hint is None or hint is type(None):
        return (type(None),)
    if hint is float:
        return (float, int)
    origin = typing.get_origin(hint)  # list[str] → list (the items are not checked)
    return (origin if isinstance(origin, type) else hint,)


def _checker(allowed: tuple[type[Any], ...], where: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise UndecodableEntry(f"{where}: unexpected {type(value).__name__}")
        return value

    return check


def _model_decoder(model: type[BaseModel], where: str) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if not isinstance(value, dict):
            raise UndecodableEntry(f"{where}: expected an object")
        return model.model_validate(value)

    return decode


def _dataclass_decoder(cls: type[Any], where: str) -> Callable[[Any], Any]:
    table = _fields(cls)

    def decode(value: Any) -> Any:
        return _build(cls, table, value, where)

    return decode


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    hints = typing.get_type_hints(cls)
    table: list[_Field] = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        where = f"{cls.__name__}.{field.name}"
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            table.append(_Field(field.name, _MISSING, _encode_model, _model_decoder(hint, where)))
        elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
            nested = _fields(hint)
            table.append(
                _Field(
                    field.name,
                    _MISSING,
                    _object_encoder(nested),
                    _dataclass_decoder(hint, where),
                )
            )
        else:
            table.append(
                _Field(field.name, field.default, None, _checker(_plain_types(hint), where))
            )
    return tuple(table)


def _object_encoder(table: tuple[_Field, ...]) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        return _encode_object(value, table)

    return encode


def _encode_model(value: BaseModel) -> Any:
    to_wire = getattr(value, "to_wire", None)
    return to_wire() if to_wire is not None else value.model_dump(mode="json", exclude_unset=True)


def _encode_object(value: Any, table: tuple[_Field, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in table:
        item = getattr(value, field.name)
        if field.default is not _MISSING and item == field.default:
            continue
        data[field.name] = item if field.encode is None else field.encode(item)
    return data


def _build(cls: type[Any], table: tuple[_Field, ...], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise UndecodableEntry(f"{where}: expected an object")
    known = {field.name for field in table}
    unknown = set(data) - known - {"type"}
    if unknown:
        raise UndecodableEntry(f"{where}: unknown fields {sorted(unknown)}")
    values = {field.name: field.decode(data[field.name]) for field in table if field.name in data}
    try:
        return cls(**values)
    except TypeError as exc:  # a required field missing
        raise UndecodableEntry(f"{where}: {exc}") from exc


_TABLES: dict[type[Any], tuple[_Field, ...]] = {cls: _fields(cls) for cls in EVENT_TAGS}
_BY_TAG: dict[str, type[Any]] = {tag: cls for cls, tag in EVENT_TAGS.items()}


def encode_response(value: CachedResponse) -> bytes:
    """The stored bytes of ``value``."""
    events: list[dict[str, Any]] = []
    for event in value.events:
        cls = type(event)
        data = {"type": EVENT_TAGS[cls]}
        data.update(_encode_object(event, _TABLES[cls]))
        events.append(data)
    text = json.dumps(
        {"v": FORMAT_VERSION, "events": events},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8", "surrogatepass")


def decode_response(data: bytes) -> CachedResponse:
    """The ``CachedResponse`` stored as ``data``; ``UndecodableEntry`` when it is not one this
    version wrote."""
    try:
        document = json.loads(bytes(data).decode("utf-8", "surrogatepass"))
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UndecodableEntry(f"not a stored response: {exc}") from exc
    if not isinstance(document, dict) or document.get("v") != FORMAT_VERSION:
        version = document.get("v") if isinstance(document, dict) else None
        raise UndecodableEntry(f"stored response format {version!r}, expected {FORMAT_VERSION}")
    items = document.get("events")
    if not isinstance(items, list):
        raise UndecodableEntry("stored response without an event list")
    events: list[Event] = []
    for item in items:
        tag = item.get("type") if isinstance(item, dict) else None
        cls = _BY_TAG.get(tag) if isinstance(tag, str) else None
        if cls is None:
            raise UndecodableEntry(f"unknown stored event type {tag!r}")
        try:
            events.append(_build(cls, _TABLES[cls], item, tag or ""))
        except UndecodableEntry:
            raise
        except ValueError as exc:  # pydantic's ValidationError of a nested Usage
            raise UndecodableEntry(f"stored {tag} event: {exc}") from exc
    return CachedResponse(tuple(events))
