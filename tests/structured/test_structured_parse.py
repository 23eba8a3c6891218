"""``parse_json`` / ``extract_json_text``: JSON mode answers read defensively, never repaired."""

from __future__ import annotations

import json
import pickle
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenkit._exceptions import QwenError
from qwenkit.structured import JSONParseError, extract_json_text, parse_json, strict_loads

OBJ = {"name": "Ada", "tags": ["x", "y"], "n": 3}
TEXT = json.dumps(OBJ)


@pytest.mark.parametrize(
    "text",
    [
        TEXT,
        f"  \n{TEXT}\n\t",
        f"\ufeff{TEXT}",
        f"\ufeff  {TEXT}  ",
        f"```json\n{TEXT}\n```",
        f"```\n{TEXT}\n```",
        f"```JSON\n{TEXT}\n```",
        f"Here you go:\n\n```json\n{TEXT}\n```\n\nAnything else?",
        f"Result:\n    ```json\n    {TEXT}\n    ```\n",  # indented fence
        f"Sure!\n```json\n{TEXT}",  # fence never closed, at the very end
        f"The JSON is {TEXT} as requested.",
        f"{TEXT}\nHope this helps",
        f"Sure! {TEXT}",
        f"```python\nx = {{'a': 1}}\n```\nand\n```json\n{TEXT}\n```",  # first fence that parses
        f"````json\n{TEXT}\n````",
    ],
)
def test_wrapped_objects_parse(text: str) -> None:
    assert parse_json(text) == OBJ


def test_extract_returns_the_exact_substring_that_parsed() -> None:
    assert extract_json_text(f"\ufeffSure: {TEXT} ok") == TEXT
    assert extract_json_text(f"```json\n  {TEXT}  \n```") == TEXT
    assert extract_json_text(f"  {TEXT}\n") == TEXT


def test_fence_wins_over_braces_in_prose_before_it() -> None:
    text = 'Fill the template {"name": "?"} like this:\n```json\n{"name": "Ada"}\n```'
    assert parse_json(text) == {"name": "Ada"}


def test_braces_and_escaped_quotes_inside_strings_do_not_confuse_the_scan() -> None:
    obj = {"a": "x {b} }}} [", "q": 'say "hi" {', "bs": "C:\\dir\\", "u": "é\u2028"}
    text = "Answer: " + json.dumps(obj) + " (end }"
    assert parse_json(text) == obj
    assert parse_json('prose {"k": "\\"}"} more') == {"k": '"}'}


def test_chinese_text_around_and_inside() -> None:
    obj = {"城市": "杭州", "说明": "阿里云「通义千问」{模型}"}
    text = "好的，以下是结果：\n" + json.dumps(obj, ensure_ascii=False) + "\n希望有帮助。"
    assert parse_json(text) == obj


def test_first_of_two_objects_wins() -> None:
    assert parse_json('A: {"n": 1} B: {"n": 2}') == {"n": 1}


def test_candidates_that_do_not_parse_are_skipped() -> None:
    assert parse_json('Use {name} and {"a": {"b": 1}} then') == {"a": {"b": 1}}
    assert parse_json('{ not json {"a": 1}') == {"a": 1}  # an opener never closed
    assert parse_json('bad {"x": ] } good {"a": 1}') == {"a": 1}  # mismatched brackets


def test_arrays_when_allowed() -> None:
    assert parse_json("[1, 2]", expect=list) == [1, 2]
    assert parse_json('Here: [{"a": 1}] done', expect=list) == [{"a": 1}]
    assert parse_json("```json\n[true]\n```", expect=None) == [True]
    assert parse_json("42", expect=None) == 42
    assert parse_json('x {"a": [1]} y [2]', expect=list) == [2]  # never dug out of the object


def test_arrays_are_rejected_when_an_object_is_expected() -> None:
    with pytest.raises(JSONParseError, match="found a JSON array instead"):
        parse_json("[1, 2]")
    with pytest.raises(JSONParseError, match="found a JSON array instead"):
        parse_json('Here: [{"a": 1}] done')  # the object is not dug out of the array
    assert parse_json('As shown in [1], the answer is {"a": 1}.') == {"a": 1}


def test_truncated_json_raises_with_raw_text_and_position() -> None:
    raw = 'Sure:\n{"name": "Ada", "tags": ["x", '
    with pytest.raises(JSONParseError) as caught:
        parse_json(raw)
    error = caught.value
    assert error.raw == raw
    assert error.pos == len(raw.rstrip())  # where the text runs out
    assert "line 2" in str(error)
    assert "Expecting value" in str(error)
    assert isinstance(error, QwenError)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{'a': 1}", "Expecting property name enclosed in double quotes"),
        ('{"a": 1,}', "Expecting property name enclosed in double quotes"),
        ('{"a": [1, 2,]}', "Expecting value"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"a": -Infinity}', "-Infinity is not valid JSON"),
        ('{"a": "line\nbreak"}', "Invalid control character"),
        ("Sure: {a: 1}", "Expecting property name"),
    ],
)
def test_values_that_would_need_repair_are_never_repaired(text: str, reason: str) -> None:
    with pytest.raises(JSONParseError, match=reason) as caught:
        parse_json(text)
    assert caught.value.raw == text


def test_no_candidate_at_all() -> None:
    with pytest.raises(JSONParseError, match=r"no JSON object found .*tried the whole text") as e:
        parse_json("I cannot help with that.")
    assert e.value.pos == 0


def test_error_pickles_with_its_fields() -> None:
    error = JSONParseError("boom", raw="{", pos=1)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.raw, copy.pos) == ("boom", "{", 1)


def test_strict_loads_rejects_constants() -> None:
    assert strict_loads('{"a": 1.5}') == {"a": 1.5}
    with pytest.raises(ValueError, match="NaN"):
        strict_loads("NaN")


@pytest.mark.parametrize(
    "text",
    [
        "{" * 200_000,
        '{"a":' * 50_000,
        '{"' * 100_000,
        "[{" * 100_000 + ' {"ok": 1}',
    ],
)
def test_pathological_text_stays_linear(text: str) -> None:
    started = time.perf_counter()
    try:
        result: Any = parse_json(text)
    except JSONParseError:
        result = None
    assert time.perf_counter() - started < 3.0
    if text.endswith('{"ok": 1}'):
        assert result == {"ok": 1}


# -- properties -------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(), json_values, max_size=5)
# Prose may hold anything but braces and backticks. The suffix also never holds "]" or '"': with
# them, prefix + object + suffix can itself be a JSON array or string (``[{...}]``, ``"{}"``), which
# is rightly not read as the object (see test_arrays_are_rejected_when_an_object_is_expected).
prefix_prose = st.text(st.characters(exclude_characters="{}`"), max_size=30)
suffix_prose = st.text(st.characters(exclude_characters='{}`]"'), max_size=30)


@given(json_objects, prefix_prose, suffix_prose, st.booleans())
def test_any_object_survives_prose_around_it(
    obj: dict[str, Any], prefix: str, suffix: str, ascii_only: bool
) -> None:
    text = json.dumps(obj, ensure_ascii=ascii_only)
    assert parse_json(prefix + text + suffix) == obj


@given(json_objects, prefix_prose, suffix_prose, st.sampled_from(["json", "JSON", ""]))
def test_any_object_survives_a_fence_with_prose_around_it(
    obj: dict[str, Any], prefix: str, suffix: str, tag: str
) -> None:
    text = f"{prefix}\n```{tag}\n{json.dumps(obj, ensure_ascii=False, indent=2)}\n```\n{suffix}"
    assert parse_json(text) == obj
