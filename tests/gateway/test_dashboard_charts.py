"""The dashboard's SVG charts: well-formed XML whatever the input, one ``g.series`` per series
with the right marks (paths split at gaps, a bar per value, a part per share), references drawn
but not counted, hostile names escaped, empty ranges that say so, nice ticks formatted with the
unit, stacks that add up, x labels that never overlap, and (hypothesis) every coordinate finite
and inside the viewBox for random series."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwenkit.gateway.dashboard._chart_text import format_value as _format
from qwenkit.gateway.dashboard._chart_text import nice_ticks as _nice_ticks
from qwenkit.gateway.dashboard._charts import (
    PALETTE,
    Reference,
    Series,
    bar_chart,
    line_chart,
    share_chart,
)

NS = "{http://www.w3.org/2000/svg}"
DAYS = [f"2025-06-{day:02d}" for day in range(1, 31)]
HOSTILE = [
    "<script>alert(1)</script>",
    "a & b",
    "\"double\" 'single'",
    "]]><!--",
    "tab\tnl\r\nnul\x00",
]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def find(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if cls in classes(e)]


def groups(root: ET.Element) -> list[ET.Element]:
    return find(root, "g", "series")


def ticks(root: ET.Element) -> list[tuple[float, float, str | None]]:
    """(value, y, text) of each y tick, lowest value first."""
    out = []
    for tick in find(root, "g", "tick"):
        line = tick.find(f"{NS}line")
        text = tick.find(f"{NS}text")
        assert line is not None
        assert text is not None
        out.append((float(tick.get("data-value", "nan")), float(line.get("y1", "nan")), text.text))
    return sorted(out)


def tick_texts(root: ET.Element) -> list[str | None]:
    return [text for _, _, text in ticks(root)]


def value_at(root: ET.Element, y: float) -> float:
    """The data value at pixel ``y``, from the axis' ticks."""
    (v0, y0, _), (v1, y1, _) = ticks(root)[0], ticks(root)[-1]
    return v0 + (y - y0) * (v1 - v0) / (y1 - y0)


def test_root_element_title_and_desc() -> None:
    svg = line_chart(
        "latency", "Latency", ["a", "b"], [Series("p50", [0.1, 0.2]), Series("p95", [0.5, 0.7])],
        unit="s",
    )  # fmt: skip
    root = parse(svg)
    assert svg.startswith(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="latency" '
        'data-series="2" role="img" aria-labelledby='
    )
    assert root.get("viewBox") == "0 0 640 240"
    assert (root.get("width"), root.get("height")) == ("640", "240")
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title is not None
    assert desc is not None
    assert title.text == "Latency"
    assert desc.text == "Latest: p50 200 ms at b; p95 700 ms at b."
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert "<script" not in svg
    assert "style=" not in svg


def test_line_paths_split_at_gaps_with_points() -> None:
    values: list[float | None] = [1, 2, None, 3, None, None, 4, 5]
    root = parse(line_chart("l", "L", list("abcdefgh"), [Series("s", values)]))
    (group,) = groups(root)
    assert (group.get("data-name"), group.get("data-index")) == ("s", "0")
    paths = find(group, "path", "line")
    assert len(paths) == 3
    assert [p.get("d", "").count("L") for p in paths] == [1, 1, 1]  # a lone value: M p L p
    assert len(find(group, "circle", "point")) == 5
    assert {p.get("stroke") for p in paths} == {PALETTE[0]}


def test_line_without_points_past_31_values() -> None:
    labels = [str(i) for i in range(40)]
    root = parse(line_chart("l", "L", labels, [Series("s", [float(i) for i in range(40)])]))
    (group,) = groups(root)
    assert len(find(group, "path", "line")) == 1
    assert find(group, "circle", "point") == []


def test_bars_one_per_value_negative_clamped() -> None:
    series = [Series("plus", [1.0, None, 3.0]), Series("max", [-2.0, 2.0, float("nan")])]
    root = parse(bar_chart("b", "B", ["x", "y", "z"], series, unit="USD"))
    plus, max_ = groups(root)
    assert len(find(plus, "rect", "bar")) == 2
    (negative, positive) = find(max_, "rect", "bar")
    assert float(negative.get("height", "nan")) == 0
    assert value_at(root, float(negative.get("y", "nan"))) == pytest.approx(0, abs=0.01)
    assert value_at(root, float(positive.get("y", "nan"))) == pytest.approx(2, abs=0.01)
    assert {r.get("fill") for r in find(max_, "rect", "bar")} == {PALETTE[1]}
    # side by side: the two bars of label "x" do not overlap
    first, second = find(plus, "rect", "bar")[0], negative
    assert float(first.get("x", "0")) + float(first.get("width", "0")) <= float(
        second.get("x", "0")
    )


def test_stacked_bars_top_is_the_sum() -> None:
    series = [Series("a", [1.0, 2.5, None]), Series("b", [3.0, None, 0.5]), Series("c", [2, 1, 1])]
    root = parse(bar_chart("b", "B", ["x", "y", "z"], series, stacked=True))
    bars = [find(g, "rect", "bar") for g in groups(root)]
    assert [len(b) for b in bars] == [2, 2, 3]
    columns: dict[str, list[ET.Element]] = {}
    for rect in (r for b in bars for r in b):
        columns.setdefault(rect.get("x", ""), []).append(rect)
    tops = [value_at(root, min(float(r.get("y", "nan")) for r in col)) for col in columns.values()]
    assert tops == pytest.approx([6.0, 3.5, 1.5], abs=0.02)
    # each rect starts where the one below ends
    for col in columns.values():
        for below, above in itertools.pairwise(col):
            assert float(above.get("y", "0")) + float(above.get("height", "0")) == pytest.approx(
                float(below.get("y", "0")), abs=0.011
            )
    assert ticks(root)[-1][0] >= 6.0


def test_references_are_drawn_but_not_series() -> None:
    refs = [Reference("budget key:ab12 (5 USD)", 5.0), Reference("nan", float("nan"))]
    for chart in (line_chart, bar_chart):
        svg = chart("c", "C", ["a", "b"], [Series("spend", [1.0, 2.0])], references=refs)
        root = parse(svg)
        assert root.get("data-series") == "1"
        assert len(groups(root)) == 1
        (ref,) = find(root, "g", "reference")
        assert ref.get("data-name") == "budget key:ab12 (5 USD)"
        line = ref.find(f"{NS}line")
        assert line is not None
        assert line.get("stroke-dasharray")
        assert value_at(root, float(line.get("y1", "nan"))) == pytest.approx(5, abs=0.01)
        assert ticks(root)[-1][0] >= 5  # the axis reaches the reference
        legend = [t.text for t in find(root, "g", "legend")[0].iter(f"{NS}text")]
        assert legend == ["spend", "budget key:ab12 (5 USD)"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_escaped(name: str) -> None:
    kept = name.replace("\x00", "\ufffd")
    charts = [
        line_chart(name, name, [name], [Series(name, [1.0])], references=[Reference(name, 2)]),
        bar_chart(name, name, [name, "b"], [Series(name, [1.0, None])], unit=name),
        share_chart(name, name, [(name, 1.0), ("other", 2.0)], unit=name),
    ]
    for svg in charts:
        root = parse(svg)
        assert root.get("data-chart") == kept
        assert groups(root)[0].get("data-name") == kept
        assert [e for e in root.iter() if "script" in e.tag] == []
        assert "<script" not in svg
        texts = "".join(root.itertext())
        assert kept in texts


def test_legend_lists_series_with_their_colours() -> None:
    series = [Series(f"model-{i}", [float(i)]) for i in range(3)]
    root = parse(bar_chart("b", "B", ["x"], series))
    items = find(root, "g", "legend-item")
    assert [i.findtext(f"{NS}text") for i in items] == ["model-0", "model-1", "model-2"]
    for index, (item, group) in enumerate(zip(items, groups(root), strict=True)):
        swatch = item.find(f"{NS}rect")
        assert swatch is not None
        assert swatch.get("fill") == PALETTE[index] == find(group, "rect", "bar")[0].get("fill")
        assert f"s{index}" in classes(item)
        assert f"s{index}" in classes(group)


def test_many_series_keep_their_count_and_legend_says_more() -> None:
    series = [Series(f"a-rather-long-model-name-{i}", [float(i), 1.0]) for i in range(30)]
    root = parse(line_chart("l", "L", ["x", "y"], series))
    assert root.get("data-series") == "30"
    assert len(groups(root)) == 30
    assert find(root, "g", "more")[0].findtext(f"{NS}text", "").endswith(" more")


@pytest.mark.parametrize(
    ("labels", "series"),
    [
        ([], [Series("a", [1.0, 2.0]), Series("b", [])]),
        (["x", "y"], [Series("a", [None, None]), Series("b", [None, None])]),
        (["x", "y"], [Series("a", [float("nan"), float("inf")]), Series("b", [-math.inf])]),
        (["x"], []),
    ],
)
def test_empty_charts_say_so(labels: list[str], series: list[Series]) -> None:
    for chart in (line_chart, bar_chart):
        svg = chart("e", "E", labels, series, references=[Reference("budget", 1.0)])
        root = parse(svg)
        assert root.get("data-series") == str(len(series))
        assert len(groups(root)) == len(series)
        assert [len(list(g)) for g in groups(root)] == [0] * len(series)
        assert find(root, "text", "empty")[0].text == "No data in this range"
        assert root.findtext(f"{NS}desc") == "No data in this range."
        assert find(root, "g", "reference") == []


@pytest.mark.parametrize("parts", [[], [("a", 0.0), ("b", 0.0)], [("a", math.nan)]])
def test_empty_share_chart(parts: list[tuple[str, float]]) -> None:
    root = parse(share_chart("s", "S", parts))
    assert root.get("data-series") == str(len(parts))
    assert len(groups(root)) == len(parts)
    assert find(root, "text", "empty")[0].text == "No data in this range"


def test_share_chart_one_part_per_series() -> None:
    parts = [("qwen-plus", 3.0), ("qwen-max", 1.0), ("broken", math.inf), ("refund", -2.0)]
    root = parse(share_chart("cost-share", "Cost by model", parts, unit="USD"))
    assert root.get("data-series") == "4"
    rects = [find(g, "rect", "part") for g in groups(root)]
    assert [len(r) for r in rects] == [1, 1, 0, 1]
    widths = [float(r[0].get("width", "nan")) for r in rects if r]
    assert widths[0] == pytest.approx(3 * widths[1], abs=0.02)
    assert widths[2] == 0
    assert sum(widths) == pytest.approx(640 - 8, abs=0.02)
    assert root.findtext(f"{NS}desc") == (
        "qwen-plus: 3 USD (75%); qwen-max: 1 USD (25%); refund: 0 USD (0%)"
    )
    legend = [t.text for t in find(root, "g", "legend")[0].iter(f"{NS}text")]
    assert legend == ["qwen-plus 75%", "qwen-max 25%", "broken", "refund 0%"]


@pytest.mark.parametrize(
    ("values", "kwargs", "expected"),
    [
        ([0.12, 0.5], {"percent": True}, ["0%", "20%", "40%", "60%"]),
        ([0.12], {"unit": "USD"}, ["0 USD", "0.05 USD", "0.1 USD", "0.15 USD"]),
        ([0.12, 1.2], {"unit": "s"}, ["0 s", "500 ms", "1 s", "1.5 s"]),
        ([1200, 3_400_000], {"unit": "tokens"}, ["0 tokens", "1M tokens", "2M tokens", "3M tokens", "4M tokens"]),
        ([7, 18], {}, ["0", "5", "10", "15", "20"]),
        ([0, 0], {}, ["0", "0.5", "1"]),
    ],
)  # fmt: skip
def test_tick_labels(
    values: list[float], kwargs: dict[str, str | bool], expected: list[str]
) -> None:
    labels = [str(i) for i in range(len(values))]
    svg = line_chart("t", "T", labels, [Series("s", values)], **kwargs)  # type: ignore[arg-type]
    assert tick_texts(parse(svg)) == expected


@pytest.mark.parametrize(
    ("value", "unit", "percent", "expected"),
    [
        (0.12, "USD", False, "0.12 USD"),
        (0.0005, "USD", False, "0.0005 USD"),
        (12.5, "$", False, "12.5 $"),
        (0.0, "USD", False, "0 USD"),
        (1234, "", False, "1.23k"),
        (999.7, "", False, "1k"),
        (3.4e6, "tokens", False, "3.4M tokens"),
        (2.5e9, "", False, "2.5B"),
        (0.12, "s", False, "120 ms"),
        (0.0004, "s", False, "0.4 ms"),
        (1.2, "s", False, "1.2 s"),
        (0.12, "", True, "12%"),
        (0.1234, "", True, "12.3%"),
        (1.0, "", True, "100%"),
        (-1500, "", False, "-1.5k"),
    ],
)
def test_format(value: float, unit: str, percent: bool, expected: str) -> None:
    assert _format(value, unit, percent) == expected


@settings(max_examples=300)
@given(
    lo=st.floats(min_value=-1e12, max_value=0),
    hi=st.floats(min_value=0, max_value=1e12),
)
def test_nice_ticks(lo: float, hi: float) -> None:
    values = _nice_ticks(lo, hi)
    assert 3 <= len(values) <= 5
    step = values[1] - values[0]
    if hi - lo < 1e-9:
        assert values == [0, 0.5, 1]
    else:
        assert values[0] <= lo + step * 1e-6
        assert values[-1] >= hi - step * 1e-6
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-6
    for a, b in itertools.pairwise(values):
        assert b - a == pytest.approx(step, rel=1e-6)


@pytest.mark.parametrize("count", [8, 24, 25, 30, 200, 720])
@pytest.mark.parametrize("width", [320, 640, 1100])
def test_x_labels_thinned_never_overlap(count: int, width: int) -> None:
    labels = [f"2025-06-01T{i % 24:02d}:00" for i in range(count)]
    svg = line_chart("x", "X", labels, [Series("s", [1.0] * count)], width=width)
    shown = find(parse(svg), "text", "x-label")
    assert 1 <= len(shown) <= 8
    spans = sorted(
        (float(t.get("x", "nan")) - 3.25 * len(t.text or ""), float(t.get("x", "nan")) + 3.25 * len(t.text or ""))
        for t in shown
    )  # fmt: skip
    assert spans[0][0] >= 0
    assert spans[-1][1] <= width
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end < start


def test_values_past_the_labels_are_ignored_and_missing_ones_are_gaps() -> None:
    root = parse(
        bar_chart("b", "B", ["x", "y"], [Series("long", [1, 2, 3, 4]), Series("short", [1])])
    )
    assert [len(find(g, "rect", "bar")) for g in groups(root)] == [2, 1]


def test_deterministic_and_two_decimals() -> None:
    def draw() -> str:
        return line_chart("d", "D", DAYS, [Series("s", [i / 7 for i in range(30)])], unit="USD")

    svg = draw()
    assert svg == draw()
    numbers = re.findall(r' (?:x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)"', svg)
    numbers += [n for d in re.findall(r' d="([^"]*)"', svg) for n in re.findall(r"[-\d.]+", d)]
    assert numbers
    assert all(re.fullmatch(r"-?\d+(\.\d{1,2})?", n) for n in numbers)


def test_too_small_a_chart_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        line_chart("s", "S", ["a"], [Series("s", [1.0])], width=100)
    with pytest.raises(ValueError, match="at least"):
        share_chart("s", "S", [("a", 1.0)], height=10)


# -- property: any input gives a well-formed chart inside its viewBox --------------------------

values_st = st.lists(
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5)),
    max_size=60,
)
series_st = st.lists(st.builds(Series, st.text(max_size=30), values_st), max_size=12)

Chart = Callable[..., str]


def check_geometry(svg: str, count: int, width: int, height: int) -> None:
    root = parse(svg)
    assert root.get("data-series") == str(count)
    assert len(groups(root)) == count
    assert [int(g.get("data-index", "-1")) for g in groups(root)] == list(range(count))
    slack = 0.02
    for element in root.iter():
        attributes = element.attrib
        for key in ("x", "x1", "x2", "cx"):
            if key in attributes:
                assert -slack <= float(attributes[key]) <= width + slack, (key, element.attrib)
        for key in ("y", "y1", "y2", "cy"):
            if key in attributes:
                assert -slack <= float(attributes[key]) <= height + slack, (key, element.attrib)
        if element.tag == f"{NS}rect":
            x, w = float(attributes["x"]), float(attributes["width"])
            y, h = float(attributes["y"]), float(attributes["height"])
            assert w >= 0
            assert h >= 0
            assert x + w <= width + slack
            assert y + h <= height + slack
        if "d" in attributes:
            numbers = [float(n) for n in re.findall(r"-?[\d.]+", attributes["d"])]
            assert numbers
            assert all(math.isfinite(n) for n in numbers)
            assert all(-slack <= n <= width + slack for n in numbers[0::2])
            assert all(-slack <= n <= height + slack for n in numbers[1::2])


@settings(max_examples=150, deadline=None)
@given(
    chart=st.sampled_from([line_chart, bar_chart]),
    labels=st.lists(st.text(max_size=25), max_size=60),
    series=series_st,
    references=st.lists(
        st.builds(Reference, st.text(max_size=20), st.floats(allow_nan=True)), max_size=3
    ),
    stacked=st.booleans(),
    percent=st.booleans(),
    unit=st.sampled_from(["", "s", "USD", "tokens", "<&>"]),
    width=st.integers(160, 1400),
    height=st.integers(80, 600),
)
def test_any_series_make_a_well_formed_chart(
    chart: Chart,
    labels: list[str],
    series: list[Series],
    references: Sequence[Reference],
    stacked: bool,
    percent: bool,
    unit: str,
    width: int,
    height: int,
) -> None:
    options: dict[str, object] = {"unit": unit, "percent": percent, "references": references}
    if chart is bar_chart:
        options["stacked"] = stacked
    svg = chart("c", "C", labels, series, width=width, height=height, **options)
    check_geometry(svg, len(series), width, height)
    assert svg == chart("c", "C", labels, series, width=width, height=height, **options)


@settings(max_examples=100, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.text(max_size=30), st.floats(allow_nan=True, allow_infinity=True)),
        max_size=15,
    ),
    width=st.integers(160, 1400),
    height=st.integers(24, 200),
)
def test_any_parts_make_a_well_formed_share_chart(
    parts: list[tuple[str, float]], width: int, height: int
) -> None:
    check_geometry(
        share_chart("s", "S", parts, unit="USD", width=width, height=height),
        len(parts),
        width,
        height,
    )
