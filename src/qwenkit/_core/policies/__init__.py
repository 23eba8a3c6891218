"""The request policies that enforce production defaults, in the order they run.

``default_policies(catalog=..., router=...)`` returns them in this order; each is a small class
testable alone (see ``qwenkit._core.pipeline`` for the policy shape):

1. ``RoutePolicy``: task → route; the model (caller > route > default), temperature, thinking
   wish and route ``max_tokens``; the model's ``ModelProfile`` (``None`` for an unknown model).
   First, because every later check needs to know the model and its limits.
2. ``MaxTokensPolicy``: ``max_tokens`` always set (caller > route > model default > fallback),
   clamped to the model's max output and a hard cap. Before the context check, which needs the
   final answer budget.
3. ``ThinkingPolicy``: the effective thinking, ``enable_thinking`` as the model needs it, JSON
   mode turning thinking off, and streaming upstream whenever thinking is on (so a non-streaming
   caller gets an aggregated result, never the 400). Before the context check, because the max
   input differs in thinking mode.
4. ``HistoryPolicy``: tool-call history rules (``validate_history``). Then
   ``PromptCachePolicy``: a warning (never an error) for dynamic content in system prompts that
   would defeat the implicit prefix cache.
5. ``ParameterPolicy``: parameter ranges. After the policies that set parameters, so what is
   checked is what will be sent.
6. ``ContextWindowPolicy``: the prompt counted with the Qwen tokenizer against the model's
   window. Last, because it is the only costly check (tokenizing the whole history) and needs
   the model, ``max_tokens`` and thinking settled.

All of them act before the upstream call and pass the events through unchanged; a failed check
raises a ``ValidationError`` (``HistoryError``, ``ContextLengthError``) before any network call.
Policies never mutate the caller's ``ChatRequest``: they replace ``call.request`` with a copy.
"""

from __future__ import annotations

from qwenkit._core.pipeline import Policy
from qwenkit._core.policies._base import BeforeCall
from qwenkit._core.policies.context import ContextLengthError, ContextWindowPolicy
from qwenkit._core.policies.history import HistoryError, HistoryPolicy, validate_history
from qwenkit._core.policies.max_tokens import MaxTokensPolicy
from qwenkit._core.policies.parameters import ParameterPolicy, check_parameters
from qwenkit._core.policies.prompt_cache import PromptCachePolicy
from qwenkit._core.policies.route import RoutePolicy
from qwenkit._core.policies.thinking import ThinkingPolicy
from qwenkit.catalog import Catalog, Router


def default_policies(
    *,
    catalog: Catalog,
    router: Router,
    default_model: str = "qwen-plus",
    hard_max_tokens: int | None = 8192,
    check_context: bool = True,
) -> list[Policy]:
    """The request policies in their order (see the module docstring for why this order)."""
    return [
        RoutePolicy(router, catalog, default_model=default_model),
        MaxTokensPolicy(hard_cap=hard_max_tokens),
        ThinkingPolicy(),
        HistoryPolicy(),
        PromptCachePolicy(),
        ParameterPolicy(),
        ContextWindowPolicy(enabled=check_context),
    ]


__all__ = [
    "BeforeCall",
    "ContextLengthError",
    "ContextWindowPolicy",
    "HistoryError",
    "HistoryPolicy",
    "MaxTokensPolicy",
    "ParameterPolicy",
    "PromptCachePolicy",
    "RoutePolicy",
    "ThinkingPolicy",
    "check_parameters",
    "default_policies",
    "validate_history",
]
