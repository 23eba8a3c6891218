"""Compatible-mode streams: verbatim chunks -> events, events -> exact chunks, and round trips."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenkit.types import (
    ContentDelta,
    ErrorInfo,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from qwenkit.wire.compat import (
    CompatStreamError,
    StreamDecoder,
    StreamEncoder,
    adecode_stream,
    decode_chunk,
    decode_stream,
)
from qwenkit.wire.sse import SSEEvent

# -- fixtures: wire lines from the reference (§2.3) ----------------------------------------------

# Verbatim (code-interpreter doc copy, qwen3-max-2026-01-23 with thinking).
THINKING_ID = "chatcmpl-2f96ef0b-5924-4dfc-b768-4d53ec538b4e"
THINKING_LINES = [
    'data: {"choices":[{"delta":{"content":null,"role":"assistant","reasoning_content":""},"index":0,"logprobs":null,"finish_reason":null}],"object":"chat.completion.chunk","usage":null,"created":1761899724,"system_fingerprint":null,"model":"qwen3-max-2026-01-23","id":"chatcmpl-2f96ef0b-5924-4dfc-b768-4d53ec538b4e"}',  # noqa: E501 (verbatim)
    'data: {"choices":[{"finish_reason":null,"logprobs":null,"delta":{"content":null,"reasoning_content":"The user"},"index":0}],"object":"chat.completion.chunk","usage":null,"created":1761899724,"system_fingerprint":null,"model":"qwen3-max-2026-01-23","id":"chatcmpl-2f96ef0b-5924-4dfc-b768-4d53ec538b4e"}',  # noqa: E501 (verbatim)
    'data: {"choices":[{"delta":{"content":"a very large number, with a total","reasoning_content":null},"finish_reason":null,"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1761899724,"system_fingerprint":null,"model":"qwen3-max-2026-01-23","id":"chatcmpl-2f96ef0b-5924-4dfc-b768-4d53ec538b4e"}',  # noqa: E501 (verbatim)
    'data: {"choices":[{"finish_reason":"stop","delta":{"content":"","reasoning_content":null},"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1761899724,"system_fingerprint":null,"model":"qwen3-max-2026-01-23","id":"chatcmpl-2f96ef0b-5924-4dfc-b768-4d53ec538b4e"}',  # noqa: E501 (verbatim)
    "data: [DONE]",
]
# Rule 5: the include_usage chunk (usage numbers from the §2.2 reasoning printout).
USAGE_LINE = (
    'data: {"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":719,'
    '"completion_tokens":245,"total_tokens":964,"completion_tokens_details":{"reasoning_tokens":153}},'
    '"created":1761899724,"system_fingerprint":null,"model":"qwen3-max-2026-01-23",'
    f'"id":"{THINKING_ID}"}}'
)
# The tool-call example, its "..." completed by the rules of the same section.
TOOL_ID = "chatcmpl-9a4e1c52-3d7b-4f0e-8c61-2b5d7e9f0a13"
_TAIL = (
    ',"object":"chat.completion.chunk","usage":null,"created":1761899800,'
    f'"system_fingerprint":null,"model":"qwen-plus","id":"{TOOL_ID}"}}'
)
TOOL_LINES = [
    'data: {"choices":[{"delta":{"content":null,"role":"assistant","tool_calls":[{"index":0,"id":"call_8f08d2b0fc0c4d8fab7123","type":"function","function":{"name":"get_current_weather","arguments":""}}]},"index":0,"finish_reason":null,"logprobs":null}]'  # noqa: E501 (verbatim)
    + _TAIL,
    'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"","type":"function","function":{"arguments":"{\\"location\\":"}}]},"index":0,"finish_reason":null,"logprobs":null}]'  # noqa: E501 (verbatim)
    + _TAIL,
    'data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"","type":"function","function":{"arguments":" \\"杭州\\"}"}}]},"index":0,"finish_reason":null,"logprobs":null}]'  # noqa: E501 (verbatim)
    + _TAIL,
    'data: {"choices":[{"delta":{"content":""},"index":0,"finish_reason":"tool_calls","logprobs":null}]'
    + _TAIL,
    "data: [DONE]",
]

USAGE = Usage(prompt_tokens=719, completion_tokens=245, total_tokens=964, reasoning_tokens=153)
THINKING_EVENTS: list[Event] = [
    ResponseStarted(
        id=THINKING_ID,
        model="qwen3-max-2026-01-23",
        created=1761899724,
        request_id="2f96ef0b-5924-4dfc-b768-4d53ec538b4e",
    ),
    ReasoningDelta("The user"),
    ContentDelta("a very large number, with a total"),
    Finished("stop"),
]
TOOL_EVENTS: list[Event] = [
    ResponseStarted(
        id=TOOL_ID,
        model="qwen-plus",
        created=1761899800,
        request_id="9a4e1c52-3d7b-4f0e-8c61-2b5d7e9f0a13",
    ),
    ToolCallDelta(0, "call_8f08d2b0fc0c4d8fab7123", "get_current_weather", ""),
    ToolCallDelta(0, None, None, '{"location":'),
    ToolCallDelta(0, None, None, ' "杭州"}'),
    Finished("tool_calls"),
]


def sse(lines: list[str]) -> bytes:
    """The lines framed as the service sends them: each followed by a blank line."""
    return "".join(line + "\n\n" for line in lines).encode()


def lines_of(stream: bytes) -> list[str]:
    """The data lines of an encoded stream, checking the framing on the way."""
    text = stream.decode()
    assert text.endswith("\n\n")
    blocks = text[:-2].split("\n\n")
    for block in blocks:
        assert block.startswith("data: ")
        assert "\n" not in block
    return blocks


def as_json(line: str) -> Any:
    assert line.startswith("data: ")
    return json.loads(line.removeprefix("data: "))


def encode_all(events: Iterable[Event], **options: bool) -> bytes:
    encoder = StreamEncoder(**options)
    return b"".join(encoder.encode(event) for event in events) + encoder.close()


# -- decoding -------------------------------------------------------------------------------------


def test_thinking_stream_decodes() -> None:
    decoder = StreamDecoder()
    events: list[Event] = []
    for line in THINKING_LINES:
        assert not decoder.done
        events += decoder.feed(SSEEvent(data=line.removeprefix("data: ")))
    assert decoder.done
    assert events == THINKING_EVENTS


def test_tool_call_fragments_decode() -> None:
    events = list(decode_stream([sse(TOOL_LINES)]))
    assert events == TOOL_EVENTS
    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    arguments = "".join(fragment.arguments for fragment in fragments)
    assert json.loads(arguments) == {"location": "杭州"}


def test_usage_only_last_chunk_decodes() -> None:
    events = list(decode_stream([sse([*THINKING_LINES[:-1], USAGE_LINE, THINKING_LINES[-1]])]))
    assert events == [*THINKING_EVENTS, UsageReported(USAGE)]
    assert decode_chunk(as_json(USAGE_LINE)) == [UsageReported(USAGE)]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_any_split_of_the_bytes_decodes_the_same(newline: str) -> None:
    raw = sse(TOOL_LINES).replace(b"\n", newline.encode())
    one_by_one = [raw[i : i + 1] for i in range(len(raw))]  # splits inside UTF-8 sequences too
    assert list(decode_stream(one_by_one)) == TOOL_EVENTS


def test_async_stream_decodes() -> None:
    async def source() -> AsyncIterator[bytes]:
        raw = sse(THINKING_LINES)
        for start in range(0, len(raw), 7):
            yield raw[start : start + 7]

    async def collect() -> list[Event]:
        return [event async for event in adecode_stream(source())]

    assert asyncio.run(collect()) == THINKING_EVENTS


def test_chunk_tolerance() -> None:
    chunk = {
        "choices": [
            {"index": 0, "delta": {"content": None, "tool_calls": None, "role": "assistant"}},
            {"index": 1, "delta": {"content": "", "reasoning_content": None}},
            {
                "index": 1,
                "delta": {"content": "hi", "reasoning_content": "hm"},
                "finish_reason": "length",
            },
            {"index": 2, "delta": {"tool_calls": [{"function": {"arguments": ""}, "id": ""}]}},
            {"delta": None, "finish_reason": None},
        ],
        "usage": None,
    }
    assert decode_chunk(chunk) == [
        ReasoningDelta("hm", 1),
        ContentDelta("hi", 1),
        Finished("length", 1),
    ]
    assert decode_chunk({"choices": None}) == []


def test_parallel_tool_calls_keep_their_index() -> None:
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{}"}},
                        {"index": 1, "id": "call_b", "function": {"name": "g", "arguments": ""}},
                    ]
                },
            }
        ]
    }
    assert decode_chunk(chunk) == [
        ToolCallDelta(0, "call_a", "f", "{}"),
        ToolCallDelta(1, "call_b", "g", ""),
    ]


def test_invalid_json_raises_with_the_text() -> None:
    decoder = StreamDecoder()
    with pytest.raises(CompatStreamError, match=r"invalid JSON.*\{\"choices\":\[") as info:
        decoder.feed(SSEEvent(data='{"choices":[' + "x" * 1000))
    message = str(info.value)
    assert len(message) < 400  # truncated, with the full length given
    assert "characters in all" in message
    with pytest.raises(CompatStreamError, match="not a JSON object"):
        decoder.feed(SSEEvent(data="[1, 2]"))


def test_events_after_done_and_keepalives_are_ignored() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(SSEEvent(data="")) == []
    assert not decoder.started
    assert decoder.feed(SSEEvent(data="[DONE]")) == []
    assert decoder.feed(SSEEvent(data=THINKING_LINES[0].removeprefix("data: "))) == []
    assert decoder.done
    assert not decoder.started


MID_STREAM_ERROR = (
    'data: {"error":{"code":"data_inspection_failed","param":null,'
    '"message":"Output data may contain inappropriate content.","type":"data_inspection_failed"},'
    f'"id":"{THINKING_ID}","request_id":"2f96ef0b-5924-4dfc-b768-4d53ec538b4e"}}'
)


def test_error_mid_stream_decodes() -> None:
    lines = [*THINKING_LINES[:2], MID_STREAM_ERROR, THINKING_LINES[-1]]
    events = list(decode_stream([sse(lines)]))
    assert events[:2] == THINKING_EVENTS[:2]
    assert events[2] == StreamError(
        ErrorInfo(
            status=400,
            code="DataInspectionFailed",
            message="Output data may contain inappropriate content.",
            request_id="2f96ef0b-5924-4dfc-b768-4d53ec538b4e",
            compat_code="data_inspection_failed",
            compat_type="data_inspection_failed",
        )
    )
    assert len(events) == 3


def test_error_status_comes_from_the_event_or_the_code() -> None:
    data = '{"error":{"code":"something_new","message":"boom","type":"x"},"request_id":"r"}'
    [unknown] = StreamDecoder().feed(SSEEvent(data=data))
    assert isinstance(unknown, StreamError)
    assert unknown.error.status == 500
    [given_status] = StreamDecoder().feed(SSEEvent(data=data, status=503))
    assert isinstance(given_status, StreamError)
    assert given_status.error.status == 503
    assert given_status.error.request_id == "r"


# -- encoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "lines", "thinking"),
    [(THINKING_EVENTS, THINKING_LINES, True), (TOOL_EVENTS, TOOL_LINES, False)],
    ids=["thinking", "tools"],
)
def test_encoder_reproduces_the_reference_chunks(
    events: list[Event], lines: list[str], thinking: bool
) -> None:
    encoded = lines_of(encode_all(events, thinking=thinking))
    assert [as_json(line) for line in encoded[:-1]] == [as_json(line) for line in lines[:-1]]
    assert encoded[-1] == "data: [DONE]"


def test_thinking_is_switched_on_by_reasoning() -> None:
    assert encode_all(THINKING_EVENTS) == encode_all(THINKING_EVENTS, thinking=True)


def test_encoder_plain_answer_with_usage_exact() -> None:
    events: list[Event] = [
        ResponseStarted(id="chatcmpl-abc", model="qwen-plus", created=1700000000),
        ContentDelta("你好"),
        ContentDelta(""),
        UsageReported(Usage(prompt_tokens=3, completion_tokens=1, total_tokens=4)),
        ContentDelta(', "world"\n'),
        UsageReported(Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5, cached_tokens=0)),
        Finished("stop"),
    ]
    raw = encode_all(events, include_usage=True)
    tail = (
        '"object":"chat.completion.chunk","usage":null,"created":1700000000,'
        '"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-abc"}'
    )
    choice = '"index":0,"logprobs":null,"finish_reason":'
    expected = [
        f'data: {{"choices":[{{"delta":{{"content":"","role":"assistant"}},{choice}null}}],{tail}',
        f'data: {{"choices":[{{"delta":{{"content":"你好"}},{choice}null}}],{tail}',
        f'data: {{"choices":[{{"delta":{{"content":", \\"world\\"\\n"}},{choice}null}}],{tail}',
        f'data: {{"choices":[{{"delta":{{"content":""}},{choice}"stop"}}],{tail}',
        'data: {"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":3,'
        '"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0}},'
        '"created":1700000000,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-abc"}',
        "data: [DONE]",
    ]
    encoded = lines_of(raw)
    assert [as_json(line) for line in encoded[:-1]] == [as_json(line) for line in expected[:-1]]
    assert encoded[-1] == expected[-1]
    assert "你好".encode() in raw  # UTF-8, not \u escapes
    for line in encoded[:-2]:
        chunk = as_json(line)
        assert "usage" in chunk
        assert chunk["usage"] is None
        assert chunk["system_fingerprint"] is None
        assert chunk["choices"][0]["logprobs"] is None
        assert "finish_reason" in chunk["choices"][0]
    assert raw == "".join(line + "\n\n" for line in expected).encode()  # the byte-exact form


def test_usage_is_dropped_without_include_usage() -> None:
    events = [*THINKING_EVENTS, UsageReported(USAGE)]
    encoder = StreamEncoder()
    raw = b"".join(encoder.encode(event) for event in events) + encoder.close()
    assert encoder.usage == USAGE
    assert b'"choices":[]' not in raw
    assert lines_of(raw)[-1] == "data: [DONE]"
    with_usage = lines_of(encode_all(events, include_usage=True, thinking=True))
    assert as_json(with_usage[-2]) == as_json(USAGE_LINE)


def test_encoder_order_errors() -> None:
    with pytest.raises(CompatStreamError, match="ResponseStarted must be the first event"):
        StreamEncoder().encode(ContentDelta("hi"))
    encoder = StreamEncoder()
    encoder.encode(ResponseStarted(id="chatcmpl-1", model="m"))
    with pytest.raises(CompatStreamError, match="second ResponseStarted"):
        encoder.encode(ResponseStarted(id="chatcmpl-1", model="m"))
    assert encoder.close() == b"data: [DONE]\n\n"
    assert encoder.close() == b""
    with pytest.raises(CompatStreamError, match="after close"):
        encoder.encode(ContentDelta("late"))


def test_error_mid_stream_encodes_and_decodes() -> None:
    error = ErrorInfo(
        400,
        "DataInspectionFailed",
        "Output data may contain inappropriate content.",
        compat_code="data_inspection_failed",
        compat_type="data_inspection_failed",
    )
    events: list[Event] = [THINKING_EVENTS[0], THINKING_EVENTS[1], StreamError(error)]
    raw = encode_all(events, thinking=True)
    encoded = lines_of(raw)
    assert as_json(encoded[2]) == as_json(MID_STREAM_ERROR)
    assert encoded[-1] == "data: [DONE]"
    decoded = list(decode_stream([raw]))
    assert decoded[:2] == THINKING_EVENTS[:2]
    assert decoded[2] == StreamError(
        ErrorInfo(
            400,
            "DataInspectionFailed",
            "Output data may contain inappropriate content.",
            request_id="2f96ef0b-5924-4dfc-b768-4d53ec538b4e",
            compat_code="data_inspection_failed",
            compat_type="data_inspection_failed",
        )
    )


def test_error_before_any_output() -> None:
    error = ErrorInfo(429, "Throttling.AllocationQuota", "quota", request_id="r-1")
    raw = encode_all([StreamError(error)])
    assert as_json(lines_of(raw)[0]) == {
        "error": {
            "message": "quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        },
        "id": "chatcmpl-r-1",
        "request_id": "r-1",
    }
    [decoded] = decode_stream([raw])
    assert isinstance(decoded, StreamError)
    assert decoded.error.code == "Throttling.AllocationQuota"
    assert decoded.error.status == 429


# -- round trips ----------------------------------------------------------------------------------


def test_round_trip_thinking_tools_and_choices() -> None:
    started = ResponseStarted(id="req-7", model="qwen3-max", created=5, request_id="req-7")
    events: list[Event] = [
        started,
        ReasoningDelta("Need two lookups."),
        ToolCallDelta(0, "call_a", "get_weather", '{"city":'),
        ToolCallDelta(1, None, "get_time", ""),  # id arrives late
        ToolCallDelta(1, "call_b", None, '{"tz":"UTC+8"}'),
        ToolCallDelta(0, "call_a", "get_weather", '"杭州"}'),  # repeats are dropped
        ToolCallDelta(0, None, None, ""),  # empty: writes nothing
        ContentDelta("x", choice=1),
        Finished("tool_calls"),
        Finished("stop", choice=1),
        UsageReported(USAGE),
    ]
    decoded = list(decode_stream([encode_all(events, include_usage=True)]))
    assert decoded == [
        ResponseStarted(id="chatcmpl-req-7", model="qwen3-max", created=5, request_id="req-7"),
        ReasoningDelta("Need two lookups."),
        ToolCallDelta(0, "call_a", "get_weather", '{"city":'),
        ToolCallDelta(1, None, "get_time", ""),
        ToolCallDelta(1, "call_b", None, '{"tz":"UTC+8"}'),
        ToolCallDelta(0, None, None, '"杭州"}'),
        ContentDelta("x", choice=1),
        Finished("tool_calls"),
        Finished("stop", choice=1),
        UsageReported(USAGE),
    ]


@given(
    st.lists(
        st.one_of(
            st.builds(ReasoningDelta, st.text(min_size=1)),
            st.builds(ContentDelta, st.text(min_size=1)),
        ),
        max_size=12,
    )
)
def test_round_trip_of_any_text(deltas: list[ReasoningDelta | ContentDelta]) -> None:
    events: list[Event] = [
        ResponseStarted(id="chatcmpl-1", model="m", created=1, request_id="1"),
        *deltas,
        Finished("stop"),
    ]
    raw = encode_all(events)
    assert list(decode_stream([raw])) == events
    assert list(decode_stream([raw[i : i + 5] for i in range(0, len(raw), 5)])) == events
