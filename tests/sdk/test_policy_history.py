"""validate_history and HistoryPolicy: the tool-call history rules, checked before any call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenkit._core.pipeline import Call
from qwenkit._core.policies import HistoryError, HistoryPolicy, validate_history
from qwenkit._exceptions import ValidationError
from qwenkit.types import AnyMessage, ChatRequest, ContentDelta, Event, Finished, parse_messages

EVENTS: list[Event] = [ContentDelta("hi"), Finished("stop")]
Msg = dict[str, Any]


class FakeNext:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncIterator[Event]:
        self.calls.append(call)
        for event in EVENTS:
            yield event


def user(text: str = "question") -> Msg:
    return {"role": "user", "content": text}


def system(text: str = "be brief") -> Msg:
    return {"role": "system", "content": text}


def answer(text: str = "done") -> Msg:
    return {"role": "assistant", "content": text}


def calls(*ids: str, arguments: str = '{"city": "Hangzhou"}') -> Msg:
    tool_calls = [
        {"id": id_, "type": "function", "function": {"name": f"fn_{id_}", "arguments": arguments}}
        for id_ in ids
    ]
    return {"role": "assistant", "content": "", "tool_calls": tool_calls}


def result(id_: str) -> Msg:
    return {"role": "tool", "content": f"result of {id_}", "tool_call_id": id_}


def check(*messages: Msg, strict_order: bool = True) -> None:
    validate_history(parse_messages(messages), strict_order=strict_order)


def fails(*messages: Msg, strict_order: bool = True) -> HistoryError:
    with pytest.raises(HistoryError) as info:
        check(*messages, strict_order=strict_order)
    return info.value


PARALLEL = (user(), calls("a", "b", "c"))


@pytest.mark.parametrize(
    "history",
    [
        [user()],
        [system(), user(), answer()],
        [user(), answer(), user()],
        [*PARALLEL, result("a"), result("b"), result("c")],
        [*PARALLEL, result("a"), result("b"), result("c"), answer()],
        [*PARALLEL, result("a"), result("b"), result("c"), answer(), user("more")],
        [user(), calls("a"), result("a"), calls("b"), result("b"), answer()],
        [user(), calls("x"), result("x"), user(), calls("x"), result("x")],  # ids reused later
        [user(), answer(), system("late system"), user()],  # allowed; the policy notes it
        [user(), {"role": "assistant", "content": "", "tool_calls": []}, user()],
    ],
)
def test_valid_histories_pass(history: list[Msg]) -> None:
    check(*history)


def test_three_parallel_calls_answered_out_of_order() -> None:
    error = fails(*PARALLEL, result("b"), result("a"), result("c"))
    assert (error.index, error.param) == (2, "messages[2]")
    assert "message 2 (tool) answers tool call 'b' out of order" in str(error)
    assert "the next answer must be for 'a' (fn_a)" in str(error)
    check(*PARALLEL, result("b"), result("c"), result("a"), strict_order=False)


def test_three_parallel_calls_one_missing() -> None:
    error = fails(*PARALLEL, result("a"), result("c"))  # strict: c comes where b was due
    assert error.index == 3
    error = fails(*PARALLEL, result("a"), result("b"), user("next"))
    assert error.index == 4
    assert "message 4 (user) comes before tool calls 'c' (fn_c)" in str(error)
    assert "append one tool message per call" in str(error)
    error = fails(*PARALLEL, result("a"), result("c"), answer(), strict_order=False)
    assert error.index == 4
    assert "'b' (fn_b)" in str(error)


def test_three_parallel_calls_one_duplicated() -> None:
    error = fails(*PARALLEL, result("a"), result("a"), result("b"), result("c"))
    assert error.index == 3
    assert "a second time" in str(error)
    error = fails(*PARALLEL, result("a"), result("b"), result("c"), result("b"))
    assert error.index == 5
    error = fails(*PARALLEL, result("b"), result("a"), result("b"), strict_order=False)
    assert "a second time" in str(error)


def test_history_ending_with_unanswered_calls() -> None:
    error = fails(user(), calls("a"))
    assert error.index == 1, "the index of the assistant message with the unanswered calls"
    assert "the history ends before tool calls 'a' (fn_a)" in str(error)
    error = fails(*PARALLEL, result("a"), result("b"))
    assert error.index == 1


def test_unknown_tool_call_id() -> None:
    error = fails(*PARALLEL, result("a"), result("zzz"))
    assert error.index == 3
    assert "answers tool call 'zzz', which message 1 (assistant) did not make" in str(error)


@pytest.mark.parametrize(
    ("history", "index"),
    [
        ([result("a")], 0),
        ([user(), result("a")], 1),
        ([user(), answer(), result("a")], 2),  # an assistant message without tool_calls
        ([user(), calls("a"), result("a"), user(), result("a")], 4),
        ([user(), calls("a"), result("a"), answer(), result("a")], 4),
        ([user(), {"role": "assistant", "content": "", "tool_calls": []}, result("a")], 2),
    ],
)
def test_orphan_tool_results(history: list[Msg], index: int) -> None:
    error = fails(*history)
    assert error.index == index
    assert f"message {index} (tool)" in str(error)
    assert "append the assistant message carrying tool_calls before the tool results" in str(error)


def test_a_new_assistant_message_before_the_calls_were_answered() -> None:
    error = fails(*PARALLEL, result("a"), answer())
    assert error.index == 3
    assert "message 3 (assistant) comes before" in str(error)
    assert fails(user(), calls("a"), calls("b"), result("b")).index == 2
    assert fails(user(), calls("a"), system(), result("a")).index == 2


@pytest.mark.parametrize("arguments", ["", "  ", "{", "{'city': 1}", "city=Hangzhou", "{}}"])
def test_arguments_that_are_not_json(arguments: str) -> None:
    error = fails(user(), calls("a", arguments=arguments), result("a"))
    assert error.index == 1
    assert "are not JSON" in str(error)
    if not arguments.strip():
        assert 'send "{}"' in str(error)


@pytest.mark.parametrize("arguments", ["{}", '{"a": [1, 2]}', " {} ", "[]", '"x"', "null"])
def test_arguments_that_are_json(arguments: str) -> None:
    check(user(), calls("a", arguments=arguments), result("a"))


def test_long_invalid_arguments_are_shortened_in_the_message() -> None:
    error = fails(user(), calls("a", arguments="x" * 500), result("a"))
    assert "x" * 77 + "..." in str(error)
    assert "x" * 78 not in str(error)


def test_duplicate_ids_in_one_assistant_message() -> None:
    error = fails(user(), calls("a", "a"), result("a"), result("a"))
    assert (error.index, "two tool calls with id 'a'" in str(error)) == (1, True)


def test_an_empty_history_fails() -> None:
    with pytest.raises(HistoryError, match="at least one message") as info:
        validate_history([])
    assert info.value.param == "messages"
    assert isinstance(info.value, ValidationError)


@pytest.mark.anyio
async def test_policy_passes_a_valid_history_and_notes_a_late_system_message() -> None:
    messages = [user(), answer(), system("late"), user()]
    call = Call(request=ChatRequest(model="qwen-plus", messages=messages))
    fake = FakeNext()
    events = [event async for event in HistoryPolicy()(call, fake)]
    assert events == EVENTS
    assert fake.calls == [call]
    assert any("system message at index 2" in note for note in call.notes)


@pytest.mark.anyio
async def test_policy_fails_before_call_next() -> None:
    call = Call(request=ChatRequest(model="qwen-plus", messages=[user(), result("a")]))
    fake = FakeNext()
    with pytest.raises(HistoryError):
        _ = [event async for event in HistoryPolicy()(call, fake)]
    assert fake.calls == []


def test_policy_strict_order_is_configurable() -> None:
    messages = [*PARALLEL, result("c"), result("b"), result("a")]
    call = Call(request=ChatRequest(model="qwen-plus", messages=messages))
    HistoryPolicy(strict_order=False).prepare(call)
    with pytest.raises(HistoryError):
        HistoryPolicy().prepare(call)


# -- properties ---------------------------------------------------------------------------------

ROUND_SIZES = st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=5)
"""Tool-call rounds of a conversation: how many parallel calls each makes (0: a plain answer)."""


def build(rounds: list[int], follow_up: bool) -> list[Msg]:
    messages: list[Msg] = [system(), user()]
    counter = 0
    for size in rounds:
        if size == 0:
            messages += [answer(), user()]
            continue
        ids = [f"call_{counter + i}" for i in range(size)]
        counter += size
        messages += [calls(*ids), *(result(id_) for id_ in ids)]
    if follow_up:
        messages.append(answer())
    return messages


def tool_positions(messages: list[Msg]) -> list[int]:
    return [i for i, message in enumerate(messages) if message["role"] == "tool"]


@given(ROUND_SIZES, st.booleans())
def test_property_generated_tool_conversations_are_valid(rounds: list[int], end: bool) -> None:
    check(*build(rounds, end))


@given(ROUND_SIZES.filter(lambda sizes: sum(sizes) >= 1), st.booleans(), st.data())
def test_property_removing_one_tool_message_always_fails(
    rounds: list[int], end: bool, data: st.DataObject
) -> None:
    messages = build(rounds, end)
    drop = data.draw(st.sampled_from(tool_positions(messages)))
    del messages[drop]
    for strict_order in (True, False):
        with pytest.raises(HistoryError):
            check(*messages, strict_order=strict_order)


@given(ROUND_SIZES.filter(lambda sizes: sum(sizes) >= 2), st.booleans(), st.data())
def test_property_swapping_two_tool_messages_always_fails(
    rounds: list[int], end: bool, data: st.DataObject
) -> None:
    messages = build(rounds, end)
    first, second = data.draw(
        st.lists(st.sampled_from(tool_positions(messages)), min_size=2, max_size=2, unique=True)
    )
    messages[first], messages[second] = messages[second], messages[first]
    with pytest.raises(HistoryError):
        check(*messages, strict_order=True)


MESSAGE = st.one_of(
    st.just(user()),
    st.just(system()),
    st.just(answer()),
    st.builds(lambda ids: calls(*ids), st.lists(st.sampled_from("abc"), max_size=3)),
    st.builds(result, st.sampled_from("abcd")),
)


@given(st.lists(MESSAGE, max_size=8), st.booleans())
def test_property_any_history_passes_or_raises_a_history_error(
    history: list[Msg], strict_order: bool
) -> None:
    messages: list[AnyMessage] = parse_messages(history)
    failure: HistoryError | None = None
    try:
        validate_history(messages, strict_order=strict_order)
    except HistoryError as error:
        failure = error
    if failure is not None:
        assert failure.index is None or 0 <= failure.index < len(messages)
        assert str(failure)
