"""Native SSE decoding: the verbatim examples of the wire reference (§3.3, §3.4) and the rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
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
from qwenkit.wire.native import NativeStreamError, StreamDecoder, adecode_stream, decode_stream
from qwenkit.wire.sse import SSEEvent, encode_native_event, iter_sse

# §3.3, verbatim (the doc copy itself truncates the second request_id with "…").
THINKING = """id:1
event:result
:HTTP_STATUS/200
data:{"output":{"choices":[{"message":{"content":"","reasoning_content":"The","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":290,"output_tokens":3,"input_tokens":287,"output_tokens_details":{"reasoning_tokens":1}},"request_id":"a1959ad1-2637-4672-a21f-4d351371d254"}

id:2
event:result
:HTTP_STATUS/200
data:{"output":{"choices":[{"message":{"content":"","reasoning_content":" user is asking","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":293,"output_tokens":6,"input_tokens":287,"output_tokens_details":{"reasoning_tokens":4}},"request_id":"a1959ad1-2…"}

"""  # noqa: E501

# §3.4, verbatim.
ARREARAGE = """id:1
event:error
:HTTP_STATUS/400
data:{"request_id":"req-1","code":"Arrearage","type":"Arrearage","message":"Access denied, please make sure your account is in good standing."}

"""  # noqa: E501
THROTTLED = (
    "id:1\nevent:error\n:HTTP_STATUS/429\n"
    'data:{"request_id":"566e3621","code":"Throttling.AllocationQuota",'
    '"message":"Allocated quota exceeded"}'
)
MID_STREAM_ERROR = """event:result
:HTTP_STATUS/200
data:{"output":{"choices":[{"message":{"content":"你好！","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":116,"input_tokens":114,"output_tokens":2},"request_id":"71689cfc-1f42-9949-86e8-9563b7f832b1"}

event:error
:HTTP_STATUS/400
data:{"code":"InvalidParameter","message":"Preprocessor error","request_id":"0cbe6006-faec-9854-bf8b-c906d75c3bd8"}
"""

RID = "a1959ad1-2637-4672-a21f-4d351371d254"


def decode(text: str, **kwargs: Any) -> list[Event]:
    return list(decode_stream([text.encode()], **kwargs))


def chunk(
    n: int,
    message: dict[str, Any] | None = None,
    *,
    finish: str = "null",
    usage: dict[str, Any] | None = None,
    rid: str = "r1",
) -> bytes:
    data = {
        "output": {"choices": [{"message": message or {}, "finish_reason": finish}]},
        "usage": usage or {"input_tokens": 5, "output_tokens": n, "total_tokens": 5 + n},
        "request_id": rid,
    }
    return encode_native_event(json.dumps(data, ensure_ascii=False), id=n)


def test_thinking_chunks_of_the_reference() -> None:
    assert decode(THINKING, model="qwen3-max") == [
        ResponseStarted(id="chatcmpl-" + RID, model="qwen3-max", request_id=RID),
        UsageReported(
            Usage(prompt_tokens=287, completion_tokens=3, total_tokens=290, reasoning_tokens=1)
        ),
        ReasoningDelta("The"),
        UsageReported(
            Usage(prompt_tokens=287, completion_tokens=6, total_tokens=293, reasoning_tokens=4)
        ),
        ReasoningDelta(" user is asking"),
    ]


def test_any_chunk_boundary_gives_the_same_events() -> None:
    raw = THINKING.encode()
    one_byte_at_a_time = [raw[i : i + 1] for i in range(len(raw))]
    assert list(decode_stream(one_byte_at_a_time)) == list(decode_stream([raw]))


def test_arrearage_rejected_up_front() -> None:
    decoder = StreamDecoder()
    events = [e for ev in _sse(ARREARAGE) for e in decoder.feed(ev)]
    message = "Access denied, please make sure your account is in good standing."
    assert events == [StreamError(ErrorInfo(400, "Arrearage", message, request_id="req-1"))]
    assert decoder.done


def test_throttling_keeps_its_429() -> None:
    [event] = decode(THROTTLED)
    assert isinstance(event, StreamError)
    assert event.error == ErrorInfo(
        429, "Throttling.AllocationQuota", "Allocated quota exceeded", request_id="566e3621"
    )


def test_mid_stream_error_after_a_result() -> None:
    events = decode(MID_STREAM_ERROR + "\n" + chunk(9, {"content": "late"}).decode())
    rid = "71689cfc-1f42-9949-86e8-9563b7f832b1"
    assert events == [
        ResponseStarted(id="chatcmpl-" + rid, model="", request_id=rid),
        UsageReported(Usage(prompt_tokens=114, completion_tokens=2, total_tokens=116)),
        ContentDelta("你好！"),
        StreamError(
            ErrorInfo(
                400,
                "InvalidParameter",
                "Preprocessor error",
                request_id="0cbe6006-faec-9854-bf8b-c906d75c3bd8",
            )
        ),
    ]  # and the result after the error is ignored


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        ("event:error\n", 429),  # no :HTTP_STATUS: the code's usual status, not the SDK's 400
        ("event:error\n:HTTP_STATUS/503\n", 503),  # the comment wins over the code table
        ("event:error\nstatus:500\n", 500),  # the SDK's own status line
        ("event:result\n:HTTP_STATUS/429\n", 429),  # an error status on a result event
    ],
)
def test_error_status(frame: str, status: int) -> None:
    data = '{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded"}'
    [event] = decode(f"id:1\n{frame}data:{data}\n\n")
    assert isinstance(event, StreamError)
    assert (event.error.status, event.error.code) == (status, "Throttling.RateQuota")


def test_error_without_status_and_unknown_code_is_400() -> None:
    [event] = decode('event:error\ndata:{"code":"Weird.Code","message":"?"}\n\n')
    assert isinstance(event, StreamError)
    assert event.error.status == 400


def test_mid_stream_error_without_request_id_gets_the_streams() -> None:
    events = decode(chunk(1, {"content": "a"}).decode() + 'event:error\ndata:{"code":"X"}\n\n')
    assert isinstance(events[-1], StreamError)
    assert events[-1].error.request_id == "r1"


def test_finish_reason_null_string_json_null_and_real_reason() -> None:
    decoder = StreamDecoder(model="m")
    first = decoder.feed(_event(chunk(1, {"content": "a", "role": "assistant"})))
    second = decoder.feed(_event(chunk(2, {"content": "b"}, finish="null")))
    assert not any(isinstance(e, Finished) for e in first + second)
    assert not decoder.done
    data = json.loads(_event(chunk(3, {"content": ""})).data)
    data["output"]["choices"][0]["finish_reason"] = None
    assert decoder.feed(SSEEvent(json.dumps(data))) == [
        UsageReported(Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8))
    ]
    last = decoder.feed(_event(chunk(4, {"content": ""}, finish="length")))
    assert last == [
        UsageReported(Usage(prompt_tokens=5, completion_tokens=4, total_tokens=9)),
        Finished("length"),
    ]
    assert decoder.done


def test_usage_reported_only_when_it_changes() -> None:
    usage = {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}
    events = list(
        decode_stream(
            [
                chunk(1, {"content": "a"}, usage=usage),
                chunk(2, {"content": "b"}, usage=usage),
                chunk(3, {"content": ""}, usage=usage, finish="stop"),
            ]
        )
    )
    assert [type(e) for e in events] == [
        ResponseStarted,
        UsageReported,
        ContentDelta,
        ContentDelta,
        Finished,
    ]


def test_without_live_usage_only_the_final_usage_is_decoded() -> None:
    chunks = [
        chunk(
            1, {"content": "a"}, usage={"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}
        ),
        chunk(
            2, {"content": "b"}, usage={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
        ),
        chunk(
            3,
            {"content": ""},
            usage={"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
            finish="stop",
        ),
    ]
    decoder = StreamDecoder(live_usage=False)
    events = [e for sse in iter_sse(chunks) for e in decoder.feed(sse)]
    assert [type(e) for e in events] == [
        ResponseStarted,
        ContentDelta,
        ContentDelta,
        UsageReported,
        Finished,
    ]
    reported = [e for e in events if isinstance(e, UsageReported)]
    assert reported[0].usage.completion_tokens == 3
    live = [e for e in decode_stream(chunks) if isinstance(e, UsageReported)]
    assert [e.usage.completion_tokens for e in live] == [1, 2, 3]


def test_text_result_format_chunks() -> None:
    def text_chunk(n: int, text: str, finish: str) -> bytes:
        data = {
            "output": {"finish_reason": finish, "text": text},
            "usage": {"input_tokens": 3, "output_tokens": n, "total_tokens": 3 + n},
            "request_id": "t",
        }
        return encode_native_event(json.dumps(data), id=n)

    events = list(decode_stream([text_chunk(1, "Hel", "null"), text_chunk(2, "lo", "stop")]))
    assert [e for e in events if isinstance(e, (ContentDelta, Finished))] == [
        ContentDelta("Hel"),
        ContentDelta("lo"),
        Finished("stop"),
    ]


def _tool(index: int, call_id: str, name: str | None, arguments: str) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    return {"index": index, "id": call_id, "type": "function", "function": function}


INCREMENTAL = [
    chunk(1, {"content": "", "reasoning_content": "Let me", "role": "assistant"}),
    chunk(2, {"content": "", "reasoning_content": " think.", "role": "assistant"}),
    chunk(3, {"content": "Checking", "reasoning_content": "", "role": "assistant"}),
    chunk(4, {"content": "", "tool_calls": [_tool(0, "call_1", "get_weather", '{"city":')]}),
    chunk(5, {"content": "", "tool_calls": [_tool(0, "", None, ' "杭州"}')]}),
    chunk(6, {"content": "", "reasoning_content": "", "role": "assistant"}, finish="tool_calls"),
]
CUMULATIVE = [
    chunk(1, {"content": "", "reasoning_content": "Let me", "role": "assistant"}),
    chunk(2, {"content": "", "reasoning_content": "Let me think.", "role": "assistant"}),
    chunk(3, {"content": "Checking", "reasoning_content": "Let me think.", "role": "assistant"}),
    chunk(
        4, {"content": "Checking", "tool_calls": [_tool(0, "call_1", "get_weather", '{"city":')]}
    ),
    chunk(
        5,
        {
            "content": "Checking",
            "tool_calls": [_tool(0, "call_1", "get_weather", '{"city": "杭州"}')],
        },
    ),
    chunk(6, {"content": "Checking", "reasoning_content": "Let me think."}, finish="tool_calls"),
]


def test_cumulative_stream_gives_the_same_deltas_as_incremental() -> None:
    incremental = list(decode_stream(INCREMENTAL, incremental=True))
    cumulative = list(decode_stream(CUMULATIVE, incremental=False))
    assert cumulative == incremental
    assert [e for e in incremental if isinstance(e, ToolCallDelta)] == [
        ToolCallDelta(0, "call_1", "get_weather", '{"city":'),
        ToolCallDelta(0, None, None, ' "杭州"}'),
    ]


def test_cumulative_text_that_does_not_extend_raises() -> None:
    chunks = [chunk(1, {"content": "Hello"}), chunk(2, {"content": "Help"})]
    with pytest.raises(NativeStreamError, match="does not extend"):
        list(decode_stream(chunks, incremental=False))


def test_cumulative_tool_arguments_that_do_not_extend_raise() -> None:
    chunks = [
        chunk(1, {"tool_calls": [_tool(0, "c", "f", '{"a":1')]}),
        chunk(2, {"tool_calls": [_tool(0, "c", "f", '{"b":2}')]}),
    ]
    with pytest.raises(NativeStreamError):
        list(decode_stream(chunks, incremental=False))


def test_multimodal_content_lists_in_chunks() -> None:
    chunks = [chunk(1, {"content": [{"text": "图中"}]}), chunk(2, {"content": []})]
    deltas = [e for e in decode_stream(chunks) if isinstance(e, ContentDelta)]
    assert deltas == [ContentDelta("图中")]


def test_parallel_choices_keep_their_index() -> None:
    data = {
        "output": {
            "choices": [
                {"index": 1, "message": {"content": "b"}, "finish_reason": "stop"},
                {"index": 0, "message": {"content": "a"}, "finish_reason": "null"},
            ]
        },
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        "request_id": "r",
    }
    events = decode(encode_native_event(json.dumps(data), id=1).decode())
    assert ContentDelta("b", choice=1) in events
    assert ContentDelta("a", choice=0) in events
    assert events[-1] == Finished("stop", choice=1)


def test_done_events_and_unknown_kinds_are_ignored() -> None:
    text = chunk(1, {"content": "a"}).decode() + "event:done\ndata:[DONE]\n\n"
    assert [type(e) for e in decode(text)] == [ResponseStarted, UsageReported, ContentDelta]


def test_bad_json_raises() -> None:
    with pytest.raises(NativeStreamError):
        decode("event:result\ndata:{not json\n\n")


def test_adecode_stream_matches_decode_stream() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in INCREMENTAL:
            yield piece

    async def collect() -> list[Event]:
        return [e async for e in adecode_stream(chunks(), model="m")]

    assert asyncio.run(collect()) == list(decode_stream(INCREMENTAL, model="m"))


def _event(raw: bytes) -> SSEEvent:
    [event] = _sse(raw.decode())
    return event


def _sse(text: str) -> Iterable[SSEEvent]:
    return list(iter_sse([text.encode()]))
