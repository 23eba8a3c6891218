"""The pure window logic under ``Conversation``: which messages are kept, summarised, never split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenkit._core.policies.history import HistoryError, validate_history
from qwenkit.agents._window import (
    SummaryMemory,
    WindowPlan,
    check_prefix,
    digest,
    group_starts,
    plan_window,
    summary_request,
)
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    FunctionCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
)


def call(id_: str, arguments: str = "{}") -> ToolCall:
    return ToolCall(id=id_, function=FunctionCall(name="lookup", arguments=arguments))


def tool_group(prefix: str, calls: int) -> list[AnyMessage]:
    ids = [f"{prefix}-{n}" for n in range(calls)]
    made: list[AnyMessage] = [AssistantMessage(content=None, tool_calls=[call(i) for i in ids])]
    return made + [ToolMessage(content=f"result {i}", tool_call_id=i) for i in ids]


@st.composite
def histories(draw: st.DrawFn) -> list[AnyMessage]:
    """Valid histories: an optional system message first, then turns, tool-call groups and the
    odd later system message."""
    messages: list[AnyMessage] = []
    if draw(st.booleans()):
        messages.append(SystemMessage(content="You are terse."))
    units = draw(st.lists(st.sampled_from(["user", "assistant", "tools", "system"]), max_size=14))
    for number, unit in enumerate(units):
        if unit == "tools":
            messages += tool_group(f"c{number}", draw(st.integers(1, 3)))
        elif unit == "user":
            messages.append(UserMessage(content=f"question {number}"))
        elif unit == "assistant":
            messages.append(AssistantMessage(content=f"answer {number}"))
        else:
            messages.append(SystemMessage(content=f"note {number}"))
    if not messages:
        messages.append(UserMessage(content="hello"))
    return messages


def groups(messages: list[AnyMessage]) -> list[list[int]]:
    """The atomic groups, computed independently: a tool-call message and its tool messages."""
    found: list[list[int]] = []
    for index, message in enumerate(messages):
        if isinstance(message, ToolMessage) and found:
            found[-1].append(index)
        else:
            found.append([index])
    return found


def sent(messages: list[AnyMessage], plan: WindowPlan) -> list[AnyMessage]:
    summary = [SystemMessage(content="Earlier in this conversation: ...")] if plan.middle else []
    head = [messages[plan.head]] if plan.head is not None else []
    return [*head, *summary, *(messages[i] for i in plan.tail)]


@settings(max_examples=300, deadline=None)
@given(
    messages=histories(),
    data=st.data(),
    keep_last=st.integers(1, 8),
    summary_tokens=st.integers(0, 40),
    overhead=st.integers(0, 10),
)
def test_plans_keep_system_and_last_message_and_never_split_a_group(
    messages: list[AnyMessage],
    data: st.DataObject,
    keep_last: int,
    summary_tokens: int,
    overhead: int,
) -> None:
    validate_history(messages)
    n = len(messages)
    costs = data.draw(st.lists(st.integers(1, 50), min_size=n, max_size=n))
    budget = data.draw(st.integers(0, sum(costs) + overhead + 20))
    cached = data.draw(st.none() | st.tuples(st.integers(0, n), st.integers(0, 40)))
    plan = plan_window(
        messages,
        costs,
        budget=budget,
        keep_last=keep_last,
        summary_tokens=summary_tokens,
        overhead=overhead,
        cached=cached,
    )
    # a partition of the history, sent in order after the head
    assert sorted([*plan.kept, *plan.middle]) == list(range(n))
    assert list(plan.tail) == sorted(plan.tail)
    assert plan.tail[-1] == n - 1  # ends with the last message
    first_system = next((i for i, m in enumerate(messages) if m.role == "system"), None)
    if first_system is not None:
        assert first_system in plan.kept
    for group in groups(messages):  # groups are atomic
        assert all(i in plan.tail for i in group) or not any(i in plan.tail for i in group)
    assert set(range(max(0, n - keep_last), n)) - {plan.head} <= set(plan.tail)
    validate_history(sent(messages, plan))  # never an orphan tool message
    expected = overhead + sum(costs[i] for i in plan.kept)
    if plan.reused:
        assert cached is not None
        assert plan.start == cached[0]
        expected += cached[1]
    else:
        expected += summary_tokens if plan.middle else 0
    assert plan.tokens == expected
    assert plan.fits == (plan.tokens <= budget)
    if sum(costs) + overhead <= budget:  # everything fits: everything is sent
        assert plan.fits
        assert not plan.middle
    if not plan.fits:  # only when even the smallest allowed window is over the budget
        start = min(g[0] for g in groups(messages) if n - keep_last in g) if n > keep_last else 0
        head = [first_system] if first_system is not None and first_system < start else []
        minimal = overhead + sum(costs[i] for i in range(start, n) if i not in head)
        has_middle = any(i not in head for i in range(start))
        minimal += sum(costs[i] for i in head) + (summary_tokens if has_middle else 0)
        if not has_middle:
            minimal = overhead + sum(costs)
        assert minimal > budget


def history_with_group_at_boundary() -> list[AnyMessage]:
    messages: list[AnyMessage] = [SystemMessage(content="sys")]
    for n in range(4):
        messages += [UserMessage(content=f"q{n}"), AssistantMessage(content=f"a{n}")]
    messages += [UserMessage(content="look it up"), *tool_group("g", 4)]
    return [*messages, AssistantMessage(content="found it"), UserMessage(content="thanks")]


def test_a_group_across_the_boundary_is_kept_whole() -> None:
    messages = history_with_group_at_boundary()
    start = len(messages) - 7  # the group's assistant message: 4 results + 2 messages after
    owner = messages[start]
    assert isinstance(owner, AssistantMessage)
    assert owner.tool_calls
    plan = plan_window(messages, [10] * len(messages), budget=100, keep_last=6, summary_tokens=5)
    assert plan.head == 0
    assert plan.start == start  # extended backwards from len - 6 (a tool message)
    assert plan.middle == tuple(range(1, start))
    assert plan.fits
    assert plan.tokens == 10 + 5 + 10 * 7
    assert group_starts(messages)[-3] == start


def test_everything_fits() -> None:
    messages = history_with_group_at_boundary()
    plan = plan_window(messages, [1] * len(messages), budget=100, summary_tokens=50)
    assert plan == WindowPlan(None, (), tuple(range(len(messages))), len(messages), True)


def test_too_big_even_when_summarised() -> None:
    messages = history_with_group_at_boundary()
    costs = [1] * (len(messages) - 1) + [500]
    plan = plan_window(messages, costs, budget=100, summary_tokens=5)
    assert not plan.fits
    assert plan.middle
    assert plan.tokens > 500


def test_nothing_to_summarise_means_no_fit() -> None:
    messages: list[AnyMessage] = [SystemMessage(content="s"), UserMessage(content="u")]
    plan = plan_window(messages, [50, 60], budget=100, summary_tokens=5)
    assert plan == WindowPlan(None, (), (0, 1), 110, False)


def test_a_cached_summary_is_reused_while_it_fits() -> None:
    messages = history_with_group_at_boundary()
    costs = [10] * len(messages)
    first = plan_window(messages, costs, budget=100, summary_tokens=20)
    assert not first.reused
    longer = [*messages, AssistantMessage(content="welcome")]
    again = plan_window(
        longer, [*costs, 10], budget=100, summary_tokens=20, cached=(first.start, 8)
    )
    assert again.reused
    assert again.start == first.start
    assert again.tokens == 10 + 8 + 10 * 8
    # no longer fits with the old boundary: a new one, the last six
    much_longer = longer + [UserMessage(content=f"m{n}") for n in range(4)]
    moved = plan_window(
        much_longer, [10] * len(much_longer), budget=100, summary_tokens=20, cached=(first.start, 8)
    )
    assert not moved.reused
    assert moved.start == len(much_longer) - 6
    # a cached start inside a group, or leaving fewer than keep_last after it, is ignored
    late = plan_window(
        messages, costs, budget=100, summary_tokens=20, cached=(len(messages) - 1, 1)
    )
    assert not late.reused
    inside = plan_window(
        messages, costs, budget=100, summary_tokens=20, cached=(first.start + 1, 1)
    )
    assert not inside.reused


def test_bad_arguments() -> None:
    messages: list[AnyMessage] = [UserMessage(content="u")]
    with pytest.raises(ValueError, match="costs"):
        plan_window(messages, [], budget=10, summary_tokens=1)
    with pytest.raises(ValueError, match="keep_last"):
        plan_window(messages, [1], budget=10, keep_last=0, summary_tokens=1)


def test_check_prefix_allows_pending_calls_but_not_orphans() -> None:
    group = tool_group("p", 3)
    check_prefix([UserMessage(content="u"), *group[:2]])  # one answered, two to come
    with pytest.raises(HistoryError):
        validate_history([UserMessage(content="u"), *group[:2]])
    with pytest.raises(HistoryError, match="no assistant message"):
        check_prefix([UserMessage(content="u"), ToolMessage(content="x", tool_call_id="p-0")])
    with pytest.raises(HistoryError, match="out of order"):
        check_prefix([UserMessage(content="u"), group[0], group[2]])
    with pytest.raises(HistoryError, match="comes before"):
        check_prefix([*group[:2], UserMessage(content="too early")])
    bad = AssistantMessage(tool_calls=[call("x", "not json")])
    with pytest.raises(HistoryError, match="not JSON"):
        check_prefix([UserMessage(content="u"), bad])


def test_summary_memory_continues_the_last_summary() -> None:
    messages = history_with_group_at_boundary()
    memory = SummaryMemory(size=2)
    plan = plan_window(messages, [10] * len(messages), budget=100, summary_tokens=5)
    key, text = memory.find(messages, plan)
    assert text is None
    assert key == digest(messages[i] for i in plan.middle)
    request = memory.request(messages, plan)
    assert request == summary_request((messages[i] for i in plan.middle), None)
    assert "[user]: q0" in request[-1].text
    assert "Summary so far" not in request[-1].text
    memory.store(key, plan, "the summary", 12)
    assert memory.cached == (plan.start, 12)
    assert memory.find(messages, plan) == (key, "the summary")
    longer = [*messages, *(UserMessage(content=f"m{n}") for n in range(6))]
    grown = plan_window(longer, [10] * len(longer), budget=100, summary_tokens=5)
    assert grown.middle[: len(plan.middle)] == plan.middle
    text = memory.request(longer, grown)[-1].text
    assert text.startswith("Summary so far:\nthe summary\n\nNew messages:\n")
    assert "q0" not in text  # only the newly covered messages
    assert "[called lookup({})]" in text
    assert "[tool result for g-0]: result g-0" in text
    for n in range(3):  # bounded
        memory.store(f"k{n}", plan, "t", 1)
    assert memory.find(messages, plan) == (key, None)
