"""``Agent.arun``'s guards against the emulator in process: tool errors reach the model, the
error budget stops the run, ``max_rounds``, tool calls despite ``tool_choice="none"``, timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from qwenkit import AsyncQwen
from qwenkit._settings import Mode
from qwenkit.agents import ToolErrorBudgetExceeded, tool
from qwenkit.agents.result import AgentDidNotConverge, AgentToolFailure
from qwenkit.agents.run import Agent
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state
from qwenkit.types import AssistantMessage

UMBRELLA = "Should I bring an umbrella to Shanghai?"
SCENARIOS = Path(__file__).parents[2] / "examples" / "emulator" / "scenarios.yaml"
RAIN = '{"condition": "light rain", "temperature": 18}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["compat", "native"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


def emulator(scenarios: Any = SCENARIOS, **config: Any) -> Starlette:
    return create_app(EmulatorConfig.model_validate(config), scenarios=scenarios)


@asynccontextmanager
async def connect(app: Starlette, mode: Mode = "compat") -> AsyncIterator[AsyncQwen]:
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http,
        AsyncQwen(api_key="sk-agent", base_url="http://emulator", mode=mode, http_client=http) as c,
    ):
        yield c


def sent(app: Starlette) -> list[dict[str, Any]]:
    """The parameters of every request the emulator got (native ``parameters`` merged in)."""
    bodies = [entry["body"] for entry in app_state(app).log.last()]
    return [
        {**{k: v for k, v in b.items() if k != "parameters"}, **b.get("parameters", {})}
        for b in bodies
    ]


def messages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = body.get("messages") or body["input"]["messages"]
    return found


class Weather:
    """A ``get_weather`` tool (``.tool``) that counts its runs and may always fail."""

    def __init__(self, *, fail: bool = False, max_errors: int = 3) -> None:
        self.runs = 0

        def get_weather(location: str, unit: str = "celsius") -> str:
            """Get the current weather for a city.

            Args:
                location: The city.
                unit: celsius or fahrenheit.
            """
            self.runs += 1
            if fail:
                raise RuntimeError("weather station offline")
            return RAIN

        self.tool = tool(max_errors=max_errors)(get_weather)


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
