"""``MaxTokensPolicy``: every upstream request carries a ``max_tokens``, within the caps.

An unbounded answer is an unbounded bill (and a runaway loop can fill a model's whole output
window), so the value is always set: the caller's > the route's > the model's
``default_max_tokens`` > ``fallback``. Then two caps apply:

- the model's ``max_output_tokens``: a value from the route or a default is clamped (the route
  may have been built for another model); the caller's own value above it raises
  ``ValidationError`` naming the limit, since the service would answer 400;
- the configured ``hard_cap`` (``None``: none): any value above it is clamped. A caller's value is
  clamped too, with a WARNING log and a note: raising would make one deployment setting break
  every caller that asks for a generous limit, while clamping keeps the cost bound it exists for.
  Clamping is visible (``finish_reason`` ``length``, the note, the log), not silent;
- the caller's own cap, ``call.state[CALLER_MAX_TOKENS]`` (the gateway sets it from the virtual
  key's ``max_tokens``): clamped the same way, with a note but no log (it is the key's
  configuration doing its job on every call, not a surprise).
"""

from __future__ import annotations

import logging

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import CALLER_MAX_TOKENS, ROUTE_MAX_TOKENS, BeforeCall, updated
from qwenkit._exceptions import ValidationError

logger = logging.getLogger(__name__)


class MaxTokensPolicy(BeforeCall):
    """Set ``request.max_tokens`` (always), clamped to the model's max output and ``hard_cap``."""

    def __init__(self, hard_cap: int | None = 8192, fallback: int = 2048) -> None:
        if hard_cap is not None and hard_cap < 1:
            raise ValueError(f"hard_cap must be at least 1 or None, got {hard_cap}")
        if fallback < 1:
            raise ValueError(f"fallback must be at least 1, got {fallback}")
        self.hard_cap = hard_cap
        self.fallback = fallback

    def prepare(self, call: Call) -> None:
        profile = call.profile
        explicit = call.request.max_tokens
        route_value = call.state.get(ROUTE_MAX_TOKENS)
        if explicit is not None:
            value, source = explicit, "the caller's"
        elif isinstance(route_value, int):
            value, source = route_value, "the route's"
        elif profile is not None:
            value, source = profile.default_max_tokens, f"{profile.name}'s default"
        else:
            value, source = self.fallback, "the fallback"
        if profile is not None and value > profile.max_output_tokens:
            limit = profile.max_output_tokens
            if explicit is not None:
                raise ValidationError(
                    f"max_tokens {explicit} exceeds the max output of {profile.name} ({limit} "
                    f"tokens); the service would reject it: ask for at most {limit}",
                    param="max_tokens",
                )
            call.notes.append(
                f"max_tokens: {source} {value} clamped to {profile.name}'s max output {limit}"
            )
            value, source = limit, "the model's max output"
        if self.hard_cap is not None and value > self.hard_cap:
            call.notes.append(
                f"max_tokens: {source} {value} clamped to the hard cap {self.hard_cap}"
            )
            if explicit is not None:
                logger.warning(
                    "max_tokens %d clamped to the configured hard cap %d (model %s)",
                    explicit,
                    self.hard_cap,
                    call.request.model,
                )
            value, source = self.hard_cap, "the hard cap"
        else:
            call.notes.append(f"max_tokens {value} ({source})")
        caller_cap = call.state.get(CALLER_MAX_TOKENS)
        if isinstance(caller_cap, int) and value > caller_cap:
            call.notes.append(f"max_tokens: {source} {value} clamped to the key's cap {caller_cap}")
            value = caller_cap
        if value != explicit:
            call.request = updated(call.request, max_tokens=value)

    def __repr__(self) -> str:
        return f"MaxTokensPolicy(hard_cap={self.hard_cap!r}, fallback={self.fallback!r})"
