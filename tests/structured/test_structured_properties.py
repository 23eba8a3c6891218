"""Property tests of streaming partials: however a JSON object is cut into deltas, every snapshot is
a prefix-consistent partial of the final object, each strictly more complete than the last, and the
last equals the object.

*Prefix-consistent* is checked by an oracle written independently of the implementation: a partial
dict has a prefix of the final keys, in order; every value but the last equals the final one (same
type and value); the last is itself a prefix-consistent partial (a string: a prefix of the final
string). Lists alike. Numbers, booleans and null therefore only ever appear complete.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from qwenkit.structured import is_more_complete, partial_instances, snapshots

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=15,
)
json_objects = st.dictionaries(st.text(max_size=5), json_values, max_size=5)
prose = st.sampled_from(["", "```json\n", "\ufeff", "Sure! Here it is:\n\n", "好的："])


def same(a: Any, b: Any) -> bool:
    return json.dumps(a) == json.dumps(b)


def is_partial_of(part: Any, whole: Any) -> bool:
    if isinstance(whole, dict):
        if not isinstance(part, dict) or list(part) != list(whole)[: len(part)]:
            return False
        keys = list(part)
        return all(same(part[k], whole[k]) for k in keys[:-1]) and (
            not keys or is_partial_of(part[keys[-1]], whole[keys[-1]])
        )
    if isinstance(whole, list):
        if not isinstance(part, list) or len(part) > len(whole):
            return False
        return all(same(p, w) for p, w in zip(part[:-1], whole, strict=False)) and (
            not part or is_partial_of(part[-1], whole[len(part) - 1])
        )
    if isinstance(whole, str):
        return isinstance(part, str) and whole.startswith(part)
    return same(part, whole)


def split(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def check_sequence(seq: list[Any], final: Any) -> None:
    assert seq, "at least the final value is yielded"
    assert same(seq[-1], final)
    for snapshot in seq:
        assert is_partial_of(snapshot, final), (snapshot, final)
    for before, after in itertools.pairwise(seq):
        assert is_partial_of(before, after), (before, after)
        assert not same(before, after), before
        assert is_more_complete(before, after), (before, after)


@settings(max_examples=150, deadline=None)
@given(
    json_objects,
    st.lists(st.integers(min_value=0), max_size=40),
    prose,
    st.booleans(),
    st.sampled_from([None, 1]),
)
def test_snapshots_are_prefix_consistent_and_monotone(
    obj: dict[str, Any], cuts: list[int], before: str, ascii_only: bool, indent: int | None
) -> None:
    text = before + json.dumps(obj, ensure_ascii=ascii_only, indent=indent)
    check_sequence(list(snapshots(split(text, cuts))), obj)


@settings(max_examples=60, deadline=None)
@given(json_objects)
def test_one_character_at_a_time(obj: dict[str, Any]) -> None:
    check_sequence(list(snapshots(json.dumps(obj))), obj)


class Line(BaseModel):
    sku: str
    qty: int
    price: float
    gift: bool = False


class Invoice(BaseModel):
    customer: str
    lines: list[Line]
    notes: list[str] = []
    meta: dict[str, int] = {}


finite = st.floats(allow_nan=False, allow_infinity=False)
lines = st.fixed_dictionaries(
    {"sku": st.text(max_size=6), "qty": st.integers(), "price": finite},
    optional={"gift": st.booleans()},
)
invoices = st.fixed_dictionaries(
    {"customer": st.text(max_size=10), "lines": st.lists(lines, max_size=3)},
    optional={
        "notes": st.lists(st.text(max_size=6), max_size=3),
        "meta": st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    },
)


def in_field_order(data: dict[str, Any]) -> dict[str, Any]:
    """The JSON written in field order, the order of ``model_dump``, so the oracle can compare."""
    ordered = {name: data[name] for name in Invoice.model_fields if name in data}
    ordered["lines"] = [
        {k: line[k] for k in Line.model_fields if k in line} for line in data["lines"]
    ]
    return ordered


@settings(max_examples=60, deadline=None)
@given(invoices.map(in_field_order), st.lists(st.integers(min_value=0), max_size=25))
def test_partial_instances_are_monotone_and_end_validated(
    data: dict[str, Any], cuts: list[int]
) -> None:
    *partials, final = partial_instances(Invoice, split(json.dumps(data), cuts))
    assert type(final) is Invoice
    assert final == Invoice.model_validate(data)
    shapes = [p.model_dump(mode="json", exclude_unset=True) for p in partials]
    expected = json.loads(json.dumps(data))
    for shape in shapes:
        assert is_partial_of(shape, expected), (shape, expected)
    for before, after in itertools.pairwise(shapes):
        assert is_more_complete(before, after), (before, after)
