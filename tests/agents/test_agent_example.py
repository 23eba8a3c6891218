"""``examples/weather_agent.py`` runs out of the box: no key, the emulator in process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "weather_agent.py"


def run_example(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"DASHSCOPE_API_KEY", "QWENKIT_API_KEY"}}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_weather_agent_answers_from_its_tool_result_without_a_key() -> None:
    out = run_example()
    assert "the emulator (no DASHSCOPE_API_KEY set)" in out
    assert '-> get_weather({"location": "Shanghai", "unit": "celsius"})' in out
    assert '<- {"location": "Shanghai", "condition": "light rain"' in out
    answer = out.split("\n\n")[1]
    assert "umbrella" in answer
    assert "light rain" in answer  # the tool's result, in the answer
    assert "round 1: get_weather(" in out
    assert "total:" in out
    assert "Cost: " in out


def test_the_weather_agent_takes_a_question() -> None:
    out = run_example("What is the weather in Beijing?")
    assert '-> get_weather({"location": "Beijing"})' in out
    assert "sunny" in out.split("\n\n")[1]
