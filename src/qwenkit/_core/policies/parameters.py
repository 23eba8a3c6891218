"""``ParameterPolicy``: sampling and length parameters within the service's ranges (ref. §2.1).

====================  ==========================  ==============================================
parameter             accepted                    note
====================  ==========================  ==============================================
temperature           0 ≤ t < 2
top_p                 0 < p ≤ 1
top_k                 k ≥ 0                       none or > 100 disables it
presence_penalty      -2 ≤ p ≤ 2
repetition_penalty    r > 0                       1.0 means none
n                     1 … 4                       only some models accept n > 1 (not checked)
seed                  0 … 4294967295              some doc copies say 2^31 - 1: the wider range
top_logprobs          0 … 5
max_tokens            ≥ 1
thinking_budget       ≥ 1
====================  ==========================  ==============================================

A value out of range raises ``ValidationError`` with ``param`` naming the field. NaN is out of
every range (it fails every comparison). Unset parameters are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import BeforeCall
from qwenkit._exceptions import ValidationError
from qwenkit.types import ChatRequest

SEED_MAX = 4_294_967_295


@dataclass(frozen=True)
class Range:
    """An accepted range of one parameter, and how to say it."""

    param: str
    accepts: Callable[[float], bool]
    text: str


RANGES: tuple[Range, ...] = (
    Range("temperature", lambda v: 0 <= v < 2, "0 <= temperature < 2"),
    Range("top_p", lambda v: 0 < v <= 1, "0 < top_p <= 1"),
    Range("top_k", lambda v: v >= 0, "top_k >= 0 (none or above 100 disables it)"),
    Range("presence_penalty", lambda v: -2 <= v <= 2, "-2 <= presence_penalty <= 2"),
    Range("repetition_penalty", lambda v: v > 0, "repetition_penalty > 0 (1.0 means none)"),
    Range("n", lambda v: 1 <= v <= 4, "n from 1 to 4"),
    Range("seed", lambda v: 0 <= v <= SEED_MAX, f"seed from 0 to {SEED_MAX}"),
    Range("top_logprobs", lambda v: 0 <= v <= 5, "top_logprobs from 0 to 5"),
    Range("max_tokens", lambda v: v >= 1, "max_tokens >= 1"),
    Range("thinking_budget", lambda v: v >= 1, "thinking_budget >= 1"),
)
"""Checked in this order; the first failure is reported."""


def check_parameters(request: ChatRequest) -> None:
    """Raise ``ValidationError`` for the first parameter of ``request`` out of its range."""
    for rule in RANGES:
        value = getattr(request, rule.param)
        if value is None:
            continue
        if not rule.accepts(value):  # NaN fails every comparison, so every range
            raise ValidationError(
                f"{rule.param}={value!r} is out of range: the service accepts {rule.text}",
                param=rule.param,
            )


class ParameterPolicy(BeforeCall):
    """``check_parameters`` on the request, before any network call."""

    def prepare(self, call: Call) -> None:
        check_parameters(call.request)

    def __repr__(self) -> str:
        return "ParameterPolicy()"
