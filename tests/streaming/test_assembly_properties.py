"""Property tests of stream assembly, alone and through both wire codecs.

(a) Parallel tool calls: however the fragments of several calls interleave (each call's own order
    kept), they assemble to the same calls.
(b) Round trips: a random valid event sequence, encoded by a codec's ``StreamEncoder``, cut into
    arbitrary byte chunks and decoded again, assembles to what the original events assemble to;
    compatible mode, native mode (incremental and cumulative), and native → compatible.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qwenkit.streaming import StreamFailed, assemble
from qwenkit.types import (
    ChatResponse,
    ContentDelta,
    ErrorInfo,
    Event,
    Finished,
    FunctionCall,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from qwenkit.wire import compat, native
from qwenkit.wire.errors import ERROR_CODES

# -- strategies -------------------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=6,
)
_NAMES = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=16)
_IDS = st.builds("call_{}".format, st.text("0123456789abcdef", min_size=6, max_size=12))


def split_at(data: str | bytes, cuts: Sequence[int]) -> list[Any]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def pieces(draw: st.DrawFn, text: str, *, max_cuts: int = 6) -> list[str]:
    """``text`` cut at random points (empty pieces included)."""
    return split_at(text, draw(st.lists(st.integers(0, len(text)), max_size=max_cuts)))


@st.composite
def argument_texts(draw: st.DrawFn) -> str:
    """A JSON text of tool arguments, with random (but valid) formatting."""
    value = draw(st.dictionaries(_NAMES, _JSON_VALUES, max_size=4))
    return json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.none() | st.integers(0, 2)),
        separators=draw(st.sampled_from([None, (",", ":"), (", ", ": ")])),
    )


@st.composite
def tool_call_streams(
    draw: st.DrawFn, *, choice: int = 0, max_calls: int = 4
) -> tuple[list[ToolCallDelta], list[ToolCall]]:
    """Interleaved fragments of up to ``max_calls`` parallel tool calls, and the calls they make."""
    indexes = draw(st.lists(st.integers(0, 9), min_size=1, max_size=max_calls, unique=True))
    per_call: dict[int, list[ToolCallDelta]] = {}
    expected: list[ToolCall] = []
    for index in indexes:
        call_id, name, arguments = draw(_IDS), draw(_NAMES), draw(argument_texts())
        first, *rest = draw(pieces(arguments))
        per_call[index] = [ToolCallDelta(index, call_id, name, first, choice)] + [
            ToolCallDelta(index, draw(st.sampled_from(["", None])), None, piece, choice)
            for piece in rest
        ]
        expected.append(
            ToolCall(id=call_id, function=FunctionCall(name=name, arguments=arguments), index=index)
        )
    # A random interleaving that keeps each call's own order: a permutation of the multiset of
    # indexes, each occurrence taking the next fragment of its call.
    order = draw(st.permutations([i for i, frags in per_call.items() for _ in frags]))
    queues = {i: iter(frags) for i, frags in per_call.items()}
    fragments = [next(queues[i]) for i in order]
    return fragments, sorted(expected, key=lambda call: call.index or 0)


# -- (a) parallel tool calls ------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(stream=tool_call_streams())
def test_any_interleaving_of_tool_call_fragments_assembles_the_same_calls(
    stream: tuple[list[ToolCallDelta], list[ToolCall]],
) -> None:
    fragments, expected = stream
    response = assemble(fragments)
    assert response.tool_calls == expected
    for call in response.tool_calls:  # the text is exact, so it is still the same JSON
        json.loads(call.function.arguments)
    # ... and the order of the calls' own fragments is the only thing that matters.
    by_index = sorted(fragments, key=lambda f: f.index)  # stable: keeps each call's order
    assert assemble(by_index).tool_calls == expected


@settings(max_examples=30, deadline=None)
@given(first=tool_call_streams(choice=0), second=tool_call_streams(choice=1), data=st.data())
def test_tool_calls_of_several_choices_do_not_mix(
    first: tuple[list[ToolCallDelta], list[ToolCall]],
    second: tuple[list[ToolCallDelta], list[ToolCall]],
    data: st.DataObject,
) -> None:
    tags = data.draw(st.permutations([0] * len(first[0]) + [1] * len(second[0])))
    queues = [iter(first[0]), iter(second[0])]
    response = assemble(next(queues[t]) for t in tags)
    assert response.choices[0].message.tool_calls == first[1]
    assert response.choices[1].message.tool_calls == second[1]


# -- (b) round trips through the codecs -------------------------------------------------------------

# A native chunk always has a usage, all zeros before any is known: a real usage is never zero.
_USAGES = st.builds(
    Usage,
    prompt_tokens=st.integers(1, 10**6),
    completion_tokens=st.integers(0, 10**6),
    total_tokens=st.integers(0, 2 * 10**6),
    cached_tokens=st.integers(0, 10**5),
    cache_creation_tokens=st.integers(0, 10**5),
    reasoning_tokens=st.integers(0, 10**5),
)
# Error codes whose compatible-mode code maps back to them (so both wires keep the code).
_ERRORS = st.builds(
    lambda code, message, rid: ErrorInfo(
        status=ERROR_CODES[code].status, code=code, message=message, request_id=rid
    ),
    st.sampled_from(
        ["InvalidParameter", "DataInspectionFailed", "Throttling.AllocationQuota", "ModelNotFound"]
    ),
    _TEXT,
    st.none(),
)


@st.composite
def event_streams(draw: st.DrawFn, *, failing: bool = False) -> list[Event]:
    """A valid stream: start, reasoning, then answer text and/or tool calls, finish, usage.

    Usage reports are cumulative and may also come mid-stream (as native streams do). With
    ``failing``, the stream ends with a ``StreamError`` instead of a finish (and has no usage: a
    native error event carries none).
    """
    request_id = draw(st.uuids()).hex
    events: list[Event] = [
        ResponseStarted(
            id="chatcmpl-" + request_id,
            model=draw(st.sampled_from(["qwen-plus", "qwen3-max", "qwq-plus"])),
            created=draw(st.integers(0, 2**31)),
            request_id=request_id,
        )
    ]
    events += [ReasoningDelta(text) for text in draw(st.lists(_TEXT, max_size=5))]
    kind = draw(st.sampled_from(["content", "tools", "both"]))
    if kind != "tools":
        events += [ContentDelta(text) for text in draw(st.lists(_TEXT, max_size=6))]
    if kind != "content":
        events += draw(tool_call_streams(max_calls=3))[0]
    if failing:
        return [*events, StreamError(draw(_ERRORS))]
    for usage in draw(st.lists(_USAGES, max_size=2)):  # mid-stream reports
        events.insert(draw(st.integers(1, len(events))), UsageReported(usage))
    events.append(
        Finished("tool_calls" if kind != "content" else draw(st.sampled_from(["stop", "length"])))
    )
    if draw(st.booleans()):
        events.append(UsageReported(draw(_USAGES)))
    return events


def encoded(encoder: compat.StreamEncoder | native.StreamEncoder, events: Iterable[Event]) -> bytes:
    return b"".join(encoder.encode(event) for event in events) + encoder.close()


def chunked(data: bytes, draw: st.DataObject) -> list[bytes]:
    """``data`` cut at up to 12 hypothesis-chosen points (inside UTF-8 sequences too)."""
    return split_at(data, draw.draw(st.lists(st.integers(0, len(data)), max_size=12), label="cuts"))


def outcome(events: Iterable[Event]) -> tuple[ChatResponse, tuple[int, str, str] | None]:
    """The assembled response (partial on a failed stream) and the error's status/code/message."""
    try:
        return assemble(events), None
    except StreamFailed as failed:
        return failed.partial, (failed.error.status, failed.error.code, failed.error.message)


def without_usage(response: ChatResponse) -> ChatResponse:
    return response.model_copy(update={"usage": None})


def forget_identity(response: ChatResponse) -> ChatResponse:
    """What is left when the identity never reached the wire.

    Both wires carry id, model (and created) in result chunks only: a stream that fails before
    writing one (an error event alone) loses them.
    """
    return response.model_copy(update={"id": "", "model": "", "created": 0, "request_id": None})


def as_native_sees_it(events: Sequence[Event]) -> list[Event]:
    """The original events as a native decoder can restore them: no ``created`` on that wire."""
    return [
        dataclasses.replace(e, created=0) if isinstance(e, ResponseStarted) else e for e in events
    ]


def _writes_a_compat_chunk(event: Event) -> bool:
    if isinstance(event, (ContentDelta, ReasoningDelta)):
        return bool(event.text)
    return isinstance(event, (ToolCallDelta, Finished))


def _writes_a_native_chunk(event: Event) -> bool:
    return isinstance(event, (ContentDelta, ReasoningDelta, ToolCallDelta, Finished))


def native_outcome(events: Sequence[Event]) -> tuple[ChatResponse, tuple[int, str, str] | None]:
    """``outcome`` of the original events as a native decoder can restore them."""
    response, error = outcome(as_native_sees_it(events))
    if not any(map(_writes_a_native_chunk, events)):
        response = forget_identity(response)
    return response, error


_STREAMS = st.one_of(event_streams(), event_streams(failing=True))


@settings(max_examples=120, deadline=None)
@given(events=_STREAMS, include_usage=st.booleans(), thinking=st.booleans(), data=st.data())
def test_compat_round_trip_assembles_the_same(
    events: list[Event], include_usage: bool, thinking: bool, data: st.DataObject
) -> None:
    raw = encoded(compat.StreamEncoder(include_usage=include_usage, thinking=thinking), events)
    decoded = list(compat.decode_stream(chunked(raw, data)))
    expected, expected_error = outcome(events)
    if not any(map(_writes_a_compat_chunk, events)):
        expected = forget_identity(expected)
    got, error = outcome(decoded)
    assert error == expected_error
    if include_usage:
        assert got == expected
    else:  # without include_usage the compatible wire has no place for usage
        assert got == without_usage(expected)


@settings(max_examples=120, deadline=None)
@given(events=_STREAMS, incremental=st.booleans(), data=st.data())
def test_native_round_trip_assembles_the_same(
    events: list[Event], incremental: bool, data: st.DataObject
) -> None:
    raw = encoded(native.StreamEncoder(incremental=incremental), events)
    model = events[0].model if isinstance(events[0], ResponseStarted) else ""
    decoded = native.decode_stream(chunked(raw, data), model=model, incremental=incremental)
    assert outcome(decoded) == native_outcome(events)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(_TEXT, max_size=8), incremental=st.booleans(), data=st.data())
def test_native_text_result_format_round_trip(
    texts: list[str], incremental: bool, data: st.DataObject
) -> None:
    events: list[Event] = [
        ResponseStarted(id="chatcmpl-r1", model="qwen-turbo", request_id="r1"),
        *(ContentDelta(text) for text in texts),
        Finished("stop"),
        UsageReported(
            Usage(prompt_tokens=3, completion_tokens=len(texts), total_tokens=3 + len(texts))
        ),
    ]
    raw = encoded(native.StreamEncoder(result_format="text", incremental=incremental), events)
    decoded = native.decode_stream(chunked(raw, data), model="qwen-turbo", incremental=incremental)
    assert assemble(decoded) == assemble(events)


@settings(max_examples=80, deadline=None)
@given(
    events=_STREAMS,
    incremental=st.booleans(),
    thinking=st.booleans(),
    data=st.data(),
)
def test_native_to_compat_gives_the_same_message(
    events: list[Event], incremental: bool, thinking: bool, data: st.DataObject
) -> None:
    native_raw = encoded(native.StreamEncoder(incremental=incremental), events)
    model = events[0].model if isinstance(events[0], ResponseStarted) else ""
    from_native = list(
        native.decode_stream(chunked(native_raw, data), model=model, incremental=incremental)
    )
    compat_raw = encoded(compat.StreamEncoder(include_usage=True, thinking=thinking), from_native)
    from_compat = list(compat.decode_stream(chunked(compat_raw, data)))
    via_native = outcome(from_native)
    assert via_native == native_outcome(events)
    if not any(map(_writes_a_compat_chunk, from_native)):
        via_native = (forget_identity(via_native[0]), via_native[1])
    assert outcome(from_compat) == via_native


@settings(max_examples=40, deadline=None)
@given(
    answers=st.lists(st.lists(_TEXT, max_size=5), min_size=2, max_size=3),
    codec=st.sampled_from(["compat", "native incremental", "native cumulative"]),
    data=st.data(),
)
def test_several_choices_round_trip(
    answers: list[list[str]], codec: str, data: st.DataObject
) -> None:
    """``n > 1``: the deltas of the choices interleave on the wire and come apart again."""
    tags = data.draw(
        st.permutations([i for i, texts in enumerate(answers) for _ in [*texts, "finish"]])
    )
    queues: list[Iterator[Event]] = []
    for i, texts in enumerate(answers):
        queues.append(iter([*(ContentDelta(t, i) for t in texts), Finished("stop", i)]))
    events: list[Event] = [
        ResponseStarted(id="chatcmpl-r9", model="qwen-plus", request_id="r9"),
        *(next(queues[i]) for i in tags),
        UsageReported(Usage(prompt_tokens=9, completion_tokens=4, total_tokens=13)),
    ]
    encoder: compat.StreamEncoder | native.StreamEncoder
    if codec == "compat":
        encoder = compat.StreamEncoder(include_usage=True)
        decoded = list(compat.decode_stream(chunked(encoded(encoder, events), data)))
    else:
        incremental = codec == "native incremental"
        encoder = native.StreamEncoder(incremental=incremental)
        raw = encoded(encoder, events)
        decoded = list(
            native.decode_stream(chunked(raw, data), model="qwen-plus", incremental=incremental)
        )
    response = assemble(decoded)
    assert [c.message.content for c in response.choices] == ["".join(t) for t in answers]
    assert [c.finish_reason for c in response.choices] == ["stop"] * len(answers)
    assert response.usage == Usage(prompt_tokens=9, completion_tokens=4, total_tokens=13)
