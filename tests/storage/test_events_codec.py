"""The stored form of cached responses: any event sequence round-trips exactly, and bytes this
version did not write are refused as ``UndecodableEntry`` (which the caches treat as a miss)."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenkit._core.cache import CachedResponse
from qwenkit.storage._events import (
    EVENT_TAGS,
    FORMAT_VERSION,
    UndecodableEntry,
    decode_response,
    encode_response,
)
from qwenkit.types import (
    ContentDelta,
    ErrorInfo,
    Event,
    Finished,
    ResponseStarted,
    StreamError,
    Usage,
    UsageReported,
)

TEXT = st.text(
    st.one_of(
        st.characters(),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
    ),
    max_size=40,
)
"""Any text, lone surrogates included (a JSON decoder lets them through)."""
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
USAGE_FIELDS = list(Usage.model_fields)
USAGES = st.builds(
    lambda fields, extras: Usage.model_validate({**extras, **fields}),
    st.dictionaries(st.sampled_from(USAGE_FIELDS), st.integers(0, 10**9)),
    st.dictionaries(st.sampled_from(["image_tokens", "audio_tokens", "details"]), JSON_VALUES),
)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a field annotated ``hint``, for every type the event classes use."""
    if hint is str:
        return TEXT
    if hint is int:
        return st.integers(-(2**63), 2**63)
    if hint == (str | None):
        return st.none() | TEXT
    if hint is Usage:
        return USAGES
    if dataclasses.is_dataclass(hint):
        return built(hint)
    raise AssertionError(f"no strategy for {hint!r}: extend strategy_for")


def built(cls: Any) -> st.SearchStrategy[Any]:
    """Instances of dataclass ``cls`` with every field drawn (defaults too)."""
    hints = typing.get_type_hints(cls)
    fields = {field.name: strategy_for(hints[field.name]) for field in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


EVENTS = st.one_of(*(built(cls) for cls in EVENT_TAGS))


def test_every_canonical_event_type_has_a_tag() -> None:
    assert set(typing.get_args(Event)) == set(EVENT_TAGS)
    assert len(set(EVENT_TAGS.values())) == len(EVENT_TAGS)


@given(st.lists(EVENTS, max_size=12))
def test_any_event_sequence_round_trips(events: list[Event]) -> None:
    original = CachedResponse(tuple(events))
    decoded = decode_response(encode_response(original))
    assert decoded == original
    for before, after in zip(original.events, decoded.events, strict=True):
        assert type(after) is type(before)
        if isinstance(before, UsageReported):
            assert isinstance(after, UsageReported)
            assert after.usage.to_wire() == before.usage.to_wire()  # set fields and extras


def test_the_stored_form_is_compact_versioned_json() -> None:
    response = CachedResponse(
        (
            ResponseStarted(id="chatcmpl-1", model="qwen-plus"),
            ContentDelta("你好"),
            Finished("stop"),
            UsageReported(Usage(prompt_tokens=3, image_tokens=7)),
        )
    )
    data = encode_response(response)
    assert json.loads(data) == {
        "v": FORMAT_VERSION,
        "events": [
            {"type": "started", "id": "chatcmpl-1", "model": "qwen-plus"},
            {"type": "content", "text": "你好"},
            {"type": "finished", "reason": "stop"},
            {"type": "usage", "usage": {"prompt_tokens": 3, "image_tokens": 7}},
        ],
    }
    assert b" " not in data
    assert "你好".encode() in data  # not \\u-escaped


def _stored(*events: Any, version: Any = FORMAT_VERSION) -> bytes:
    return json.dumps({"v": version, "events": list(events)}).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x04pickle",
        b"[1, 2]",
        _stored({"type": "content", "text": "hi"}, version=FORMAT_VERSION + 1),
        _stored({"type": "content", "text": "hi"}, version=None),
        json.dumps({"v": FORMAT_VERSION}).encode(),
        _stored({"type": "hologram", "text": "hi"}),
        _stored({"text": "hi"}),
        _stored("content"),
        _stored({"type": "content", "text": "hi", "colour": "red"}),
        _stored({"type": "content"}),
        _stored({"type": "content", "text": 5}),
        _stored({"type": "content", "text": "hi", "choice": True}),
        _stored({"type": "usage", "usage": [1]}),
        _stored({"type": "usage", "usage": {"prompt_tokens": "many"}}),
        _stored({"type": "error", "error": {"status": 500}}),
    ],
    ids=lambda data: data.decode("utf-8", "replace")[:60],
)
def test_bytes_this_version_did_not_write_are_refused(data: bytes) -> None:
    with pytest.raises(UndecodableEntry):
        decode_response(data)


def test_an_error_event_keeps_every_field() -> None:
    error = ErrorInfo(429, "Throttling.RateQuota", "slow down", "req-1", "limit", "rate", "x")
    kept = decode_response(encode_response(CachedResponse((StreamError(error),))))
    assert kept.events == (StreamError(error),)
