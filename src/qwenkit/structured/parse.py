"""Read the JSON value out of a model's text, defensively but without ever changing a value.

JSON mode makes Qwen answer with JSON, but the text still arrives wrapped now and then: a BOM, a
markdown fence, a sentence before or after. ``parse_json`` looks, in this order, at

1. the whole text (a leading BOM and surrounding whitespace stripped);
2. the body of each markdown fence (```` ```json ````, ```` ``` ````, any tag or case, indented, or
   left open at the very end), first one that parses;
3. each balanced ``{...}`` or ``[...]`` in the text, by start position.

The first of these that parses *as the expected kind* wins. A candidate that is valid JSON of the
wrong kind (an array when an object is expected) is never dug into: ``[{"a": 1}]`` is not read as
``{"a": 1}``, since that would change what the model said; prose such as ``see [1]`` is skipped.

Parsing is ``json.loads`` with its defaults, except that ``NaN``/``Infinity`` are rejected: they
are not JSON (RFC 8259), other parsers refuse them, and a model writing them has made a mistake
worth surfacing. Nothing is repaired (no quote fixing, no trailing-comma removal): text that is not
JSON raises ``JSONParseError``, which carries the raw text and, for the most promising candidate,
the position and reason of the JSON error.

The bracket scan is hand-written because no library does this: ``json.JSONDecoder.raw_decode``
needs to know where a value starts, and a regex cannot balance nested brackets or tell a ``}``
inside a string (``"a {b}"``) from a real one. The scan follows JSON strings and escapes and
memoises what one pass learns about the openers it crossed, so text full of stray braces (a model
stuck repeating ``{``) still costs about linear time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, overload

from qwenkit._exceptions import QwenError

__all__ = ["JSONParseError", "extract_json_text", "parse_json", "strict_loads"]

Expect = type[dict[str, Any]] | type[list[Any]] | None

_TOKEN = re.compile(r'["\\{}\[\]]')
_OPENER = re.compile(r"[{\[]")
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,})[ \t]*[\w+.-]*[ \t]*$", re.MULTILINE)
_PAIR = {"}": "{", "]": "["}
_KIND: dict[type, str] = {dict: "object", list: "array"}


class JSONParseError(QwenError, ValueError):
    """No JSON value of the expected kind could be read from a model's text.

    ``raw`` is the text exactly as received. ``pos`` is the offset in ``raw`` of the JSON error of
    the most promising candidate, or ``None`` when there was no candidate to parse.
    """

    def __init__(self, message: str, *, raw: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.pos = pos

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (str(self), self.raw, self.pos))


def _rebuild_error(message: str, raw: str, pos: int | None) -> JSONParseError:
    return JSONParseError(message, raw=raw, pos=pos)


@overload
def parse_json(text: str, *, expect: type[dict[str, Any]] = ...) -> dict[str, Any]: ...
@overload
def parse_json(text: str, *, expect: type[list[Any]]) -> list[Any]: ...
@overload
def parse_json(text: str, *, expect: Expect) -> Any: ...
def parse_json(text: str, *, expect: Expect = dict) -> Any:
    """Return the JSON value in ``text``: ``dict`` by default, ``list``, or anything (``None``)."""
    return _Search(text, expect).run()[1]


def extract_json_text(text: str, *, expect: Expect = dict) -> str:
    """Return the exact substring of ``text`` that ``parse_json`` would parse."""
    return _Search(text, expect).run()[0]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def strict_loads(text: str) -> Any:
    """``json.loads`` with ``NaN``/``Infinity`` rejected; no search, no repair (``ValueError``)."""
    return json.loads(text, parse_constant=_reject_constant)


class _Search:
    """One search: the candidates tried so far and the best failure, for the error message."""

    def __init__(self, raw: str, expect: Expect) -> None:
        self.raw = raw
        self.expect = expect
        self.tried = {"the whole text": 0, "fenced block": 0, "balanced candidate": 0}
        self.best: tuple[int, int, str] | None = None  # (progress, absolute pos, reason)
        self.wrong_kind: str | None = None
        self._last_parsed = False

    def run(self) -> tuple[str, Any]:
        raw = self.raw
        start = 1 if raw.startswith("\ufeff") else 0
        whole = self._attempt(start, len(raw), "the whole text")
        if whole is not None:
            return whole
        if self.wrong_kind is not None:  # the whole text is JSON, just not the kind asked for
            raise self._failure()
        for body_start, body_end in _fence_bodies(raw):
            found = self._attempt(body_start, body_end, "fenced block")
            if found is not None:
                return found
        skip_until = 0
        reported_open = False
        for begin, end in _balanced_spans(raw):
            if begin < skip_until:
                continue
            if end is None:  # never closed: parse the rest only to report where it breaks
                if not reported_open:
                    reported_open = True
                    self._attempt(begin, len(raw), "balanced candidate", count=False)
                continue
            found = self._attempt(begin, end, "balanced candidate")
            if found is not None:
                return found
            if self._last_parsed:  # valid JSON of the wrong kind: never look inside it
                skip_until = end
        raise self._failure()

    def _attempt(
        self, begin: int, end: int, label: str, *, count: bool = True
    ) -> tuple[str, Any] | None:
        raw = self.raw
        while begin < end and raw[begin].isspace():
            begin += 1
        while end > begin and raw[end - 1].isspace():
            end -= 1
        self._last_parsed = False
        if count:
            self.tried[label] += 1
        candidate = raw[begin:end]
        try:
            value = strict_loads(candidate)
        except (ValueError, RecursionError) as exc:
            progress = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
            reason = (
                exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc) or type(exc).__name__
            )
            if self.best is None or progress > self.best[0]:
                self.best = (progress, begin + progress, reason)
            return None
        self._last_parsed = True
        if self.expect is None or isinstance(value, self.expect):
            return candidate, value
        self.wrong_kind = self.wrong_kind or _KIND.get(type(value), type(value).__name__)
        return None

    def _failure(self) -> JSONParseError:
        want = "JSON value" if self.expect is None else f"JSON {_KIND[self.expect]}"
        tried = ", ".join(
            label if label.startswith("the") else f"{n} {label}{'s' * (n != 1)}"
            for label, n in self.tried.items()
            if n
        )
        parts = [f"no {want} found in the model's text ({len(self.raw)} chars; tried {tried})"]
        if self.wrong_kind is not None:
            parts.append(f"found a JSON {self.wrong_kind} instead")
        pos = None
        if self.best is not None:
            _, pos, reason = self.best
            line = self.raw.count("\n", 0, pos) + 1
            column = pos - (self.raw.rfind("\n", 0, pos) + 1) + 1
            parts.append(f"most promising: {reason} at char {pos} (line {line}, column {column})")
        return JSONParseError("; ".join(parts), raw=self.raw, pos=pos)


def _fence_bodies(text: str) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` of each markdown fence's body; an unclosed last fence runs to the end."""
    pos = 0
    while (opening := _FENCE_OPEN.search(text, pos)) is not None:
        body_start = min(opening.end() + 1, len(text))
        ticks = opening.group(1)
        closing = re.compile(rf"^[ \t]*{ticks}`*[ \t]*$", re.MULTILINE).search(text, body_start)
        if closing is None:
            yield body_start, len(text)
            return
        yield body_start, closing.start()
        pos = closing.end()


def _balanced_spans(text: str) -> Iterator[tuple[int, int | None]]:
    """Yield every opener of ``text`` in order with the end of its balanced span (``None``: never
    closed). Openers whose span is unknown (a mismatched closer stopped the scan) are skipped."""
    memo: dict[int, int | None] = {}
    for match in _OPENER.finditer(text):
        begin = match.start()
        if begin not in memo:
            memo.update(_scan_from(text, begin))
        if begin in memo:
            yield begin, memo[begin]


def _scan_from(text: str, start: int) -> dict[int, int | None]:
    """Match brackets from the opener at ``start``, following JSON strings and escapes.

    Returns the end (exclusive) of each opener matched on the way and ``None`` for openers still open
    when the text ends. Both are exactly what a scan starting at that opener would find, since the
    opener lies outside any string here too. A mismatched closer (``{]``) ends the scan; the openers
    still open then are left out (unknown).
    """
    found: dict[int, int | None] = {}
    stack: list[int] = []
    in_string = False
    skip = start
    for token in _TOKEN.finditer(text, start):
        pos = token.start()
        if pos < skip:
            continue
        char = token.group()
        if in_string:
            if char == "\\":
                skip = pos + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append(pos)
        elif char in "}]":
            if text[stack[-1]] != _PAIR[char]:
                return found
            found[stack.pop()] = pos + 1
            if not stack:
                return found
    found.update(dict.fromkeys(stack))
    return found
