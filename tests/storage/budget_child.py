"""A child process of the multi-process budget tests (``test_budgets_processes.py``).

``python budget_child.py admit URL CONFIG``: prints ``ready``, waits for a line on stdin, then
runs ``count`` concurrent admissions (reserve, a short random pause, settle ``actual``) and prints
one JSON line ``{"admitted": n, "refused": m, "errors": [...]}``.

``python budget_child.py hold URL CONFIG``: reserves ``count`` holds of ``ttl`` seconds, prints
``held``, and sleeps until it is killed.

``CONFIG`` is JSON: ``scope``, ``limit``, ``cost``, ``actual``, ``count``, ``ttl`` and ``offset``
(seconds added to ``time.time()``, shared with the parent so both see the same clock).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from decimal import Decimal
from typing import Any

from qwenkit import BudgetExceededError
from qwenkit.storage import Limits
from qwenkit.storage._budgets import CounterBudgets, open_budgets


def _open(url: str, config: dict[str, Any]) -> tuple[CounterBudgets, dict[str, Limits]]:
    offset = float(config["offset"])
    budgets = open_budgets(url, migrate=False, clock=lambda: time.time() + offset)
    return budgets, {config["scope"]: Limits(daily_cost=Decimal(config["limit"]))}


async def admit(url: str, config: dict[str, Any]) -> dict[str, Any]:
    budgets, scopes = _open(url, config)
    cost, actual = Decimal(config["cost"]), Decimal(config["actual"])
    outcome: dict[str, Any] = {"admitted": 0, "refused": 0, "errors": []}

    async def one() -> None:
        try:
            reservation = await budgets.reserve(scopes, cost=cost, tokens=10, ttl=60)
        except BudgetExceededError:
            outcome["refused"] += 1
            return
        except Exception as exc:
            outcome["errors"].append(repr(exc))
            return
        outcome["admitted"] += 1
        await asyncio.sleep(random.uniform(0, 0.005))
        try:
            await budgets.settle(reservation, cost=actual, tokens=10)
        except Exception as exc:
            outcome["errors"].append(repr(exc))

    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(one() for _ in range(int(config["count"]))))
    await budgets.aclose()
    return outcome


async def hold(url: str, config: dict[str, Any]) -> None:
    budgets, scopes = _open(url, config)
    for _ in range(int(config["count"])):
        await budgets.reserve(scopes, cost=Decimal(config["cost"]), tokens=10, ttl=config["ttl"])
    print("held", flush=True)
    await asyncio.sleep(3600)  # until SIGKILL: nothing is settled or closed


def main() -> None:
    mode, url, raw = sys.argv[1:4]
    config = json.loads(raw)
    if mode == "admit":
        print(json.dumps(asyncio.run(admit(url, config))), flush=True)
    else:
        asyncio.run(hold(url, config))


if __name__ == "__main__":
    main()
