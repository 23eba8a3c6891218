"""Compatible-mode ``usage`` objects <-> the canonical flat ``Usage``.

Wire shape (reference §2.2, §5.4, §9)::

    {"prompt_tokens": 1789, "completion_tokens": 412, "total_tokens": 2201,
     "prompt_tokens_details": {"cached_tokens": 0},
     "completion_tokens_details": {"reasoning_tokens": 153}}

- ``prompt_tokens_details.cached_tokens`` -> ``Usage.cached_tokens``;
  ``prompt_tokens_details.cache_creation_input_tokens`` (explicit cache; UNCONFIRMED field name)
  -> ``Usage.cache_creation_tokens``; ``completion_tokens_details.reasoning_tokens`` ->
  ``Usage.reasoning_tokens``. All are parts of their totals, never added on top.
- The service does not always send the details: ``prompt_tokens_details`` is absent or ``null`` on
  some thinking models, ``completion_tokens_details`` appears only when there was reasoning.
- Unknown top-level usage fields are kept as ``Usage`` extras and re-emitted top-level.
- A ``Usage`` decoded from the native wire may carry an ``output_tokens_details`` extra (the native
  name of the completion details): it is merged into ``completion_tokens_details``.

Encoding rules (for a ``Usage`` built anywhere):

- ``prompt_tokens_details`` is written when ``cached_tokens`` was set (even to 0, as qwen-plus
  reports it) or a cache count is non-zero; it holds ``cached_tokens`` and, when non-zero,
  ``cache_creation_input_tokens``. An absent field stays absent.
- ``completion_tokens_details`` is written only when ``reasoning_tokens`` > 0.

Exact round trips: when a received details object is not what those rules would write back
(``null``, unknown keys such as ``audio_tokens``, a zero ``cache_creation_input_tokens``...), the
decoder keeps the received object as the extra of the same name; the encoder then writes that
object with the current canonical counts laid over the keys it had (or that are non-zero).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from qwenkit.types.usage import Usage

PROMPT_DETAILS: Final = "prompt_tokens_details"
COMPLETION_DETAILS: Final = "completion_tokens_details"
NATIVE_OUTPUT_DETAILS: Final = "output_tokens_details"
CACHE_CREATION_KEY: Final = "cache_creation_input_tokens"

# canonical field -> key inside the details object
_PROMPT_FIELDS: Final = (
    ("cached_tokens", "cached_tokens"),
    ("cache_creation_tokens", CACHE_CREATION_KEY),
)
_COMPLETION_FIELDS: Final = (("reasoning_tokens", "reasoning_tokens"),)
_MISSING: Final = object()
_DETAILS: Final = ((PROMPT_DETAILS, _PROMPT_FIELDS), (COMPLETION_DETAILS, _COMPLETION_FIELDS))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _default_prompt(cached: int, cached_set: bool, creation: int) -> dict[str, int] | None:
    if not (cached_set or cached or creation):
        return None
    details = {"cached_tokens": cached}
    if creation:
        details[CACHE_CREATION_KEY] = creation
    return details


def _default_completion(reasoning: int) -> dict[str, int] | None:
    return {"reasoning_tokens": reasoning} if reasoning else None


def decode_usage(usage: Mapping[str, Any]) -> Usage:
    """A compatible ``usage`` object as a canonical ``Usage`` (details flattened, unknowns kept)."""
    fields: dict[str, Any] = {
        key: value
        for key, value in usage.items()
        if key not in (PROMPT_DETAILS, COMPLETION_DETAILS)
    }
    for details_key, names in _DETAILS:
        details = usage.get(details_key)
        if isinstance(details, Mapping):
            for field, wire_key in names:
                count = _count(details.get(wire_key))
                if count is not None:
                    fields[field] = count
    # Keep a received details object (null included) that the encoding rules would not rebuild.
    if PROMPT_DETAILS in usage:
        prompt = usage[PROMPT_DETAILS]
        default = _default_prompt(
            fields.get("cached_tokens", 0),
            "cached_tokens" in fields,
            fields.get("cache_creation_tokens", 0),
        )
        if prompt is None or prompt != default:
            fields[PROMPT_DETAILS] = prompt
    if COMPLETION_DETAILS in usage:
        completion = usage[COMPLETION_DETAILS]
        if completion is None or completion != _default_completion(
            fields.get("reasoning_tokens", 0)
        ):
            fields[COMPLETION_DETAILS] = completion
    return Usage.model_validate(fields)


def _details(kept: Any, default: dict[str, int] | None, counts: dict[str, int]) -> Any:
    """The details object to write: the kept wire object with current counts laid over it."""
    if kept is _MISSING:
        return _MISSING if default is None else default
    if isinstance(kept, Mapping):
        out = dict(kept)
        for key, value in counts.items():
            if value or out.get(key) is not None:
                out[key] = value
        return out
    if kept is None and any(counts.values()):
        return default  # received null, but there are tokens to report now
    return kept


def encode_usage(usage: Usage) -> dict[str, Any]:
    """A canonical ``Usage`` as a compatible ``usage`` object."""
    extras = copy.deepcopy(usage.model_extra) if usage.model_extra else {}
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    prompt = _details(
        extras.pop(PROMPT_DETAILS, _MISSING),
        _default_prompt(
            usage.cached_tokens,
            "cached_tokens" in usage.model_fields_set,
            usage.cache_creation_tokens,
        ),
        {"cached_tokens": usage.cached_tokens, CACHE_CREATION_KEY: usage.cache_creation_tokens},
    )
    if prompt is not _MISSING:
        out[PROMPT_DETAILS] = prompt
    kept_completion = extras.pop(COMPLETION_DETAILS, _MISSING)
    native_output = extras.pop(NATIVE_OUTPUT_DETAILS, None)  # kept by the native decoder
    if isinstance(native_output, Mapping):
        own = kept_completion if isinstance(kept_completion, Mapping) else {}
        kept_completion = {**native_output, **own}
    completion = _details(
        kept_completion,
        _default_completion(usage.reasoning_tokens),
        {"reasoning_tokens": usage.reasoning_tokens},
    )
    if completion is not _MISSING:
        out[COMPLETION_DETAILS] = completion
    out.update(extras)
    return out
