"""MaxTokensPolicy alone: precedence (caller > route > model default > fallback) and the caps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qwenkit._core.pipeline import Call
from qwenkit._core.policies import MaxTokensPolicy
from qwenkit._core.policies._base import CALLER_MAX_TOKENS
from qwenkit._exceptions import ValidationError
from qwenkit.catalog import ModelProfile
from qwenkit.types import ChatRequest, ContentDelta, Event, Finished

EVENTS: list[Event] = [ContentDelta("hi"), Finished("length")]


class FakeNext:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncIterator[Event]:
        self.calls.append(call)
        for event in EVENTS:
            yield event


def profile(max_output: int = 4000, default: int = 1500) -> ModelProfile:
    return ModelProfile.model_validate(
        {
            "name": "toy",
            "context_window": 100_000,
            "max_input_tokens": 90_000,
            "max_output_tokens": max_output,
            "default_max_tokens": default,
            "thinking": "none",
            "tools": True,
            "json_mode": True,
            "json_schema": False,
            "modalities": ["text"],
            "endpoint": "text",
            "tokenizer": "qwen",
            "confidence": "documented",
        }
    )


def make_call(
    max_tokens: int | None = None,
    route: int | None = None,
    model: ModelProfile | None = None,
    **kwargs: Any,
) -> Call:
    request = ChatRequest(model="toy", messages=[{"role": "user", "content": "hi"}])
    if max_tokens is not None:
        request = request.model_copy(update={"max_tokens": max_tokens})
    call = Call(request=request, profile=model, **kwargs)
    if route is not None:
        call.state["route_max_tokens"] = route
    return call


def decide(call: Call, hard_cap: int | None = 8192, fallback: int = 2048) -> int | None:
    MaxTokensPolicy(hard_cap=hard_cap, fallback=fallback).prepare(call)
    assert "max_tokens" in call.request.to_wire()
    return call.request.max_tokens


@pytest.mark.anyio
async def test_max_tokens_is_always_on_the_request_call_next_receives() -> None:
    fake = FakeNext()
    call = make_call()
    events = [event async for event in MaxTokensPolicy()(call, fake)]
    assert events == EVENTS
    assert fake.calls[0].request.to_wire()["max_tokens"] == 2048


@pytest.mark.parametrize(
    ("explicit", "route", "model", "expected"),
    [
        (100, 200, profile(), 100),  # the caller's value first
        (None, 200, profile(), 200),  # then the route's
        (None, None, profile(), 1500),  # then the model's default
        (None, None, None, 2048),  # then the fallback
        (100, None, None, 100),
        (None, 300, None, 300),
    ],
)
def test_precedence(
    explicit: int | None, route: int | None, model: ModelProfile | None, expected: int
) -> None:
    assert decide(make_call(explicit, route, model)) == expected


def test_configured_fallback() -> None:
    assert decide(make_call(), fallback=512) == 512


def test_hard_cap_clamps_a_route_or_default_value_with_a_note() -> None:
    call = make_call(route=3000, model=profile())
    assert decide(call, hard_cap=1000) == 1000
    assert any("clamped to the hard cap 1000" in note for note in call.notes)
    assert decide(make_call(model=profile()), hard_cap=1000) == 1000


def test_hard_cap_clamps_an_explicit_value_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = make_call(3000, model=profile())
    with caplog.at_level(logging.WARNING):
        assert decide(call, hard_cap=1000) == 1000
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "3000" in warnings[0].getMessage()
    assert any("clamped to the hard cap" in note for note in call.notes)


def test_values_at_the_hard_cap_pass_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert decide(make_call(1000), hard_cap=1000) == 1000
    assert caplog.records == []


def test_no_hard_cap() -> None:
    assert decide(make_call(50_000), hard_cap=None) == 50_000
    assert decide(make_call(route=50_000), hard_cap=None) == 50_000


def test_explicit_above_the_models_max_output_raises_naming_the_limit() -> None:
    with pytest.raises(ValidationError, match=r"toy \(4000 tokens\)") as info:
        decide(make_call(4001, model=profile()), hard_cap=None)
    assert info.value.param == "max_tokens"
    # even when the hard cap would have clamped it: the caller asked for something impossible
    with pytest.raises(ValidationError):
        decide(make_call(4001, model=profile()), hard_cap=1000)


def test_explicit_at_the_models_max_output_passes() -> None:
    assert decide(make_call(4000, model=profile()), hard_cap=None) == 4000


def test_route_or_fallback_above_the_models_max_output_is_clamped() -> None:
    call = make_call(route=6000, model=profile())
    assert decide(call, hard_cap=None) == 4000
    assert any("toy's max output 4000" in note for note in call.notes)
    small = profile(max_output=1024, default=1024)
    assert decide(make_call(route=2048, model=small)) == 1024


def test_model_limit_then_hard_cap() -> None:
    assert decide(make_call(route=6000, model=profile()), hard_cap=3000) == 3000


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_configuration_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="hard_cap"):
        MaxTokensPolicy(hard_cap=bad)
    with pytest.raises(ValueError, match="fallback"):
        MaxTokensPolicy(fallback=bad)


def test_the_callers_request_object_is_not_mutated() -> None:
    call = make_call()
    original = call.request
    decide(call)
    assert original.max_tokens is None
    assert call.request is not original


def test_the_callers_own_cap_clamps_any_value_under_the_hard_cap_with_a_note(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for given in (None, 4000):  # the model's default (1500) and an explicit value
        call = make_call(max_tokens=given, model=profile())
        call.state[CALLER_MAX_TOKENS] = 64
        with caplog.at_level(logging.WARNING):
            assert decide(call) == 64
        assert "clamped to the key's cap 64" in call.notes[-1]
    assert not caplog.records  # the key's configuration, not a surprise: no warning
    small = make_call(max_tokens=10)
    small.state[CALLER_MAX_TOKENS] = 64
    assert decide(small) == 10
    both = make_call(max_tokens=9000)
    both.state[CALLER_MAX_TOKENS] = 9500
    assert decide(both, hard_cap=8192) == 8192  # the tighter of the two wins
