"""Server-side SVG charts for the admin dashboard: ``line_chart``, ``bar_chart``, ``share_chart``.

Why hand-written: no Python chart library renders SVG on the server without JavaScript in the
page (the plotting libraries either draw in the browser or pull in a large native stack), and
the dashboard serves plain HTML under a strict Content-Security-Policy. A chart here is inline
SVG text: it works offline, needs no ``<script>`` and no ``style=`` attribute (colours are SVG
presentation attributes, plus ``class`` names for ``dashboard.css``), and a test can parse it.

The output contract (the dashboard's browser test counts these):

- the root ``<svg class="chart" data-chart=NAME data-series=N role="img">`` has a ``<title>``
  and a ``<desc>`` (the latest value of each series, or the shares) named by ``aria-labelledby``;
- each series is one ``<g class="series sK" data-name=… data-index=i>`` (``sK`` is its palette
  slot, ``i % 8``) holding its marks: one ``<path class="line">`` per run of values without a
  gap (and a ``<circle class="point">`` per value up to 31 points), one ``<rect class="bar">``
  per value, or one ``<rect class="part">`` per part of a share chart;
- a reference is a ``<g class="reference">`` (a dashed line and its label), never a series;
- y ticks are ``<g class="tick" data-value=…>``: 3-5 nice values (1, 2 or 5 x 10ⁿ) that cover
  the data; x labels are thinned so they never overlap; a legend names every series and
  reference with its colour (Okabe-Ito, by series index, as ``fill``/``stroke`` attributes and
  the ``sK`` class);
- no labels or no value at all: the same groups, empty, and "No data in this range".

Inputs are forgiving: NaN and ±inf count as no value, values past the labels are ignored,
magnitudes are capped at 10¹⁵, and bars and shares clamp negatives to 0. Every text is
XML-escaped (names come from callers: endpoint tags, model names), coordinates have at most two
decimals, and the same input gives the same string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qwenkit.gateway.dashboard._chart_text import coordinate as _n
from qwenkit.gateway.dashboard._chart_text import escape as _esc
from qwenkit.gateway.dashboard._chart_text import format_value as _format
from qwenkit.gateway.dashboard._chart_text import nice_ticks as _nice_ticks
from qwenkit.gateway.dashboard._chart_text import share_text as _share
from qwenkit.gateway.dashboard._chart_text import shorten as _short
from qwenkit.gateway.dashboard._chart_text import text_width as _text_width
from qwenkit.gateway.dashboard._chart_text import tip as _tip

__all__ = ["PALETTE", "Reference", "Series", "bar_chart", "line_chart", "share_chart"]

#: Okabe-Ito, reordered so that the first colours contrast most on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_REFERENCE = "#5B6575"
_TEXT = "#5B6575"
_GRID = "#E6E9EF"
_AXIS = "#9AA3B2"
_EMPTY = "No data in this range"

_ROW = 16  # a legend row
_TOP = 10
_X_LABELS = 18
_PAD = 4
_MAX_POINTS = 31
_LIMIT = 1e15


@dataclass(frozen=True)
class Series:
    """A named row of values, one per x label; ``None`` is no data (a gap, or no bar)."""

    name: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Reference:
    """A horizontal dashed line at ``value`` (a budget, a target), named in the legend."""

    name: str
    value: float


def line_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    references: Sequence[Reference] = (),
    percent: bool = False,
    width: int = 640,
    height: int = 240,
) -> str:
    """Lines over the x labels, broken where a value is ``None``."""
    rows = _aligned(series, len(labels))
    refs = [Reference(r.name, _cap(r.value)) for r in references if math.isfinite(r.value)]
    values = [v for row in rows for v in row if v is not None] + [r.value for r in refs]

    def marks(plot: _Plot, index: int, row: list[float | None]) -> list[str]:
        colour = PALETTE[index % len(PALETTE)]
        xs = [plot.x(j, len(row)) for j in range(len(row))]
        out = []
        for run in _runs(row):
            points = [f"{_n(xs[j])} {_n(plot.y(v))}" for j, v in run]
            d = "M" + " L".join(points) + (f" L{points[0]}" if len(points) == 1 else "")
            out.append(
                f'<path class="line" d="{d}" fill="none" stroke="{colour}" stroke-width="2"'
                ' stroke-linejoin="round" stroke-linecap="round"/>'
            )
        if len(row) <= _MAX_POINTS:
            out += [
                f'<circle class="point" cx="{_n(xs[j])}" cy="{_n(plot.y(v))}" r="2.5"'
                f' fill="{colour}"><title>{_tip(series[index].name, labels[j], v, unit, percent)}'
                "</title></circle>"
                for j, v in enumerate(row)
                if v is not None
            ]
        return out

    return _cartesian(
        name,
        title,
        labels,
        series,
        _Data(rows, values, refs, unit, percent),
        size=(width, height),
        marks=marks,
    )


def bar_chart(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    stacked: bool = False,
    percent: bool = False,
    references: Sequence[Reference] = (),
    width: int = 640,
    height: int = 240,
) -> str:
    """Bars per x label, side by side or ``stacked``; negative values count as 0."""
    rows = [
        [None if v is None else max(v, 0.0) for v in row] for row in _aligned(series, len(labels))
    ]
    refs = [
        Reference(r.name, max(_cap(r.value), 0.0)) for r in references if math.isfinite(r.value)
    ]
    tops = [sum(v or 0.0 for v in column) for column in zip(*rows, strict=True)] if stacked else []
    values = [v for row in rows for v in row if v is not None] + tops + [r.value for r in refs]
    bases = [0.0] * len(labels)

    def marks(plot: _Plot, index: int, row: list[float | None]) -> list[str]:
        colour = PALETTE[index % len(PALETTE)]
        band = (plot.right - plot.left) / max(len(row), 1)
        width_ = band * 0.8 if stacked else band * 0.8 / len(series)
        out = []
        for j, v in enumerate(row):
            if v is None:
                continue
            x = plot.left + band * (j + 0.1) + (0 if stacked else index * width_)
            base = bases[j] if stacked else 0.0
            top, bottom = plot.y(base + v), plot.y(base)
            if stacked:
                bases[j] = base + v
            out.append(
                f'<rect class="bar" x="{_n(x)}" y="{_n(top)}" width="{_n(width_ * 0.92)}"'
                f' height="{_n(bottom - top)}" fill="{colour}">'
                f"<title>{_tip(series[index].name, labels[j], v, unit, percent)}</title></rect>"
            )
        return out

    return _cartesian(
        name,
        title,
        labels,
        series,
        _Data(rows, values, refs, unit, percent),
        size=(width, height),
        marks=marks,
    )


def share_chart(
    name: str,
    title: str,
    parts: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    width: int = 640,
    height: int = 60,
) -> str:
    """One horizontal bar split into the shares of ``parts`` (each part is a series)."""
    _check_size(width, height, 160, 24)
    cleaned = [(label, _clean(value)) for label, value in parts]
    amounts = [max(v, 0.0) if v is not None else None for _, v in cleaned]
    total = sum(v for v in amounts if v is not None)
    keys = [_Key(label, index) for index, (label, _) in enumerate(cleaned)]
    if total > 0:
        keys = [
            _Key(f"{k.label} {_share(v, total)}" if v is not None else k.label, k.index)
            for k, v in zip(keys, amounts, strict=True)
        ]
    legend, rows = _legend(keys, width, height, _fit_rows(height - 2 * _PAD - 12))
    bottom = height - _PAD - rows * _ROW
    described = [
        f"{label}: {_format(v, unit)} ({_share(v, total)})"
        for (label, _), v in zip(cleaned, amounts, strict=True)
        if v is not None and total > 0
    ]
    out = _open(name, title, len(parts), "; ".join(described), size=(width, height))
    x = float(_PAD)
    span = width - 2 * _PAD
    for index, ((label, _), v) in enumerate(zip(cleaned, amounts, strict=True)):
        marks = []
        if v is not None and total > 0:
            part = span * v / total
            marks.append(
                f'<rect class="part" x="{_n(x)}" y="{_PAD}" width="{_n(part)}"'
                f' height="{_n(bottom - _PAD)}" fill="{PALETTE[index % len(PALETTE)]}">'
                f"<title>{_esc(label)}: {_esc(_format(v, unit))} ({_share(v, total)})</title></rect>"
            )
            x += part
        out.append(_group(index, label, marks))
    if total <= 0:
        out.append(_empty_text(width / 2, (_PAD + bottom) / 2))
    return "\n".join([*out, *legend, "</svg>"])


# -- the cartesian frame: axes, references, legend --------------------------------------------


@dataclass(frozen=True)
class _Plot:
    left: float
    top: float
    right: float
    bottom: float
    lo: float
    hi: float

    def x(self, index: int, count: int) -> float:
        """The centre of the ``index``-th of ``count`` bands."""
        return self.left + (self.right - self.left) * (index + 0.5) / max(count, 1)

    def y(self, value: float) -> float:
        fraction = (value - self.lo) / (self.hi - self.lo)
        return min(max(self.bottom - fraction * (self.bottom - self.top), self.top), self.bottom)


@dataclass(frozen=True)
class _Key:
    label: str
    index: int  # the series index, or -1 for a reference


@dataclass(frozen=True)
class _Data:
    rows: list[list[float | None]]  # the series' values, cleaned, one per label
    values: list[float]  # every value the y axis must cover
    refs: list[Reference]
    unit: str
    percent: bool


_Marks = Callable[[_Plot, int, list[float | None]], list[str]]


def _cartesian(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    data: _Data,
    *,
    size: tuple[int, int],
    marks: _Marks,
) -> str:
    """A chart with x labels and a y axis: ``marks`` draws one series on the plot."""
    width, height = size
    _check_size(width, height, 160, 80)
    rows, values, refs, unit, percent = data.rows, data.values, data.refs, data.unit, data.percent
    empty = not labels or all(v is None for row in rows for v in row)
    refs = [] if empty else refs  # a reference alone is no data: neither drawn nor listed
    keys = [_Key(s.name, i) for i, s in enumerate(series)] + [_Key(r.name, -1) for r in refs]
    legend, legend_rows = _legend(
        keys, width, height, _fit_rows(height - _TOP - _X_LABELS - _PAD - 40)
    )
    bottom = height - _PAD - legend_rows * _ROW - _X_LABELS
    desc = _latest(labels, series, rows, unit, percent)
    out = _open(name, title, len(series), desc, size=size)
    if empty:
        out += [_group(i, s.name, []) for i, s in enumerate(series)]
        out.append(_empty_text(width / 2, (_TOP + bottom) / 2))
        return "\n".join([*out, *legend, "</svg>"])
    ticks = _nice_ticks(min(0.0, *values), max(0.0, *values))
    tick_text = [_format(t, unit, percent) for t in ticks]
    shown = [_short(label) for label in labels]
    label_w = max(_text_width(s) for s in shown)
    left = min(max(max(_text_width(t) for t in tick_text) + 10, label_w / 2 + 2), width / 3)
    right = width - min(max(12, label_w / 2 + 2), width / 4)
    plot = _Plot(left, _TOP, right, bottom, ticks[0], ticks[-1])
    for tick, text in zip(ticks, tick_text, strict=True):
        y = _n(plot.y(tick))
        out.append(
            f'<g class="tick" data-value="{tick:.12g}"><line class="grid" x1="{_n(left)}" y1="{y}"'
            f' x2="{_n(right)}" y2="{y}" stroke="{_GRID}"/><text x="{_n(left - 6)}" y="{y}"'
            f' text-anchor="end" dominant-baseline="middle" fill="{_TEXT}">{_esc(text)}</text></g>'
        )
    out.append(
        f'<line class="axis" x1="{_n(left)}" y1="{_n(bottom)}" x2="{_n(right)}" y2="{_n(bottom)}"'
        f' stroke="{_AXIS}"/>'
    )
    step = math.ceil(len(labels) / max(1, min(8, int((right - left) // (label_w + 8)))))
    out += [
        f'<text class="x-label" x="{_n(plot.x(j, len(labels)))}" y="{_n(bottom + 14)}"'
        f' text-anchor="middle" fill="{_TEXT}">{_esc(shown[j])}</text>'
        for j in range(0, len(labels), step)
    ]
    out += [
        _group(i, s.name, marks(plot, i, row))
        for i, (s, row) in enumerate(zip(series, rows, strict=True))
    ]
    for ref in refs:
        y = _n(plot.y(ref.value))
        out.append(
            f'<g class="reference" data-name="{_esc(ref.name)}"><line x1="{_n(left)}" y1="{y}"'
            f' x2="{_n(right)}" y2="{y}" stroke="{_REFERENCE}" stroke-width="1.5"'
            f' stroke-dasharray="5 4"/><text x="{_n(right - 2)}" y="{_n(plot.y(ref.value) - 3)}"'
            f' text-anchor="end" fill="{_REFERENCE}">{_esc(_short(ref.name, 40))}</text></g>'
        )
    return "\n".join([*out, *legend, "</svg>"])


def _legend(keys: Sequence[_Key], width: int, height: int, max_rows: int) -> tuple[list[str], int]:
    """The legend (rows at the bottom edge, wrapped to ``width``) and how many rows it takes;
    keys past ``max_rows`` rows are counted in a last "+N more" entry."""
    placed: list[tuple[float, int, _Key]] = []
    x, row = float(_PAD), 0
    for key in keys:
        item = 26 + _text_width(_short(key.label, 32))
        if x > _PAD and x + item > width - _PAD:
            x, row = float(_PAD), row + 1
        if row >= max_rows:
            break
        placed.append((x, row, key))
        x += item
    if not placed:
        return [], 0
    rows = placed[-1][1] + 1
    out = ['<g class="legend">']
    for number, (x, row, key) in enumerate(placed):
        y = height - _PAD - 4 - (rows - 1 - row) * _ROW
        if number == len(placed) - 1 and len(placed) < len(keys):
            more = f"+{len(keys) - number} more"
            text = f'<text x="{_n(x)}" y="{y}" fill="{_TEXT}">{more}</text>'
            out.append(f'<g class="legend-item more">{text}</g>')
            break
        text = f'<text x="{_n(x + 14)}" y="{y}" fill="{_TEXT}">{_esc(_short(key.label, 32))}</text>'
        if key.index < 0:
            swatch = (
                f'<line class="swatch" x1="{_n(x)}" y1="{y - 4}" x2="{_n(x + 10)}" y2="{y - 4}"'
                f' stroke="{_REFERENCE}" stroke-width="1.5" stroke-dasharray="3 2"/>'
            )
            out.append(f'<g class="legend-item dashed">{swatch}{text}</g>')
        else:
            slot = key.index % len(PALETTE)
            swatch = (
                f'<rect class="swatch" x="{_n(x)}" y="{y - 9}" width="10" height="10"'
                f' fill="{PALETTE[slot]}"/>'
            )
            out.append(f'<g class="legend-item s{slot}">{swatch}{text}</g>')
    return [*out, "</g>"], rows


def _fit_rows(room: float) -> int:
    """Legend rows that fit in ``room`` pixels (at most 3: the plot keeps the rest)."""
    return max(0, min(3, int(room // _ROW)))


def _open(name: str, title: str, count: int, desc: str, *, size: tuple[int, int]) -> list[str]:
    width, height = size
    ident = "chart-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{_esc(name)}"'
        f' data-series="{count}" role="img" aria-labelledby="{ident}-title {ident}-desc"'
        f' viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        ' font-family="system-ui, sans-serif" font-size="11">',
        f'<title id="{ident}-title">{_esc(title)}</title>',
        f'<desc id="{ident}-desc">{_esc(desc or _EMPTY + ".")}</desc>',
    ]


def _group(index: int, name: str, marks: list[str]) -> str:
    slot = index % len(PALETTE)
    head = f'<g class="series s{slot}" data-name="{_esc(name)}" data-index="{index}">'
    return head + "".join(marks) + "</g>"


def _empty_text(x: float, y: float) -> str:
    return (
        f'<text class="empty" x="{_n(x)}" y="{_n(y)}" text-anchor="middle"'
        f' dominant-baseline="middle" fill="{_TEXT}">{_EMPTY}</text>'
    )


def _check_size(width: int, height: int, min_width: int, min_height: int) -> None:
    if width < min_width or height < min_height:
        raise ValueError(f"a chart needs at least {min_width}x{min_height} pixels")


# -- values ------------------------------------------------------------------------------------


def _clean(value: float | None) -> float | None:
    """``None`` for no value (NaN and infinities included), else the value capped at ±10¹⁵."""
    if value is None or not math.isfinite(value):
        return None
    return _cap(value)


def _cap(value: float) -> float:
    return min(max(float(value), -_LIMIT), _LIMIT)


def _aligned(series: Sequence[Series], count: int) -> list[list[float | None]]:
    """Each series' values, cleaned, one per label (missing ones ``None``, extra ones dropped)."""
    return [
        [_clean(s.values[j]) if j < len(s.values) else None for j in range(count)] for s in series
    ]


def _runs(row: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """The runs of consecutive values of ``row`` between gaps, as (index, value) pairs."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for j, v in enumerate(row):
        if v is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((j, v))
    return [*runs, current] if current else runs


def _latest(
    labels: Sequence[str],
    series: Sequence[Series],
    rows: list[list[float | None]],
    unit: str,
    percent: bool,
) -> str:
    """The one-line summary: the latest value of each series and its label."""
    parts = []
    for s, row in zip(series, rows, strict=True):
        last = [(labels[j], v) for j, v in enumerate(row) if v is not None][-1:]
        parts += [f"{s.name} {_format(v, unit, percent)} at {label}" for label, v in last]
    return "Latest: " + "; ".join(parts) + "." if parts else ""
