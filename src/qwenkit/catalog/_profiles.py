"""What one model can do and what it costs: ``ModelProfile``, its price tables and tiers.

These are frozen, validated value objects built by the loader from ``models.toml``. Derived
prices (cache, batch) are already filled in when a ``PriceTier`` exists, and every region a model
is priced in has its own ``PriceTable`` (regions priced "as international" are copied), so the
profile answers questions without looking anything else up.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qwenkit._exceptions import UsageError

Confidence = Literal["documented", "unconfirmed"]
Modality = Literal["text", "image", "video", "audio"]
Endpoint = Literal["text", "multimodal"]
TokenizerFamily = Literal["qwen", "qwen3.5"]

DEFAULT_ANSWER_CAP = 2048
"""``default_max_tokens`` is ``min(max_output_tokens, DEFAULT_ANSWER_CAP)`` unless the data says."""


class ThinkingMode(str, Enum):
    """How a model thinks (``enable_thinking``), per the deep-thinking docs."""

    NONE = "none"
    """Never thinks."""
    HYBRID_OFF = "hybrid_off"
    """Thinks when asked (``enable_thinking: true``); off by default."""
    HYBRID_ON = "hybrid_on"
    """Thinks unless told not to (``enable_thinking: false``); on by default."""
    ALWAYS = "always"
    """Always thinks; ``enable_thinking: false`` is rejected."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceTier(_Frozen):
    """Prices per 1M tokens for requests whose input length is at most ``max_input_tokens``."""

    label: str
    max_input_tokens: int | None = Field(default=None, gt=0)
    """Inclusive upper bound of the input length; ``None`` on a last, unbounded tier."""
    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    thinking_output: Decimal | None = Field(default=None, ge=0)
    """Price of completion tokens in thinking mode; ``None`` means the output price applies."""
    cached_input: Decimal = Field(ge=0)
    """Implicit cache hit (20% of input unless the data says otherwise)."""
    explicit_cache_create: Decimal = Field(ge=0)
    """Tokens written to an explicit cache (125% of input)."""
    explicit_cache_hit: Decimal = Field(ge=0)
    """Explicit cache hit (10% of input)."""
    batch_ratio: Decimal = Field(gt=0, le=1)
    """Factor applied to every price for Batch API requests (0.5)."""

    def completion_price(self, thinking: bool) -> Decimal:
        """Per-1M price of completion tokens: the thinking price in thinking mode if there is one."""
        if thinking and self.thinking_output is not None:
            return self.thinking_output
        return self.output


class PriceTable(_Frozen):
    """A model's prices in one region: a currency and tiers ordered by input length."""

    region: str
    currency: str
    confidence: Confidence
    notes: str = ""
    tiers: tuple[PriceTier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_tiers(self) -> PriceTable:
        bounds = [t.max_input_tokens for t in self.tiers]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last price tier may omit max_input_tokens")
        finite = [b for b in bounds if b is not None]
        if finite != sorted(set(finite)):
            raise ValueError(f"price tier bounds must increase strictly, got {finite}")
        return self

    def tier_for(self, input_tokens: int) -> PriceTier:
        """The tier a request with ``input_tokens`` of input is billed at (bounds are inclusive)."""
        if input_tokens < 0:
            raise ValueError(f"input_tokens must be >= 0, got {input_tokens}")
        for tier in self.tiers:
            if tier.max_input_tokens is None or input_tokens <= tier.max_input_tokens:
                return tier
        top = self.tiers[-1].max_input_tokens
        raise ValueError(
            f"{input_tokens} input tokens exceed the largest price tier ({top}) in {self.region}"
        )


class RegionPricing(_Frozen):
    """A Model Studio region as far as prices go."""

    name: str
    currency: str
    confidence: Confidence
    prices_from: str | None = None
    """Models without prices of their own here are priced as in this other region."""
    notes: str = ""


class PriceUnavailableError(UsageError, LookupError):
    """The catalog has no prices for this model in this region."""


class ModelProfile(_Frozen):
    """Limits, capabilities and prices of one model (see ``models.toml`` for the sources)."""

    name: str
    context_window: int = Field(gt=0)
    max_input_tokens: int = Field(gt=0)
    max_input_tokens_thinking: int | None = Field(default=None, gt=0)
    """Max input in thinking mode when it is smaller than ``max_input_tokens``."""
    max_output_tokens: int = Field(gt=0)
    """Max answer tokens (``max_tokens``); thinking tokens are limited separately."""
    max_reasoning_tokens: int | None = Field(default=None, gt=0)
    """Max thinking (chain-of-thought) tokens; ``None`` for models that do not think."""
    thinking: ThinkingMode
    stream_only: bool = False
    """Rejects non-streaming calls whatever the thinking setting."""
    stream_only_when_thinking: bool = True
    """Rejects non-streaming calls in thinking mode (the general rule for hybrids)."""
    tools: bool
    json_mode: bool
    """``response_format: json_object`` (hybrids only in non-thinking mode)."""
    json_schema: bool
    modalities: tuple[Modality, ...] = Field(min_length=1)
    endpoint: Endpoint
    """Native endpoint: ``text`` (text-generation) or ``multimodal`` (multimodal-generation)."""
    tokenizer: TokenizerFamily
    aliases: tuple[str, ...] = ()
    default_max_tokens: int = Field(gt=0)
    """Answer cap to send when the caller sets none: ``min(max_output_tokens, 2048)`` by default."""
    confidence: Confidence
    unconfirmed: tuple[str, ...] = ()
    """Names of the fields whose figures are best guesses."""
    notes: str = ""
    prices: tuple[PriceTable, ...] = ()
    """One table per priced region."""

    @model_validator(mode="before")
    @classmethod
    def _default_answer_cap(cls, data: Any) -> Any:
        if isinstance(data, dict) and "default_max_tokens" not in data:
            cap = min(int(data.get("max_output_tokens", DEFAULT_ANSWER_CAP)), DEFAULT_ANSWER_CAP)
            data = {**data, "default_max_tokens": cap}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelProfile:
        if self.default_max_tokens > self.max_output_tokens:
            raise ValueError("default_max_tokens exceeds max_output_tokens")
        if self.max_input_tokens > self.context_window:
            raise ValueError("max_input_tokens exceeds context_window")
        if self.thinking is ThinkingMode.NONE and self.max_reasoning_tokens is not None:
            raise ValueError("a model that does not think has no max_reasoning_tokens")
        if self.thinking is not ThinkingMode.NONE and self.max_reasoning_tokens is None:
            raise ValueError("a thinking model needs max_reasoning_tokens (mark it unconfirmed)")
        if self.unconfirmed and self.confidence == "documented":
            raise ValueError(f"confidence is 'documented' but {list(self.unconfirmed)} are not")
        if "text" not in self.modalities:
            raise ValueError("every model takes text input")
        regions = [table.region for table in self.prices]
        if len(set(regions)) != len(regions):
            raise ValueError(f"duplicate price regions in {regions}")
        for table in self.prices:
            top = table.tiers[-1].max_input_tokens
            if top is not None and top < self.max_input_tokens:
                raise ValueError(
                    f"{table.region} price tiers end at {top} input tokens, "
                    f"below max_input_tokens {self.max_input_tokens}"
                )
        return self

    @property
    def supports_thinking(self) -> bool:
        """Whether the model can think at all."""
        return self.thinking is not ThinkingMode.NONE

    @property
    def thinks_by_default(self) -> bool:
        """Whether the model thinks when the request does not set ``enable_thinking``."""
        return self.thinking in (ThinkingMode.HYBRID_ON, ThinkingMode.ALWAYS)

    def effective_thinking(self, thinking: bool | None) -> bool:
        """Whether a request asking for ``thinking`` (``None``: not set) actually thinks."""
        if self.thinking is ThinkingMode.NONE:
            return False
        if self.thinking is ThinkingMode.ALWAYS:
            return True
        return self.thinks_by_default if thinking is None else thinking

    def requires_stream(self, thinking: bool) -> bool:
        """Whether a request with this thinking setting must be sent with ``stream: true``."""
        if self.stream_only:
            return True
        return self.effective_thinking(thinking) and self.stream_only_when_thinking

    def max_input_for(self, thinking: bool) -> int:
        """Max input tokens in the given mode."""
        if self.effective_thinking(thinking) and self.max_input_tokens_thinking is not None:
            return self.max_input_tokens_thinking
        return self.max_input_tokens

    @property
    def regions(self) -> tuple[str, ...]:
        """The regions this model has prices for."""
        return tuple(table.region for table in self.prices)

    def price_table(self, region: str) -> PriceTable:
        """The prices of this model in ``region``; raises ``PriceUnavailableError``."""
        for table in self.prices:
            if table.region == region:
                return table
        known = ", ".join(self.regions) or "none"
        raise PriceUnavailableError(
            f"no prices for {self.name} in region {region!r} (priced regions: {known})"
        )

    def tier_for(self, input_tokens: int, region: str) -> PriceTier:
        """The price tier a request with ``input_tokens`` of input is billed at in ``region``."""
        return self.price_table(region).tier_for(input_tokens)
