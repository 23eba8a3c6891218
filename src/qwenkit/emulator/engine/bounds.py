"""Bounds of a schema value: number ranges (inclusive, exclusive, ``multipleOf``), string lengths."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["bounded", "fit_length"]


def fit_length(schema: dict[str, Any], value: str) -> str:
    """``value`` padded with "x" or cut to the schema's ``minLength``/``maxLength``."""
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(value) < low:
        value += "x" * (low - len(value))
    if isinstance(high, int):
        value = value[:high]
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def bounded(schema: dict[str, Any], value: float, integer: bool) -> float:
    """``value`` moved within the bounds of a number schema (and onto ``multipleOf``)."""
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    xlow, xhigh = _number(schema.get("exclusiveMinimum")), _number(schema.get("exclusiveMaximum"))
    step = 1.0 if integer else 0.5
    if not integer and xlow is not None and xhigh is not None:
        step = min(step, (xhigh - xlow) / 2)  # a narrow exclusive range: its middle at worst
    if xlow is not None:
        low = xlow + step if low is None else max(low, xlow + step)
    if xhigh is not None:
        high = xhigh - step if high is None else min(high, xhigh - step)
    if integer:
        value = float(round(value))
        low = None if low is None else float(math.ceil(low))
        high = None if high is None else float(math.floor(high))
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    multiple = _number(schema.get("multipleOf"))
    if multiple is not None and multiple > 0:
        value = math.ceil(value / multiple) * multiple
        if high is not None and value > high:
            value = math.floor(high / multiple) * multiple
    return float(value)
