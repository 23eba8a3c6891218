"""What the budget backends share (windows, money units, charges) and what each one does on
its own: Redis keys in one cluster slot that expire, SQL rows of past windows deleted, a SQLite
writer of another process never blocking the event loop, and an unreachable store refused at
open, fast, with its password masked."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest
from sqlalchemy import func, select

from qwenkit import ConfigError, StorageError
from qwenkit.storage import Limits, parse_store_url
from qwenkit.storage._budgets import build_charges, open_budgets, to_nano, window_of
from qwenkit.storage._schema import budget_counters, budget_reservations
from qwenkit.storage._sql import sync_engine


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc).timestamp()


def test_a_day_window_is_the_local_date_and_ends_at_the_next_local_midnight() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    assert window_of("daily_cost", utc(2026, 12, 6, 15, 59, 59), shanghai) == (
        "day:2026-12-06",
        utc(2026, 12, 6, 16),
    )
    assert window_of("daily_cost", utc(2026, 12, 6, 16), shanghai)[0] == "day:2026-12-07"


@pytest.mark.parametrize(
    ("day", "ends", "hours"),
    [
        ((2026, 3, 8, 12), (2026, 3, 9, 4), 23),  # New York springs forward
        ((2026, 11, 1, 12), (2026, 11, 2, 5), 25),  # and falls back
    ],
)
def test_a_day_across_a_dst_change_ends_at_local_midnight(
    day: tuple[int, int, int, int], ends: tuple[int, int, int, int], hours: int
) -> None:
    new_york = ZoneInfo("America/New_York")
    _, resets_at = window_of("daily_cost", utc(*day), new_york)
    assert resets_at == utc(*ends)
    year, month, date, _ = day
    start = datetime(year, month, date, tzinfo=new_york).timestamp()
    assert resets_at - start == hours * 3600


def test_minute_windows_are_fixed_epoch_minutes() -> None:
    at = utc(2026, 6, 15, 10, 0, 59)
    minute = int(at // 60)
    assert window_of("requests_per_minute", at, ZoneInfo("UTC")) == (
        f"rpm:{minute}",
        utc(2026, 6, 15, 10, 1),
    )
    assert window_of("tokens_per_minute", at + 1, ZoneInfo("UTC"))[0] == f"tpm:{minute + 1}"


def test_money_is_counted_in_nano_units() -> None:
    assert to_nano(Decimal("4.98")) == 4_980_000_000
    assert to_nano(Decimal("0.0000000015")) == 2  # nearest, half up
    assert to_nano(Decimal("0.0000000011"), rounding=ROUND_CEILING) == 2  # a reservation
    for bad in (Decimal("-1"), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(ValueError, match="non-negative"):
            to_nano(bad)


def test_charges_cover_each_limit_of_each_scope_in_lock_order() -> None:
    scopes = {
        "key:b": Limits(daily_cost=Decimal("1"), tokens_per_minute=100),
        "env:prod": Limits(requests_per_minute=5),
        "sdk": Limits(),
    }
    charges = build_charges(
        scopes, cost_nano=7, tokens=42, now=utc(2026, 6, 15, 10), zone=ZoneInfo("UTC")
    )
    assert [(c.scope, c.kind, c.amount, c.limit) for c in charges] == [
        ("env:prod", "requests_per_minute", 1, 5),
        ("key:b", "daily_cost", 7, 1_000_000_000),
        ("key:b", "tokens_per_minute", 42, 100),
    ]


def test_an_unknown_time_zone_is_a_config_error(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="'Mars/Olympus' is not an IANA time zone"):
        open_budgets(sqlite_url, timezone="Mars/Olympus")


@pytest.mark.parametrize(
    "url",
    ["redis://:hunter2@127.0.0.1:1/0", "postgresql://root:hunter2@127.0.0.1:1/qk"],
)
def test_an_unreachable_store_is_refused_at_open_naming_it(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as refused:
        open_budgets(url)
    assert time.monotonic() - started < 8
    assert "127.0.0.1:1" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert refused.value.url is not None
    assert "***" in refused.value.url


@pytest.mark.anyio
async def test_redis_keys_share_one_slot_start_with_the_prefix_and_expire(redis_url: str) -> None:
    import redis
    from redis.crc import key_slot

    prefix = parse_store_url(redis_url, part="budgets").prefix
    budgets = open_budgets(redis_url)
    limits = Limits(daily_cost=Decimal("1"), requests_per_minute=10, tokens_per_minute=100)
    try:
        done = await budgets.reserve({"key:a": limits}, cost=Decimal("0.1"), tokens=5)
        await budgets.settle(done, cost=Decimal("0.1"), tokens=5)
        await budgets.reserve({"key:a": limits, "env:x": limits}, cost=Decimal("0.1"), tokens=5)
        await budgets.reserve({"key:a": limits}, cost=Decimal("0.1"), tokens=5, ttl=0.001)
        await anyio.sleep(0.01)
        await budgets.status("key:a", limits)  # releases the expired one: leaves a marker
    finally:
        await budgets.aclose()
    client = redis.Redis.from_url(redis_url.split("?", maxsplit=1)[0])
    try:
        keys = [key.decode() for key in client.scan_iter(match=f"{prefix}*")]
        kinds = {key.split("}:", 1)[1].split(":", 1)[0] for key in keys}
        assert kinds == {"c", "z", "r", "t"}  # counters, the expiry index, a hold, a marker
        assert len({key_slot(key.encode()) for key in keys}) == 1
        assert all(client.pttl(key) > 0 for key in keys if not key.endswith("}:z"))
    finally:
        client.close()


@pytest.mark.anyio
async def test_sql_rows_of_past_windows_and_old_markers_are_deleted(sql_url: str) -> None:
    now = [utc(2026, 6, 15, 10)]
    budgets = open_budgets(sql_url, clock=lambda: now[0])
    limits = Limits(daily_cost=Decimal("1"), requests_per_minute=10)
    try:
        await budgets.reserve({"k": limits}, cost=Decimal("0.1"), tokens=0, ttl=5)
        now[0] += 10
        await budgets.status("k", limits)  # the expired hold becomes a marker
        now[0] += 2 * 86_400  # the marker and yesterday's counters are past their keep
        await budgets.reserve({"k": limits}, cost=Decimal("0.1"), tokens=0)
    finally:
        await budgets.aclose()
    engine = sync_engine(parse_store_url(sql_url, part="budgets"))
    try:
        with engine.connect() as conn:
            windows = conn.execute(select(budget_counters.c.window)).scalars().all()
            held = conn.execute(select(func.count()).select_from(budget_reservations)).scalar()
    finally:
        engine.dispose()
    assert sorted(windows) == ["day:2026-06-17", f"rpm:{int(now[0] // 60)}"]
    assert held == 1


@pytest.mark.anyio
async def test_a_sqlite_writer_holding_the_lock_never_blocks_the_event_loop(
    sqlite_url: str,
) -> None:
    import sqlite3

    budgets = open_budgets(sqlite_url)
    limits = {"k": Limits(daily_cost=Decimal("1"))}
    other = sqlite3.connect(parse_store_url(sqlite_url, part="budgets").sqlite_path)
    other.isolation_level = None
    try:
        await budgets.reserve(limits, cost=Decimal("0.1"), tokens=0)  # inline: the lock is free
        other.execute("BEGIN IMMEDIATE")  # another process's writer
        ticks = 0
        async with anyio.create_task_group() as group:
            done = anyio.Event()

            async def reserve() -> None:
                await budgets.reserve(limits, cost=Decimal("0.1"), tokens=0)
                done.set()

            group.start_soon(reserve)
            for _ in range(10):  # the loop keeps running while the reserve waits for the lock
                await anyio.sleep(0.01)
                ticks += 1
            assert not done.is_set()
            other.execute("COMMIT")
            with anyio.fail_after(5):
                await done.wait()
        [daily] = await budgets.status("k", limits["k"])
    finally:
        other.close()
        await budgets.aclose()
    assert ticks == 10
    assert daily.reserved == Decimal("0.2")


@pytest.mark.anyio
async def test_the_sqlite_wal_stays_bounded_under_a_writer_that_never_pauses(
    sqlite_url: str,
) -> None:
    """Checkpoints run in the background; one that never caught up with the writer would let
    the WAL grow by about 30 KB per admission (hundreds of MB in a busy hour)."""
    budgets = open_budgets(sqlite_url)
    limits = {"key:a": Limits(daily_cost=Decimal(1000), requests_per_minute=10**9)}
    wal = Path(parse_store_url(sqlite_url, part="budgets").sqlite_path + "-wal")
    largest = 0
    try:
        for i in range(3000):
            held = await budgets.reserve(limits, cost=Decimal("0.01"), tokens=10)
            await budgets.settle(held, cost=Decimal("0.005"), tokens=5)
            if i % 100 == 0 and wal.exists():
                largest = max(largest, wal.stat().st_size)
        [daily, _] = await budgets.status("key:a", limits["key:a"])
    finally:
        await budgets.aclose()
    assert daily.spent == Decimal("15.000")
    assert 0 < largest < 16 * 2**20
