"""``qwenkit.agents.step``: every transition of the pure loop, without a client."""

from __future__ import annotations

import json

import pytest

from qwenkit._core.policies.history import HistoryError
from qwenkit._exceptions import UsageError
from qwenkit.agents.result import ToolResult
from qwenkit.agents.step import (
    REPEAT_NOTE,
    Fail,
    Finish,
    Limits,
    Request,
    RunState,
    RunTools,
    Step,
    after_reply,
    after_tools,
    begin,
)
from qwenkit.types import (
    AssistantMessage,
    FunctionCall,
    ToolCall,
    ToolMessage,
    UserMessage,
)

QUESTION = UserMessage(content="Should I bring an umbrella to Shanghai?")


def call(id_: str, name: str = "get_weather", arguments: str = '{"city": "Shanghai"}') -> ToolCall:
    return ToolCall(id=id_, function=FunctionCall(name=name, arguments=arguments))


def calling(*calls: ToolCall, content: str | None = "") -> AssistantMessage:
    return AssistantMessage(content=content, tool_calls=list(calls))


def answer(text: str) -> AssistantMessage:
    return AssistantMessage(content=text)


def ok(tool: ToolCall, content: str = "rain", seconds: float = 0.5) -> ToolResult:
    return ToolResult(tool.id, tool.name, content, True, None, seconds)


def failed(tool: ToolCall, content: str = "Tool failed: boom") -> ToolResult:
    return ToolResult(tool.id, tool.name, content, False, "RuntimeError: boom", 0.1)


def start(**limits: object) -> Step:
    return begin([QUESTION], Limits(**limits))  # type: ignore[arg-type]


def run_tools(step: Step) -> RunTools:
    assert isinstance(step.action, RunTools), step.action
    return step.action


def request(step: Step) -> Request:
    assert isinstance(step.action, Request), step.action
    return step.action


def tool_round(state: RunState, *calls: ToolCall, content: str = "rain") -> Step:
    """A reply with ``calls``, their fresh calls answered with ``content``."""
    step = after_reply(state, calling(*calls))
    return after_tools(step.state, [ok(item, content) for item in run_tools(step).execute])


def test_begin_asks_with_tools_and_without_thinking() -> None:
    first = request(start(thinking=True))
    assert first == Request(1, (QUESTION,), "auto", False)
    assert not first.final


def test_begin_refuses_a_history_the_service_would_refuse() -> None:
    with pytest.raises(HistoryError):
        begin([QUESTION, calling(call("a"))], Limits())


def test_force_answer_after_zero_forces_the_first_request() -> None:
    assert request(start(force_answer_after=0, thinking=True)) == Request(
        1, (QUESTION,), "none", True
    )


@pytest.mark.parametrize(
    "limits",
    [{"max_rounds": 0}, {"force_answer_after": -1}],
)
def test_limits_are_checked(limits: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        Limits(**limits)  # type: ignore[arg-type]


def test_an_answer_without_calls_finishes() -> None:
    step = after_reply(start().state, answer("Yes."))
    assert step.action == Finish("Yes.", 1)
    assert step.state.notes == ()


def test_a_reply_with_calls_appends_one_assistant_message_and_runs_them() -> None:
    a, b = call("a", arguments='{"city": "Shanghai"}'), call("b", arguments='{"city": "Beijing"}')
    reply = AssistantMessage(content="Let me check.", reasoning_content="secret", tool_calls=[a, b])
    step = after_reply(start().state, reply)
    tools = run_tools(step)
    assert tools.calls == (a, b)
    assert tools.execute == (a, b)
    assert tools.cached == {}
    (appended,) = step.state.messages[1:]
    assert isinstance(appended, AssistantMessage)
    assert appended.tool_calls == [a, b]
    assert appended.content == "Let me check."
    assert appended.reasoning_content is None  # reasoning is never sent back


def test_tool_messages_follow_in_the_order_of_the_calls_whatever_the_result_order() -> None:
    a, b, c = (call(i, arguments=json.dumps({"n": i})) for i in "abc")
    step = after_reply(start().state, calling(a, b, c))
    step = after_tools(step.state, [ok(c, "C"), ok(a, "A"), ok(b, "B")])
    tools = [m for m in step.state.messages if isinstance(m, ToolMessage)]
    assert [(m.tool_call_id, m.content) for m in tools] == [("a", "A"), ("b", "B"), ("c", "C")]
    assert [t.id for t in step.state.trace] == ["a", "b", "c"]
    assert request(step) == Request(2, step.state.messages, "auto", False)


def test_the_answer_is_forced_after_force_answer_after_tool_rounds() -> None:
    step = start(force_answer_after=2, thinking=False)
    step = tool_round(step.state, call("a", arguments='{"city": "A"}'))
    assert request(step).tool_choice == "auto"
    step = tool_round(step.state, call("b", arguments='{"city": "B"}'))
    assert request(step) == Request(3, step.state.messages, "none", False)
    assert step.state.force_counter == 2


def test_the_forced_request_thinks_when_thinking_is_asked_for() -> None:
    step = tool_round(start(force_answer_after=1, thinking=True).state, call("a"))
    assert request(step).thinking
    assert request(step).final


def test_force_answer_after_none_never_forces() -> None:
    step = start(force_answer_after=None, max_rounds=20)
    for index in range(6):
        step = tool_round(step.state, call(f"c{index}", arguments=json.dumps({"n": index})))
        assert request(step).tool_choice == "auto"


def test_an_identical_call_is_not_run_again_and_repeats_the_earlier_result() -> None:
    step = tool_round(start().state, call("a", arguments='{"city": "Shanghai", "days": 1}'))
    again = call("b", arguments='{ "days": 1, "city": "Shanghai" }')  # same canonical arguments
    step = after_reply(step.state, calling(again))
    tools = run_tools(step)
    assert tools.execute == ()
    assert tools.cached == {"b": 1}
    step = after_tools(step.state, [])
    message = step.state.messages[-1]
    assert isinstance(message, ToolMessage)
    assert message.content == REPEAT_NOTE.format(round=1) + "\nrain"
    trace = step.state.trace[-1]
    assert trace.cached
    assert trace.ok
    assert trace.duration_s == 0.0
    assert trace.round == 2


def test_repeats_count_toward_forcing() -> None:
    # round 1: one fresh call (1); round 2: the same call again (repeat: 2); round 3: a fresh
    # call plus the same call again (one working round + one repeat: 4)
    first, other = call("a"), call("x", arguments='{"city": "Beijing"}')
    step = tool_round(start(force_answer_after=4).state, first)
    step = tool_round(step.state, call("b"))
    assert step.state.force_counter == 2
    assert request(step).tool_choice == "auto"
    step = tool_round(step.state, other, call("c"))
    assert (step.state.working_rounds, step.state.repeats, step.state.force_counter) == (2, 2, 4)
    assert request(step).tool_choice == "none"


def test_the_same_call_twice_in_one_message_runs_once() -> None:
    a, b = call("a"), call("b")
    step = after_reply(start().state, calling(a, b))
    tools = run_tools(step)
    assert tools.execute == (a,)
    assert tools.cached == {"b": 1}
    step = after_tools(step.state, [failed(a)])
    messages = step.state.messages[-2:]
    assert [m.text for m in messages] == [
        "Tool failed: boom",
        REPEAT_NOTE.format(round=1) + "\nTool failed: boom",
    ]
    assert [(t.ok, t.cached, t.error) for t in step.state.trace] == [
        (False, False, "RuntimeError: boom"),
        (False, True, "RuntimeError: boom"),
    ]


def test_a_failed_call_is_not_remembered_so_the_same_call_runs_again() -> None:
    a = call("a")
    step = after_reply(start().state, calling(a))
    step = after_tools(step.state, [failed(a)])
    b = call("b")
    tools = run_tools(after_reply(step.state, calling(b)))
    assert tools.execute == (b,)


def test_tool_calls_in_a_reply_to_tool_choice_none_are_ignored_with_a_note() -> None:
    step = tool_round(start(force_answer_after=1).state, call("a"))
    step = after_reply(step.state, calling(call("z"), content="It rains."))
    assert step.action == Finish("It rains.", 2)
    (note,) = step.state.notes
    assert "tool calls ignored (get_weather)" in note
    assert not isinstance(step.state.messages[-1], AssistantMessage)


def test_with_thinking_an_unthought_answer_is_asked_again_with_thinking() -> None:
    step = tool_round(start(thinking=True).state, call("a"))
    history = step.state.messages
    step = after_reply(step.state, answer("Yes (no thinking)."))
    assert request(step) == Request(3, history, "none", True)  # the unthought answer is dropped
    assert "asked again to think" in step.state.notes[-1]
    step = after_reply(step.state, answer("Yes, bring one."))
    assert step.action == Finish("Yes, bring one.", 3)


def test_with_thinking_and_no_round_left_the_unthought_answer_stands() -> None:
    step = after_reply(start(thinking=True, max_rounds=1).state, answer("Yes."))
    assert step.action == Finish("Yes.", 1)
    assert "no round left" in step.state.notes[-1]


def test_calls_in_the_last_allowed_round_fail() -> None:
    step = start(max_rounds=2, force_answer_after=None)
    step = tool_round(step.state, call("a"))
    step = after_reply(step.state, calling(call("b", arguments='{"city": "Beijing"}')))
    assert isinstance(step.action, Fail)
    assert "2 rounds" in step.action.reason
    assert isinstance(step.state.messages[-1], AssistantMessage)  # the transcript shows the ask
    assert len(step.state.trace) == 1


def test_unsendable_calls_are_repaired_in_the_history_but_run_as_sent() -> None:
    broken = call("a", arguments="{city: Shanghai")
    empty = call("a", name="now", arguments="")
    step = after_reply(start().state, calling(broken, empty))
    tools = run_tools(step)
    sent = step.state.messages[-1]
    assert isinstance(sent, AssistantMessage)
    assert sent.tool_calls is not None
    assert [c.arguments for c in sent.tool_calls] == ["{}", "{}"]
    assert [c.id for c in sent.tool_calls] == ["a", "call_r1_1"]  # duplicate id renamed
    assert [(c.id, c.arguments) for c in tools.execute] == [
        ("a", "{city: Shanghai"),
        ("call_r1_1", ""),
    ]
    assert len(step.state.notes) == 2  # renamed id, non-JSON arguments ("" needs no note)
    step = after_tools(step.state, [failed(c) for c in tools.execute])
    assert [t.arguments for t in step.state.trace] == ["{city: Shanghai", ""]


def test_steps_out_of_order_are_usage_errors() -> None:
    first = start()
    with pytest.raises(UsageError, match="no tool calls"):
        after_tools(first.state, [])
    step = after_reply(first.state, calling(call("a")))
    with pytest.raises(UsageError, match="no request"):
        after_reply(step.state, answer("again"))
    with pytest.raises(UsageError, match="exactly one result"):
        after_tools(step.state, [])
    with pytest.raises(UsageError, match="exactly one result"):
        after_tools(step.state, [ok(call("a")), ok(call("zzz"))])


def test_states_are_never_mutated() -> None:
    first = start()
    step = after_reply(first.state, calling(call("a")))
    after_tools(step.state, [ok(call("a"))])
    assert first.state.messages == (QUESTION,)
    assert first.state.trace == ()
    assert step.state.pending is not None
    assert step.state.memory == {}
