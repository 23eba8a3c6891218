"""Values built from a JSON schema: tool-call arguments and structured answers.

``Filler`` walks a schema and builds a value valid against it (types, ``enum``/``const``,
``minimum``/``maximum`` and their exclusive forms, ``multipleOf``, string and array lengths,
nested objects and arrays, local ``$ref``, ``anyOf``/``oneOf``/``allOf``; ``pattern`` is not
honoured). Values come from the user message where they fit (``Extraction``):

- strings: by field name, a name found in the message for ``location``/``city``/``name``...,
  the quoted text (else the whole message) for ``query``/``text``/``question``..., dates, e-mails
  and URLs for those formats, else a stable placeholder derived from the field name;
- enums: the value mentioned in the message, else the first; numbers: the message's numbers in
  turn, else ``minimum`` or 0; booleans: ``true`` when the field is named in the message.

In argument mode (``full=False``) an object holds its required properties, and optional ones
only when the message gives a value for them; in ``full`` mode (json_schema answers) it holds
every property.
"""

from __future__ import annotations

from typing import Any

from qwenkit.emulator.engine.bounds import bounded, fit_length
from qwenkit.emulator.engine.extract import Extraction, name_words
from qwenkit.emulator.engine.text import word_set

__all__ = ["ENTITY_HINTS", "PERSON_HINTS", "PLACE_HINTS", "TEXT_HINTS", "Filler", "hint_words"]

PLACE_HINTS = word_set(
    """location city place destination origin country region address town area province state
    site"""
)
PERSON_HINTS = word_set(
    "name person user username author company organization org target recipient sender customer "
    "guest owner contact"
)
ENTITY_HINTS = PLACE_HINTS | PERSON_HINTS
TEXT_HINTS = word_set(
    """query q text question prompt message content input search keyword keywords term topic
    description summary body comment sentence request instruction"""
)
_FORMATS = {
    "date": "2025-01-01",
    "date-time": "2025-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
_MAX_DEPTH = 8


def hint_words(name: str) -> set[str]:
    """The words of a field name and their singulars (``cities`` → cities, city)."""
    words = set(name_words(name))
    for word in list(words):
        if word.endswith("ies") and len(word) > 4:
            words.add(word[:-3] + "y")
        elif word.endswith("s") and len(word) > 3:
            words.add(word[:-1])
    return words


class Filler:
    """Builds values for one message; create one per value built (it tracks what it used)."""

    def __init__(
        self,
        source: Extraction,
        *,
        full: bool,
        root: dict[str, Any] | None = None,
        entity: str | None = None,
    ) -> None:
        self.source = source
        self.full = full
        self.root = root or {}
        self.entity = entity
        self._numbers = 0
        self._used: set[str] = set()

    def build(self, schema: dict[str, Any], name: str = "") -> Any:
        """A value valid against ``schema`` (``root`` resolves its ``$ref``s)."""
        if not self.root:
            self.root = schema
        return self._value(schema, name, 0)

    # --- dispatch ---

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        for _ in range(_MAX_DEPTH):
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#/"):
                break
            target: Any = self.root
            for step in ref[2:].split("/"):
                target = target.get(step.replace("~1", "/").replace("~0", "~"), {})
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        for key in ("anyOf", "oneOf"):
            options = [o for o in schema.get(key, ()) if isinstance(o, dict)]
            if options:
                chosen = next((o for o in options if o.get("type") != "null"), options[0])
                rest = {k: v for k, v in schema.items() if k != key}
                schema = {**rest, **self._resolve(chosen)}
        if isinstance(schema.get("allOf"), list):
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for raw in schema["allOf"]:
                part = self._resolve(raw) if isinstance(raw, dict) else {}
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                required = [*merged.get("required", []), *part.get("required", [])]
                merged = {**part, **merged, "properties": props, "required": required}
            schema = merged
        return schema

    @staticmethod
    def _type(schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if isinstance(kind, str):
            return kind
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"

    def _value(self, schema: dict[str, Any], name: str, depth: int) -> Any:
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self._enum(schema["enum"]) or schema["enum"][0]
        kind = self._type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("integer", "number"):
            return self._number(schema, kind == "integer")
        if kind == "boolean":
            return self._mentioned(name)
        if kind == "null":
            return None
        return self._string(schema, name)

    # --- found in the message (None when the message gives nothing) ---

    def _enum(self, values: list[Any]) -> Any:
        return next((v for v in values if isinstance(v, str) and self.source.mentions(v)), None)

    def _mentioned(self, name: str) -> bool:
        return bool(name) and self.source.mentions(name)

    def _found(self, schema: dict[str, Any], name: str) -> bool:
        """Whether the message gives a value for an optional property."""
        schema = self._resolve(schema)
        if isinstance(schema.get("enum"), list):
            return self._enum(schema["enum"]) is not None
        kind = self._type(schema)
        if kind == "string":
            return self._from_message(schema, name, consume=False) is not None
        if kind in ("integer", "number"):
            return self._mentioned(name) and len(self.source.numbers) > self._numbers
        return kind == "boolean" and self._mentioned(name)

    def _from_message(self, schema: dict[str, Any], name: str, consume: bool = True) -> str | None:
        source, words = self.source, hint_words(name)
        by_format = {"date": source.dates, "date-time": source.dates, "email": source.emails}
        by_format |= {"uri": source.urls, "url": source.urls}
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in by_format:
            found = by_format[fmt]
            if not found:
                return None
            return found[0] + ("T00:00:00Z" if fmt == "date-time" else "")
        if words & ENTITY_HINTS:
            picked = self._pick_name(words, consume)
            if picked is not None:
                return picked
        if words & TEXT_HINTS and source.quoted:
            return source.quoted[0]
        if "date" in words and source.dates:
            return source.dates[0]
        if "email" in words and source.emails:
            return source.emails[0]
        if words & {"url", "uri", "link"} and source.urls:
            return source.urls[0]
        return None

    def candidates(self, words: set[str]) -> list[str]:
        """Names for a field, best first: places for place fields, people for person fields."""
        source = self.source
        either = [n for n in source.names if n not in source.places and n not in source.people]
        if words & PLACE_HINTS:
            places = [n for n in source.names if n in source.places]
            return places + either + [n for n in source.names if n in source.people]
        return [n for n in source.names if n in source.people] + either

    def _pick_name(self, words: set[str], consume: bool) -> str | None:
        if self.entity:
            return self.entity
        order = self.candidates(words)
        fresh = [n for n in order if n not in self._used]
        if fresh:
            if consume:
                self._used.add(fresh[0])
            return fresh[0]
        return order[0] if order and consume else None

    # --- builders ---

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        if not isinstance(props, dict):
            props = {}
        required = [r for r in schema.get("required", ()) if isinstance(r, str)]
        props = {**props, **{r: {} for r in required if r not in props}}
        out: dict[str, Any] = {}
        for key, raw in props.items():
            sub = raw if isinstance(raw, dict) else {}
            include = key in required or (
                depth < _MAX_DEPTH and (self.full or self._found(sub, key))
            )
            if include:
                out[key] = self._value(sub, key, depth + 1)
        return out

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = max(low, 1) if depth < _MAX_DEPTH or low else 0
        if isinstance(high, int):
            count = min(count, high)
        raw = schema.get("items")
        items: dict[str, Any] = raw if isinstance(raw, dict) else {}
        resolved = self._resolve(items)
        names = self.candidates(hint_words(name))
        entities = self._type(resolved) == "string" and "enum" not in resolved
        if entities and len(names) > 1 and hint_words(name) & ENTITY_HINTS:
            wanted = max(low, len(names))
            count = min(wanted, high) if isinstance(high, int) else wanted
            return [self._vary(resolved, names[i % len(names)], i) for i in range(count)]
        first = self._value(items, name, depth + 1)
        values = [first]
        for index in range(1, count):
            values.append(self._vary(resolved, self._value(items, name, depth + 1), index))
        return values[:count]

    def _vary(self, schema: dict[str, Any], value: Any, index: int) -> Any:
        """The ``index``-th item of an array: distinct when ``uniqueItems`` would need it."""
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][index % len(schema["enum"])]
        if isinstance(value, str) and index and not self._fits_name(value):
            return fit_length(schema, f"{value}_{index + 1}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and index:
            return self._number({**schema, "minimum": value + index}, isinstance(value, int))
        return value

    def _fits_name(self, value: str) -> bool:
        return value in self.source.names

    def _number(self, schema: dict[str, Any], integer: bool) -> float | int:
        numbers = self.source.numbers
        if self._numbers < len(numbers):
            value: float = numbers[self._numbers]
            self._numbers += 1
        else:
            value = float(schema.get("minimum", 0))
        value = bounded(schema, value, integer)
        return int(value) if integer else value

    def _string(self, schema: dict[str, Any], name: str) -> str:
        value = self._from_message(schema, name)
        if value is None:
            fmt = schema.get("format")
            words = hint_words(name)
            if isinstance(fmt, str) and fmt in _FORMATS:
                value = _FORMATS[fmt]
            elif words & TEXT_HINTS:
                value = self.source.text.strip()[:200] or f"example_{name}"
            else:
                value = f"example_{'_'.join(name_words(name)) or 'value'}"
        return fit_length(schema, value)
