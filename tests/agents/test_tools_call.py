"""Running one tool: argument validation, threads, timeouts, serialisation, canonical arguments."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import threading
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from qwenkit import QwenError
from qwenkit.agents import (
    ToolArgumentsError,
    Toolbox,
    ToolResult,
    ToolTimeoutError,
    canonical_arguments,
    serialize_result,
    tool,
)
from qwenkit.types import FunctionCall, ToolCall


class Location(BaseModel):
    """A place."""

    city: str = Field(description="City name")


class Forecast(BaseModel):
    city: str
    summary: str


@tool
def weather(location: Location, days: int = 1) -> Forecast:
    """Get the forecast.

    Args:
        location: Where.
        days: Days ahead.
    """
    return Forecast(city=location.city, summary=f"晴, {days} 天")


@tool
async def add(a: int, b: int = 0) -> int:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


@tool
def positional(a: int, /, b: int) -> str:
    """Positional-only first parameter.

    Args:
        a: A.
        b: B.
    """
    return f"{a}-{b}"


def call(name: str, arguments: str, id: str = "call_1") -> ToolCall:
    return ToolCall(id=id, function=FunctionCall(name=name, arguments=arguments))


@pytest.mark.anyio
async def test_sync_and_async_tools_return_message_text() -> None:
    assert await add.call('{"a": 2, "b": 3}') == "5"
    assert await add.call({"a": 2}) == "2"
    assert await positional.call('{"a": 1, "b": 2}') == "1-2"
    text = await weather.call('{"location": {"city": "杭州"}, "days": 2}')
    assert text == '{"city": "杭州", "summary": "晴, 2 天"}'  # not \\u-escaped


@pytest.mark.anyio
async def test_empty_arguments_mean_no_arguments() -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    assert await ping.call("") == "pong"
    assert await ping.call("  ") == "pong"


@pytest.mark.anyio
async def test_invalid_json_keeps_the_raw_text() -> None:
    with pytest.raises(ToolArgumentsError, match="not valid JSON") as info:
        await add.call('{"a": 1,')
    assert info.value.raw == '{"a": 1,'
    assert info.value.tool == "add"
    assert isinstance(info.value, QwenError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ToolArgumentsError, match="must be a JSON object, got list"):
        await add.call("[1, 2]")


@pytest.mark.anyio
async def test_validation_errors_are_compact_and_model_readable() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        await weather.call('{"location": {}, "days": "three", "dayz": 2}')
    assert info.value.errors == [
        "location.city: missing required argument",
        'days: Input should be a valid integer, unable to parse string as an integer (got "three")',
        "dayz: unknown argument (allowed: location, days)",
    ]
    assert str(info.value) == "; ".join(info.value.errors)
    assert "https://" not in str(info.value)


@pytest.mark.anyio
async def test_sync_tool_runs_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()

    @tool
    def where() -> int:
        """Thread id."""
        return threading.get_ident()

    assert int(await where.call("{}")) != loop_thread


@pytest.mark.anyio
async def test_two_slow_sync_tools_run_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=10)  # breaks unless both calls are inside at once

    @tool
    def slow(n: int) -> int:
        """Wait for the other call.

        Args:
            n: A number.
        """
        barrier.wait()
        return n

    box = Toolbox([slow])
    results: list[ToolResult] = []

    async def run(n: int) -> None:
        results.append(await box.dispatch(call("slow", json.dumps({"n": n}), id=f"c{n}")))

    async with anyio.create_task_group() as group:
        group.start_soon(run, 1)
        group.start_soon(run, 2)
    assert all(result.ok for result in results), results
    assert sorted(result.content for result in results) == ["1", "2"]


@pytest.mark.anyio
async def test_timeout_of_an_async_tool() -> None:
    @tool(timeout=0.05)
    async def stuck() -> str:
        """Never returns."""
        await anyio.sleep(60)
        return "late"

    with pytest.raises(ToolTimeoutError, match=r"no result within 0\.05 s") as info:
        await stuck.call("{}")
    assert isinstance(info.value, TimeoutError)


@pytest.mark.anyio
async def test_timeout_of_a_sync_tool_does_not_wait_for_the_thread() -> None:
    release = threading.Event()

    @tool(timeout=0.05)
    def stuck() -> str:
        """Blocks until released."""
        release.wait(30)
        return "late"

    try:
        box = Toolbox([stuck], lint=False)
        result = await box.dispatch(call("stuck", "{}"))
    finally:
        release.set()
    assert not result.ok
    assert result.content == "Tool 'stuck' timed out (no result within 0.05 s)."
    assert isinstance(result.exception, ToolTimeoutError)


@dataclasses.dataclass
class Trip:
    day: dt.date
    tags: set[str]


class Color(enum.Enum):
    RED = "红"


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text, 中文", "plain text, 中文"),
        ({"城市": "北京"}, '{"城市": "北京"}'),
        ([1, 2.5, None, True], "[1, 2.5, null, true]"),
        (None, "null"),
        (Forecast(city="上海", summary="雨"), '{"city": "上海", "summary": "雨"}'),
        (Trip(dt.date(2026, 11, 22), {"a"}), '{"day": "2026-11-22", "tags": ["a"]}'),
        ({"when": dt.datetime(2026, 1, 2, 3, 4, 5)}, '{"when": "2026-01-02T03:04:05"}'),
        ([Color.RED, Forecast(city="a", summary="b")], '["红", {"city": "a", "summary": "b"}]'),
        ({"x": Opaque()}, '{"x": "opaque!"}'),
    ],
)
def test_serialize_result(value: Any, text: str) -> None:
    assert serialize_result(value) == text


def test_canonical_arguments() -> None:
    assert (
        canonical_arguments('{"b": 1, "a": {"y": 2, "x": "杭州"}}')
        == '{"a":{"x":"杭州","y":2},"b":1}'
    )
    assert canonical_arguments({"b": 1, "a": 2}) == canonical_arguments(' {"a":2,  "b":1} ')
    assert canonical_arguments("") == "{}"
    assert canonical_arguments("  {broken ") == "{broken"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_canonical_arguments_ignores_key_order_and_spacing(args: dict[str, Any]) -> None:
    reordered = dict(reversed(list(args.items())))
    spaced = json.dumps(reordered, indent=2)
    assert canonical_arguments(spaced) == canonical_arguments(args)
    assert canonical_arguments(canonical_arguments(args)) == canonical_arguments(args)
    assert json.loads(canonical_arguments(args)) == args
