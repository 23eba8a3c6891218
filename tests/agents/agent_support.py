"""Helpers of the agent tests: the emulator in process, what it received, a counting tool.

Imported as ``from agent_support import ...`` (pytest puts this folder on ``sys.path``, as it
does for ``tests/emulator/emulator_server.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from qwenkit import AsyncQwen
from qwenkit._settings import Mode
from qwenkit.agents import tool
from qwenkit.emulator import EmulatorConfig, create_app
from qwenkit.emulator.app import app_state

UMBRELLA = "Should I bring an umbrella to Shanghai?"
SCENARIOS = Path(__file__).parents[2] / "examples" / "emulator" / "scenarios.yaml"
RAIN = '{"condition": "light rain", "temperature": 18}'


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
