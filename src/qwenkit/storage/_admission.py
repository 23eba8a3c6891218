"""``BudgetPolicy``: the pipeline's "admit" and "settle" steps over a ``Budgets`` store.

**Admit.** Before the call goes on, its worst case is reserved against every limit of every
scope (``key:<id>``, ``env:<name>``, ``sdk``...), all or nothing:

- money: ``catalog.estimate_max_cost`` of the counted prompt (``call.state["prompt_tokens"]``,
  set by ``ContextWindowPolicy``, else counted here with ``qwenkit.tokens.count_messages``) at
  the input price and tier, plus the whole ``max_tokens`` and, when the call thinks
  (``call.state["thinking"]``, set by ``ThinkingPolicy``), the whole thinking budget at the
  output price;
- tokens: the same prompt + ``max_tokens`` (+ the thinking budget);
- one request.

A call without a region (a self-hosted upstream) or on a model the catalog cannot price reserves
no money, but its request and token limits still apply. A limit that does not fit raises
``BudgetExceededError`` (with the call's ``request_id``) before anything is sent.

**Settle**, when the stream ends however it ends (normally, with an exception, a consumer that
stops early, a cancelled task): the reservation is replaced by what the call used. The cost is
``catalog.cost`` of the usage the upstream reported, priced as ``UsagePolicy`` prices the ledger
record (so the budget's spend and the ledger agree). Without a usage report (a stream cut or
abandoned early) the call is charged its counted prompt and the tokens of the text that went
through, as a conservative stand-in for what the service bills for a disconnected stream. A cache
hit costs 0 and 0 tokens; its request still counts. A call that failed before any byte of an
answer (a connection error, a later policy's refusal) counts nothing, not even its request; one
the service answered with an error status counts its request only. Settlement runs shielded from
cancellation and within ``settle_timeout`` seconds; a settle that fails is logged, never raised
over the call's own outcome (its reservation then expires after ``ttl``).

**Order.** After ``ContextWindowPolicy`` (it needs the count, the final ``max_tokens`` and the
thinking decision) and before ``ObservePolicy`` and ``CachePolicy`` (a hit is still admitted:
the rate limits count it; ``call.cache_hit`` makes it free).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import anyio

from qwenkit._core.pipeline import Call, EventStream, Handler, closing
from qwenkit._core.usage import StreamTally
from qwenkit._exceptions import APIStatusError, QwenError, StreamInterruptedError
from qwenkit.catalog import Catalog, cost, estimate_max_cost
from qwenkit.storage._protocols import Budgets, Limits, Reservation
from qwenkit.types import (
    Usage,
)

__all__ = ["BudgetPolicy", "Scopes"]

Scopes = Mapping[str, Limits]
ScopesOf = Callable[[Call], Scopes | Awaitable[Scopes]]
_log = logging.getLogger(__name__)


class BudgetPolicy:
    """Reserve each call's worst case against ``scopes`` and settle what it used (see the
    module docstring). ``scopes`` is a mapping of scope to ``Limits`` or a function of the
    ``Call`` returning one (sync or async: e.g. the limits of the caller's key and its
    environment). ``region`` ``None`` prices nothing (a self-hosted upstream); a call tagged
    ``region`` (``call.tags["region"]``) is priced there. ``ttl`` is how long a reservation
    outlives a crashed process (``None``: the store's default)."""

    def __init__(
        self,
        budgets: Budgets,
        scopes: Scopes | ScopesOf,
        *,
        catalog: Catalog | None = None,
        region: str | None = "ap-southeast-1",
        ttl: float | None = None,
        settle_timeout: float = 5.0,
    ) -> None:
        self.budgets = budgets
        self.scopes = scopes
        self.catalog = catalog
        self.region = region
        self.ttl = ttl
        self.settle_timeout = settle_timeout

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        scopes = await self._scopes(call)
        if all(limits.empty for limits in scopes.values()):
            async with closing(call_next(call)) as stream:
                async for event in stream:
                    yield event
            return
        prompt = self._prompt_tokens(call, scopes)
        worst, currency = self._worst_cost(call, prompt)
        tokens = prompt + _worst_completion(call)
        reservation = await self.budgets.reserve(
            scopes,
            cost=worst,
            tokens=tokens,
            ttl=self.ttl,
            request_id=call.request_id,
            currency=currency,
        )
        shown = f"{worst} {currency}" if currency else "no money"
        call.notes.append(
            f"budget: reserved {shown}, 1 request and {tokens} tokens against {', '.join(scopes)}"
        )
        seen = StreamTally()
        error: BaseException | None = None
        try:
            async with closing(call_next(call)) as stream:
                async for event in stream:
                    seen.see(event)
                    yield event
        except BaseException as exc:  # settled below, then re-raised unchanged
            error = exc
            raise
        finally:
            await self._settle(call, reservation, seen, error, prompt)

    async def _scopes(self, call: Call) -> Scopes:
        if not callable(self.scopes):
            return self.scopes
        given = self.scopes(call)
        return await given if inspect.isawaitable(given) else given

    def _region(self, call: Call) -> str | None:
        return call.tags.get("region", self.region) or None  # "": a self-hosted fallback

    def _prompt_tokens(self, call: Call, scopes: Scopes) -> int:
        """The counted prompt; 0 when no limit needs it (only request limits)."""
        counted = call.state.get("prompt_tokens")
        if isinstance(counted, int):
            return counted
        if not any(
            limits.daily_cost is not None or limits.tokens_per_minute is not None
            for limits in scopes.values()
        ):
            return 0
        from qwenkit.tokens import count_messages  # the tokenizer loads only when needed

        request = call.request
        family = call.profile.tokenizer if call.profile is not None else None
        return count_messages(request.messages, family, request.tools).total

    def _worst_cost(self, call: Call, prompt: int) -> tuple[Decimal, str | None]:
        region = self._region(call)
        if region is None:
            return Decimal(0), None
        request = call.request
        try:
            priced = estimate_max_cost(
                prompt,
                request.max_tokens,
                call.profile or request.model,
                region,
                thinking=_thinking(call),
                thinking_budget=request.thinking_budget,
                catalog=self.catalog,
            )
        except (QwenError, LookupError, ValueError):  # unknown model or no price there
            return Decimal(0), None
        return priced.total, priced.currency

    async def _settle(
        self,
        call: Call,
        reservation: Reservation,
        seen: StreamTally,
        error: BaseException | None,
        prompt: int,
    ) -> None:
        sent = bool(seen.events) or isinstance(error, (APIStatusError, StreamInterruptedError))
        used = Usage() if call.cache_hit or not seen.events else seen.usage
        if used is None:  # answered, but no usage came: the prompt and the text seen
            used = seen.estimate(call, prompt or None)
        spent = Decimal(0) if call.cache_hit or not seen.events else self._cost(call, used)
        tokens = used.prompt_tokens + used.completion_tokens
        with anyio.move_on_after(self.settle_timeout, shield=True) as scope:
            try:
                await self.budgets.settle(reservation, cost=spent, tokens=tokens, sent=sent)
            except Exception:
                _log.warning(
                    "settling budget reservation %s failed; it is released when it expires",
                    reservation.id,
                    exc_info=True,
                )
        if scope.cancelled_caught:
            _log.warning(
                "settling budget reservation %s took over %s s; it is released when it expires",
                reservation.id,
                self.settle_timeout,
            )

    def _cost(self, call: Call, usage: Usage) -> Decimal:
        """What ``usage`` costs, priced as ``UsagePolicy`` prices the ledger record."""
        region = self._region(call)
        if region is None:
            return Decimal(0)
        try:
            priced = cost(
                usage,
                call.profile or call.request.model,
                region,
                thinking=call.request.enable_thinking,
                catalog=self.catalog,
            )
        except (QwenError, LookupError, ValueError):
            return Decimal(0)
        return priced.total

    def __repr__(self) -> str:
        return f"BudgetPolicy({self.budgets!r}, region={self.region!r})"


def _thinking(call: Call) -> bool | None:
    """The effective thinking (``ThinkingPolicy``'s decision), else what the request asks."""
    decided = call.state.get("thinking")
    return decided if isinstance(decided, bool) else call.request.enable_thinking


def _worst_completion(call: Call) -> int:
    """The most completion tokens: ``max_tokens`` (the model's max output when unset) plus,
    when thinking, the thinking budget (capped at the model's max reasoning), as
    ``estimate_max_cost`` counts them."""
    request, profile = call.request, call.profile
    answer = request.max_tokens
    if answer is None:
        answer = profile.max_output_tokens if profile is not None else 0
    thinking = _thinking(call)
    thinks = profile.effective_thinking(thinking) if profile is not None else bool(thinking)
    if not thinks:
        return answer
    budget = request.thinking_budget
    cap = profile.max_reasoning_tokens if profile is not None else None
    if cap is None:
        return answer + (budget or 0)
    return answer + (cap if budget is None else min(budget, cap))
