"""UsagePolicy on calls that end normally: tokens, cost, timings, attempts, cache hits, sinks."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from usage_support import ANSWER, USAGE_COST, make_call, only, run, upstream

from qwenkit._core.cache import CachePolicy, MemoryCache
from qwenkit._core.pipeline import Call, EventStream, Policy
from qwenkit._core.usage import ListSink, UsagePolicy, UsageRecord
from qwenkit._exceptions import (
    Attempt,
)
from qwenkit.types import (
    ContentDelta,
    Finished,
    ReasoningDelta,
    Usage,
    UsageReported,
)


@pytest.mark.anyio
async def test_normal_call_records_tokens_cost_and_timings() -> None:
    sink = ListSink()
    call = make_call()
    events = await run([UsagePolicy([sink])], upstream(*ANSWER), call)
    assert events == list(ANSWER)
    record = only(sink)
    assert record.status == "ok"
    assert (record.http_status, record.error_code) == (200, None)
    assert record.model == "qwen-plus"
    assert (record.endpoint, record.key_id, record.region) == ("chat", "team-a", "ap-southeast-1")
    assert record.stream is True
    assert record.request_id == "req-1"
    assert (record.prompt_tokens, record.completion_tokens) == (1000, 500)
    assert (record.cached_tokens, record.reasoning_tokens, record.cache_creation_tokens) == (
        200,
        0,
        0,
    )
    assert record.cost == USAGE_COST
    assert record.currency == "USD"
    assert record.finish_reason == "stop"
    assert record.cache_hit is False
    assert record.attempts == 1
    assert record.ttft_s is not None
    assert 0 <= record.ttft_s <= record.latency_s
    assert record.timestamp.tzinfo is not None


@pytest.mark.anyio
async def test_thinking_output_is_priced_at_the_thinking_price() -> None:
    sink = ListSink()
    usage = Usage(prompt_tokens=1000, completion_tokens=500, reasoning_tokens=300)
    send = upstream(
        ReasoningDelta("hmm"), ContentDelta("ok"), Finished("stop"), UsageReported(usage)
    )
    await run([UsagePolicy([sink])], send, make_call(enable_thinking=True))
    record = only(sink)
    assert record.reasoning_tokens == 300
    assert record.cost == Decimal("0.0024")  # 1000 * 0.4e-6 + 500 * 4e-6


@pytest.mark.anyio
async def test_attempts_count_failed_attempts_before_the_answer() -> None:
    sink = ListSink()
    call = make_call()
    call.attempts.extend([Attempt(1, "503", 503, "x", 0.1, 0.5), Attempt(2, "503", 503, "x", 1, 1)])
    await run([UsagePolicy([sink])], upstream(*ANSWER), call)
    assert only(sink).attempts == 3


@pytest.mark.anyio
async def test_timings_from_the_observe_step_win() -> None:
    sink = ListSink()
    call = make_call()
    started = call.timings.started
    call.timings.first_content = started + 0.25
    call.timings.finished = started + 1.5
    await run([UsagePolicy([sink])], upstream(*ANSWER), call)
    record = only(sink)
    assert record.ttft_s == pytest.approx(0.25)
    assert record.latency_s == pytest.approx(1.5)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("model", "region"), [("no-such-model", "ap-southeast-1"), ("qwen-plus", "mars-1")]
)
async def test_unpriced_calls_have_no_cost(model: str, region: str) -> None:
    sink = ListSink()
    call = make_call(model)
    call.tags["region"] = region
    await run([UsagePolicy([sink])], upstream(*ANSWER), call)
    record = only(sink)
    assert record.region == region
    assert (record.cost, record.currency) == (None, None)
    assert record.prompt_tokens == 1000


@pytest.mark.anyio
async def test_region_changes_the_currency() -> None:
    sink = ListSink()
    await run([UsagePolicy([sink], region="cn-beijing")], upstream(*ANSWER), make_call())
    record = only(sink)
    assert record.currency == "CNY"
    assert record.cost == Decimal("0.001672")  # 800 * 0.8e-6 + 200 * 0.16e-6 + 500 * 2e-6


@pytest.mark.anyio
async def test_no_region_means_not_priced() -> None:
    sink = ListSink()
    await run([UsagePolicy([sink], region=None)], upstream(*ANSWER), make_call())
    record = only(sink)
    assert (record.region, record.cost, record.currency) == (None, None, None)
    assert record.prompt_tokens == 1000


@pytest.mark.anyio
async def test_cache_hit_is_recorded_with_zero_cost() -> None:
    sink = ListSink()
    policies: list[Policy] = [UsagePolicy([sink]), CachePolicy(MemoryCache())]
    sends: list[int] = []

    async def send(call: Call) -> EventStream:
        sends.append(1)
        for event in ANSWER:
            yield event

    await run(policies, send, make_call(temperature=0))
    await run(policies, send, make_call(temperature=0))
    assert len(sends) == 1
    miss, hit = sink.records
    assert (miss.cache_hit, miss.cost, miss.attempts) == (False, USAGE_COST, 1)
    assert (hit.cache_hit, hit.cost, hit.currency, hit.attempts) == (True, Decimal(0), "USD", 0)
    assert hit.prompt_tokens == 1000
    assert hit.status == "ok"


@pytest.mark.anyio
async def test_a_failing_sink_neither_breaks_the_call_nor_other_sinks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def emit(self, record: UsageRecord) -> None:
            raise OSError("disk full")

    sink = ListSink()
    with caplog.at_level(logging.ERROR, logger="qwenkit._core.usage"):
        events = await run([UsagePolicy([Broken(), sink])], upstream(*ANSWER), make_call())
    assert events == list(ANSWER)
    assert only(sink).status == "ok"
    [log] = [r for r in caplog.records if r.name == "qwenkit._core.usage"]
    assert log.exc_info is not None
    assert isinstance(log.exc_info[1], OSError)


@pytest.mark.anyio
async def test_records_are_json_ready() -> None:
    sink = ListSink()
    await run([UsagePolicy([sink])], upstream(*ANSWER), make_call())
    data = json.loads(json.dumps(only(sink).to_dict()))
    assert data["cost"] == "0.000936"
    assert data["timestamp"].endswith("+00:00")
    assert data["status"] == "ok"


@pytest.mark.anyio
async def test_input_the_client_refuses_still_leaves_a_record() -> None:
    from qwenkit import ListSink, UsageError, ValidationError
    from qwenkit.testing import emulated

    sink = ListSink()
    async with emulated(usage_sinks=[sink]) as client:
        with pytest.raises(ValidationError):
            await client.chat([{"role": "robot", "content": "hi"}], model="qwen-plus")
        with pytest.raises(UsageError):
            client.stream("hi", stream=True)
        await client.chat("hi")
    statuses = [(record.status, record.error_code, record.model) for record in sink.records]
    assert statuses == [
        ("error", "ValidationError", "qwen-plus"),
        ("error", "UsageError", ""),
        ("ok", None, "qwen-plus"),
    ]
