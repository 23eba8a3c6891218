"""``PartialJSON``, ``snapshots`` and ``is_more_complete``: dicts of a JSON object as it streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from qwenkit.structured import (
    JSONParseError,
    PartialJSON,
    asnapshots,
    is_more_complete,
    snapshots,
)


def feed_all(pieces: Iterable[str]) -> list[Any]:
    acc = PartialJSON()
    return [acc.feed(piece) for piece in pieces]


def test_nothing_until_an_object_begins() -> None:
    assert feed_all(["Sure", "! ```json\n", "{"]) == [None, None, {}]


def test_fence_bom_and_prose_prefix_are_skipped() -> None:
    acc = PartialJSON()
    for piece in ["\ufeff", "Here:\n```js", 'on\n{"a"', ": 1}\n```\nDone {x}"]:
        acc.feed(piece)
    assert acc.value == {"a": 1}
    assert acc.done
    assert acc.final() == {"a": 1}
    assert acc.final_text() == '{"a": 1}'
    assert acc.raw.endswith("Done {x}")


def test_trailing_string_shows_as_it_grows() -> None:
    assert feed_all(['{"t": "He', "llo, ", "wor", 'ld"}']) == [
        {"t": "He"},
        {"t": "Hello, "},
        {"t": "Hello, wor"},
        {"t": "Hello, world"},
    ]


def test_escapes_and_surrogate_pairs_split_anywhere() -> None:
    text = json.dumps({"s": 'a"b\\c\n😀é'})  # ensure_ascii: \ud83d\ude00 and \u00e9
    values = feed_all(text)
    strings = [v["s"] for v in values if v and "s" in v]
    assert strings[-1] == 'a"b\\c\n😀é'
    assert all(strings[-1].startswith(s) for s in strings)


def test_a_number_is_reported_only_once_complete() -> None:
    assert feed_all(['{"n": 1', "2", "3", ", ", '"m": -', "4.", "5e", "+2", "}"]) == [
        {},
        {},
        {},
        {"n": 123},
        {"n": 123},
        {"n": 123},
        {"n": 123},
        {"n": 123},
        {"n": 123, "m": -450.0},
    ]
    assert feed_all(["[", "{", '"a": [1', "0, 2", "0"]) == [
        None,
        {},
        {"a": []},
        {"a": [10]},
        {"a": [10]},
    ]
    assert feed_all(['{"a": 7 ', "}"]) == [{"a": 7}, {"a": 7}]  # whitespace ends a number


def test_literals_are_reported_only_once_complete() -> None:
    assert feed_all(['{"a": t', "ru", "e, ", '"b": nu', "ll}"]) == [
        {},
        {},
        {"a": True},
        {"a": True},
        {"a": True, "b": None},
    ]


def test_text_after_the_object_is_ignored() -> None:
    acc = PartialJSON()
    acc.feed('{"a": 1} and {"b": 2}')
    assert acc.feed(' more {"c": 3}') == {"a": 1}
    assert acc.final() == {"a": 1}


def test_incomplete_stream_final_raises_with_the_raw_text() -> None:
    acc = PartialJSON()
    acc.feed('Sure: {"a": [1, ')
    assert acc.value == {"a": [1]}
    with pytest.raises(JSONParseError) as caught:
        acc.final()
    assert caught.value.raw == 'Sure: {"a": [1, '


def test_no_object_at_all() -> None:
    acc = PartialJSON()
    acc.feed("I cannot do that.")
    assert acc.value is None
    with pytest.raises(JSONParseError, match="no JSON object found"):
        acc.final()


def test_not_json_stops_partials_and_final_falls_back_to_the_whole_text() -> None:
    acc = PartialJSON()
    assert acc.feed("Replace {") == {}
    assert acc.feed("name} with ") == {}  # jiter refuses `name`: partials stop here
    assert acc.error is not None
    assert acc.feed('the value: {"name": "Ada"}') == {}
    assert acc.final() == {"name": "Ada"}


def test_nan_is_not_json_in_a_stream_either() -> None:
    acc = PartialJSON()
    acc.feed('{"a": NaN}')
    assert acc.error is not None
    with pytest.raises(JSONParseError):
        acc.final()


def test_snapshots_yield_only_changes_and_end_with_the_object() -> None:
    pieces = ["```json\n", '{"a"', ": ", '"x', '"', ', "b": [1', ", 2", "]}", "\n```"]
    assert list(snapshots(pieces)) == [
        {},
        {"a": "x"},
        {"a": "x", "b": []},  # the 1 might go on: held back
        {"a": "x", "b": [1]},
        {"a": "x", "b": [1, 2]},
    ]


def test_snapshots_raise_after_the_partials_when_the_stream_is_cut() -> None:
    seen: list[dict[str, Any]] = []
    with pytest.raises(JSONParseError):
        seen.extend(snapshots(["{", '"a": 1, ', '"b": "cut']))
    assert seen == [{}, {"a": 1}, {"a": 1, "b": "cut"}]


def test_snapshots_fallback_yields_the_final_object() -> None:
    assert list(snapshots(["Use {", "x} here: ", '{"a": 1}'])) == [{}, {"a": 1}]


async def _agen(pieces: Iterable[str]) -> AsyncIterator[str]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


def test_asnapshots_is_the_same_as_snapshots() -> None:
    text = json.dumps({"a": [1, {"b": "hello"}], "c": None})
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]

    async def collect() -> list[dict[str, Any]]:
        return [value async for value in asnapshots(_agen(pieces))]

    assert asyncio.run(collect()) == list(snapshots(pieces))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({}, {}, False),
        ({}, {"a": 1}, True),
        ({"a": 1}, {"a": 1}, False),
        ({"a": 1}, {"a": 2}, False),
        ({"a": 1}, {"a": True}, False),  # 1 == True, but not the same value
        ({"a": 1}, {"a": 1.0}, False),
        ({"a": "ab"}, {"a": "abc"}, True),
        ({"a": "ab"}, {"a": "xabc"}, False),
        ({"a": "abc"}, {"a": "ab"}, False),
        ({"a": []}, {"a": [1]}, True),
        ({"a": []}, {"a": {}}, False),
        ({"a": [1]}, {"a": []}, False),
        ({"a": [1, 2]}, {"a": [2, 1]}, False),
        ({"a": {"b": None}}, {"a": {"b": None, "c": 1}}, True),
        ({"a": None}, {"a": "x"}, False),
        ({"a": 1}, {"b": 1}, False),
    ],
)
def test_is_more_complete(old: Any, new: Any, expected: bool) -> None:
    assert is_more_complete(old, new) is expected
