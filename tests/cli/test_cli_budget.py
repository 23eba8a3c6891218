"""``qwenkit budget``: show what a key and its environment spent, hold and may still spend (the
counters the gateway and the SDK reserve against), and set an environment's limits."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from qwenkit.cli import main
from qwenkit.storage import Limits
from qwenkit.storage._budgets import open_budgets


def qwenkit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


def spend(store: str, scopes: dict[str, Limits], cost: str, held: str) -> None:
    """One settled call of ``cost`` and one still in flight holding ``held``."""

    async def run() -> None:
        budgets = open_budgets(store, migrate=False)
        try:
            done = await budgets.reserve(scopes, cost=Decimal(cost), tokens=10)
            await budgets.settle(done, cost=Decimal(cost), tokens=10)
            await budgets.reserve(scopes, cost=Decimal(held), tokens=10)
        finally:
            await budgets.aclose()

    asyncio.run(run())


def test_show_a_key_and_its_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    code, out, _ = qwenkit(
        capsys, "keys", "create", "app", "--env", "prod", "--daily-budget", "5", "--rpm", "10",
        "--json", "--store", store,
    )  # fmt: skip
    assert code == 0
    key_id = json.loads(out)["id"]
    assert (
        qwenkit(capsys, "budget", "set", "prod", "--daily-budget", "50", "--store", store)[0] == 0
    )
    key_limits = Limits(daily_cost=Decimal(5), requests_per_minute=10)
    spend(
        store,
        {f"key:{key_id}": key_limits, "env:prod": Limits(daily_cost=Decimal(50))},
        "1.25",
        "0.5",
    )

    code, out, _ = qwenkit(capsys, "budget", "show", key_id, "--json", "--store", store)
    assert code == 0
    shown = {(row["scope"], row["kind"]): row for row in json.loads(out)}
    daily = shown[(f"key:{key_id}", "daily_cost")]
    assert (daily["limit"], daily["spent"], daily["reserved"]) == ("5", "1.25", "0.5")
    assert Decimal(daily["remaining"]) == Decimal("3.25")
    assert daily["resets_at"].endswith("+00:00")
    requests = shown[(f"key:{key_id}", "requests_per_minute")]
    assert (requests["limit"], requests["spent"], requests["reserved"]) == ("10", "1", "1")
    env = shown[("env:prod", "daily_cost")]
    assert (env["limit"], env["spent"]) == ("50", "1.25")

    code, out, _ = qwenkit(capsys, "budget", "show", "--store", store)
    assert code == 0
    assert f"key:{key_id}" in out
    assert "env:prod" in out
    assert "3.25" in out


def test_unknown_key_and_bad_limits_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    code, _, err = qwenkit(capsys, "budget", "show", "nope", "--store", store)
    assert code == 1
    assert "no key with id 'nope'" in err
    code, _, err = qwenkit(
        capsys, "budget", "set", "prod", "--daily-budget", "-1", "--store", store
    )
    assert code == 2
    assert "not a positive amount" in err
