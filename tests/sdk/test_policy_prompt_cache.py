"""``PromptCachePolicy`` alone, and in every call of the client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from qwenkit._core.pipeline import Call, EventStream
from qwenkit._core.policies import PromptCachePolicy, default_policies
from qwenkit.catalog import Router, default_catalog
from qwenkit.testing import emulated
from qwenkit.tokens import PromptMonitor
from qwenkit.types import ChatRequest, ContentDelta


async def answer(call: Call) -> EventStream:
    yield ContentDelta("ok")


def call_with(system: str) -> Call:
    return Call(
        request=ChatRequest(
            model="qwen-plus",
            messages=[{"role": "system", "content": system}, {"role": "user", "content": "hi"}],
        )
    )


async def drain(stream: AsyncIterator[object]) -> list[object]:
    return [event async for event in stream]


@pytest.mark.anyio
async def test_a_dated_system_prompt_is_reported_once_per_shape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = PromptCachePolicy(monitor=PromptMonitor())
    with caplog.at_level(logging.WARNING, logger="qwenkit.prompt"):
        notes = []
        for day in ("2026-11-22", "2026-11-23"):  # the same shape: one warning
            call = call_with(f"You are a bot. Today is {day}.")
            assert await drain(policy(call, answer)) == [ContentDelta("ok")]  # never blocks
            notes.append(call.notes)
        assert any("date" in note for note in notes[0])
        assert notes[1] == []  # already reported
        clean = call_with("You are a bot.")
        await drain(policy(clean, answer))
        assert clean.notes == []
    assert len(caplog.records) == 1
    assert "2026-11-22" in caplog.records[0].getMessage()


def test_it_is_one_of_the_default_policies() -> None:
    catalog = default_catalog()
    kinds = [type(p) for p in default_policies(catalog=catalog, router=Router(catalog))]
    assert PromptCachePolicy in kinds


@pytest.mark.anyio
async def test_plain_client_calls_are_checked(caplog: pytest.LogCaptureFixture) -> None:
    system = "Session 3f2b8c1e-0c4e-4a1b-9d1e-2b3c4d5e6f70. You are terse."
    with caplog.at_level(logging.WARNING, logger="qwenkit.prompt"):
        async with emulated() as client:
            result = await client.chat(
                [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]
            )
    assert any("uuid" in note for note in result.notes)
    assert any("3f2b8c1e" in r.getMessage() for r in caplog.records)
