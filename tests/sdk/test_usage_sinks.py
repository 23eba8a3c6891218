"""Usage sinks: the logging default, the list collector and the callback."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from qwenkit._core.pipeline import Call, EventStream, Pipeline
from qwenkit._core.usage import CallbackSink, ListSink, LoggingSink, UsagePolicy, UsageRecord
from qwenkit.types import ChatRequest, Finished

RECORD = UsageRecord(
    timestamp=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
    request_id="req-1",
    model="qwen-plus",
    task="chat",
    endpoint="chat",
    key_id="team-a",
    region="ap-southeast-1",
    stream=False,
    prompt_tokens=10,
    completion_tokens=5,
    cached_tokens=0,
    cache_creation_tokens=0,
    reasoning_tokens=0,
    cost=Decimal("0.000010"),
    currency="USD",
    latency_s=0.5,
    ttft_s=0.1,
    status="ok",
    http_status=None,
    error_code=None,
    cache_hit=False,
    attempts=1,
    finish_reason="stop",
)


def test_logging_sink_writes_one_structured_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="qwenkit.usage"):
        LoggingSink().emit(RECORD)
    [log] = caplog.records
    assert log.name == "qwenkit.usage"
    assert log.levelno == logging.INFO
    message = log.getMessage()
    assert message.startswith("usage {")
    assert "\n" not in message
    data = json.loads(message.removeprefix("usage "))
    assert data == RECORD.to_dict()
    assert data["cost"] == "0.000010"  # exact, trailing zero kept
    assert data["timestamp"] == "2025-01-02T03:04:05+00:00"
    assert log.__dict__["usage"] == data


def test_logging_sink_honours_its_logger_and_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="app.billing"):
        LoggingSink(logging.getLogger("app.billing"), level=logging.DEBUG).emit(RECORD)
        LoggingSink("app.billing", level=5).emit(RECORD)  # below the logger's level: dropped
    assert [(r.name, r.levelno) for r in caplog.records] == [("app.billing", logging.DEBUG)]


def test_list_and_callback_sinks() -> None:
    sink = ListSink()
    seen: list[UsageRecord] = []
    sink.emit(RECORD)
    CallbackSink(seen.append).emit(RECORD)
    other = replace(RECORD, status="error", error_code="InvalidParameter")
    sink.emit(other)
    assert sink.records == [RECORD, other]
    assert seen == [RECORD]


def test_a_cost_free_record_serialises_none() -> None:
    data = replace(RECORD, cost=None, currency=None).to_dict()
    assert (data["cost"], data["currency"]) == (None, None)
    json.dumps(data)


@pytest.mark.anyio
async def test_the_default_sink_is_the_logger(caplog: pytest.LogCaptureFixture) -> None:
    async def send(call: Call) -> EventStream:
        yield Finished("stop")

    request = ChatRequest(model="qwen-plus", messages=[{"role": "user", "content": "hi"}])
    with caplog.at_level(logging.INFO, logger="qwenkit.usage"):
        async for _ in Pipeline([UsagePolicy()], send).run(Call(request=request)):
            pass
    [log] = [r for r in caplog.records if r.name == "qwenkit.usage"]
    data = json.loads(log.getMessage().removeprefix("usage "))
    assert (data["status"], data["finish_reason"], data["cost"]) == ("ok", "stop", None)
