"""``Agent.astream`` and thinking (only on the final request), and the synchronous ``run``: from
threads, inside a running event loop, with ``Qwen`` and with ``AsyncQwen``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from agent_support import SCENARIOS, UMBRELLA, connect
from starlette.applications import Starlette

from qwenkit import AsyncQwen, Qwen
from qwenkit._settings import Mode
from qwenkit.agents import tool
from qwenkit.agents.result import (
    AgentEvent,
    AgentResult,
    AnswerDelta,
    Finished,
    ReasoningDelta,
    RoundStarted,
    ToolCalled,
    ToolReturned,
)
from qwenkit.agents.run import Agent
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state

REASONING = "get_weather reports light rain in Shanghai, so an umbrella is a good idea."


@pytest.fixture
def app() -> Starlette:
    return create_app(EmulatorConfig(), scenarios=SCENARIOS)


def thinking_flags(app: Starlette) -> list[Any]:
    """``enable_thinking`` of every request, whichever the wire (``None``: not sent)."""
    bodies = [entry["body"] for entry in app_state(app).log.last()]
    return [{**b, **b.get("parameters", {})}.get("enable_thinking") for b in bodies]


@tool
def get_weather(location: str, unit: str = "celsius") -> dict[str, object]:
    """Get the current weather for a city.

    Args:
        location: The city.
        unit: celsius or fahrenheit.
    """
    return {"location": location, "condition": "light rain", "temperature": 18, "unit": unit}


async def collect(events: AsyncIterator[AgentEvent]) -> list[AgentEvent]:
    return [event async for event in events]


def result_of(events: list[AgentEvent]) -> AgentResult:
    last = events[-1]
    assert isinstance(last, Finished)
    return last.result


@pytest.mark.anyio
async def test_thinking_is_on_for_the_final_request_only(app: Starlette, mode: Mode) -> None:
    async with connect(app, mode) as client:
        result = await Agent([get_weather], client=client, thinking=True).arun(UMBRELLA)
    flags = thinking_flags(app)
    assert flags[-1] is True
    assert all(flag is not True for flag in flags[:-1])
    assert len(flags) == 3  # the tool round, the unthought answer, the thinking answer
    assert result.reasoning == REASONING
    assert REASONING not in result.answer
    assert REASONING not in repr(result)
    assert "bring an umbrella" in result.answer
    assert len(result.rounds) == 3


@pytest.mark.anyio
async def test_without_thinking_no_request_thinks(app: Starlette) -> None:
    async with connect(app) as client:
        result = await Agent([get_weather], client=client).arun(UMBRELLA)
    assert all(flag is not True for flag in thinking_flags(app))
    assert result.reasoning is None
    assert len(result.rounds) == 2


@pytest.mark.anyio
async def test_astream_events_in_order(app: Starlette, mode: Mode) -> None:
    async with connect(app, mode) as client:
        events = await collect(Agent([get_weather], client=client).astream(UMBRELLA))
    result = result_of(events)
    kinds = [type(event).__name__ for event in events]
    first_answer = kinds.index("AnswerDelta")
    assert kinds[:first_answer] == ["RoundStarted", "ToolCalled", "ToolReturned", "RoundStarted"]
    assert set(kinds[first_answer:-1]) == {"AnswerDelta"}
    called, returned = events[1], events[2]
    assert isinstance(called, ToolCalled)
    assert isinstance(returned, ToolReturned)
    assert called.id == returned.id == result.trace[0].id
    assert called.arguments == result.trace[0].arguments
    assert returned.ok
    assert "light rain" in returned.content
    text = "".join(event.text for event in events if isinstance(event, AnswerDelta))
    assert text == result.answer
    assert not any(isinstance(event, ReasoningDelta) for event in events)


@pytest.mark.anyio
@pytest.mark.parametrize("reasoning", [True, False])
async def test_astream_reasoning_only_for_the_final_answer_and_only_on_request(
    app: Starlette, reasoning: bool
) -> None:
    async with connect(app) as client:
        agent = Agent([get_weather], client=client, thinking=True)
        events = await collect(agent.astream(UMBRELLA, reasoning=reasoning))
    result = result_of(events)
    thought = "".join(event.text for event in events if isinstance(event, ReasoningDelta))
    assert thought == (REASONING if reasoning else "")
    starts = [event for event in events if isinstance(event, RoundStarted)]
    assert [(s.round, s.final) for s in starts] == [(1, False), (2, False), (3, True)]
    final = events.index(starts[-1])
    assert not any(isinstance(e, ReasoningDelta | AnswerDelta) for e in events[:final])
    answer = "".join(event.text for event in events if isinstance(event, AnswerDelta))
    assert answer == result.answer
    assert REASONING not in answer


@pytest.mark.anyio
async def test_leaving_astream_early_stops_the_run(app: Starlette) -> None:
    async with connect(app) as client:
        stream = Agent([get_weather], client=client).astream(UMBRELLA)
        async for event in stream:
            if isinstance(event, ToolCalled):
                break
        await stream.aclose()
    assert len(app_state(app).log.last()) == 1


@pytest.fixture
def qwen(app: Starlette) -> Iterator[Qwen]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    with Qwen(api_key="sk-agent", base_url="http://emulator", http_client=http) as client:
        yield client
    asyncio.run(http.aclose())


def test_run_from_plain_threads(qwen: Qwen, app: Starlette) -> None:
    agent = Agent([get_weather], client=qwen)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: agent.run(UMBRELLA), range(3)))
    assert all("bring an umbrella" in result.answer for result in results)
    assert len(app_state(app).log.last()) == 6


@pytest.mark.anyio
async def test_run_inside_a_running_event_loop(qwen: Qwen) -> None:
    asyncio.get_running_loop()  # this test body runs inside the loop
    result = Agent([get_weather], client=qwen, thinking=True).run(UMBRELLA)
    assert result.reasoning == REASONING
    assert [t.name for t in result.trace] == ["get_weather"]


def agent_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "qwenkit-agent"]


def test_run_with_an_async_client_uses_the_agents_own_runner(app: Starlette) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app))
    client = AsyncQwen(api_key="sk-agent", base_url="http://emulator", http_client=http)
    before = len(agent_threads())
    with Agent([get_weather], client=client) as agent:
        assert "bring an umbrella" in agent.run(UMBRELLA).answer
        assert "bring an umbrella" in agent.run(UMBRELLA).answer
        assert len(agent_threads()) == before + 1
    assert len(agent_threads()) == before
    asyncio.run(http.aclose())
