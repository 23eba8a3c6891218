"""Canonical token usage, flattened from both wire formats.

Compatible mode reports ``prompt_tokens``/``completion_tokens`` with ``prompt_tokens_details`` and
``completion_tokens_details``; native mode reports ``input_tokens``/``output_tokens`` with
``prompt_tokens_details`` and ``output_tokens_details``. Both land here. ``cached_tokens`` and
``reasoning_tokens`` are parts of ``prompt_tokens`` and ``completion_tokens`` respectively, never
added on top. Fields the service sends that are not modelled (``image_tokens``, ``audio_tokens``,
...) are kept as extras.
"""

from __future__ import annotations

from qwenkit.types._base import WireModel


class Usage(WireModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from the context cache (implicit or explicit); part of prompt_tokens."""
    cache_creation_tokens: int = 0
    """Prompt tokens written to an explicit cache by this request; part of prompt_tokens."""
    reasoning_tokens: int = 0
    """Completion tokens spent thinking; part of completion_tokens."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_creation_tokens=self.cache_creation_tokens + other.cache_creation_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def answer_tokens(self) -> int:
        """Completion tokens that are not reasoning (what the user sees)."""
        return self.completion_tokens - self.reasoning_tokens
