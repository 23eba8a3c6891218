"""BudgetPolicy in the pipeline (after the default policies, over a real SQLite store): it
reserves the worst case before sending, refuses before anything is sent, and settles what the
call used however it ends (normally, an error, an early stop, a cancelled task, a cache hit)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from decimal import Decimal
from typing import Any

import anyio
import pytest

from qwenkit import BudgetExceededError
from qwenkit._core.cache import CachePolicy, MemoryCache
from qwenkit._core.pipeline import Call, EventStream, Pipeline, Policy
from qwenkit._core.policies import default_policies
from qwenkit._exceptions import APIConnectionError, ServerError
from qwenkit.catalog import Router, cost, default_catalog, estimate_max_cost, get_model
from qwenkit.storage import BudgetState, Limits, Reservation
from qwenkit.storage._admission import BudgetPolicy, Scopes
from qwenkit.storage._budgets import CounterBudgets, open_budgets
from qwenkit.tokens import get_tokenizer
from qwenkit.types import (
    ChatRequest,
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    Usage,
    UsageReported,
)

pytestmark = pytest.mark.anyio

CATALOG = default_catalog()
ROUTER = Router(CATALOG)
REGION = "ap-southeast-1"
PLUS = get_model("qwen-plus")
USAGE = Usage(prompt_tokens=20, completion_tokens=30, total_tokens=50, reasoning_tokens=10)
ANSWER: tuple[Event, ...] = (
    ResponseStarted(id="chatcmpl-1", model="qwen-plus"),
    ReasoningDelta("Let me think."),
    ContentDelta("Hello there, how are you today?"),
    Finished("stop"),
    UsageReported(USAGE),
)
LIMITS = Limits(daily_cost=Decimal("1"), requests_per_minute=10, tokens_per_minute=1_000_000)


class Upstream:
    """The send step: counts its calls, notes the budget while it runs, then yields ``events``,
    raises ``error``, or waits forever (``hang``)."""

    def __init__(
        self,
        budgets: CounterBudgets,
        *events: Event,
        error: BaseException | None = None,
        hang: bool = False,
    ) -> None:
        self.budgets = budgets
        self.events = events or ANSWER
        self.error = error
        self.hang = hang
        self.calls = 0
        self.during: dict[str, BudgetState] = {}
        self.streaming = anyio.Event()

    async def __call__(self, call: Call) -> EventStream:
        self.calls += 1
        self.during = await status(self.budgets)
        if self.error is not None:
            raise self.error
        for event in self.events:
            yield event
        self.streaming.set()
        if self.hang:
            await anyio.sleep_forever()


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[CounterBudgets]:
    budgets = open_budgets(url)
    try:
        yield budgets
    finally:
        await budgets.aclose()


async def status(budgets: CounterBudgets, scope: str = "sdk") -> dict[str, BudgetState]:
    return {s.kind: s for s in await budgets.status(scope, LIMITS)}


def make_call(**request: Any) -> Call:
    thinking = request.pop("thinking", None)
    req = ChatRequest.model_validate(
        {"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], **request}
    )
    return Call(request=req, thinking=thinking, request_id="req-1")


def pipeline(
    budgets: CounterBudgets,
    send: Upstream,
    scopes: Any = None,
    *,
    after: Sequence[Policy] = (),
    **options: Any,
) -> Pipeline:
    policy = BudgetPolicy(budgets, scopes or {"sdk": LIMITS}, catalog=CATALOG, **options)
    return Pipeline([*default_policies(catalog=CATALOG, router=ROUTER), policy, *after], send)


async def run(pipe: Pipeline, call: Call, *, stop_after: int | None = None) -> list[Event]:
    seen: list[Event] = []
    events = pipe.run(call)
    assert isinstance(events, AsyncGenerator)
    async with aclosing(events) as stream:
        async for event in stream:
            seen.append(event)
            if stop_after is not None and len(seen) >= stop_after:
                break
    return seen


def cost_of(usage: Usage, call: Call) -> Decimal:
    """What the ledger charges for ``usage`` (``UsagePolicy``'s pricing)."""
    return cost(usage, PLUS, REGION, thinking=call.request.enable_thinking).total


async def test_the_worst_case_is_reserved_and_the_real_cost_settled(sqlite_url: str) -> None:
    async with opened(sqlite_url) as budgets:
        send = Upstream(budgets)
        call = make_call(max_tokens=200, thinking=True, thinking_budget=1000)
        assert await run(pipeline(budgets, send), call) == list(ANSWER)
        after = await status(budgets)
    prompt = call.state["prompt_tokens"]
    worst = estimate_max_cost(prompt, 200, PLUS, REGION, thinking=True, thinking_budget=1000)
    during = send.during
    assert during["daily_cost"].reserved == worst.total > 0
    assert during["requests_per_minute"].reserved == 1
    assert during["tokens_per_minute"].reserved == prompt + 200 + 1000
    assert after["daily_cost"].spent == cost_of(USAGE, call) > 0
    assert (after["requests_per_minute"].spent, after["tokens_per_minute"].spent) == (
        Decimal(1),
        Decimal(50),
    )
    assert all(state.reserved == 0 for state in after.values())
    assert any(note.startswith("budget: reserved") for note in call.notes)


async def test_a_call_over_budget_is_refused_before_anything_is_sent(sqlite_url: str) -> None:
    tiny = {"key:k1": Limits(daily_cost=Decimal("0.000001"))}
    async with opened(sqlite_url) as budgets:
        send = Upstream(budgets)
        with pytest.raises(BudgetExceededError) as refused:
            await run(pipeline(budgets, send, tiny), make_call(max_tokens=2000))
        [daily] = await budgets.status("key:k1", tiny["key:k1"])
    assert send.calls == 0
    assert (refused.value.scope, refused.value.request_id) == ("key:k1", "req-1")
    assert refused.value.currency == "USD"
    assert daily.reserved == daily.spent == 0


@pytest.mark.parametrize(
    ("error", "requests"),
    [(APIConnectionError(), 0), (ServerError("upstream failed", status=500), 1)],
)
async def test_a_failed_call_costs_nothing_and_counts_only_if_it_was_answered(
    sqlite_url: str, error: Exception, requests: int
) -> None:
    async with opened(sqlite_url) as budgets:
        send = Upstream(budgets, error=error)
        with pytest.raises(type(error)):
            await run(pipeline(budgets, send), make_call(max_tokens=100))
        after = await status(budgets)
    assert send.calls == 1
    assert after["requests_per_minute"].spent == requests
    assert after["daily_cost"].spent == after["tokens_per_minute"].spent == 0
    assert all(state.reserved == 0 for state in after.values())


async def test_a_consumer_that_stops_early_pays_for_the_prompt_and_the_text_it_got(
    sqlite_url: str,
) -> None:
    async with opened(sqlite_url) as budgets:
        call = make_call(max_tokens=500)
        await run(pipeline(budgets, Upstream(budgets)), call, stop_after=3)  # before the usage
        after = await status(budgets)
    prompt = call.state["prompt_tokens"]
    qwen = get_tokenizer("qwen")
    reasoning, answer = qwen.count("Let me think."), qwen.count("Hello there, how are you today?")
    estimated = Usage(
        prompt_tokens=prompt,
        completion_tokens=reasoning + answer,
        total_tokens=prompt + reasoning + answer,
        reasoning_tokens=reasoning,
    )
    assert after["daily_cost"].spent == cost_of(estimated, call) > 0
    assert after["tokens_per_minute"].spent == prompt + reasoning + answer
    assert after["requests_per_minute"].spent == 1
    assert all(state.reserved == 0 for state in after.values())


@pytest.mark.parametrize("how", ["cancel scope", "task.cancel"])
async def test_a_cancelled_call_is_settled_too(sqlite_url: str, how: str) -> None:
    async with opened(sqlite_url) as budgets:
        send = Upstream(budgets, ResponseStarted(id="c", model="qwen-plus"), hang=True)
        pipe = pipeline(budgets, send)
        if how == "cancel scope":
            async with anyio.create_task_group() as group:
                group.start_soon(run, pipe, make_call(max_tokens=100))
                await send.streaming.wait()
                group.cancel_scope.cancel()
        else:
            task = asyncio.ensure_future(run(pipe, make_call(max_tokens=100)))
            await send.streaming.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        after = await status(budgets)
    assert after["requests_per_minute"].spent == 1
    assert after["daily_cost"].spent > 0  # the prompt was sent: it is billed
    assert all(state.reserved == 0 for state in after.values())


async def test_a_cache_hit_is_free_but_counts_as_a_request(sqlite_url: str) -> None:
    async with opened(sqlite_url) as budgets:
        send = Upstream(budgets)
        pipe = pipeline(budgets, send, after=[CachePolicy(MemoryCache())])
        first = make_call(max_tokens=100, temperature=0)
        await run(pipe, first)
        again = make_call(max_tokens=100, temperature=0)
        await run(pipe, again)
        after = await status(budgets)
    assert (send.calls, again.cache_hit) == (1, True)
    assert after["daily_cost"].spent == cost_of(USAGE, first)
    assert after["requests_per_minute"].spent == 2
    assert after["tokens_per_minute"].spent == 50
    assert all(state.reserved == 0 for state in after.values())


async def test_scopes_can_come_from_the_call_and_a_self_hosted_upstream_costs_nothing(
    sqlite_url: str,
) -> None:
    tight = Limits(daily_cost=Decimal("0.000001"), requests_per_minute=1)

    async def of_key(call: Call) -> Scopes:
        return {f"key:{call.tags['key_id']}": tight}

    async with opened(sqlite_url) as budgets:
        pipe = pipeline(budgets, Upstream(budgets), of_key, region=None)
        call = make_call(max_tokens=100)
        call.tags["key_id"] = "k7"
        await run(pipe, call)  # no region: no money reserved, even against a tiny budget
        again = make_call(max_tokens=100)
        again.tags["key_id"] = "k7"
        with pytest.raises(BudgetExceededError) as refused:
            await run(pipe, again)
        [daily, rpm] = await budgets.status("key:k7", tight)
    assert (refused.value.scope, refused.value.kind) == ("key:k7", "requests_per_minute")
    assert (daily.spent, rpm.spent) == (Decimal(0), Decimal(1))


class SettleFails:
    """A store whose settle fails (reserve and status work): the call must not notice."""

    def __init__(self, budgets: CounterBudgets) -> None:
        self.inner = budgets

    async def reserve(self, scopes: Mapping[str, Limits], **options: Any) -> Reservation:
        return await self.inner.reserve(scopes, **options)

    async def settle(self, reservation: Reservation, **options: Any) -> None:
        raise ConnectionError("the store went away")

    async def status(self, scope: str, limits: Limits) -> Sequence[BudgetState]:
        return await self.inner.status(scope, limits)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_settle_that_fails_is_logged_never_raised(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with opened(sqlite_url) as budgets:
        policy = BudgetPolicy(SettleFails(budgets), {"sdk": LIMITS}, catalog=CATALOG)
        pipe = Pipeline(
            [*default_policies(catalog=CATALOG, router=ROUTER), policy], Upstream(budgets)
        )
        with caplog.at_level(logging.WARNING, logger="qwenkit.storage._admission"):
            assert await run(pipe, make_call(max_tokens=100)) == list(ANSWER)
    assert "released when it expires" in caplog.text


async def test_scopes_without_limits_pass_through_untouched(sqlite_url: str) -> None:
    async with opened(sqlite_url) as budgets:
        send = Upstream(budgets)
        call = make_call(max_tokens=100)
        assert await run(pipeline(budgets, send, {"sdk": Limits()}), call) == list(ANSWER)
    assert send.calls == 1
    assert not any(note.startswith("budget:") for note in call.notes)
