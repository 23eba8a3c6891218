"""ParameterPolicy alone: every range of reference §2.1, at and just past its bounds."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from qwenkit._core.pipeline import Call
from qwenkit._core.policies import ParameterPolicy, check_parameters
from qwenkit._exceptions import ValidationError
from qwenkit.types import ChatRequest, ContentDelta, Event, Finished

EVENTS: list[Event] = [ContentDelta("hi"), Finished("stop")]


class FakeNext:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncIterator[Event]:
        self.calls.append(call)
        for event in EVENTS:
            yield event


def request(**fields: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


VALID = [
    ("temperature", 0),
    ("temperature", 1.99),
    ("top_p", 1),
    ("top_p", 0.01),
    ("top_k", 0),
    ("top_k", 101),
    ("presence_penalty", -2),
    ("presence_penalty", 2),
    ("repetition_penalty", 0.01),
    ("repetition_penalty", 1.0),
    ("n", 1),
    ("n", 4),
    ("seed", 0),
    ("seed", 4_294_967_295),
    ("top_logprobs", 0),
    ("top_logprobs", 5),
    ("max_tokens", 1),
    ("thinking_budget", 1),
]
INVALID = [
    ("temperature", -0.01),
    ("temperature", 2),
    ("temperature", math.nan),
    ("temperature", math.inf),
    ("top_p", 0),
    ("top_p", 1.01),
    ("top_k", -1),
    ("presence_penalty", -2.01),
    ("presence_penalty", 2.01),
    ("repetition_penalty", 0),
    ("repetition_penalty", -1),
    ("n", 0),
    ("n", 5),
    ("seed", -1),
    ("seed", 4_294_967_296),
    ("top_logprobs", -1),
    ("top_logprobs", 6),
    ("max_tokens", 0),
    ("max_tokens", -10),
    ("thinking_budget", 0),
]


@pytest.mark.parametrize(("param", "value"), VALID)
def test_values_in_range_pass(param: str, value: float) -> None:
    check_parameters(request(**{param: value}))


@pytest.mark.parametrize(("param", "value"), INVALID)
def test_values_out_of_range_raise_naming_the_parameter(param: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        check_parameters(request(**{param: value}))
    assert info.value.param == param
    assert str(info.value).startswith(f"{param}=")
    assert "the service accepts" in str(info.value)


def test_unset_parameters_are_not_checked() -> None:
    check_parameters(request())


@pytest.mark.anyio
async def test_policy_passes_events_and_fails_before_call_next() -> None:
    fake = FakeNext()
    call = Call(request=request(temperature=0.5, n=2))
    assert [event async for event in ParameterPolicy()(call, fake)] == EVENTS
    assert fake.calls == [call]
    fake = FakeNext()
    with pytest.raises(ValidationError):
        _ = [event async for event in ParameterPolicy()(Call(request=request(n=9)), fake)]
    assert fake.calls == []
