"""UsagePolicy on calls that fail, stop early or are rejected: still exactly one record each."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from usage_support import ANSWER, USAGE, USAGE_COST, make_call, only, run, upstream

from qwenkit._core.pipeline import Call, EventStream, Handler
from qwenkit._core.usage import ListSink, UsagePolicy
from qwenkit._exceptions import (
    APIConnectionError,
    StreamInterruptedError,
    ValidationError,
    error_from_info,
)
from qwenkit.tokens import count_messages, get_tokenizer
from qwenkit.types import (
    ContentDelta,
    Event,
    Finished,
    ResponseStarted,
    StreamError,
    UsageReported,
)
from qwenkit.wire.errors import make_error


@pytest.mark.anyio
async def test_api_error_before_any_event_is_recorded_and_reraised() -> None:
    sink = ListSink()
    error = error_from_info(make_error("Throttling.RateQuota", "slow down", request_id="req-9"))
    with pytest.raises(type(error)):
        await run([UsagePolicy([sink])], upstream(error=error), make_call())
    record = only(sink)
    assert record.status == "error"
    assert (record.http_status, record.error_code) == (429, "Throttling.RateQuota")
    assert record.request_id == "req-9"
    assert record.cost is None
    assert record.currency is None
    assert record.prompt_tokens == 0
    assert record.attempts == 1
    assert record.ttft_s is None


@pytest.mark.anyio
async def test_error_mid_stream_keeps_what_arrived() -> None:
    sink = ListSink()
    error = StreamInterruptedError("connection reset", status=None)
    send = upstream(ResponseStarted(id="x", model="qwen-plus"), ContentDelta("par"), error=error)
    with pytest.raises(StreamInterruptedError):
        await run([UsagePolicy([sink])], send, make_call())
    record = only(sink)
    assert record.status == "error"
    assert record.error_code is None
    assert record.finish_reason is None
    assert record.ttft_s is not None


@pytest.mark.anyio
async def test_stream_error_event_makes_the_status_error() -> None:
    sink = ListSink()
    info = make_error("DataInspectionFailed", "inappropriate content")
    await run([UsagePolicy([sink])], upstream(ContentDelta("a"), StreamError(info)), make_call())
    record = only(sink)
    assert (record.status, record.http_status, record.error_code) == (
        "error",
        400,
        "DataInspectionFailed",
    )


@pytest.mark.anyio
async def test_consumer_stopping_early_is_cancelled_with_usage_so_far() -> None:
    sink = ListSink()
    send = upstream(UsageReported(USAGE), ContentDelta("a"), ContentDelta("b"), Finished("stop"))
    events = await run([UsagePolicy([sink])], send, make_call(), stop_after=2)
    assert len(events) == 2
    record = only(sink)
    assert record.status == "cancelled"
    assert record.prompt_tokens == 1000
    assert record.cost == USAGE_COST
    assert record.finish_reason is None


@pytest.mark.anyio
async def test_a_stream_cut_off_before_its_usage_is_recorded_with_an_estimate() -> None:
    """The counted prompt and the tokens of the text that went through, priced: a cancelled
    stream costs money, and the reports must see it (the budget settles the same estimate)."""
    call = make_call()
    prompt = count_messages(list(call.request.messages), model="qwen-plus").total
    text = ["Once upon ", "a time, two gateways ", "met in a datacentre."]
    sink = ListSink()
    send = upstream(*(ContentDelta(piece) for piece in text), Finished("stop"))
    await run([UsagePolicy([sink])], send, call, stop_after=len(text))
    record = only(sink)
    assert record.status == "cancelled"
    assert record.prompt_tokens == prompt
    assert record.completion_tokens == get_tokenizer("qwen").count("".join(text))
    assert record.cost is not None
    assert record.cost > 0
    cut = ListSink()
    error = StreamInterruptedError("connection reset", status=None)
    with pytest.raises(StreamInterruptedError):
        await run([UsagePolicy([cut])], upstream(ContentDelta("par"), error=error), make_call())
    assert only(cut).completion_tokens == get_tokenizer("qwen").count("par")
    finished = ListSink()  # a stream that ended normally without usage is not guessed at
    await run([UsagePolicy([finished])], upstream(ContentDelta("a"), Finished("stop")), make_call())
    assert (only(finished).completion_tokens, only(finished).cost) == (0, None)


@pytest.mark.anyio
async def test_task_cancellation_is_recorded_as_cancelled() -> None:
    sink = ListSink()

    async def hanging(call: Call) -> EventStream:
        yield ContentDelta("a")
        await anyio.sleep_forever()

    with anyio.move_on_after(0.05):
        await run([UsagePolicy([sink])], hanging, make_call())
    assert only(sink).status == "cancelled"


@pytest.mark.anyio
async def test_local_error_from_a_later_policy_is_recorded() -> None:
    sink = ListSink()

    async def validate(call: Call, call_next: Handler) -> AsyncIterator[Event]:
        raise ValidationError("orphan tool result", param="messages")
        yield  # pragma: no cover - makes this an async generator

    with pytest.raises(ValidationError):
        await run([UsagePolicy([sink]), validate], upstream(*ANSWER), make_call())
    record = only(sink)
    assert (record.status, record.http_status, record.error_code) == (
        "error",
        None,
        "ValidationError",
    )
    assert record.attempts == 0


@pytest.mark.anyio
async def test_record_rejection_for_a_policy_before_it_and_never_twice() -> None:
    sink = ListSink()
    usage = UsagePolicy([sink])

    async def reject(call: Call, call_next: Handler) -> AsyncIterator[Event]:
        raise ValidationError("max_tokens out of range", param="max_tokens")
        yield  # pragma: no cover

    call = make_call()
    with pytest.raises(ValidationError) as caught:
        await run([reject, usage], upstream(*ANSWER), call)
    assert sink.records == []  # the policy never ran
    record = usage.record_rejection(call, caught.value)
    assert record is not None
    assert record.status == "error"
    assert usage.record_rejection(call, caught.value) is None
    assert only(sink) is record


@pytest.mark.anyio
async def test_record_rejection_after_the_policy_recorded_adds_nothing() -> None:
    sink = ListSink()
    usage = UsagePolicy([sink])
    call = make_call()
    error = APIConnectionError("connection refused")
    with pytest.raises(APIConnectionError):
        await run([usage], upstream(error=error), call)
    assert usage.record_rejection(call, error) is None
    assert only(sink).error_code is None
