"""The ``Toolbox``: registration with the schema lint, dispatch, error results and the budget."""

from __future__ import annotations

import logging

import pytest

from qwenkit import ValidationError
from qwenkit.agents import (
    FunctionTool,
    SchemaLintError,
    Toolbox,
    ToolErrorBudgetExceeded,
    tool,
)
from qwenkit.types import FunctionCall, ToolCall, ToolMessage


@tool
async def add(a: int, b: int = 0) -> int:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


@tool
def weather(city: str) -> str:
    """Get the forecast.

    Args:
        city: City name.
    """
    return f"{city}: 晴"


def call(name: str, arguments: str, id: str = "call_1") -> ToolCall:
    return ToolCall(id=id, function=FunctionCall(name=name, arguments=arguments))


@pytest.mark.anyio
async def test_dispatch_unknown_tool_lists_the_available_ones() -> None:
    box = Toolbox([add, weather])
    result = await box.dispatch(call("wether", "{}"))
    assert not result.ok
    assert result.content == "Unknown tool 'wether'. Available tools: add, weather."
    assert result.error == "unknown tool"
    assert box.errors == {}


@pytest.mark.anyio
async def test_dispatch_success_and_message() -> None:
    box = Toolbox([add])
    result = await box.dispatch(call("add", '{"a": 1, "b": 2}', id="call_9"))
    assert (result.ok, result.content, result.error, result.name) == (True, "3", None, "add")
    assert result.duration_s >= 0
    message = box.to_message(result)
    assert isinstance(message, ToolMessage)
    assert message.to_wire() == {"role": "tool", "content": "3", "tool_call_id": "call_9"}


@pytest.mark.anyio
async def test_invalid_arguments_become_a_result_for_the_model() -> None:
    box = Toolbox([add])
    result = await box.dispatch(call("add", '{"b": 1}'))
    assert not result.ok
    assert result.content == (
        "Invalid arguments for tool 'add': a: missing required argument. "
        "Call it again with fixed arguments."
    )
    assert box.errors == {"add": 1}


@pytest.mark.anyio
async def test_raising_tool_returns_an_error_and_the_budget_stops_the_loop() -> None:
    @tool(max_errors=2)
    def flaky(city: str) -> str:
        """Always fails.

        Args:
            city: A city.
        """
        raise LookupError(f"no such city: {city}")

    box = Toolbox([flaky])
    for n in (1, 2):
        result = await box.dispatch(call("flaky", '{"city": "X"}'))
        assert not result.ok
        assert result.content == "Tool 'flaky' failed: LookupError: no such city: X"
        assert result.error == "LookupError: no such city: X"
        assert "Traceback" not in result.content
        assert box.errors == {"flaky": n}
    with pytest.raises(ToolErrorBudgetExceeded, match=r"failed 3 times \(max_errors=2\)") as info:
        await box.dispatch(call("flaky", '{"city": "X"}'))
    assert info.value.errors == 3
    assert info.value.result.tool_call_id == "call_1"
    assert isinstance(info.value.__cause__, LookupError)
    box.reset_errors()
    assert (await box.dispatch(call("flaky", '{"city": "Y"}'))).ok is False


@pytest.mark.anyio
async def test_long_error_messages_are_cut() -> None:
    @tool
    def noisy() -> str:
        """Fails loudly."""
        raise RuntimeError("x" * 5000)

    result = await Toolbox([noisy]).dispatch(call("noisy", ""))
    assert len(result.content) < 600
    assert result.content.endswith("…")


def test_toolbox_registration() -> None:
    def plain(text: str) -> str:
        """Echo text.

        Args:
            text: The text.
        """
        return text

    box = Toolbox([add, plain])
    assert len(box) == 2
    assert "plain" in box
    assert isinstance(box.get("plain"), FunctionTool)
    assert box.get("missing") is None
    assert [t.name for t in box] == ["add", "plain"]
    assert [d.name for d in box.definitions()] == ["add", "plain"]
    with pytest.raises(ValidationError, match="duplicate tool name 'add'"):
        box.add(add)
    with pytest.raises(ValidationError, match="duplicate tool name 'plain'"):
        Toolbox([plain, plain])
    assert len(box) == 2


def test_registration_logs_lint_findings(caplog: pytest.LogCaptureFixture) -> None:
    def vague(x: str | None = None) -> str:
        return ""

    with caplog.at_level(logging.WARNING, logger="qwenkit.agents"):
        box = Toolbox([vague])
    rules = {f.rule for f in box.findings}
    assert rules == {"missing-description", "optional-could-be-required"}
    assert len(caplog.records) == len(box.findings)
    assert "vague" in caplog.records[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="qwenkit.agents"):
        Toolbox([vague], lint=False)
    assert caplog.records == []


def test_strict_toolbox_refuses_tools_with_findings() -> None:
    def vague(x: str | None = None) -> str:
        return ""

    with pytest.raises(SchemaLintError) as info:
        Toolbox([add, vague], strict=True)
    assert {f.severity for f in info.value.findings} == {"error"}
    assert {f.tool for f in info.value.findings} == {"vague"}
    assert "optional-could-be-required" in str(info.value)
    box = Toolbox([add], strict=True)
    with pytest.raises(SchemaLintError):
        box.add(vague)
    assert [d.name for d in box.definitions()] == ["add"]
    assert len(box) == 1
