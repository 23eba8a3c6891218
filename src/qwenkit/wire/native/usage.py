"""Native ``usage`` objects and the canonical ``Usage``.

Native usage::

    {"input_tokens": 287, "output_tokens": 6, "total_tokens": 293,
     "prompt_tokens_details": {"cached_tokens": 256, "cache_creation_input_tokens": 0},
     "output_tokens_details": {"reasoning_tokens": 4},
     "image_tokens": 1200, "plugins": {...}}

``input_tokens``/``output_tokens`` become ``prompt_tokens``/``completion_tokens``; a missing
``total_tokens`` is computed as their sum. ``cached_tokens``, ``cache_creation_input_tokens`` and
``reasoning_tokens`` become the canonical fields. Every other key is kept as an extra of ``Usage``:
top-level ones (``image_tokens``, ``plugins``...) by name, and the unmodelled keys inside the two
detail objects (``cache_creation``, ``cache_type``...) as extras named ``prompt_tokens_details`` /
``output_tokens_details`` holding only those keys. The encoder writes ``reasoning_tokens`` only
when non-zero (as the service does), ``cached_tokens`` when it was given (even as 0, the way the
service reports a cache miss) or is non-zero, and ``cache_creation_input_tokens`` beside it when
non-zero; kept
detail objects are written back with the canonical counts laid over them. An extra
``completion_tokens_details`` (the compatible name, kept by the compatible decoder) is merged into
``output_tokens_details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwenkit.types import Usage

__all__ = ["decode_usage", "encode_usage"]

_TOP = {"input_tokens", "output_tokens", "total_tokens"}
_DETAILS = {"prompt_tokens_details", "output_tokens_details"}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def decode_usage(data: Mapping[str, Any]) -> Usage:
    fields: dict[str, Any] = {
        "prompt_tokens": _int(data.get("input_tokens")),
        "completion_tokens": _int(data.get("output_tokens")),
    }
    total = data.get("total_tokens")
    fields["total_tokens"] = (
        _int(total) if total is not None else fields["prompt_tokens"] + fields["completion_tokens"]
    )
    prompt = data.get("prompt_tokens_details")
    if isinstance(prompt, Mapping):
        rest = dict(prompt)
        if "cached_tokens" in rest:
            fields["cached_tokens"] = _int(rest.pop("cached_tokens"))
        if "cache_creation_input_tokens" in rest:
            fields["cache_creation_tokens"] = _int(rest.pop("cache_creation_input_tokens"))
        if rest:
            fields["prompt_tokens_details"] = rest
    output = data.get("output_tokens_details")
    if isinstance(output, Mapping):
        rest = dict(output)
        if "reasoning_tokens" in rest:
            fields["reasoning_tokens"] = _int(rest.pop("reasoning_tokens"))
        if rest:
            fields["output_tokens_details"] = rest
    for key, value in data.items():
        if key not in _TOP and not (key in _DETAILS and isinstance(value, Mapping)):
            fields[key] = value
    return Usage(**fields)


def encode_usage(usage: Usage | None) -> dict[str, Any]:
    """The native usage object (all zeros for ``None``: a stream chunk sent before any usage)."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    out: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    extras = usage.extras
    prompt = _mapping(extras.pop("prompt_tokens_details", None))
    cached_given = "cached_tokens" in usage.model_fields_set
    if (
        "cached_tokens" in prompt
        or cached_given
        or usage.cached_tokens
        or usage.cache_creation_tokens
    ):
        prompt["cached_tokens"] = usage.cached_tokens
    if "cache_creation_input_tokens" in prompt or usage.cache_creation_tokens:
        prompt["cache_creation_input_tokens"] = usage.cache_creation_tokens
    output = _mapping(extras.pop("completion_tokens_details", None))
    output.update(_mapping(extras.pop("output_tokens_details", None)))
    if "reasoning_tokens" in output or usage.reasoning_tokens:
        output["reasoning_tokens"] = usage.reasoning_tokens
    if prompt:
        out["prompt_tokens_details"] = prompt
    if output:
        out["output_tokens_details"] = output
    out.update(extras)
    return out


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
