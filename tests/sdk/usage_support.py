"""Helpers of the usage-policy tests: a priced answer, a fake upstream, a pipeline runner.

Imported as ``from usage_support import ...`` (pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from decimal import Decimal

from qwenkit._core.pipeline import Call, EventStream, Handler, Pipeline, Policy
from qwenkit._core.usage import ListSink, UsageRecord
from qwenkit.types import (
    ChatRequest,
    ContentDelta,
    Event,
    Finished,
    ResponseStarted,
    Usage,
    UsageReported,
)

# qwen-plus, ap-southeast-1, first tier: input 0.4, cached 0.08, output 1.2, thinking 4 USD / 1M
USAGE = Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500, cached_tokens=200)
USAGE_COST = Decimal("0.000936")  # 800 * 0.4e-6 + 200 * 0.08e-6 + 500 * 1.2e-6

ANSWER: tuple[Event, ...] = (
    ResponseStarted(id="chatcmpl-1", model="qwen-plus", request_id="req-1"),
    ContentDelta("Hel"),
    ContentDelta("lo"),
    Finished("stop"),
    UsageReported(USAGE),
)


def make_call(model: str = "qwen-plus", **request: object) -> Call:
    req = ChatRequest.model_validate(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], **request}
    )
    return Call(request=req, tags={"endpoint": "chat", "key_id": "team-a"}, stream=True)


def upstream(*events: Event, error: BaseException | None = None) -> Handler:
    async def send(call: Call) -> EventStream:
        for event in events:
            yield event
        if error is not None:
            raise error

    return send


async def run(
    policies: Sequence[Policy], send: Handler, call: Call, *, stop_after: int | None = None
) -> list[Event]:
    seen: list[Event] = []
    events = Pipeline(policies, send).run(call)
    assert isinstance(events, AsyncGenerator)
    async with aclosing(events) as stream:
        async for event in stream:
            seen.append(event)
            if stop_after is not None and len(seen) >= stop_after:
                break
    return seen


def only(sink: ListSink) -> UsageRecord:
    assert len(sink.records) == 1, sink.records
    return sink.records[0]
