"""Money from token usage: ``cost()`` for a finished request, ``estimate_max_cost()`` before one.

Amounts are exact ``Decimal``s in the region's currency (never floats, never rounded here).
Prices come from the catalog, per 1M tokens. The billing rules:

1. **Tier.** The whole request is billed at the price tier of its input length,
   ``usage.prompt_tokens``. Tier bounds are inclusive: 32,768 input tokens is still "<= 32K".
2. **Input.** ``cached_tokens`` are billed at the cache-hit price, ``cache_creation_tokens`` at
   the explicit-cache-creation price (125% of input), and the rest of ``prompt_tokens`` at the
   input price. A cache hit costs 20% of input (implicit cache) or 10% (explicit cache). ``Usage``
   cannot tell them apart, so pass ``explicit_cache=True`` for requests that used
   ``cache_control`` markers. Left as ``None``, a request that wrote to the cache
   (``cache_creation_tokens > 0``) counts as explicit, because the two caches are mutually
   exclusive per request.
3. **Output.** In thinking mode the whole completion (reasoning + answer) is billed at the
   model's thinking-output price where it has one, otherwise at the output price. The request is
   in thinking mode when ``thinking`` says so; when ``thinking`` is ``None``, when
   ``usage.reasoning_tokens > 0``. Models that always (never) think are always (never) in it.
   ``Cost.output`` holds completion billed at the output price, ``Cost.thinking_output``
   completion billed at the thinking-output price.
4. **Batch.** ``batch=True`` multiplies every line by the tier's batch ratio (0.5).

``estimate_max_cost()`` is the worst case for budget reservation: no cache hits, the full
``max_tokens`` answer and, in thinking mode, the full thinking budget on top (``max_tokens``
limits the answer only; thinking has its own limit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from qwenkit.catalog._loader import Catalog, default_catalog
from qwenkit.catalog._profiles import ModelProfile
from qwenkit.types import Usage

_PER = Decimal(1_000_000)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Cost:
    """The price of one request (or a sum of requests), line by line."""

    currency: str
    input: Decimal = _ZERO
    """Uncached input tokens."""
    cached_input: Decimal = _ZERO
    """Cache hits (implicit or explicit)."""
    cache_creation: Decimal = _ZERO
    """Tokens written to an explicit cache."""
    output: Decimal = _ZERO
    """Completion tokens billed at the output price."""
    thinking_output: Decimal = _ZERO
    """Completion tokens billed at the thinking-output price."""
    model: str = ""
    region: str = ""
    tier: str = ""
    """Label of the price tier applied (empty on sums across tiers)."""
    total: Decimal = field(init=False)

    def __post_init__(self) -> None:
        lines = (self.input, self.cached_input, self.cache_creation, self.output)
        object.__setattr__(self, "total", sum(lines, self.thinking_output))

    def __add__(self, other: Cost) -> Cost:
        if not isinstance(other, Cost):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Cost(
            currency=self.currency,
            input=self.input + other.input,
            cached_input=self.cached_input + other.cached_input,
            cache_creation=self.cache_creation + other.cache_creation,
            output=self.output + other.output,
            thinking_output=self.thinking_output + other.thinking_output,
            model=self.model if self.model == other.model else "",
            region=self.region if self.region == other.region else "",
            tier=self.tier if self.tier == other.tier else "",
        )


def _profile(model: str | ModelProfile, catalog: Catalog | None) -> ModelProfile:
    if isinstance(model, ModelProfile):
        return model
    return (catalog or default_catalog()).get(model)


def _check(usage: Usage) -> None:
    counts = (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.cached_tokens,
        usage.cache_creation_tokens,
        usage.reasoning_tokens,
    )
    if min(counts) < 0:
        raise ValueError(f"token counts must not be negative: {usage!r}")
    if usage.cached_tokens + usage.cache_creation_tokens > usage.prompt_tokens:
        raise ValueError("cached_tokens + cache_creation_tokens exceed prompt_tokens")
    if usage.reasoning_tokens > usage.completion_tokens:
        raise ValueError("reasoning_tokens exceed completion_tokens")


def cost(
    usage: Usage,
    model: str | ModelProfile,
    region: str = "ap-southeast-1",
    *,
    thinking: bool | None = None,
    batch: bool = False,
    explicit_cache: bool | None = None,
    catalog: Catalog | None = None,
) -> Cost:
    """What ``usage`` costs on ``model`` in ``region`` (rules in the module docstring)."""
    _check(usage)
    profile = _profile(model, catalog)
    table = profile.price_table(region)
    tier = table.tier_for(usage.prompt_tokens)
    ratio = tier.batch_ratio if batch else Decimal(1)

    def amount(tokens: int, price: Decimal) -> Decimal:
        return tokens * price * ratio / _PER

    explicit = usage.cache_creation_tokens > 0 if explicit_cache is None else explicit_cache
    hit_price = tier.explicit_cache_hit if explicit else tier.cached_input
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens
    asked = usage.reasoning_tokens > 0 if thinking is None else thinking
    thinks = profile.effective_thinking(asked)
    completion = amount(usage.completion_tokens, tier.completion_price(thinks))
    at_thinking_price = thinks and tier.thinking_output is not None
    return Cost(
        currency=table.currency,
        input=amount(uncached, tier.input),
        cached_input=amount(usage.cached_tokens, hit_price),
        cache_creation=amount(usage.cache_creation_tokens, tier.explicit_cache_create),
        output=_ZERO if at_thinking_price else completion,
        thinking_output=completion if at_thinking_price else _ZERO,
        model=profile.name,
        region=region,
        tier=tier.label,
    )


def estimate_max_cost(
    prompt_tokens: int,
    max_tokens: int | None,
    model: str | ModelProfile,
    region: str = "ap-southeast-1",
    *,
    thinking: bool | None = None,
    thinking_budget: int | None = None,
    batch: bool = False,
    explicit_cache: bool = False,
    catalog: Catalog | None = None,
) -> Cost:
    """The most a request can cost: an upper bound to reserve against a budget.

    ``max_tokens`` ``None`` means the model's ``max_output_tokens``. ``thinking`` ``None`` means
    the model's default. In thinking mode ``thinking_budget`` (default: the model's
    ``max_reasoning_tokens``) is added to the answer. ``explicit_cache=True`` prices the whole
    prompt at the cache-creation rate (125%), the worst case for requests with cache markers.
    """
    profile = _profile(model, catalog)
    answer = profile.max_output_tokens if max_tokens is None else max_tokens
    if min(prompt_tokens, answer, thinking_budget or 0) < 0:
        raise ValueError("prompt_tokens, max_tokens and thinking_budget must not be negative")
    thinks = profile.effective_thinking(thinking)
    reasoning = 0
    if thinks and profile.max_reasoning_tokens is not None:
        cap = profile.max_reasoning_tokens
        reasoning = cap if thinking_budget is None else min(thinking_budget, cap)
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=answer + reasoning,
        total_tokens=prompt_tokens + answer + reasoning,
        cache_creation_tokens=prompt_tokens if explicit_cache else 0,
        reasoning_tokens=reasoning,
    )
    return cost(usage, profile, region, thinking=thinks, batch=batch, catalog=catalog)
