"""Budgets across processes, on SQLite, PostgreSQL and Redis: 500 concurrent admissions from two
processes never overspend nor leak a reservation; the holds of a SIGKILLed process expire.

Each test starts real child processes (``budget_child.py``); the children and the parent share
one clock (``time.time()`` plus an offset, placed at noon so no day boundary is crossed)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qwenkit import BudgetExceededError
from qwenkit.storage import Limits
from qwenkit.storage._budgets import open_budgets

CHILD = Path(__file__).with_name("budget_child.py")
NOON = datetime(2030, 6, 15, 12, 0, tzinfo=timezone.utc).timestamp()
SCOPE = "env:load"


class SharedClock:
    """The children's clock (``time.time() + offset``), which the parent can move forward."""

    def __init__(self) -> None:
        self.offset = NOON - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset


def child(mode: str, url: str, **config: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), mode, url, json.dumps({"scope": SCOPE, **config})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.anyio
@pytest.mark.parametrize(("cost", "actual"), [("0.01", "0.01"), ("0.01", "0.004")])
async def test_500_admissions_from_two_processes_never_overspend_nor_leak(
    any_url: str, cost: str, actual: str
) -> None:
    clock, limit = SharedClock(), Decimal("1.00")  # fits N = 100 reservations of 0.01
    budgets = open_budgets(any_url, clock=clock)  # migrated before the children start
    config = {"limit": str(limit), "cost": cost, "actual": actual, "count": 250}
    with (
        child("admit", any_url, offset=clock.offset, **config) as first,
        child("admit", any_url, offset=clock.offset, **config) as second,
    ):
        children = (first, second)
        try:
            for process in children:  # both started and connected...
                assert process.stdout is not None
                assert process.stdout.readline() == "ready\n"
            for process in children:  # ...then both go at once
                assert process.stdin is not None
                process.stdin.write("go\n")
                process.stdin.flush()
            outcomes = [json.loads(process.communicate(timeout=60)[0]) for process in children]
        finally:
            for process in children:
                process.kill()
    [daily] = await budgets.status(SCOPE, Limits(daily_cost=limit))
    await budgets.aclose()
    admitted = sum(outcome["admitted"] for outcome in outcomes)
    assert [outcome["errors"] for outcome in outcomes] == [[], []]
    assert admitted + sum(outcome["refused"] for outcome in outcomes) == 500
    assert daily.reserved == 0  # every reservation settled: none leaked
    assert daily.spent <= limit
    assert daily.spent == admitted * Decimal(actual)
    assert admitted >= 100 - 1
    if cost == actual:
        assert admitted <= 100


@pytest.mark.anyio
async def test_the_holds_of_a_killed_process_expire_and_the_budget_recovers(any_url: str) -> None:
    clock, limits = SharedClock(), Limits(daily_cost=Decimal("0.05"))
    budgets = open_budgets(any_url, clock=clock)  # migrated before the children start
    config = {"limit": "0.05", "cost": "0.01", "count": 5, "ttl": 30}
    with child("hold", any_url, offset=clock.offset, **config) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
    assert holder.returncode == -signal.SIGKILL
    [daily] = await budgets.status(SCOPE, limits)
    assert (daily.spent, daily.reserved) == (Decimal(0), Decimal("0.05"))
    with pytest.raises(BudgetExceededError):  # the dead process's holds still count...
        await budgets.reserve({SCOPE: limits}, cost=Decimal("0.01"), tokens=1)

    clock.offset += 31  # ...until their ttl has passed
    reservation = await budgets.reserve({SCOPE: limits}, cost=Decimal("0.05"), tokens=1)
    [daily] = await budgets.status(SCOPE, limits)
    assert (daily.spent, daily.reserved) == (Decimal(0), Decimal("0.05"))
    await budgets.settle(reservation, cost=Decimal("0.02"), tokens=1)
    [daily] = await budgets.status(SCOPE, limits)
    assert (daily.spent, daily.reserved) == (Decimal("0.02"), Decimal(0))
    await budgets.aclose()
