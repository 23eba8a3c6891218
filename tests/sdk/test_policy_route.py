"""RoutePolicy alone: model, temperature, thinking and max_tokens from the task; the profile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from qwenkit._core.pipeline import Call
from qwenkit._core.policies import RoutePolicy
from qwenkit.catalog import Router, UnknownTaskError, default_catalog
from qwenkit.types import ChatRequest, ContentDelta, Event, Finished

CATALOG = default_catalog()
ROUTER = Router(CATALOG)
EVENTS: list[Event] = [ContentDelta("hi"), Finished("stop")]


class FakeNext:
    """A stand-in for the rest of the pipeline: records the call, yields two events."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncIterator[Event]:
        self.calls.append(call)
        for event in EVENTS:
            yield event


def make_call(model: str = "", **kwargs: Any) -> Call:
    request = ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}])
    return Call(request=request, **kwargs)


def prepare(call: Call, default_model: str = "qwen-plus") -> Call:
    RoutePolicy(ROUTER, CATALOG, default_model=default_model).prepare(call)
    return call


@pytest.mark.anyio
async def test_events_pass_through_and_call_next_sees_the_routed_call() -> None:
    call = make_call(task="extract")
    original = call.request
    fake = FakeNext()
    events = [event async for event in RoutePolicy(ROUTER, CATALOG)(call, fake)]
    assert events == EVENTS
    assert fake.calls == [call]
    assert fake.calls[0].request.model == "qwen-flash"
    assert original.model == ""  # the caller's request object is not mutated
    assert "temperature" not in original.model_fields_set


def test_task_sets_model_temperature_thinking_and_stashes_max_tokens() -> None:
    call = prepare(make_call(task="extract"))
    route = ROUTER.route("extract")
    assert call.route == route
    assert call.request.model == route.model == "qwen-flash"
    assert call.request.temperature == route.temperature
    assert call.thinking is route.thinking
    assert call.state["thinking_source"] == "route"
    assert call.state["route_max_tokens"] == route.max_tokens
    assert call.request.max_tokens is None  # MaxTokensPolicy applies the caps
    assert call.profile is not None
    assert call.profile.name == "qwen-flash"
    assert any(route.reason in note for note in call.notes)
    assert call.request.to_wire()["temperature"] == route.temperature


def test_task_is_case_insensitive_and_a_thinking_route_sets_thinking() -> None:
    call = prepare(make_call(task="Reason"))
    assert call.request.model == "qwen3-max"
    assert call.thinking is True


def test_explicit_model_wins_over_the_route_but_other_defaults_apply() -> None:
    call = prepare(make_call("qwen-max", task="extract", explicit=frozenset({"model"})))
    assert call.request.model == "qwen-max"
    assert call.profile is not None
    assert call.profile.name == "qwen-max"
    assert call.request.temperature == 0.0
    assert any("the caller's choice" in note for note in call.notes)


def test_a_model_on_the_request_that_is_not_explicit_yields_to_the_route() -> None:
    call = prepare(make_call("qwen-max", task="code"))
    assert call.request.model == "qwen3-coder-plus"


@pytest.mark.parametrize("explicit", [frozenset(), frozenset({"temperature"})])
def test_the_callers_temperature_wins(explicit: frozenset[str]) -> None:
    call = make_call(task="creative", explicit=explicit)
    call.request = call.request.model_copy(update={"temperature": 0.1})
    prepare(call)
    assert call.request.temperature == 0.1


def test_explicit_max_tokens_is_not_overridden_by_the_route() -> None:
    call = make_call(task="code", explicit=frozenset({"max_tokens"}))
    call.request = call.request.model_copy(update={"max_tokens": 77})
    prepare(call)
    assert "route_max_tokens" not in call.state
    assert call.request.max_tokens == 77


@pytest.mark.parametrize("wish", [True, False])
def test_the_callers_thinking_wins_over_the_route(wish: bool) -> None:
    call = prepare(make_call(task="reason" if not wish else "chat", thinking=wish))
    assert call.thinking is wish
    assert "thinking_source" not in call.state


def test_enable_thinking_on_the_request_counts_as_the_callers_wish() -> None:
    call = make_call(task="reason")
    call.request = call.request.model_copy(update={"enable_thinking": False})
    prepare(call)
    assert call.thinking is None
    assert call.request.enable_thinking is False
    assert "thinking_source" not in call.state


def test_no_task_no_model_uses_the_default_model() -> None:
    call = prepare(make_call(), default_model="qwen-flash")
    assert call.route is None
    assert call.request.model == "qwen-flash"
    assert call.request.temperature is None
    assert call.thinking is None
    assert call.profile is not None
    assert call.profile.name == "qwen-flash"


def test_no_task_keeps_the_requests_model() -> None:
    call = prepare(make_call("qwen3.5-plus"))
    assert call.request.model == "qwen3.5-plus"
    assert call.profile is not None
    assert call.profile.name == "qwen3.5-plus"


def test_an_alias_or_snapshot_resolves_the_profile_and_keeps_the_name_sent() -> None:
    call = prepare(make_call("qwen-plus-2025-07-28", explicit=frozenset({"model"})))
    assert call.request.model == "qwen-plus-2025-07-28"
    assert call.profile is not None
    assert call.profile.name == "qwen-plus"


def test_unknown_model_gives_no_profile_and_a_note_not_an_error() -> None:
    call = prepare(make_call("my-finetune-7b", explicit=frozenset({"model"})))
    assert call.profile is None
    assert call.request.model == "my-finetune-7b"
    assert any("not in the catalog" in note for note in call.notes)


@pytest.mark.anyio
async def test_unknown_task_fails_before_call_next() -> None:
    fake = FakeNext()
    with pytest.raises(UnknownTaskError):
        _ = [event async for event in RoutePolicy(ROUTER, CATALOG)(make_call(task="dance"), fake)]
    assert fake.calls == []
