"""Numbers and text in the dashboard's charts: "nice" axis ticks, values formatted for people
("12%", "120 ms", "0.12 USD", "3.4M"), XML escaping of names users chose, label shortening.
``qwenkit.gateway.dashboard._charts`` draws with these."""

from __future__ import annotations

import html
import math
import re

__all__ = [
    "coordinate",
    "escape",
    "format_value",
    "nice_ticks",
    "plain",
    "share_text",
    "shorten",
    "text_width",
    "tip",
]

_CHAR = 6.5  # estimated width of one character at 11px, for layout only
_MAX_LABEL = 20
_WHITESPACE = str.maketrans({"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})  # kept in attributes
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def nice_ticks(lo: float, hi: float) -> list[float]:
    """3-5 ticks, multiples of 1, 2 or 5 x 10ⁿ, from at most ``lo`` to at least ``hi``."""
    if hi - lo < 1e-9:  # all zero, or too close to it to tell apart
        return [0.0, 0.5, 1.0]
    power = math.floor(math.log10((hi - lo) / 5))
    while True:
        for multiple in (1, 2, 5):
            step = multiple * 10.0**power
            first = math.floor(lo / step + 1e-9)
            last = math.ceil(hi / step - 1e-9)
            if last - first <= 4:
                return [float(f"{k * step:.12g}") for k in range(first, last + 1)]
        power += 1


def format_value(value: float, unit: str = "", percent: bool = False) -> str:
    """``value`` for people: "12%", "120 ms", "1.2 s", "0.12 USD", "3.4M tokens"."""
    if percent:
        return plain(value * 100) + "%"
    if unit == "s":
        if value != 0 and abs(value) < 1:
            return plain(value * 1000) + " ms"
        return plain(value) + " s"
    return f"{plain(value)} {unit}" if unit else plain(value)


def plain(value: float) -> str:
    """Three significant digits, no exponent, k/M/B/T for large magnitudes."""
    size = abs(value)
    if size == 0:
        return "0"
    if size < 1e-6:
        return f"{value:.2g}"
    scaled, suffix = value, ""
    for power, name in ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")):
        if size >= power * 0.9995:  # 999.6 is "1k", not "1000"
            scaled, suffix = value / power, name
    decimals = max(0, 2 - math.floor(math.log10(abs(scaled))))
    text = f"{scaled:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + suffix


def share_text(value: float, total: float) -> str:
    return plain(100 * value / total) + "%"


def tip(name: str, label: str, value: float, unit: str, percent: bool) -> str:
    return escape(f"{name}, {label}: {format_value(value, unit, percent)}")


def escape(text: str) -> str:
    """``text`` safe in XML content and attributes (characters XML forbids become U+FFFD)."""
    escaped = html.escape(_INVALID_XML.sub("\ufffd", text), quote=True)
    return escaped.translate(_WHITESPACE)


def shorten(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_width(text: str) -> float:
    return len(text) * _CHAR


def coordinate(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros, never "-0"."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
