"""cache_key: equal exactly when the canonical requests are equal; stream flags and dict order never
count; every output-affecting parameter (extras included) does; no caller identity."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenkit._core.cache import cache_key, canonical_request
from qwenkit.types import ChatRequest

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
BASE: dict[str, Any] = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}


def req(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({**BASE, **fields})


def key(**fields: Any) -> str:
    return cache_key(req(**fields), thinking=None)


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another insertion order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "qwen-max"),
        ("messages", [{"role": "user", "content": "hello"}]),
        (
            "messages",
            [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        ),
        ("tools", [TOOL]),
        ("tool_choice", "none"),
        ("parallel_tool_calls", True),
        ("response_format", {"type": "json_object"}),
        ("temperature", 0.0),
        ("top_p", 0.5),
        ("top_k", 20),
        ("seed", 42),
        ("stop", ["\n"]),
        ("max_tokens", 100),
        ("n", 2),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.5),
        ("repetition_penalty", 1.1),
        ("logprobs", True),
        ("enable_thinking", True),
        ("enable_search", True),
        ("search_options", {"forced_search": True}),
        ("vl_high_resolution_images", True),  # an extra the canonical model does not know
        ("translation_options", {"source_lang": "auto", "target_lang": "English"}),
    ],
)
def test_each_output_parameter_changes_the_key(field: str, value: Any) -> None:
    assert key(**{field: value}) != key()


def test_different_values_of_one_parameter_give_different_keys() -> None:
    assert key(seed=1) != key(seed=2)
    assert key(stop="a") != key(stop=["a"])
    assert key(tool_choice="auto", tools=[TOOL]) != key(tool_choice="required", tools=[TOOL])
    assert key(custom_extra={"a": 1}) != key(custom_extra={"a": 2})


def test_stream_flags_do_not_count() -> None:
    plain = key()
    assert key(stream=True) == plain
    assert key(stream=False, stream_options={"include_usage": True}) == plain


def test_unset_and_none_modelled_fields_are_the_same() -> None:
    assert key(seed=None, temperature=None, tools=None) == key()


def test_thinking_is_the_effective_one() -> None:
    asked_in_request = cache_key(req(enable_thinking=True), thinking=None)
    decided_by_caller = cache_key(req(), thinking=True)
    assert asked_in_request == decided_by_caller
    assert cache_key(req(enable_thinking=True), thinking=False) == cache_key(
        req(enable_thinking=False), thinking=None
    )
    # the budget matters only when thinking is on
    off = cache_key(req(thinking_budget=100), thinking=False)
    assert off == cache_key(req(), thinking=False)
    on = cache_key(req(thinking_budget=100), thinking=True)
    assert on != cache_key(req(thinking_budget=200), thinking=True)
    assert on != cache_key(req(), thinking=True)


def test_key_is_a_sha256_hex_digest_without_caller_identity() -> None:
    digest = key(seed=7)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    canonical = canonical_request(req(seed=7), thinking=None)
    assert set(canonical) == {"model", "messages", "seed"}  # nothing about who asked


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "b"]))
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("xyz"), inner),
    max_leaves=4,
)
_requests = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["qwen-plus", "qwen-flash"]),
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "system"]), "content": st.sampled_from("ab")}
            ),
            min_size=1,
            max_size=2,
        ),
    },
    optional={
        "temperature": st.sampled_from([0.0, 0.7]),
        "seed": st.none() | st.integers(0, 2),
        "stop": st.sampled_from(["x", ["x"], ["x", "y"]]),
        "enable_thinking": st.none() | st.booleans(),
        "thinking_budget": st.sampled_from([100, 200]),
        "stream": st.booleans(),
        "stream_options": st.just({"include_usage": True}),
        "tools": st.just([TOOL]),
        "custom_extra": _json,
        "other_extra": _json,
    },
)


@given(_requests, _requests, st.none() | st.booleans())
def test_keys_are_equal_iff_canonical_requests_are(
    a: dict[str, Any], b: dict[str, Any], thinking: bool | None
) -> None:
    ra, rb = ChatRequest.model_validate(a), ChatRequest.model_validate(b)
    same = canonical_request(ra, thinking=thinking) == canonical_request(rb, thinking=thinking)
    assert (cache_key(ra, thinking=thinking) == cache_key(rb, thinking=thinking)) == same


@given(_requests, st.randoms(use_true_random=False))
def test_dict_key_order_never_matters(data: dict[str, Any], rng: random.Random) -> None:
    request = ChatRequest.model_validate(data)
    reordered = ChatRequest.model_validate(shuffled(data, rng))
    assert cache_key(reordered, thinking=None) == cache_key(request, thinking=None)


@given(_requests)
def test_stream_flags_never_matter(data: dict[str, Any]) -> None:
    without = {k: v for k, v in data.items() if k not in ("stream", "stream_options")}
    streamed = {**without, "stream": True, "stream_options": {"include_usage": True}}
    assert cache_key(ChatRequest.model_validate(streamed), thinking=None) == cache_key(
        ChatRequest.model_validate(without), thinking=None
    )
