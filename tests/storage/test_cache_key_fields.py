"""Two requests that differ in any field that can change the answer never share a cache entry:
for every such field of ``ChatRequest`` (and an extra field), hypothesis draws two different
values; the keys differ, and an answer stored under one is never served for the other from a
real SQLite store. The transport-only fields (``stream``, ``stream_options``) do share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from qwenkit._core.cache import CachedResponse, cache_key
from qwenkit.storage._cache_sql import SQLCache
from qwenkit.types import ChatRequest, ContentDelta, Finished

BASE: dict[str, Any] = {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}
WORDS = st.text(max_size=12)
FLOATS = st.floats(-2, 2, allow_nan=False)
COUNTS = st.integers(0, 2**31)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | WORDS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORDS, inner, max_size=3),
    max_leaves=5,
)
CONTENT = WORDS | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": WORDS}))
MESSAGE = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": CONTENT}),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": CONTENT},
        optional={"reasoning_content": WORDS, "name": WORDS},
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "content": WORDS, "tool_call_id": WORDS}),
)
TOOL = st.fixed_dictionaries(
    {"type": st.just("function"), "function": st.fixed_dictionaries({"name": WORDS})},
)
SCHEMA = st.dictionaries(WORDS, JSON, max_size=3)

OUTPUT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": st.text(min_size=1, max_size=20),
    "messages": st.lists(MESSAGE, min_size=1, max_size=3),
    "max_tokens": COUNTS,
    "temperature": FLOATS,
    "top_p": FLOATS,
    "top_k": COUNTS,
    "presence_penalty": FLOATS,
    "frequency_penalty": FLOATS,
    "repetition_penalty": FLOATS,
    "seed": COUNTS,
    "stop": WORDS | st.lists(WORDS, max_size=3) | st.lists(st.lists(COUNTS, max_size=3)),
    "n": COUNTS,
    "logprobs": st.booleans(),
    "top_logprobs": COUNTS,
    "response_format": st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])}),
        st.fixed_dictionaries({"type": st.just("json_schema"), "json_schema": SCHEMA}),
    ),
    "tools": st.lists(TOOL, min_size=1, max_size=3),
    "tool_choice": st.sampled_from(["auto", "none", "required"])
    | st.builds(lambda name: {"type": "function", "function": {"name": name}}, WORDS),
    "parallel_tool_calls": st.booleans(),
    "enable_thinking": st.booleans(),
    "thinking_budget": COUNTS,
    "enable_search": st.booleans(),
    "search_options": SCHEMA,
}
"""Every modelled field that can change the answer, with the values it can take."""
TRANSPORT_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
}


def request(**fields: Any) -> ChatRequest:
    return ChatRequest.model_validate({**BASE, **fields})


def answer(text: str) -> CachedResponse:
    return CachedResponse((ContentDelta(text), Finished("stop")))


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal("asyncio") as running:
        yield running


@pytest.fixture(scope="module")
def store(portal: BlockingPortal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLCache]:
    path: Path = tmp_path_factory.mktemp("cache-key-fields") / "store.db"
    cache = SQLCache(f"sqlite:///{path}")
    try:
        yield cache
    finally:
        portal.call(cache.aclose)


def never_served_for_the_other(
    portal: BlockingPortal, store: SQLCache, first: str, second: str
) -> None:
    """Store an answer naming its key under ``first``: whatever the store holds for ``second``
    (an earlier example may have stored under it) is not that answer."""
    portal.call(store.set, first, answer(first))
    assert portal.call(store.get, second) in (None, answer(second))
    assert portal.call(store.get, first) == answer(first)


def test_every_field_of_the_request_is_classified() -> None:
    assert set(OUTPUT_FIELDS) | set(TRANSPORT_FIELDS) == set(ChatRequest.model_fields)
    assert not set(OUTPUT_FIELDS) & set(TRANSPORT_FIELDS)


@pytest.mark.parametrize("field", sorted(OUTPUT_FIELDS))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_a_different_value_of_an_output_field_is_a_different_entry(
    field: str, data: st.DataObject, portal: BlockingPortal, store: SQLCache
) -> None:
    values = st.none() | OUTPUT_FIELDS[field] if field not in BASE else OUTPUT_FIELDS[field]
    first, second = data.draw(values, label="first"), data.draw(values, label="second")
    base = {"enable_thinking": True} if field == "thinking_budget" else {}  # it needs thinking
    one, other = request(**base, **{field: first}), request(**base, **{field: second})
    # None is the same as absent: compare what the field is on the wire
    wire_one, wire_other = one.to_wire().get(field), other.to_wire().get(field)
    assume(json.dumps(wire_one, sort_keys=True) != json.dumps(wire_other, sort_keys=True))
    keys = cache_key(one, thinking=None), cache_key(other, thinking=None)
    assert keys[0] != keys[1]
    never_served_for_the_other(portal, store, *keys)


@settings(max_examples=25, deadline=None)
@given(
    name=st.text(min_size=1, max_size=12).filter(lambda name: name not in ChatRequest.model_fields),
    first=JSON,
    second=JSON,
)
def test_a_different_extra_field_is_a_different_entry(
    name: str, first: Any, second: Any, portal: BlockingPortal, store: SQLCache
) -> None:
    assume(json.dumps(first, sort_keys=True) != json.dumps(second, sort_keys=True))
    keys = [cache_key(request(**{name: value}), thinking=None) for value in (first, second)]
    assert keys[0] != keys[1]
    assert cache_key(request(), thinking=None) not in keys  # present differs from absent
    never_served_for_the_other(portal, store, *keys)


@pytest.mark.parametrize("field", sorted(TRANSPORT_FIELDS))
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_transport_fields_share_an_entry(field: str, data: st.DataObject) -> None:
    value = data.draw(st.none() | TRANSPORT_FIELDS[field])
    assert cache_key(request(**{field: value}), thinking=None) == cache_key(
        request(), thinking=None
    )


@given(asked=st.none() | st.booleans(), effective=st.booleans(), budget=COUNTS)
def test_the_effective_thinking_is_what_counts(
    asked: bool | None, effective: bool, budget: int
) -> None:
    """The key holds the thinking the request is sent with (the model's profile settles an
    unset flag), and the budget only when thinking is on."""
    one = request(enable_thinking=asked, thinking_budget=budget)
    assert cache_key(one, thinking=effective) == cache_key(
        request(enable_thinking=effective, thinking_budget=budget), thinking=None
    )
    assert cache_key(one, thinking=effective) != cache_key(one, thinking=not effective)
    other_budget = request(enable_thinking=asked, thinking_budget=budget + 1)
    same = cache_key(one, thinking=effective) == cache_key(other_budget, thinking=effective)
    assert same is (not effective)
