"""``Agent.arun``'s guards against the emulator in process: tool errors reach the model, the
error budget stops the run, ``max_rounds``, tool calls despite ``tool_choice="none"``, timeouts."""

from __future__ import annotations

import anyio
import pytest
from agent_support import UMBRELLA, Weather, connect, emulator, messages_of, sent

from qwenkit._settings import Mode
from qwenkit.agents import ToolErrorBudgetExceeded, tool
from qwenkit.agents.result import AgentDidNotConverge, AgentToolFailure
from qwenkit.agents.run import Agent
from qwenkit.types import AssistantMessage


@pytest.mark.anyio
async def test_a_tool_error_reaches_the_model_and_the_run_finishes(mode: Mode) -> None:
    app, weather = emulator(), Weather(fail=True)
    async with connect(app, mode) as client:
        result = await Agent([weather.tool], client=client).arun(UMBRELLA)
    tool_message = messages_of(sent(app)[1])[-1]
    assert tool_message["role"] == "tool"
    assert "RuntimeError: weather station offline" in tool_message["content"]
    assert result.answer
    (trace,) = result.trace
    assert not trace.ok
    assert trace.error == "RuntimeError: weather station offline"


@pytest.mark.anyio
async def test_a_tool_past_its_error_budget_stops_the_run() -> None:
    app, weather = emulator(), Weather(fail=True, max_errors=0)
    async with connect(app) as client:
        agent = Agent([weather.tool], client=client)
        with pytest.raises(AgentToolFailure) as caught:
            await agent.arun(UMBRELLA)
    failure = caught.value
    assert failure.tool == "get_weather"
    assert isinstance(failure.__cause__, ToolErrorBudgetExceeded)
    last = failure.transcript[-1]
    assert isinstance(last, AssistantMessage)
    assert last.tool_calls
    assert len(failure.rounds) == 1
    assert len(sent(app)) == 1


@pytest.mark.anyio
async def test_the_error_budget_is_per_run() -> None:
    weather = Weather(fail=True, max_errors=1)
    async with connect(emulator()) as client:
        agent = Agent([weather.tool], client=client)
        for _ in range(3):  # one failure per run: within the budget each time
            assert (await agent.arun(UMBRELLA)).answer
    assert weather.runs == 3


@pytest.mark.anyio
async def test_max_rounds_exhausted_raises_with_the_transcript_and_trace() -> None:
    app, weather = emulator(quirks={"tool_loop_rounds": 10}), Weather()
    async with connect(app) as client:
        agent = Agent([weather.tool], client=client, max_rounds=3, force_answer_after=None)
        with pytest.raises(AgentDidNotConverge) as caught:
            await agent.arun(UMBRELLA)
    error = caught.value
    assert len(sent(app)) == 3
    assert [t.round for t in error.trace] == [1, 2]
    assert [r.round for r in error.rounds] == [1, 2, 3]
    assert (
        sum(isinstance(m, AssistantMessage) and bool(m.tool_calls) for m in error.transcript) == 3
    )
    assert error.usage.total_tokens == sum(r.usage.total_tokens for r in error.rounds if r.usage)


@pytest.mark.anyio
async def test_tool_calls_despite_tool_choice_none_are_ignored() -> None:
    always = [
        {"name": "always", "tool_calls": [{"name": "get_weather", "arguments": {"location": "x"}}]}
    ]
    app, weather = emulator(always), Weather()
    async with connect(app) as client:
        result = await Agent([weather.tool], client=client, force_answer_after=1).arun(UMBRELLA)
    assert [body.get("tool_choice") for body in sent(app)] == ["auto", "none"]
    assert weather.runs == 1
    assert result.answer == ""
    assert any("tool calls ignored" in note for note in result.notes)


@pytest.mark.anyio
async def test_a_tool_past_the_agent_timeout_is_an_error_result() -> None:
    @tool(name="get_weather")
    async def stuck(location: str, unit: str = "celsius") -> str:
        """Get the weather.

        Args:
            location: The city.
            unit: celsius or fahrenheit.
        """
        await anyio.sleep_forever()
        return "never"  # pragma: no cover

    app = emulator()
    async with connect(app) as client:
        result = await Agent([stuck], client=client, tool_timeout=0.01).arun(UMBRELLA)
    assert "timed out" in messages_of(sent(app)[1])[-1]["content"]
    assert result.trace[0].error is not None
    assert "tool_timeout" in result.trace[0].error
