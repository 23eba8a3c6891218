"""Native SSE encoding: exact framing, and a round trip through the decoder."""

from __future__ import annotations

import json
from typing import Any

import pytest

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
from qwenkit.wire.native import NativeStreamError, StreamEncoder, decode_stream

RID = "a1959ad1-2637-4672-a21f-4d351371d254"
STARTED = ResponseStarted(id="chatcmpl-" + RID, model="qwen3-max", request_id=RID)


def usage(output: int, reasoning: int = 0) -> UsageReported:
    return UsageReported(
        Usage(
            prompt_tokens=287,
            completion_tokens=output,
            total_tokens=287 + output,
            reasoning_tokens=reasoning,
        )
    )


def encode_all(events: list[Event], **kwargs: object) -> bytes:
    encoder = StreamEncoder(**kwargs)  # type: ignore[arg-type]
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def assert_native(actual: bytes, expected: str) -> None:
    """Framing byte-exact; ``data:`` lines compared as JSON, and must be compact."""
    got = actual.decode().split("\n")
    want = expected.split("\n")
    assert len(got) == len(want), actual.decode()
    for line, expected_line in zip(got, want, strict=True):
        if expected_line.startswith("data:"):
            assert line.startswith("data:")
            data = line.removeprefix("data:")
            assert json.loads(data) == json.loads(expected_line.removeprefix("data:"))
            assert data == json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False)
        else:
            assert line == expected_line


THINKING_EVENTS: list[Event] = [
    STARTED,
    ReasoningDelta("The"),
    usage(3, 1),
    ReasoningDelta(" user"),
    usage(4, 2),
    ContentDelta("你好"),
    usage(5, 2),
    Finished("stop"),
]

THINKING_BYTES = f"""id:1
event:result
:HTTP_STATUS/200
data:{{"output":{{"choices":[{{"message":{{"content":"","reasoning_content":"The","role":"assistant"}},"finish_reason":"null"}}]}},"usage":{{"input_tokens":0,"output_tokens":0,"total_tokens":0}},"request_id":"{RID}"}}

id:2
event:result
:HTTP_STATUS/200
data:{{"output":{{"choices":[{{"message":{{"content":"","reasoning_content":" user","role":"assistant"}},"finish_reason":"null"}}]}},"usage":{{"total_tokens":290,"output_tokens":3,"input_tokens":287,"output_tokens_details":{{"reasoning_tokens":1}}}},"request_id":"{RID}"}}

id:3
event:result
:HTTP_STATUS/200
data:{{"output":{{"choices":[{{"message":{{"content":"你好","reasoning_content":"","role":"assistant"}},"finish_reason":"null"}}]}},"usage":{{"total_tokens":291,"output_tokens":4,"input_tokens":287,"output_tokens_details":{{"reasoning_tokens":2}}}},"request_id":"{RID}"}}

id:4
event:result
:HTTP_STATUS/200
data:{{"output":{{"choices":[{{"message":{{"content":"","reasoning_content":"","role":"assistant"}},"finish_reason":"stop"}}]}},"usage":{{"total_tokens":292,"output_tokens":5,"input_tokens":287,"output_tokens_details":{{"reasoning_tokens":2}}}},"request_id":"{RID}"}}

"""  # noqa: E501


def test_realistic_thinking_stream_is_framed_exactly() -> None:
    actual = encode_all(THINKING_EVENTS)
    assert_native(actual, THINKING_BYTES)
    assert "你好".encode() in actual  # ensure_ascii=False


def test_cumulative_chunks_carry_the_whole_text() -> None:
    actual = encode_all(THINKING_EVENTS, incremental=False)
    messages = [
        json.loads(line.removeprefix("data:"))["output"]["choices"][0]["message"]
        for line in actual.decode().split("\n")
        if line.startswith("data:")
    ]
    assert [(m["reasoning_content"], m["content"]) for m in messages] == [
        ("The", ""),
        ("The user", ""),
        ("The user", "你好"),
        ("The user", "你好"),
    ]


@pytest.mark.parametrize("incremental", [True, False])
def test_encoder_output_decodes_to_the_same_events(incremental: bool) -> None:
    events: list[Event] = [  # usage before the deltas it covers, as the decoder reports it
        STARTED,
        usage(3, 3),
        ReasoningDelta("Need weather."),
        usage(4, 3),
        ContentDelta("Checking"),
        ToolCallDelta(0, "call_1", "get_weather", '{"city":'),
        usage(9, 3),
        ToolCallDelta(0, None, None, ' "杭州"}'),
        ToolCallDelta(1, "call_2", "get_time", "{}"),
        usage(20, 3),
        Finished("tool_calls"),
    ]
    raw = encode_all(events, incremental=incremental)
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]
    assert list(decode_stream(pieces, model="qwen3-max", incremental=incremental)) == events


def test_text_result_format() -> None:
    events: list[Event] = [
        STARTED,
        ContentDelta("Hel"),
        ReasoningDelta("no place for this"),
        ContentDelta("lo"),
        usage(2),
        Finished("stop"),
    ]
    expected = "".join(
        f"id:{n}\nevent:result\n:HTTP_STATUS/200\n"
        f'data:{{"output":{{"text":"{text}","finish_reason":"{reason}"}},'
        f'"usage":{json.dumps(u, separators=(",", ":"))},"request_id":"{RID}"}}\n\n'
        for n, text, reason, u in [
            (1, "Hel", "null", {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}),
            (2, "lo", "null", {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}),
            (3, "", "stop", {"input_tokens": 287, "output_tokens": 2, "total_tokens": 289}),
        ]
    )
    assert_native(encode_all(events, result_format="text"), expected)
    cumulative = encode_all(events, result_format="text", incremental=False).decode()
    assert '"text":"Hello","finish_reason":"stop"' in cumulative


def test_error_before_any_result_is_id_1() -> None:
    error = ErrorInfo(429, "Throttling.RateQuota", "Requests rate limit exceeded", "r-9")
    expected = (
        "id:1\nevent:error\n:HTTP_STATUS/429\n"
        'data:{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded",'
        '"request_id":"r-9"}\n\n'
    )
    assert StreamEncoder().encode(StreamError(error)).decode() == expected


def test_mid_stream_error_continues_the_ids_and_ends_the_stream() -> None:
    encoder = StreamEncoder()
    encoder.encode(STARTED)
    encoder.encode(ContentDelta("Hi"))
    raw = encoder.encode(StreamError(ErrorInfo(400, "DataInspectionFailed", "Output data bad.")))
    assert raw.decode() == (
        "id:2\nevent:error\n:HTTP_STATUS/400\n"
        f'data:{{"code":"DataInspectionFailed","message":"Output data bad.","request_id":"{RID}"}}'
        "\n\n"
    )
    with pytest.raises(NativeStreamError):
        encoder.encode(ContentDelta("more"))


def test_response_started_must_come_first() -> None:
    with pytest.raises(NativeStreamError, match="before ResponseStarted"):
        StreamEncoder().encode(ContentDelta("x"))


def test_usage_after_finish_repeats_the_final_chunk() -> None:
    encoder = StreamEncoder()
    encoder.encode(STARTED)
    encoder.encode(ContentDelta("Hi"))
    final = encoder.encode(Finished("stop"))
    again = encoder.encode(usage(1))
    assert encoder.encode(usage(1)) == b""  # unchanged: nothing to write
    assert encoder.close() == b""
    first, second = (json.loads(raw.decode().split("data:", 1)[1]) for raw in (final, again))
    assert first["output"] == second["output"]
    assert second["output"]["choices"][0]["finish_reason"] == "stop"
    assert second["usage"] == {"input_tokens": 287, "output_tokens": 1, "total_tokens": 288}
    assert again.startswith(b"id:3\n")


def test_usage_only_updates_later_chunks() -> None:
    encoder = StreamEncoder()
    assert encoder.encode(STARTED) == b""
    assert encoder.encode(usage(1)) == b""
    raw = encoder.encode(ContentDelta("a")).decode()
    assert '"usage":{"input_tokens":287,"output_tokens":1,"total_tokens":288}' in raw


def test_second_choice_carries_its_index() -> None:
    encoder = StreamEncoder()
    encoder.encode(STARTED)
    data = json.loads(encoder.encode(ContentDelta("b", choice=1)).decode().split("data:", 1)[1])
    assert data["output"]["choices"][0]["index"] == 1


@pytest.mark.parametrize("incremental", [True, False])
def test_native_stream_relayed_through_events_is_unchanged(incremental: bool) -> None:
    raw = encode_all(THINKING_EVENTS, incremental=incremental)
    events = list(decode_stream([raw], model="qwen3-max", incremental=incremental))
    assert_native(encode_all(events, incremental=incremental), raw.decode())
    if incremental:
        assert_native(encode_all(events), THINKING_BYTES)


def test_compat_stream_relayed_as_native_keeps_the_final_usage() -> None:
    compat: Any = pytest.importorskip("qwenkit.wire.compat")
    head = '{"id":"chatcmpl-r9","object":"chat.completion.chunk","created":1,"model":"qwen-plus",'
    compat_sse = (
        "".join(
            f"data: {head}{rest}}}\n\n"
            for rest in (
                '"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},'
                '"finish_reason":null}],"usage":null',
                '"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"stop"}],'
                '"usage":null',
                '"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}',
            )
        )
        + "data: [DONE]\n\n"
    )
    events = list(compat.decode_stream([compat_sse.encode()]))
    native = list(decode_stream([encode_all(events)], model="qwen-plus"))
    assert [e for e in native if isinstance(e, (ContentDelta, Finished))] == [
        ContentDelta("Hi"),
        ContentDelta(" there"),
        Finished("stop"),
    ]
    usages = [e.usage for e in native if isinstance(e, UsageReported)]
    assert usages[-1] == Usage(prompt_tokens=9, completion_tokens=2, total_tokens=11)
