"""default_policies: the order, and the policies together in a Pipeline around a fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from qwenkit._core.pipeline import Call, Pipeline
from qwenkit._core.policies import (
    BeforeCall,
    ContextLengthError,
    ContextWindowPolicy,
    HistoryError,
    HistoryPolicy,
    MaxTokensPolicy,
    ParameterPolicy,
    PromptCachePolicy,
    RoutePolicy,
    ThinkingPolicy,
    default_policies,
)
from qwenkit._exceptions import ValidationError
from qwenkit.catalog import Router, default_catalog
from qwenkit.types import ChatRequest, ContentDelta, Event, Finished

CATALOG = default_catalog()
ROUTER = Router(CATALOG)
EVENTS: list[Event] = [ContentDelta("a"), ContentDelta("b"), Finished("stop")]


class FakeUpstream:
    """The send step: records the call it gets, yields events, notes when it was closed."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.closed = False

    async def __call__(self, call: Call) -> AsyncIterator[Event]:
        self.calls.append(call)
        try:
            for event in EVENTS:
                yield event
        finally:
            self.closed = True


def pipeline(**options: Any) -> tuple[Pipeline, FakeUpstream]:
    upstream = FakeUpstream()
    policies = default_policies(catalog=CATALOG, router=ROUTER, **options)
    return Pipeline(policies, upstream), upstream


def make_call(*messages: dict[str, Any], model: str = "", **kwargs: Any) -> Call:
    history = list(messages) or [{"role": "user", "content": "Prove that 2 is prime."}]
    return Call(request=ChatRequest(model=model, messages=history), **kwargs)


async def run(pipe: Pipeline, call: Call) -> list[Event]:
    return [event async for event in pipe.run(call)]


def test_the_order() -> None:
    policies = default_policies(catalog=CATALOG, router=ROUTER)
    kinds = [type(policy) for policy in policies]
    assert kinds == [
        RoutePolicy,
        MaxTokensPolicy,
        ThinkingPolicy,
        HistoryPolicy,
        PromptCachePolicy,
        ParameterPolicy,
        ContextWindowPolicy,
    ]
    assert all(isinstance(policy, BeforeCall) for policy in policies)


def test_options_reach_their_policies() -> None:
    policies = default_policies(
        catalog=CATALOG,
        router=ROUTER,
        default_model="qwen-flash",
        hard_max_tokens=None,
        check_context=False,
    )
    route, max_tokens, *_, context = policies
    assert isinstance(route, RoutePolicy)
    assert route.default_model == "qwen-flash"
    assert isinstance(max_tokens, MaxTokensPolicy)
    assert max_tokens.hard_cap is None
    assert isinstance(context, ContextWindowPolicy)
    assert context.enabled is False


@pytest.mark.anyio
async def test_a_thinking_task_non_streaming_streams_upstream_with_every_default_set() -> None:
    pipe, upstream = pipeline()
    call = make_call(task="reason", stream=False)
    assert await run(pipe, call) == EVENTS
    sent = upstream.calls[0]
    wire = sent.request.to_wire()
    assert wire["model"] == "qwen3-max"
    assert wire["temperature"] == 0.3
    assert wire["max_tokens"] == 8192
    assert wire["enable_thinking"] is True
    assert sent.upstream_stream is True
    assert sent.state["thinking"] is True
    assert sent.state["prompt_tokens"] > 0
    assert any("aggregated" in note for note in sent.notes)


@pytest.mark.anyio
async def test_json_mode_turns_a_thinking_route_off() -> None:
    pipe, upstream = pipeline()
    call = make_call(task="reason")
    call.request = ChatRequest.model_validate(
        {**call.request.to_wire(), "response_format": {"type": "json_object"}}
    )
    await run(pipe, call)
    sent = upstream.calls[0]
    assert sent.state["thinking"] is False
    assert "enable_thinking" not in sent.request.to_wire()  # qwen3-max is off by default
    assert sent.upstream_stream is False


@pytest.mark.anyio
async def test_hybrid_on_model_without_thinking_sends_false_and_no_stream() -> None:
    pipe, upstream = pipeline()
    call = make_call(model="qwen3.5-plus", thinking=False)
    await run(pipe, call)
    wire = upstream.calls[0].request.to_wire()
    assert wire["enable_thinking"] is False
    assert wire["max_tokens"] == 2048
    assert upstream.calls[0].upstream_stream is False


@pytest.mark.anyio
async def test_an_unknown_model_skips_the_model_checks() -> None:
    pipe, upstream = pipeline()
    call = make_call(model="my-vllm-qwen", explicit=frozenset({"model"}))
    await run(pipe, call)
    sent = upstream.calls[0]
    assert sent.profile is None
    assert sent.request.to_wire()["max_tokens"] == 2048
    assert "prompt_tokens" not in sent.state


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (
            make_call({"role": "tool", "content": "x", "tool_call_id": "a"}, model="qwen-plus"),
            HistoryError,
        ),
        (make_call(model="qwq-plus", thinking=False), ValidationError),
        (make_call(model="qwen-max", explicit=frozenset({"max_tokens"})), None),
    ],
)
async def test_local_errors_stop_before_the_upstream(
    call: Call, error: type[Exception] | None
) -> None:
    pipe, upstream = pipeline()
    if error is None:
        await run(pipe, call)
        assert len(upstream.calls) == 1
        return
    with pytest.raises(error):
        await run(pipe, call)
    assert upstream.calls == []


@pytest.mark.anyio
async def test_a_too_long_prompt_stops_before_the_upstream() -> None:
    pipe, upstream = pipeline()
    long_text = "word " * 40_000  # qwen-max: 30,720 input tokens
    call = make_call({"role": "user", "content": long_text}, model="qwen-max")
    with pytest.raises(ContextLengthError):
        await run(pipe, call)
    assert upstream.calls == []
    pipe, upstream = pipeline(check_context=False)
    await run(pipe, make_call({"role": "user", "content": long_text}, model="qwen-max"))
    assert len(upstream.calls) == 1


@pytest.mark.anyio
async def test_a_consumer_stopping_early_closes_the_upstream_stream_at_once() -> None:
    pipe, upstream = pipeline()
    stream = pipe.run(make_call(model="qwen-plus"))
    assert await stream.__anext__() == EVENTS[0]
    assert not upstream.closed
    await stream.aclose()  # type: ignore[attr-defined]
    assert upstream.closed
