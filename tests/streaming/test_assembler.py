"""Unit tests of ``qwenkit.streaming.assembler``: one test (or a few) per folding rule."""

from __future__ import annotations

import pytest

from qwenkit.streaming import StreamAssembler, StreamFailed, assemble
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

START = ResponseStarted(id="chatcmpl-1", model="qwen-plus", created=1700000000, request_id="r-1")


def test_text_stream() -> None:
    response = assemble(
        [
            START,
            ContentDelta("Hel"),
            ContentDelta("lo, "),
            ContentDelta("world"),
            Finished("stop"),
            UsageReported(Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8)),
        ]
    )
    assert isinstance(response, ChatResponse)
    assert response.id == "chatcmpl-1"
    assert response.model == "qwen-plus"
    assert response.created == 1700000000
    assert response.request_id == "r-1"
    assert response.content == "Hello, world"
    assert response.finish_reason == "stop"
    assert response.reasoning is None
    assert response.tool_calls == []
    assert response.message.tool_calls is None
    assert response.usage == Usage(prompt_tokens=5, completion_tokens=3, total_tokens=8)
    assert [c.index for c in response.choices] == [0]


def test_text_is_kept_exactly() -> None:
    parts = ["  lead", "ing\n", "", "\t", "中文", "😀", " trailing  "]
    assert assemble([ContentDelta(p) for p in parts]).content == "".join(parts)


def test_reasoning_accumulates_apart_from_content() -> None:
    response = assemble(
        [
            START,
            ReasoningDelta("The user "),
            ReasoningDelta("asks."),
            ContentDelta("Answer"),
            ReasoningDelta(" (late)"),  # never leaks into the content, whatever the order
            ContentDelta("!"),
            Finished("stop"),
        ]
    )
    assert response.content == "Answer!"
    assert response.reasoning == "The user asks. (late)"
    assert response.message.reasoning_content == "The user asks. (late)"


def test_empty_reasoning_is_none() -> None:
    response = assemble([ReasoningDelta(""), ContentDelta("x")])
    assert response.reasoning is None
    assert response.content == "x"


def test_tool_call_fragments_keyed_by_index() -> None:
    response = assemble(
        [
            START,
            ToolCallDelta(0, id="call_a", name="get_weather", arguments=""),
            ToolCallDelta(0, id="", arguments='{"location":'),
            ToolCallDelta(1, id="call_b", name="get_time", arguments="{"),
            ToolCallDelta(0, id=None, name=None, arguments=' "杭州"}'),
            ToolCallDelta(1, id="", name="", arguments="}"),
            Finished("tool_calls"),
        ]
    )
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls == [
        ToolCall(
            id="call_a",
            function=FunctionCall(name="get_weather", arguments='{"location": "杭州"}'),
            index=0,
        ),
        ToolCall(id="call_b", function=FunctionCall(name="get_time", arguments="{}"), index=1),
    ]
    assert response.content == ""


def test_tool_calls_ordered_by_index_not_arrival() -> None:
    response = assemble(
        [
            ToolCallDelta(2, id="c2", name="f2", arguments="2"),
            ToolCallDelta(0, id="c0", name="f0", arguments="0"),
            ToolCallDelta(1, id="c1", name="f1", arguments="1"),
        ]
    )
    assert [(t.index, t.id, t.function.name) for t in response.tool_calls] == [
        (0, "c0", "f0"),
        (1, "c1", "f1"),
        (2, "c2", "f2"),
    ]


def test_tool_call_arguments_not_parsed_or_stripped() -> None:
    fragments = [" {", '"a" :', " 1 ", ",}", "  not json\n"]
    events: list[Event] = [ToolCallDelta(0, id="c", name="f")]
    events += [ToolCallDelta(0, arguments=f) for f in fragments]
    assert assemble(events).tool_calls[0].function.arguments == "".join(fragments)


def test_known_id_and_name_never_overwritten_by_empty() -> None:
    events: list[Event] = [
        ToolCallDelta(0, id="call_1", name="search", arguments="{"),
        ToolCallDelta(0, id="", name="", arguments="}"),
        ToolCallDelta(0, id=None, name=None),
    ]
    call = assemble(events).tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_1", "search", "{}")


def test_fragment_before_id_is_known() -> None:
    response = assemble(
        [
            ToolCallDelta(0, id="", arguments='{"q":'),
            ToolCallDelta(0, id="call_9", name="search", arguments=' "x"'),
            ToolCallDelta(0, arguments="}"),
        ]
    )
    call = response.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (
        "call_9",
        "search",
        '{"q": "x"}',
    )


def test_tool_call_without_id_or_name_still_assembles() -> None:
    call = assemble([ToolCallDelta(3, arguments="{}")]).tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments, call.index) == ("", "", "{}", 3)


def test_usage_last_one_wins() -> None:
    events: list[Event] = [
        UsageReported(Usage(prompt_tokens=10, completion_tokens=1, total_tokens=11)),
        ContentDelta("a"),
        UsageReported(Usage(prompt_tokens=10, completion_tokens=2, total_tokens=12)),
        UsageReported(
            Usage(prompt_tokens=10, completion_tokens=5, total_tokens=15, reasoning_tokens=3)
        ),
    ]
    usage = assemble(events).usage
    assert usage == Usage(
        prompt_tokens=10, completion_tokens=5, total_tokens=15, reasoning_tokens=3
    )


def test_no_usage_is_none() -> None:
    assert assemble([ContentDelta("a")]).usage is None


def test_missing_response_started() -> None:
    response = assemble([ContentDelta("hi"), Finished("stop")])
    assert (response.id, response.model, response.created, response.request_id) == ("", "", 0, None)
    assert response.content == "hi"


def test_empty_stream_gives_an_empty_message() -> None:
    response = assemble([])
    assert response.content == ""
    assert response.finish_reason is None
    assert response.message.role == "assistant"


def test_later_response_started_completes_but_never_blanks_identity() -> None:
    response = assemble(
        [
            ResponseStarted(id="", model="", request_id="r-2"),
            ResponseStarted(id="chatcmpl-2", model="qwen-max", created=5),
            ResponseStarted(id="", model=""),
        ]
    )
    assert (response.id, response.model, response.created, response.request_id) == (
        "chatcmpl-2",
        "qwen-max",
        5,
        "r-2",
    )


def test_n_greater_than_one() -> None:
    response = assemble(
        [
            START,
            ContentDelta("A", choice=0),
            ContentDelta("B", choice=1),
            ReasoningDelta("think-b", choice=1),
            ContentDelta("a", choice=0),
            ToolCallDelta(0, id="c", name="f", arguments="{}", choice=2),
            ContentDelta("b", choice=1),
            Finished("stop", choice=1),
            Finished("length", choice=0),
            Finished("tool_calls", choice=2),
        ]
    )
    assert [c.index for c in response.choices] == [0, 1, 2]
    first, second, third = response.choices
    assert (first.message.content, first.message.reasoning_content, first.finish_reason) == (
        "Aa",
        None,
        "length",
    )
    assert (second.message.content, second.message.reasoning_content, second.finish_reason) == (
        "Bb",
        "think-b",
        "stop",
    )
    assert third.message.tool_calls == [
        ToolCall(id="c", function=FunctionCall(name="f", arguments="{}"), index=0)
    ]
    assert third.finish_reason == "tool_calls"
    assert first.message.tool_calls is None


def test_choice_zero_present_even_if_only_others_seen() -> None:
    response = assemble([ContentDelta("x", choice=1)])
    assert [c.index for c in response.choices] == [0, 1]
    assert response.content == ""
    assert response.choices[1].message.content == "x"


def test_stream_error_raises_with_partial_response() -> None:
    error = ErrorInfo(status=400, code="DataInspectionFailed", message="bad output", request_id="r")
    assembler = StreamAssembler()
    assembler.extend(
        [
            START,
            ReasoningDelta("hmm"),
            ContentDelta("partial "),
            ContentDelta("answer"),
            UsageReported(Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)),
            StreamError(error),
        ]
    )
    assert assembler.error == error
    assert not assembler.finished
    with pytest.raises(StreamFailed, match="DataInspectionFailed") as caught:
        assembler.result()
    assert caught.value.error == error
    partial = caught.value.partial
    assert partial.content == "partial answer"
    assert partial.reasoning == "hmm"
    assert partial.id == "chatcmpl-1"
    assert partial.finish_reason is None
    assert partial.usage == Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    assert assembler.snapshot() == partial  # snapshot never raises


def test_stream_error_before_anything() -> None:
    error = ErrorInfo(status=429, code="Throttling", message="slow down")
    with pytest.raises(StreamFailed) as caught:
        assemble([StreamError(error)])
    assert caught.value.error is error
    assert caught.value.partial.content == ""
    assert str(caught.value) == "429 Throttling: slow down"


def test_first_error_is_kept() -> None:
    first = ErrorInfo(status=400, code="A", message="a")
    assembler = StreamAssembler()
    assembler.extend([StreamError(first), StreamError(ErrorInfo(status=500, code="B", message=""))])
    assert assembler.error is first


def test_live_properties() -> None:
    assembler = StreamAssembler()
    assert (assembler.content, assembler.reasoning, assembler.tool_calls) == ("", "", [])
    assert (assembler.finished, assembler.usage, assembler.error) == (False, None, None)
    assembler.add(START)
    assert (assembler.id, assembler.model, assembler.request_id) == (
        "chatcmpl-1",
        "qwen-plus",
        "r-1",
    )
    assembler.add(ReasoningDelta("a"))
    assembler.add(ReasoningDelta("b"))
    assert assembler.reasoning == "ab"
    assembler.add(ReasoningDelta("c"))
    assert assembler.reasoning == "abc"  # reading does not disturb later accumulation
    assert assembler.content == ""
    assembler.add(ContentDelta("x"))
    assert assembler.content == "x"
    assembler.add(ContentDelta("y"))
    assembler.add(ToolCallDelta(0, id="c", name="f", arguments='{"k"'))
    assert assembler.tool_calls == [
        ToolCall(id="c", function=FunctionCall(name="f", arguments='{"k"'), index=0)
    ]
    assembler.add(ToolCallDelta(0, arguments=": 1}"))
    assert assembler.tool_calls[0].function.arguments == '{"k": 1}'
    assert assembler.content == "xy"
    assert not assembler.finished
    assert assembler.finish_reason is None
    usage = Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2)
    assembler.add(UsageReported(usage))
    assert assembler.usage == usage
    assembler.add(Finished("tool_calls"))
    assert assembler.finished
    assert assembler.finish_reason == "tool_calls"
    assert assembler.choice_indexes == [0]
    result = assembler.result()
    assert (result.content, result.reasoning) == ("xy", "abc")
    assert result.tool_calls[0].function.arguments == '{"k": 1}'


def test_finished_waits_for_every_seen_choice() -> None:
    assembler = StreamAssembler()
    assembler.extend([ContentDelta("a", choice=0), ContentDelta("b", choice=1)])
    assembler.add(Finished("stop", choice=0))
    assert not assembler.finished
    assembler.add(Finished("stop", choice=1))
    assert assembler.finished
    assert assembler.content_of(1) == "b"
    assert assembler.reasoning_of(1) == ""
    assert assembler.tool_calls_of(1) == []
    assert assembler.content_of(7) == ""


def test_live_tool_calls_are_copies() -> None:
    assembler = StreamAssembler()
    assembler.add(ToolCallDelta(0, id="c", name="f", arguments="{"))
    snapshot = assembler.tool_calls
    assembler.add(ToolCallDelta(0, arguments="}"))
    assert snapshot[0].function.arguments == "{"
    assert assembler.tool_calls[0].function.arguments == "{}"


def test_result_can_be_taken_twice_and_streaming_continue() -> None:
    assembler = StreamAssembler()
    assembler.add(ContentDelta("a"))
    assert assembler.result().content == "a"
    assembler.add(ContentDelta("b"))
    assert assembler.result().content == "ab"
    assert assembler.result() == assembler.result()


def test_not_an_event_is_rejected() -> None:
    with pytest.raises(TypeError, match="not a stream event"):
        StreamAssembler().add("text")  # type: ignore[arg-type]


def test_assembled_response_serialises_like_a_compat_response() -> None:
    wire = assemble(
        [
            START,
            ToolCallDelta(0, id="call_1", name="f", arguments="{}"),
            Finished("tool_calls"),
        ]
    ).to_wire()
    assert wire["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                        "index": 0,
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ]
    assert "usage" not in wire


def test_thousands_of_events_are_linear() -> None:
    events: list[Event] = [ReasoningDelta("r") for _ in range(20_000)]
    events += [ContentDelta("c") for _ in range(20_000)]
    events += [ToolCallDelta(0, id="x" if i == 0 else "", arguments="a") for i in range(20_000)]
    response = assemble(events)
    assert response.reasoning == "r" * 20_000
    assert response.content == "c" * 20_000
    assert response.tool_calls[0].function.arguments == "a" * 20_000


def test_stream_failed_is_a_qwen_error() -> None:
    from qwenkit import QwenError

    error = ErrorInfo(status=500, code="InternalError", message="boom")
    with pytest.raises(QwenError):
        assemble([StreamError(error)])
