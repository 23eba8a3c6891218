"""``qwenkit.batch``'s pure parts: input lines, the result file (resume, torn lines), AIMD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwenkit.batch import AIMDLimit, BadLine, Item, ResultFile, read_items
from qwenkit.batch._output import error_row


def test_both_input_shapes_and_bad_lines_with_their_numbers(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"id": "a", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}\n'
        "not json\n"
        "\n"
        '{"custom_id": "b", "method": "POST", "url": "/v1/chat/completions",'
        ' "body": {"model": "qwen-flash", "messages": [{"role": "user", "content": "yo"}]}}\n'
        '{"id": "a", "messages": "again"}\n'
        '{"messages": [{"role": "user", "content": "no id"}]}\n'
        '{"id": "c"}\n'
    )
    items = list(read_items(source))
    assert items[0] == Item("a", 1, [{"role": "user", "content": "hi"}], {"temperature": 0.2})
    assert isinstance(items[1], BadLine)
    assert items[1].line == 2
    assert "not JSON" in items[1].message
    assert items[2] == Item("b", 4, [{"role": "user", "content": "yo"}], {"model": "qwen-flash"})
    bad = [item for item in items if isinstance(item, BadLine)]
    assert [(item.line, item.custom_id) for item in bad] == [
        (2, "line-2"), (5, "line-5"), (6, "line-6"), (7, "line-7"),
    ]  # fmt: skip
    assert "duplicate id 'a'" in bad[1].message
    assert "missing 'id'" in bad[2].message
    assert "missing 'messages'" in bad[3].message


def test_a_torn_last_line_is_cut_off_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with ResultFile(out) as results:
        results.write(error_row("one", "x", "y"))
        results.write(error_row("two", "x", "y"))
    whole = out.read_bytes()
    out.write_bytes(whole + b'{"id": "batch_req_1", "custom_id": "thr')
    with ResultFile(out) as results:
        assert results.done == {"one", "two"}
        assert results.truncated > 0
        results.write(error_row("three", "x", "y"))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["custom_id"] for row in rows] == ["one", "two", "three"]


def test_a_bad_line_inside_the_file_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('garbage\n{"custom_id": "a"}\n')
    with pytest.raises(Exception, match="line 1 is not a result row"):
        ResultFile(out)


@pytest.mark.anyio
async def test_aimd_halves_on_throttle_and_grows_by_one_per_limit_successes() -> None:
    limit = AIMDLimit(8)
    await limit.acquire()
    await limit.release(throttled=True)
    assert limit.limit == 4
    await limit.acquire()
    await limit.release(throttled=True)
    assert limit.limit == 2
    for _ in range(2):
        await limit.acquire()
        await limit.release()
    assert limit.limit == 3
    for _ in range(100):
        await limit.acquire()
        await limit.release()
    assert limit.limit == 8
