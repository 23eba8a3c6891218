"""The classic weather agent: "Should I bring an umbrella to Shanghai?"

    uv run --no-sync python examples/weather_agent.py ["your question"]

With ``DASHSCOPE_API_KEY`` set, the question goes to DashScope (``qwen-plus``, your region from
the usual settings). Without it, the emulator answers, mounted in this process with the scripted
weather conversation of ``examples/emulator/scenarios.yaml``, so the example runs offline.

The agent offers ``get_weather`` (a stand-in for a real weather service), runs the model's calls,
and streams the answer; then the tool trace, the usage per round and the cost are printed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from qwenkit import AsyncQwen
from qwenkit.agents import tool
from qwenkit.agents.result import AgentResult, AnswerDelta, Finished, ToolCalled, ToolReturned
from qwenkit.agents.run import Agent

QUESTION = "Should I bring an umbrella to Shanghai?"
SCENARIOS = Path(__file__).parent / "emulator" / "scenarios.yaml"
FORECASTS = {"shanghai": ("light rain", 18, 0.8), "beijing": ("sunny", 24, 0.05)}
"""A stand-in weather service: city → (condition, °C, chance of rain today)."""


@tool
def get_weather(
    location: str, unit: Literal["celsius", "fahrenheit"] = "celsius"
) -> dict[str, object]:
    """Get the current weather and today's chance of rain for a city.

    Args:
        location: The city, e.g. "Shanghai".
        unit: The temperature unit.
    """
    found = FORECASTS.get(location.strip().lower())
    if found is None:
        return {"location": location, "error": "no forecast for this city"}
    condition, celsius, rain = found
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {
        "location": location,
        "condition": condition,
        "temperature": temperature,
        "unit": unit,
        "chance_of_rain": rain,
    }


@asynccontextmanager
async def connect() -> AsyncIterator[tuple[AsyncQwen, str]]:
    """A client for DashScope when a key is set, else for the emulator in this process."""
    if os.environ.get("DASHSCOPE_API_KEY"):
        async with AsyncQwen() as client:
            yield client, "DashScope"
        return
    from qwenkit.testing import emulated  # the emulator extra (starlette, pyyaml)

    async with emulated(scenarios=SCENARIOS) as client:
        yield client, "the emulator (no DASHSCOPE_API_KEY set)"


async def main(question: str) -> None:
    async with connect() as (client, where):
        print(f"Asking {where}: {question}\n")
        agent = Agent([get_weather], client=client, model="qwen-plus")
        result: AgentResult | None = None
        async for event in agent.astream(question):
            if isinstance(event, ToolCalled):
                print(f"  -> {event.name}({event.arguments})")
            elif isinstance(event, ToolReturned):
                print(f"  <- {event.content}")
            elif isinstance(event, AnswerDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, Finished):
                result = event.result
        assert result is not None  # Finished always comes last
        print("\n\nTool trace:")
        for item in result.trace:
            state = "ok" if item.ok else f"failed: {item.error}"
            cached = ", repeated" if item.cached else ""
            print(
                f"  round {item.round}: {item.name}({item.arguments}) {state}, "
                f"{item.duration_s * 1000:.1f} ms{cached}"
            )
        print("Usage:")
        for round_ in result.rounds:
            usage = round_.usage
            tokens = f"{usage.prompt_tokens} in, {usage.completion_tokens} out" if usage else "?"
            print(f"  round {round_.round}: {tokens}, {round_.tool_calls} tool call(s)")
        total = result.usage
        print(f"  total: {total.prompt_tokens} in, {total.completion_tokens} out")
        cost = result.cost
        print(f"Cost: {cost.total:.8f} {cost.currency}" if cost else "Cost: unknown")
        for note in result.notes:
            print(f"Note: {note}")


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or QUESTION))
