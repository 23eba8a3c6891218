"""``Conversation`` history: every append is checked as a complete prefix; completeness on fit."""

from __future__ import annotations

import logging

import pytest

from qwenkit._core.policies.history import HistoryError
from qwenkit._exceptions import QwenError, UsageError
from qwenkit.agents.conversation import ContextOverflowError, Conversation
from qwenkit.agents.result import ToolResult
from qwenkit.client._result import ChatResult
from qwenkit.types import AssistantMessage, FunctionCall, ToolCall, ToolMessage, UserMessage


def calls(*ids: str) -> list[ToolCall]:
    return [ToolCall(id=i, function=FunctionCall(name="lookup", arguments="{}")) for i in ids]


def test_system_prompt_and_plain_turns() -> None:
    conversation = Conversation(system="Be brief.")
    conversation.add_user("hi")
    conversation.append({"role": "assistant", "content": "hello"})
    conversation.extend([{"role": "user", "content": "and?"}])
    assert [m.role for m in conversation.messages] == ["system", "user", "assistant", "user"]
    conversation.messages.clear()  # a copy
    assert len(conversation.messages) == 4
    assert Conversation().messages == []


def test_tool_calls_may_be_answered_by_later_appends() -> None:
    conversation = Conversation()
    conversation.add_user("look up a and b")
    conversation.append(AssistantMessage(tool_calls=calls("a", "b")))
    conversation.add_tool_result("a", "A")
    with pytest.raises(HistoryError):  # incomplete: refused when fitting, not when appending
        conversation.fit()
    conversation.add_tool_result(ToolResult(tool_call_id="b", name="lookup", content="B", ok=True))
    assert conversation.fit() == conversation.messages
    last = conversation.messages[-1]
    assert isinstance(last, ToolMessage)
    assert (last.tool_call_id, last.text) == ("b", "B")


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([ToolMessage(content="x", tool_call_id="a")], "no assistant message"),
        ([AssistantMessage(tool_calls=calls("a", "b")), ToolMessage(content="x", tool_call_id="b")],
         "out of order"),
        ([AssistantMessage(tool_calls=calls("a")), UserMessage(content="too early")],
         "comes before"),
        ([AssistantMessage(tool_calls=[ToolCall(id="a", function=FunctionCall(name="f"))])],
         "not JSON"),
    ],
)  # fmt: skip
def test_a_bad_append_is_refused_and_not_kept(messages: list[object], match: str) -> None:
    conversation = Conversation(system="s")
    conversation.add_user("u")
    with pytest.raises(HistoryError, match=match):
        conversation.extend(messages)  # type: ignore[arg-type]
    assert [m.role for m in conversation.messages] == ["system", "user"]


def test_add_assistant_drops_the_reasoning() -> None:
    conversation = Conversation()
    conversation.add_user("u")
    conversation.add_assistant({"role": "assistant", "content": "a", "reasoning_content": "hmm"})
    message = conversation.messages[-1]
    assert isinstance(message, AssistantMessage)
    assert message.reasoning_content is None
    assert "reasoning_content" not in message.model_dump(exclude_unset=True)
    result = ChatResult(
        message=AssistantMessage(content="b"), finish_reason="stop", usage=None, cost=None,
        model="qwen-plus", request_id=None, latency=None, time_to_first_token=None,
        time_to_first_reasoning=None, time_to_first_answer=None,
    )  # fmt: skip
    conversation.add_user("again")
    conversation.add_assistant(result)
    assert conversation.messages[-1] == result.message
    with pytest.raises(UsageError, match="assistant message"):
        conversation.add_assistant({"role": "user", "content": "x"})
    with pytest.raises(UsageError, match="content is missing"):
        conversation.add_tool_result("a")


def test_configuration_errors() -> None:
    with pytest.raises(UsageError, match="keep_last"):
        Conversation(keep_last=0)
    unknown = Conversation(model="my-finetune")
    assert unknown.profile is None
    with pytest.raises(UsageError, match="budget_tokens"):
        unknown.budget()
    assert Conversation(model="my-finetune", budget_tokens=10).budget() == 10
    assert issubclass(ContextOverflowError, QwenError)


def test_the_system_prompt_lint_runs_once(caplog: pytest.LogCaptureFixture) -> None:
    conversation = Conversation(system="Today is 2026-11-22. Be brief.", budget_tokens=1)
    with caplog.at_level(logging.WARNING, logger="qwenkit.prompt"):
        for _ in range(2):
            with pytest.raises(ContextOverflowError):  # summarise: no middle to summarise
                conversation.send("hi")
    assert [r.message.count("2026-11-22") for r in caplog.records] == [1]
    assert [m.role for m in conversation.messages] == ["system"]  # failed sends rolled back


def test_a_client_is_made_only_when_needed_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from qwenkit import Qwen
    from qwenkit.agents.conversation import Conversation as _Conversation

    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")
    monkeypatch.setenv("QWENKIT_BASE_URL", "http://127.0.0.1:9")  # never contacted here
    conv = _Conversation(system="Be brief.", model="qwen-plus")
    conv.add_user("hi")
    assert conv.fit()  # fits without a summary: no client needed
    assert conv.client is None
    client = conv._sync_client()
    assert isinstance(client, Qwen)
    conv.close()
    assert client.aio.http_client.is_closed
