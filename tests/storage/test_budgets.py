"""The ``Budgets`` contract, run against SQLite, PostgreSQL and Redis: limits fit exactly, a
refusal names the limit and holds nothing, settlement replaces the reservation (once), windows
reset (in the budget's time zone), and a reservation never settled expires."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from qwenkit import BudgetExceededError
from qwenkit.storage import BudgetState, Limits
from qwenkit.storage._budgets import CounterBudgets, open_budgets

pytestmark = pytest.mark.anyio

START = datetime(2026, 6, 15, 10, 0, 30, tzinfo=timezone.utc)


class Clock:
    """A settable clock (epoch seconds)."""

    def __init__(self, at: datetime = START) -> None:
        self.now = at.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = at.timestamp()


@asynccontextmanager
async def opened(url: str, clock: Clock, zone: str = "UTC") -> AsyncIterator[CounterBudgets]:
    budgets = open_budgets(url, clock=clock, default_ttl=60.0, timezone=zone)
    try:
        yield budgets
    finally:
        await budgets.aclose()


def dec(*values: int | str) -> tuple[Decimal, ...]:
    """Decimals to compare a tuple of ``BudgetState`` or error fields with."""
    return tuple(Decimal(value) for value in values)


async def state(budgets: CounterBudgets, scope: str, limits: Limits) -> dict[str, BudgetState]:
    return {s.kind: s for s in await budgets.status(scope, limits)}


async def test_a_budget_fits_exactly_n_calls_and_refuses_the_next(any_url: str) -> None:
    limits = {"env:prod": Limits(daily_cost=Decimal("1.00"))}
    async with opened(any_url, Clock()) as budgets:
        for _ in range(4):
            await budgets.reserve(limits, cost=Decimal("0.25"), tokens=10)
        with pytest.raises(BudgetExceededError) as refused:
            await budgets.reserve(
                limits, cost=Decimal("0.25"), tokens=10, request_id="req-5", currency="USD"
            )
        daily = (await state(budgets, "env:prod", limits["env:prod"]))["daily_cost"]
    error = refused.value
    assert (error.scope, error.kind, error.code, error.status) == (
        "env:prod",
        "daily_cost",
        "BudgetExceeded",
        429,
    )
    assert (error.limit, error.spent, error.reserved, error.requested) == (
        Decimal("1.00"),
        Decimal(0),
        Decimal("1.00"),
        Decimal("0.25"),
    )
    assert error.resets_at == datetime(2026, 6, 16, tzinfo=timezone.utc)
    assert (error.currency, error.request_id) == ("USD", "req-5")
    assert str(error) == (
        "daily budget of env:prod exceeded: 0.00 spent + 1.00 reserved + 0.25 requested > "
        "1.00 USD (resets 2026-06-16T00:00:00+00:00)"
    )
    assert daily.reserved == Decimal("1.00")  # the refused call holds nothing


async def test_settling_for_less_frees_room_and_a_second_settle_changes_nothing(
    any_url: str,
) -> None:
    limits = Limits(daily_cost=Decimal("1"), tokens_per_minute=1000)
    async with opened(any_url, Clock()) as budgets:
        held = await budgets.reserve({"key:a": limits}, cost=Decimal("0.6"), tokens=800)
        with pytest.raises(BudgetExceededError):
            await budgets.reserve({"key:a": limits}, cost=Decimal("0.6"), tokens=100)
        await budgets.settle(held, cost=Decimal("0.123456789"), tokens=300)
        await budgets.settle(held, cost=Decimal("0.123456789"), tokens=300)  # no-op
        now = await state(budgets, "key:a", limits)
        assert (now["daily_cost"].spent, now["daily_cost"].reserved) == (
            Decimal("0.123456789"),
            Decimal(0),
        )
        assert (now["tokens_per_minute"].spent, now["tokens_per_minute"].reserved) == dec(300, 0)
        await budgets.reserve({"key:a": limits}, cost=Decimal("0.6"), tokens=700)  # fits now


async def test_money_is_reserved_rounded_up_and_settled_to_the_nearest_nano_unit(
    any_url: str,
) -> None:
    limits = Limits(daily_cost=Decimal("1"))
    async with opened(any_url, Clock()) as budgets:
        held = await budgets.reserve({"k": limits}, cost=Decimal("0.0000000001"), tokens=0)
        assert (await state(budgets, "k", limits))["daily_cost"].reserved == Decimal("1E-9")
        await budgets.settle(held, cost=Decimal("0.0000000014"), tokens=0)
        assert (await state(budgets, "k", limits))["daily_cost"].spent == Decimal("1E-9")
        with pytest.raises(ValueError, match="non-negative"):
            await budgets.reserve({"k": limits}, cost=Decimal("-0.01"), tokens=0)


async def test_a_request_limit_counts_calls_and_resets_with_the_next_minute(
    any_url: str,
) -> None:
    clock, limits = Clock(), {"key:a": Limits(requests_per_minute=2)}
    async with opened(any_url, clock) as budgets:
        first = await budgets.reserve(limits, cost=Decimal(0), tokens=0)
        await budgets.reserve(limits, cost=Decimal(0), tokens=0)
        with pytest.raises(BudgetExceededError) as refused:
            await budgets.reserve(limits, cost=Decimal(0), tokens=0)
        await budgets.settle(first, cost=Decimal(0), tokens=0)  # sent: still counts
        with pytest.raises(BudgetExceededError):
            await budgets.reserve(limits, cost=Decimal(0), tokens=0)
        clock.set(datetime(2026, 6, 15, 10, 1, tzinfo=timezone.utc))
        await budgets.reserve(limits, cost=Decimal(0), tokens=0)
    error = refused.value
    assert (error.kind, error.code) == ("requests_per_minute", "RateLimited")
    assert (error.limit, error.spent, error.reserved, error.requested) == dec(2, 0, 2, 1)
    assert error.resets_at == datetime(2026, 6, 15, 10, 1, tzinfo=timezone.utc)
    assert str(error) == (
        "requests-per-minute limit of key:a exceeded: 0 sent + 2 in flight + 1 requested > 2 "
        "(resets 2026-06-15T10:01:00+00:00)"
    )


async def test_a_call_never_sent_gives_its_request_back(any_url: str) -> None:
    limits = {"key:a": Limits(requests_per_minute=1)}
    async with opened(any_url, Clock()) as budgets:
        unsent = await budgets.reserve(limits, cost=Decimal(0), tokens=0)
        await budgets.settle(unsent, cost=Decimal(0), tokens=0, sent=False)
        await budgets.reserve(limits, cost=Decimal(0), tokens=0)


async def test_a_token_limit_counts_the_tokens_reserved_then_used(any_url: str) -> None:
    limits = {"key:a": Limits(tokens_per_minute=10_000)}
    async with opened(any_url, Clock()) as budgets:
        held = await budgets.reserve(limits, cost=Decimal(0), tokens=9_000)
        with pytest.raises(BudgetExceededError) as refused:
            await budgets.reserve(limits, cost=Decimal(0), tokens=1_500)
        await budgets.settle(held, cost=Decimal(0), tokens=2_000)
        await budgets.reserve(limits, cost=Decimal(0), tokens=8_000)
    error = refused.value
    assert error.kind == "tokens_per_minute"
    assert (error.spent, error.reserved, error.requested) == dec(0, 9_000, 1_500)
    assert "tokens-per-minute limit of key:a exceeded: 0 used + 9000 reserved" in str(error)


async def test_two_scopes_are_all_or_nothing(any_url: str) -> None:
    # "env:prod" sorts before "key:a": its charge is taken first, then given back.
    roomy, tight = Limits(daily_cost=Decimal("10")), Limits(daily_cost=Decimal("1"))
    scopes = {"key:a": tight, "env:prod": roomy}
    async with opened(any_url, Clock()) as budgets:
        await budgets.reserve(scopes, cost=Decimal("0.8"), tokens=0)
        with pytest.raises(BudgetExceededError) as refused:
            await budgets.reserve(scopes, cost=Decimal("0.5"), tokens=0)
        env = (await state(budgets, "env:prod", roomy))["daily_cost"]
        key = (await state(budgets, "key:a", tight))["daily_cost"]
    assert refused.value.scope == "key:a"
    assert (env.reserved, key.reserved) == (Decimal("0.8"), Decimal("0.8"))


async def test_a_call_that_can_never_fit_is_refused_without_holding_anything(
    any_url: str,
) -> None:
    scopes = {"env:prod": Limits(daily_cost=Decimal("10")), "key:a": Limits(daily_cost=Decimal(1))}
    async with opened(any_url, Clock()) as budgets:
        with pytest.raises(BudgetExceededError) as refused:
            await budgets.reserve(scopes, cost=Decimal("2"), tokens=0)
        env = (await state(budgets, "env:prod", scopes["env:prod"]))["daily_cost"]
    assert (refused.value.scope, refused.value.requested) == ("key:a", Decimal(2))
    assert env.reserved == 0


async def test_the_day_resets_at_midnight_in_the_budget_time_zone(any_url: str) -> None:
    clock = Clock(datetime(2026, 12, 6, 15, 59, 59, tzinfo=timezone.utc))  # 23:59:59 in Shanghai
    limits = {"env:cn": Limits(daily_cost=Decimal("5"))}
    async with opened(any_url, clock, "Asia/Shanghai") as budgets:
        held = await budgets.reserve(limits, cost=Decimal("4.98"), tokens=0)
        await budgets.settle(held, cost=Decimal("4.98"), tokens=0)
        await budgets.reserve(limits, cost=Decimal("0.01"), tokens=0)
        with pytest.raises(BudgetExceededError) as refused:
            await budgets.reserve(limits, cost=Decimal("0.05"), tokens=0, currency="CNY")
        clock.set(datetime(2026, 12, 6, 16, 0, tzinfo=timezone.utc))  # midnight in Shanghai
        await budgets.reserve(limits, cost=Decimal("4.99"), tokens=0)
        [today] = await budgets.status("env:cn", limits["env:cn"])
    assert refused.value.resets_at == datetime(2026, 12, 6, 16, 0, tzinfo=timezone.utc)
    assert str(refused.value) == (
        "daily budget of env:cn exceeded: 4.98 spent + 0.01 reserved + 0.05 requested > "
        "5.00 CNY (resets 2026-12-07T00:00:00+08:00)"
    )
    assert (today.spent, today.reserved) == dec(0, "4.99")
    assert today.resets_at == datetime(2026, 12, 7, 16, 0, tzinfo=timezone.utc)


async def test_a_reservation_never_settled_expires_after_its_ttl(any_url: str) -> None:
    clock, limits = Clock(), Limits(daily_cost=Decimal("1"))
    async with opened(any_url, clock) as budgets:
        await budgets.reserve({"k": limits}, cost=Decimal("1"), tokens=0, ttl=30)
        clock.now += 29
        with pytest.raises(BudgetExceededError):
            await budgets.reserve({"k": limits}, cost=Decimal("0.1"), tokens=0)
        clock.now += 1
        assert (await state(budgets, "k", limits))["daily_cost"].reserved == 0
        await budgets.reserve({"k": limits}, cost=Decimal("1"), tokens=0)


async def test_settling_after_expiry_still_counts_the_money(any_url: str) -> None:
    clock, limits = Clock(), Limits(daily_cost=Decimal("1"), requests_per_minute=10)
    async with opened(any_url, clock) as budgets:
        late = await budgets.reserve({"k": limits}, cost=Decimal("0.5"), tokens=0, ttl=5)
        clock.now += 6
        assert (await state(budgets, "k", limits))["daily_cost"].reserved == 0  # released
        await budgets.settle(late, cost=Decimal("0.3"), tokens=0)
        await budgets.settle(late, cost=Decimal("0.3"), tokens=0)  # still once
        now = await state(budgets, "k", limits)
    assert (now["daily_cost"].spent, now["daily_cost"].reserved) == dec("0.3", 0)
    assert (now["requests_per_minute"].spent, now["requests_per_minute"].reserved) == dec(1, 0)


async def test_status_reports_every_limit_of_a_scope(any_url: str) -> None:
    limits = Limits(daily_cost=Decimal("2.5"), requests_per_minute=60, tokens_per_minute=5000)
    async with opened(any_url, Clock()) as budgets:
        done = await budgets.reserve({"key:a": limits}, cost=Decimal("0.5"), tokens=1000)
        await budgets.settle(done, cost=Decimal("0.2"), tokens=400)
        await budgets.reserve({"key:a": limits}, cost=Decimal("0.5"), tokens=1000)
        states = await budgets.status("key:a", limits)
        assert await budgets.status("key:a", Limits()) == []
    daily, rpm, tpm = states
    assert [s.kind for s in states] == ["daily_cost", "requests_per_minute", "tokens_per_minute"]
    assert (daily.limit, daily.spent, daily.reserved, daily.remaining) == (
        Decimal("2.5"),
        Decimal("0.2"),
        Decimal("0.5"),
        Decimal("1.8"),
    )
    assert (rpm.spent, rpm.reserved, rpm.remaining) == dec(1, 1, 58)
    assert (tpm.spent, tpm.reserved, tpm.remaining) == dec(400, 1000, 3600)
    assert daily.resets_at == datetime(2026, 6, 16, tzinfo=timezone.utc)
    assert rpm.resets_at == tpm.resets_at == datetime(2026, 6, 15, 10, 1, tzinfo=timezone.utc)


async def test_scopes_without_limits_reserve_nothing(any_url: str) -> None:
    async with opened(any_url, Clock()) as budgets:
        free = await budgets.reserve({"sdk": Limits()}, cost=Decimal("100"), tokens=10**9)
        await budgets.settle(free, cost=Decimal("100"), tokens=10**9)
    assert free.charges == ()
