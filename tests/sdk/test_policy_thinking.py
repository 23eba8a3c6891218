"""ThinkingPolicy alone: effective thinking, the enable_thinking sent, JSON mode and streaming."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qwenkit._core.pipeline import Call
from qwenkit._core.policies import ThinkingPolicy
from qwenkit._exceptions import ValidationError
from qwenkit.catalog import ModelProfile, ThinkingMode, default_catalog
from qwenkit.types import ChatRequest, Event, Finished, ReasoningDelta

EVENTS: list[Event] = [ReasoningDelta("hmm"), Finished("stop")]
ERROR = "error"
ABSENT = "absent"


class FakeNext:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncIterator[Event]:
        self.calls.append(call)
        for event in EVENTS:
            yield event


def profile(mode: ThinkingMode, **fields: Any) -> ModelProfile:
    return ModelProfile.model_validate(
        {
            "name": f"toy-{mode.value}",
            "context_window": 100_000,
            "max_input_tokens": 90_000,
            "max_output_tokens": 8000,
            "max_reasoning_tokens": None if mode is ThinkingMode.NONE else 1000,
            "thinking": mode,
            "stream_only_when_thinking": True,
            "tools": True,
            "json_mode": True,
            "json_schema": True,
            "modalities": ["text"],
            "endpoint": "text",
            "tokenizer": "qwen",
            "confidence": "documented",
            **fields,
        }
    )


def make_call(
    mode: ThinkingMode | None,
    thinking: bool | None = None,
    *,
    json: str | None = None,
    stream: bool = False,
    **request_fields: Any,
) -> Call:
    fields: dict[str, Any] = {"messages": [{"role": "user", "content": "hi, answer in JSON"}]}
    if json is not None:
        fields["response_format"] = {"type": json}
    fields.update(request_fields)
    request = ChatRequest(model="toy" if mode is None else f"toy-{mode.value}", **fields)
    model = None if mode is None else profile(mode)
    return Call(request=request, thinking=thinking, stream=stream, profile=model)


def sent(call: Call) -> object:
    """The enable_thinking on the wire, or ABSENT."""
    return call.request.to_wire().get("enable_thinking", ABSENT)


N, OFF, ON, ALWAYS = (
    ThinkingMode.NONE,
    ThinkingMode.HYBRID_OFF,
    ThinkingMode.HYBRID_ON,
    ThinkingMode.ALWAYS,
)
MODES: list[ThinkingMode | None] = [N, OFF, ON, ALWAYS, None]

# (mode, caller's thinking, JSON mode) -> (effective thinking, enable_thinking sent) or ERROR
TABLE: dict[tuple[ThinkingMode | None, bool | None, bool], tuple[bool, object] | str] = {
    (N, None, False): (False, ABSENT),
    (N, True, False): ERROR,  # the model cannot think
    (N, False, False): (False, ABSENT),
    (N, None, True): (False, ABSENT),
    (N, True, True): ERROR,
    (N, False, True): (False, ABSENT),
    (OFF, None, False): (False, ABSENT),
    (OFF, True, False): (True, True),
    (OFF, False, False): (False, ABSENT),
    (OFF, None, True): (False, ABSENT),
    (OFF, True, True): ERROR,  # JSON mode with thinking is rejected by the service
    (OFF, False, True): (False, ABSENT),
    (ON, None, False): (True, True),
    (ON, True, False): (True, True),
    (ON, False, False): (False, False),  # explicit false: on by default
    (ON, None, True): (False, False),  # JSON mode turns the default off, explicitly
    (ON, True, True): ERROR,
    (ON, False, True): (False, False),
    (ALWAYS, None, False): (True, ABSENT),  # nothing to send: it always thinks
    (ALWAYS, True, False): (True, ABSENT),
    (ALWAYS, False, False): ERROR,  # enable_thinking=false is rejected
    (ALWAYS, None, True): ERROR,  # it cannot do JSON mode
    (ALWAYS, True, True): ERROR,
    (ALWAYS, False, True): ERROR,
    (None, None, False): (False, ABSENT),  # unknown model: no default known
    (None, True, False): (True, True),
    (None, False, False): (False, False),
    (None, None, True): (False, ABSENT),
    (None, True, True): ERROR,
    (None, False, True): (False, False),
}


def test_the_table_covers_every_combination() -> None:
    assert set(TABLE) == set(itertools.product(MODES, [None, True, False], [False, True]))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("json", [None, "json_object", "json_schema"])
@pytest.mark.parametrize("wish", [None, True, False])
@pytest.mark.parametrize("mode", MODES)
def test_thinking_table(
    mode: ThinkingMode | None, wish: bool | None, json: str | None, stream: bool
) -> None:
    call = make_call(mode, wish, json=json, stream=stream)
    expected = TABLE[mode, wish, json is not None]
    if expected == ERROR:
        with pytest.raises(ValidationError) as info:
            ThinkingPolicy().prepare(call)
        assert info.value.param in ("enable_thinking", "response_format")
        return
    assert isinstance(expected, tuple)
    ThinkingPolicy().prepare(call)
    thinking, flag = expected
    assert call.state["thinking"] is thinking
    assert sent(call) == flag
    assert call.upstream_stream is (thinking or stream)  # thinking always streams upstream
    if thinking and not stream:
        assert any("aggregated" in note for note in call.notes)


@pytest.mark.anyio
async def test_call_next_receives_the_streaming_request_and_events_pass() -> None:
    fake = FakeNext()
    call = make_call(OFF, True)
    events = [event async for event in ThinkingPolicy()(call, fake)]
    assert events == EVENTS
    assert fake.calls[0].upstream_stream is True
    assert fake.calls[0].request.enable_thinking is True


def test_enable_thinking_on_the_request_is_the_callers_wish() -> None:
    call = make_call(OFF, enable_thinking=True)
    ThinkingPolicy().prepare(call)
    assert (call.state["thinking"], sent(call), call.upstream_stream) == (True, True, True)
    with pytest.raises(ValidationError):
        ThinkingPolicy().prepare(make_call(OFF, json="json_object", enable_thinking=True))
    with pytest.raises(ValidationError, match="always thinks"):
        ThinkingPolicy().prepare(make_call(ALWAYS, enable_thinking=False))


def test_call_thinking_wins_over_enable_thinking_and_the_flag_is_made_consistent() -> None:
    call = make_call(OFF, False, enable_thinking=True)
    ThinkingPolicy().prepare(call)
    assert (call.state["thinking"], sent(call)) == (False, False)
    call = make_call(ALWAYS, True, enable_thinking=True)
    ThinkingPolicy().prepare(call)
    assert sent(call) is True  # the caller's own true for an always-thinking model is kept


@pytest.mark.parametrize("mode", [N, OFF])
def test_a_callers_false_is_passed_through_for_models_off_by_default(mode: ThinkingMode) -> None:
    call = make_call(mode, enable_thinking=False)
    ThinkingPolicy().prepare(call)
    assert sent(call) is False


def route_call(mode: ThinkingMode, wish: bool, json: str | None = None) -> Call:
    call = make_call(mode, wish, json=json)
    call.state["thinking_source"] = "route"
    return call


@pytest.mark.parametrize(
    ("mode", "wish", "json", "thinking", "flag"),
    [
        (OFF, True, "json_object", False, ABSENT),  # JSON mode overrules the route
        (ON, True, "json_object", False, False),
        (N, True, None, False, ABSENT),  # the model cannot think
        (ALWAYS, False, None, True, ABSENT),  # the model always thinks
    ],
)
def test_a_route_wish_yields_with_a_note_instead_of_an_error(
    mode: ThinkingMode, wish: bool, json: str | None, thinking: bool, flag: object
) -> None:
    call = route_call(mode, wish, json)
    ThinkingPolicy().prepare(call)
    assert (call.state["thinking"], sent(call)) == (thinking, flag)
    assert any("thinking" in note for note in call.notes)


def test_json_mode_with_an_always_thinking_model_fails_even_from_a_route() -> None:
    with pytest.raises(ValidationError, match="always thinks"):
        ThinkingPolicy().prepare(route_call(ALWAYS, True, "json_object"))


@pytest.mark.parametrize("stream", [False, True])
def test_stream_only_models_always_stream_upstream(stream: bool) -> None:
    call = make_call(OFF, False, stream=stream)
    call.profile = profile(OFF, stream_only=True)
    ThinkingPolicy().prepare(call)
    assert call.upstream_stream is True
    assert call.state["thinking"] is False
    assert any("only answers streaming" in note for note in call.notes) is not stream


def test_thinking_budget_is_kept_when_thinking() -> None:
    call = make_call(OFF, True, thinking_budget=1000)
    ThinkingPolicy().prepare(call)
    assert call.request.to_wire()["thinking_budget"] == 1000


@pytest.mark.parametrize("budget", [0, -5, 1001])
def test_thinking_budget_out_of_range_fails(budget: int) -> None:
    with pytest.raises(ValidationError) as info:
        ThinkingPolicy().prepare(make_call(OFF, True, thinking_budget=budget))
    assert info.value.param == "thinking_budget"


def test_thinking_budget_of_an_unknown_model_has_no_upper_bound() -> None:
    call = make_call(None, True, thinking_budget=10**6)
    ThinkingPolicy().prepare(call)
    assert call.request.thinking_budget == 10**6


def test_thinking_budget_without_thinking_is_passed_with_a_note() -> None:
    call = make_call(OFF, False, thinking_budget=10**6)
    ThinkingPolicy().prepare(call)
    assert call.request.thinking_budget == 10**6
    assert any("no effect" in note for note in call.notes)


@pytest.mark.parametrize(
    ("model", "thinking", "flag", "upstream_stream"),
    [
        ("qwen3.5-plus", None, True, True),
        ("qwen3.5-plus", False, False, False),
        ("qwen3-32b", False, False, True),  # the open-source Qwen3 are stream-only
        ("qwen-plus", None, ABSENT, False),
        ("qwen-plus", True, True, True),
        ("qwq-plus", None, ABSENT, True),
        ("qwen3-omni-flash", False, ABSENT, True),  # stream-only
        ("qwen-max", None, ABSENT, False),
    ],
)
def test_catalog_models(
    model: str, thinking: bool | None, flag: object, upstream_stream: bool
) -> None:
    request = ChatRequest(model=model, messages=[{"role": "user", "content": "hi"}])
    call = Call(request=request, thinking=thinking, profile=default_catalog().get(model))
    ThinkingPolicy().prepare(call)
    assert (sent(call), call.upstream_stream) == (flag, upstream_stream)
