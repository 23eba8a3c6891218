"""Partial values of a JSON object while it streams: dicts, then Pydantic instances.

``PartialJSON`` parses the text so far with jiter's ``partial_mode="trailing-strings"`` (strings
show as they are written). jiter leaves out what it cannot read yet (a half key, ``tru``) but would
report a number at the very end (``12`` of ``123``): that is cut off until the next character ends
it, so a reported value never changes or shrinks. Text before the first ``{`` (fence, BOM, prose)
is skipped, text after the closing ``}`` ignored; if the text stops being JSON (a brace in prose
before the object), partials stop and ``final()`` falls back to ``parse_json``.

*Strictly more complete* (``is_more_complete``): every leaf of the old value, ``(path, scalar)`` or
``(path, container type)``, is in the new one unchanged or as a string it extends, and a leaf was
added or a string grew. ``snapshots`` yields only such values, then the final object if different.

``partial_instances`` validates snapshots with the model's cached *twin* (``partial_model``: all
fields optional, default ``None``, recursively through nested models, containers and unions), then
the final JSON with the real model (pydantic's ``ValidationError``). Not ``experimental_allow_partial``:
it needs every required field and reports unfinished numbers. The twin is not a subclass: validators
written for complete data skip partials, and ``isinstance(item, Model)`` marks the final item. Types
and constraints apply: a failing snapshot is retried without its trailing string, then skipped.
Instances are compared by ``model_dump(mode="json", exclude_unset=True)``, whatever validators do.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import jiter
from pydantic import BaseModel, Discriminator, Field, ValidationError, create_model

from qwenkit.structured.parse import JSONParseError, extract_json_text, strict_loads

__all__ = [
    "PartialJSON",
    "apartial_instances",
    "asnapshots",
    "is_more_complete",
    "partial_instances",
    "partial_model",
    "snapshots",
]

_NUMBER_START, _NUMBER_PART = frozenset("-0123456789"), frozenset("0123456789+-.eE")
_PARTIALS: weakref.WeakKeyDictionary[type[BaseModel], type[BaseModel]] = weakref.WeakKeyDictionary()
_SCALARS = frozenset({str, int, float, bool, type(None)})
_KEPT = ("alias", "validation_alias", "serialization_alias", "description")


class PartialJSON:
    """Accumulate the deltas of one streamed JSON object; ``feed`` returns the best value so far."""

    def __init__(self) -> None:
        self._raw: list[str] = []
        self._text: list[str] = []
        self._length = self._depth = 0
        self._started = self._in_string = self._escaped = False
        self._number_start: int | None = None  # where an unfinished trailing number begins
        self.value: dict[str, Any] | None = None
        self.error: str | None = None  # why the text stopped being JSON, once it has
        self.done = False  # whether the object's closing brace has arrived

    @property
    def raw(self) -> str:
        """Everything fed so far, prose and fences included."""
        return "".join(self._raw)

    def feed(self, delta: str) -> dict[str, Any] | None:
        """Add a delta; return the current partial object (``None`` until an object has begun)."""
        self._raw.append(delta)
        if self.done or self.error is not None:
            return self.value
        if not self._started:
            delta = delta[delta.find("{") :] if "{" in delta else ""
            self._started = bool(delta)
        if delta:
            used = self._scan(delta)
            self._text.append(delta[:used])
            self._length += used
            try:
                self.value = self._parse("trailing-strings")
            except ValueError as exc:
                self.error = str(exc)
        return self.value

    def settled(self) -> dict[str, Any] | None:
        """The current value without its unfinished trailing string (jiter's ``"on"`` mode)."""
        return self._parse("on") if self._started and self.error is None else None

    def final_text(self) -> str:
        """The complete object's text: the streamed object, else ``extract_json_text(raw)``."""
        if self.done and self.error is None:
            return "".join(self._text)
        return extract_json_text(self.raw)

    def final(self) -> dict[str, Any]:
        """The complete object, strictly parsed; ``JSONParseError`` (with the raw text) if none."""
        try:
            value: dict[str, Any] = strict_loads(self.final_text())
        except (ValueError, RecursionError) as exc:  # jiter took what json.loads refuses
            raise JSONParseError(f"streamed object does not parse: {exc}", raw=self.raw) from None
        return value

    def _scan(self, delta: str) -> int:
        """Track strings, depth and a trailing number; return how much of ``delta`` is the object."""
        for index, char in enumerate(delta):
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char in _NUMBER_PART and (self._number_start is not None or char in _NUMBER_START):
                if self._number_start is None:
                    self._number_start = self._length + index
            else:
                self._number_start = None
                if char == '"':
                    self._in_string = True
                elif char in "{[":
                    self._depth += 1
                elif char in "}]":
                    self._depth -= 1
                    if self._depth == 0:
                        self.done = True
                        return index + 1
        return len(delta)

    def _parse(self, mode: Literal["on", "trailing-strings"]) -> dict[str, Any]:
        text = "".join(self._text)
        if self._number_start is not None and not self.done:
            text = text[: self._number_start]
        value: dict[str, Any] = jiter.from_json(
            text.encode(), partial_mode=mode, allow_inf_nan=False
        )
        return value


def is_more_complete(old: Any, new: Any) -> bool:
    """Whether ``new`` keeps every leaf of ``old`` (a string may grow) and adds or grows one."""
    return old != new and _extends(old, new) is True  # equal (==): nothing can have grown


def _extends(old: Any, new: Any) -> bool | None:
    """``None``: ``new`` does not extend ``old``; ``False``: the same; ``True``: strictly more."""
    if type(old) is not type(new):
        return None
    if not isinstance(old, dict | list):
        if old == new:
            return False
        return True if isinstance(old, str) and new.startswith(old) else None
    if len(new) < len(old) or (isinstance(old, dict) and not old.keys() <= new.keys()):
        return None
    grew = len(new) > len(old)
    # ``new`` may be longer than ``old`` (a list that grew): the pairs stop at ``old``'s end.
    pairs = zip(old.values(), map(new.get, old)) if isinstance(old, dict) else zip(old, new)  # noqa: B905
    for before, after in pairs:
        if type(before) is type(after) in _SCALARS and before == after:
            continue  # the common case, a settled scalar, without a call
        verdict = _extends(before, after)
        if verdict is None:
            return None
        grew = grew or verdict
    return grew


def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """The partial twin of ``model`` (every field optional, default ``None``), cached per model."""
    if model not in _PARTIALS:
        refs: dict[type[BaseModel], str] = {}
        built: dict[str, type[BaseModel]] = {}
        _build(model, refs, built)
        for cls in built.values():  # recursive models name twins while they are built: resolve
            cls.model_rebuild(_types_namespace=built)
        _PARTIALS.update({original: built[ref] for original, ref in refs.items()})
    return _PARTIALS[model]


def _build(model: type[BaseModel], refs: dict[type[BaseModel], str], built: dict[str, Any]) -> Any:
    ref = refs[model] = f"_partial_{len(refs)}"
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = _annotate(_partial_type(info.annotation, refs, built), info.metadata)
        kept: dict[str, Any] = {key: getattr(info, key) for key in _KEPT}
        fields[name] = (Union[annotation, None], Field(None, **kept))  # noqa: UP007 - may hold a name
    built[ref] = create_model(
        f"Partial{model.__name__}",
        __config__=model.model_config,
        __module__=model.__module__,
        **fields,
    )
    return built[ref]


def _partial_type(tp: Any, refs: dict[type[BaseModel], str], built: dict[str, Any]) -> Any:
    """``tp`` with each model in it replaced by its twin (by name while that is being built)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in refs:
            return built.get(refs[tp], refs[tp])
        return _PARTIALS.get(tp) or _build(tp, refs, built)
    origin, args = get_origin(tp), get_args(tp)
    if origin is None or origin is Literal or not args:
        return tp
    if origin is Annotated:
        return _annotate(_partial_type(args[0], refs, built), tp.__metadata__)
    new_args = tuple(_partial_type(arg, refs, built) for arg in args)
    if all(new is old for new, old in zip(new_args, args, strict=True)):
        return tp
    if origin is Union or origin is UnionType:
        return Union[new_args]  # noqa: UP007 - the arguments may be names
    return origin[new_args]


def _annotate(tp: Any, metadata: Iterable[Any]) -> Any:
    """``Annotated[tp, *metadata]`` without discriminators: a twin's tag field may be missing."""
    for item in metadata:
        if not isinstance(item, Discriminator) and getattr(item, "discriminator", None) is None:
            tp = Annotated[tp, item]
    return tp


class _Stream:
    """One stream of snapshots (``model=None``) or of instances: what the four drivers share."""

    def __init__(self, model: type[BaseModel] | None) -> None:
        self.model, self.json, self.last = model, PartialJSON(), None  # last: last item's shape
        self.partial = None if model is None else partial_model(model)

    def push(self, delta: str) -> Any:
        item: Any = self.json.feed(delta)
        if item is not None and self.partial is not None:
            item = _validate(self.partial, item) or _validate(self.partial, self.json.settled())
        if item is None:
            return None
        shape = item if self.partial is None else _dump(item)
        if self.last is not None and not is_more_complete(self.last, shape):
            return None
        self.last = shape
        return item

    def finish(self) -> Any:
        final = self.json.final()  # strict JSON first: JSONParseError carrying the raw text
        if self.model is None:
            return None if final == self.last else final
        return self.model.model_validate_json(self.json.final_text())


def _validate(partial: type[BaseModel], value: dict[str, Any] | None) -> BaseModel | None:
    try:  # through JSON text, so validation runs in JSON mode as for the final instance
        return None if value is None else partial.model_validate_json(json.dumps(value))
    except ValidationError:
        return None


def _dump(instance: BaseModel) -> Any:
    try:
        return instance.model_dump(mode="json", exclude_unset=True)
    except ValueError:  # a value with no JSON form: compare the Python form instead
        return instance.model_dump(exclude_unset=True)


def _drive(stream: _Stream, deltas: Iterable[str]) -> Iterator[Any]:
    for delta in deltas:
        if (item := stream.push(delta)) is not None:
            yield item
    if (item := stream.finish()) is not None:
        yield item


async def _adrive(stream: _Stream, deltas: AsyncIterable[str]) -> AsyncIterator[Any]:
    async for delta in deltas:
        if (item := stream.push(delta)) is not None:
            yield item
    if (item := stream.finish()) is not None:
        yield item


def snapshots(deltas: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Yield ever more complete dicts of a JSON-mode stream, then the final object if different."""
    return _drive(_Stream(None), deltas)


def asnapshots(deltas: AsyncIterable[str]) -> AsyncIterator[dict[str, Any]]:
    """The async twin of ``snapshots``."""
    return _adrive(_Stream(None), deltas)


def partial_instances(model: type[BaseModel], deltas: Iterable[str]) -> Iterator[BaseModel]:
    """Yield ``partial_model(model)`` instances, each strictly more complete, then a ``model``."""
    return _drive(_Stream(model), deltas)


def apartial_instances(
    model: type[BaseModel], deltas: AsyncIterable[str]
) -> AsyncIterator[BaseModel]:
    """The async twin of ``partial_instances``."""
    return _adrive(_Stream(model), deltas)
