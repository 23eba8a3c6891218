"""``Agent.arun`` against the emulator in process: forcing, the identical-call short-circuit,
parallel calls in the order of the calls, bounded concurrency, usage and request parameters."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from agent_support import RAIN, UMBRELLA, Weather, connect, emulator, messages_of, sent

from qwenkit._exceptions import UsageError
from qwenkit._settings import Mode
from qwenkit.agents import tool
from qwenkit.agents.run import Agent
from qwenkit.emulator.app import app_state
from qwenkit.types import SystemMessage, ToolMessage


@pytest.mark.anyio
async def test_the_same_call_four_rounds_in_a_row_gets_a_forced_answer(mode: Mode) -> None:
    app, weather = emulator(quirks={"tool_loop_rounds": 4}), Weather()
    async with connect(app, mode) as client:
        agent = Agent([weather.tool], client=client, force_answer_after=3)
        result = await agent.arun(UMBRELLA)
    bodies = sent(app)
    assert [body.get("tool_choice") for body in bodies] == ["auto", "auto", "auto", "none"]
    assert "bring an umbrella" in result.answer
    assert weather.runs == 1  # the identical calls of rounds 2 and 3 were not run again
    assert [(t.round, t.cached, t.ok) for t in result.trace] == [
        (1, False, True),
        (2, True, True),
        (3, True, True),
    ]
    repeated = [m for m in result.transcript if isinstance(m, ToolMessage)][1]
    assert repeated.text == f"(same call as in round 1; result repeated)\n{RAIN}"
    assert repeated.text in str(messages_of(bodies[2])[-1]["content"])  # the model saw the note


@pytest.mark.anyio
async def test_the_run_transcript_is_the_history_the_model_saw() -> None:
    app = emulator()
    async with connect(app) as client:
        agent = Agent([Weather().tool], client=client, system="You check the weather.")
        result = await agent.arun(UMBRELLA)
    first, second = sent(app)
    assert first["parallel_tool_calls"] is True
    assert [tool_["function"]["name"] for tool_ in first["tools"]] == ["get_weather"]
    assert len(messages_of(second)) == 4  # system, user, assistant with the call, tool result
    assert isinstance(result.transcript[0], SystemMessage)
    assert [m.role for m in result.transcript] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert result.transcript[-1].text == result.answer


THREE_CALLS: list[dict[str, Any]] = [
    {
        "name": "three-calls",
        "match": {"has_tool_results": False, "round": 0},
        "tool_calls": [
            {"name": "lookup", "arguments": {"n": 1}, "id": "call_one"},
            {"name": "lookup", "arguments": {"n": 2}, "id": "call_two"},
            {"name": "lookup", "arguments": {"n": 3}, "id": "call_three"},
        ],
    },
    {"name": "done", "match": {"has_tool_results": True}, "text": "All three looked up."},
]


@pytest.mark.anyio
async def test_parallel_calls_answer_in_the_order_of_the_calls_not_of_completion() -> None:
    finished: list[int] = []
    released = {2: anyio.Event(), 3: anyio.Event()}

    @tool
    async def lookup(n: int) -> str:
        """Look a number up.

        Args:
            n: The number.
        """
        if n < 3:
            await released[n + 1].wait()  # 1 waits for 2, 2 waits for 3: they finish 3, 2, 1
        finished.append(n)
        if n > 1:
            released[n].set()
        return f"result {n}"

    app = emulator(THREE_CALLS)
    async with connect(app) as client:
        result = await Agent([lookup], client=client, tool_timeout=10).arun("Look up 1, 2 and 3.")
    assert finished == [3, 2, 1]
    assert result.answer == "All three looked up."
    history = messages_of(sent(app)[1])
    assert [call["id"] for call in history[1]["tool_calls"]] == [
        "call_one",
        "call_two",
        "call_three",
    ]
    answers = [(m["tool_call_id"], m["content"]) for m in history[2:]]
    assert answers == [
        ("call_one", "result 1"),
        ("call_two", "result 2"),
        ("call_three", "result 3"),
    ]
    assert [t.id for t in result.trace] == ["call_one", "call_two", "call_three"]


@pytest.mark.anyio
@pytest.mark.parametrize(("parallel", "limit", "peak"), [(True, 2, 2), (False, 4, 1)])
async def test_concurrency_is_bounded(parallel: bool, limit: int, peak: int) -> None:
    running, seen = [0], [0]

    @tool
    async def lookup(n: int) -> str:
        """Look a number up.

        Args:
            n: The number.
        """
        running[0] += 1
        seen[0] = max(seen[0], running[0])
        for _ in range(5):
            await anyio.sleep(0)
        running[0] -= 1
        return str(n)

    rules = [dict(THREE_CALLS[0]), THREE_CALLS[1]]
    rules[0]["tool_calls"] = [{"name": "lookup", "arguments": {"n": n}} for n in range(4)]
    async with connect(emulator(rules)) as client:
        agent = Agent([lookup], client=client, parallel=parallel, max_concurrency=limit)
        result = await agent.arun("Look up four numbers.")
    assert seen[0] == peak
    assert [t.arguments for t in result.trace] == [f'{{"n": {n}}}' for n in range(4)]


@pytest.mark.anyio
async def test_per_round_usage_matches_each_request_and_sums_to_the_total() -> None:
    app = emulator(quirks={"tool_loop_rounds": 2})
    async with connect(app) as client:
        result = await Agent([Weather().tool], client=client).arun(UMBRELLA)
    logged = [entry["usage"] for entry in app_state(app).log.last()]
    assert len(result.rounds) == len(logged) == 3
    for round_, usage in zip(result.rounds, logged, strict=True):
        assert round_.usage is not None
        assert round_.usage.prompt_tokens == usage["prompt_tokens"]
        assert round_.usage.completion_tokens == usage["completion_tokens"]
    assert result.usage.total_tokens == sum(u["total_tokens"] for u in logged)
    assert [r.tool_calls for r in result.rounds] == [1, 1, 0]
    costs = [r.cost for r in result.rounds]
    assert all(cost is not None for cost in costs)
    assert result.cost is not None
    assert result.cost.total == sum(cost.total for cost in costs if cost is not None)


@pytest.mark.anyio
async def test_chat_params_go_with_every_request_and_loop_params_are_refused() -> None:
    app = emulator()
    async with connect(app) as client:
        agent = Agent([Weather().tool], client=client, temperature=0.25, max_tokens=300)
        await agent.arun(UMBRELLA)
        with pytest.raises(UsageError, match="tool_choice"):
            Agent([Weather().tool], client=client, tool_choice="required")
    assert all(body["temperature"] == 0.25 and body["max_tokens"] == 300 for body in sent(app))


def test_default_client_is_made_from_the_environment_and_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qwenkit.agents.run import Agent as _Agent
    from qwenkit.client._async import AsyncQwen

    monkeypatch.setenv("QWENKIT_BASE_URL", "http://127.0.0.1:9")  # never contacted here
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")

    def echo(city: str) -> str:
        """Echo the city."""
        return city

    agent = _Agent([echo])
    assert isinstance(agent.client, AsyncQwen)
    assert agent.client.settings.base_url == "http://127.0.0.1:9"
    agent._sync()  # the runner that `run` would use
    agent.close()
    assert agent.client.http_client.is_closed
