"""``fallbacks=``: a model that keeps failing with a retryable error is replaced by the next of
its chain, before anything was answered; a deterministic error is not; one usage record per
call, under the model that answered. Against the in-process emulator (``qwenkit.testing``)."""

from __future__ import annotations

from typing import Any

import pytest

from qwenkit import APIStatusError, RetryPolicy, UsageRecord
from qwenkit.testing import emulated

FAST = RetryPolicy(max_attempts=2, initial_delay=0.0, max_delay=0.0)


class Records:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def emit(self, record: UsageRecord) -> None:
        self.records.append(record)


def failing(model: str, status: int, code: str) -> dict[str, Any]:
    return {"match": {"model": model}, "error": {"status": status, "code": code, "message": "no"}}


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True])
async def test_a_retryable_failure_falls_back_to_the_next_model(stream: bool) -> None:
    sink = Records()
    rules = [
        failing("qwen-max", 503, "ServiceUnavailable"),
        failing("qwen-plus", 429, "Throttling"),
    ]
    async with emulated(
        scenarios=rules, retry=FAST, usage_sinks=[sink],
        fallbacks={"qwen-max": ["qwen-plus", "qwen-flash"]},
    ) as client:  # fmt: skip
        if stream:
            async with client.stream("Hi", model="qwen-max") as events:
                result = await events.get_result()
        else:
            result = await client.chat("Hi", model="qwen-max")
    assert result.model == "qwen-flash"
    assert result.content
    assert [n for n in result.notes if n.startswith("fallback")] == [
        "fallback: qwen-max failed (503 ServiceUnavailable), trying qwen-plus",
        "fallback: qwen-plus failed (429 Throttling), trying qwen-flash",
    ]
    assert len(result.attempts) == 4  # two attempts of each failing model
    [record] = sink.records
    assert (record.model, record.status, record.attempts) == ("qwen-flash", "ok", 5)


@pytest.mark.anyio
async def test_a_deterministic_error_does_not_fall_back() -> None:
    sink = Records()
    rules = [failing("qwen-max", 400, "InvalidParameter")]
    async with emulated(
        scenarios=rules, retry=FAST, usage_sinks=[sink], fallbacks={"qwen-max": ["qwen-plus"]}
    ) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.chat("Hi", model="qwen-max")
    assert caught.value.status == 400
    [record] = sink.records
    assert (record.model, record.status) == ("qwen-max", "error")


@pytest.mark.anyio
async def test_the_last_model_of_a_chain_failing_raises_its_error() -> None:
    rules = [
        failing("qwen-max", 503, "ServiceUnavailable"),
        failing("qwen-plus", 503, "ServiceUnavailable"),
    ]
    sink = Records()
    async with emulated(
        scenarios=rules, retry=FAST, usage_sinks=[sink], fallbacks={"qwen-max": ["qwen-plus"]}
    ) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.chat("Hi", model="qwen-max")
    assert caught.value.status == 503
    [record] = sink.records
    assert record.attempts == 4  # two of each model, each counted once
