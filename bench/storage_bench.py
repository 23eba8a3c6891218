"""Benchmark the stores: budget admission, the ledger, the response cache, and what a store
costs the SDK per call.

Run: ``uv run --no-sync python bench/storage_bench.py`` (about two minutes). Needs the machine's
PostgreSQL (``QWENKIT_TEST_POSTGRES``, default ``postgresql://root@127.0.0.1:5432/test``: a
temporary database is created and dropped) and Redis (``QWENKIT_TEST_REDIS``; a unique key
prefix, deleted afterwards); a backend that is not reachable is reported as skipped. Each figure
has a baseline measured in the same run, on the same backend:

- **admission**: ``reserve`` + ``settle`` of one call against a key and an environment scope
  (daily money, rpm, tpm: 6 counters), one at a time; p50/p99. Baseline: the backend's floor, one
  trivial round trip (SQLite ``SELECT 1`` in a worker thread, PostgreSQL ``SELECT 1``, Redis
  ``PING``). Goals: p99 <= 1 ms on Redis, <= 2 ms on SQLite.
- **ledger**: records/s from the first ``emit`` until ``close()`` returned (everything written),
  fed as fast as one thread can; baseline: one ``INSERT`` + commit per record, the "write the
  spend log on the request path" design. Goal: >= 20,000/s on PostgreSQL.
- **cache**: ``set`` and ``get`` (a hit) of a 40-event answer, p50/p99; baseline: ``MemoryCache``.
- **sdk**: ``AsyncQwen.chat`` against the emulator over HTTP (a subprocess, so its CPU is not
  ours), with ``store="sqlite:///..."`` (the ledger) against the same client without a store,
  alternating in rounds; this process's CPU per call (the ledger's writer thread included).
  Goal: <= 5 % more CPU per call.

Results are printed and written to ``bench/results/storage.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench_support import percentile

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "storage.json"
POSTGRES = os.environ.get("QWENKIT_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/test")
REDIS = os.environ.get("QWENKIT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5) * 1000, 3),
        "p99_ms": round(percentile(values, 0.99) * 1000, 3),
    }


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    out: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - start)
    return out


# -- backends -------------------------------------------------------------------------------------


class Backends:
    """The three backends' URLs: a SQLite file, a temporary PostgreSQL database, a Redis prefix."""

    def __init__(self, workdir: Path) -> None:
        self.sqlite = f"sqlite:///{workdir / 'bench.db'}"
        self.postgres: str | None = None
        self.redis: str | None = None
        self._pg_name = f"qk_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._prefix = f"qkbench:{uuid.uuid4().hex[:8]}:"
        try:
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE DATABASE "{self._pg_name}"')
            self.postgres = POSTGRES.rsplit("/", 1)[0] + f"/{self._pg_name}"
        except Exception as exc:  # reported, not fatal: the other backends still run
            print(f"PostgreSQL skipped: {exc}", file=sys.stderr)
        try:
            import redis

            redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
            self.redis = f"{REDIS}{'&' if '?' in REDIS else '?'}prefix={self._prefix}"
        except Exception as exc:
            print(f"Redis skipped: {exc}", file=sys.stderr)

    def sql(self) -> dict[str, str]:
        return {"sqlite": self.sqlite, **({"postgresql": self.postgres} if self.postgres else {})}

    def all(self) -> dict[str, str]:
        return {**self.sql(), **({"redis": self.redis} if self.redis else {})}

    def close(self) -> None:
        if self.postgres:
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
        if self.redis:
            import redis

            client = redis.Redis.from_url(REDIS)
            keys = list(client.scan_iter(match=f"{self._prefix}*", count=1000))
            if keys:
                client.delete(*keys)


async def floor(url: str) -> Callable[[], Awaitable[Any]]:
    """One trivial round trip to the backend of ``url``."""
    from qwenkit.storage import parse_store_url

    parsed = parse_store_url(url, part="budgets")
    if parsed.backend == "redis":
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(parsed.redis())
        return client.ping
    import anyio.to_thread
    from sqlalchemy import text

    from qwenkit.storage._sql import sync_engine

    engine = sync_engine(parsed)

    def select_one() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return lambda: anyio.to_thread.run_sync(select_one)


# -- the figures ------------------------------------------------------------------------------------


async def admission(url: str, n: int) -> dict[str, Any]:
    from qwenkit.storage import Limits, upgrade_store
    from qwenkit.storage._budgets import open_budgets

    if not url.startswith("redis"):
        upgrade_store(url)
    budgets = open_budgets(url, migrate=False)
    scopes = {
        "key:bench": Limits(
            daily_cost=Decimal(10**6), requests_per_minute=10**9, tokens_per_minute=10**12
        ),
        "env:bench": Limits(
            daily_cost=Decimal(10**6), requests_per_minute=10**9, tokens_per_minute=10**12
        ),
    }

    async def one() -> None:
        held = await budgets.reserve(scopes, cost=Decimal("0.0123"), tokens=3000)
        await budgets.settle(held, cost=Decimal("0.004"), tokens=900)

    await timed(one, 50)
    times = await timed(one, n)
    base = await floor(url)
    await timed(base, 50)
    baseline = await timed(base, n)
    await budgets.aclose()
    return {**ms(times), "floor": ms(baseline), "calls": n}


def record(i: int) -> Any:
    from qwenkit import UsageRecord

    return UsageRecord(
        timestamp=datetime.now(timezone.utc), request_id=f"req-{i}", model="qwen-plus",
        task="chat", endpoint=f"endpoint-{i % 7}", key_id="bench", region="ap-southeast-1",
        stream=bool(i % 2), prompt_tokens=1200, completion_tokens=300, cached_tokens=1024,
        cache_creation_tokens=0, reasoning_tokens=0, cost=Decimal("0.000412"), currency="USD",
        latency_s=0.8, ttft_s=0.2, status="ok", http_status=None, error_code=None,
        cache_hit=False, attempts=1, finish_reason="stop", environment="prod",
    )  # fmt: skip


def ledger(url: str, n: int, naive_n: int) -> dict[str, Any]:
    from sqlalchemy import insert

    from qwenkit.storage import parse_store_url, upgrade_store
    from qwenkit.storage._ledger import open_ledger
    from qwenkit.storage._rows import record_to_row
    from qwenkit.storage._schema import usage
    from qwenkit.storage._sql import sync_engine

    upgrade_store(url)
    template = record(0)
    records = [replace(template, record_id=uuid.uuid4().hex) for _ in range(n)]
    log = open_ledger(url, migrate=False, queue_size=20_000)
    start = time.perf_counter()
    for item in records:
        log.emit(item)
    emitted = time.perf_counter() - start
    log.close(120)
    batched = time.perf_counter() - start
    stats = log.stats
    engine = sync_engine(parse_store_url(url, part="ledger"))
    rows = [record_to_row(replace(template, record_id=uuid.uuid4().hex)) for _ in range(naive_n)]
    start = time.perf_counter()
    for row in rows:
        with engine.begin() as conn:
            conn.execute(insert(usage), [row])
    naive = time.perf_counter() - start
    engine.dispose()
    return {
        "records": n,
        "records_per_s": round(n / batched),
        "emit_us": round(emitted / n * 1e6, 2),
        "spilled": stats.spilled,
        "naive_records_per_s": round(naive_n / naive),
        "ratio_to_naive": round((n / batched) / (naive_n / naive), 1),
    }


async def cache(url: str | None, n: int) -> dict[str, Any]:
    from qwenkit import MemoryCache
    from qwenkit._core.cache import CachedResponse
    from qwenkit.types import (
        ContentDelta,
        Event,
        Finished,
        ResponseStarted,
        Usage,
        UsageReported,
    )

    events: list[Event] = [ResponseStarted(id="r", model="qwen-plus")]
    events += [ContentDelta(text=f"token {i} ") for i in range(38)]
    events += [UsageReported(Usage(prompt_tokens=100, completion_tokens=38, total_tokens=138))]
    events += [Finished(reason="stop")]
    value = CachedResponse(tuple(events))
    if url is None:
        store: Any = MemoryCache(max_entries=n * 2)
    else:
        from qwenkit.storage._cache import open_cache

        store = open_cache(url, max_entries=n * 2)
    keys = [uuid.uuid4().hex for _ in range(n)]
    it = iter(keys)
    puts = await timed(lambda: store.set(next(it), value), n)
    hit = iter(keys)
    gets = await timed(lambda: store.get(next(hit)), n)
    if url is not None:
        await store.aclose()
    return {"put": ms(puts), "get": ms(gets), "entries": n}


def sdk(rounds: int, per_round: int, workdir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from qwenkit import AsyncQwen
    from sdk_bench import KEY, Emulator

    emulator = Emulator()
    url = f"sqlite:///{workdir / 'sdk.db'}"
    cpu: dict[str, list[float]] = {"no store": [], "sqlite store": []}

    async def run() -> None:
        async with (
            AsyncQwen(api_key=KEY, base_url=emulator.url, usage_sinks=[]) as plain,
            AsyncQwen(api_key=KEY, base_url=emulator.url, usage_sinks=[], store=url) as stored,
        ):
            clients = {"no store": plain, "sqlite store": stored}
            for client in clients.values():
                for _ in range(20):
                    await client.chat("Why is the sky blue?", max_tokens=16)
            for turn in range(rounds):
                order = list(clients.items())
                order = order if turn % 2 else order[::-1]
                for name, client in order:
                    start = time.process_time()
                    for _ in range(per_round):
                        await client.chat("Why is the sky blue?", max_tokens=16)
                    if name == "sqlite store":
                        assert client.store is not None
                        assert client.store.ledger is not None
                        client.store.ledger.flush(10)  # its writes count in this batch
                    cpu[name].append((time.process_time() - start) / per_round)

    try:
        asyncio.run(run())
    finally:
        emulator.stop()
    medians = {name: sorted(values)[len(values) // 2] for name, values in cpu.items()}
    return {
        "cpu_ms_per_call": {name: round(value * 1000, 3) for name, value in medians.items()},
        "cpu_ratio": round(medians["sqlite store"] / medians["no store"], 3),
        "calls": rounds * per_round,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--admissions", type=int, default=2000)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--naive-records", type=int, default=2000)
    parser.add_argument("--cache-entries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=40)
    args = parser.parse_args()
    results: dict[str, Any] = {"admission": {}, "ledger": {}, "cache": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        backends = Backends(workdir)
        try:
            for name, url in backends.all().items():
                results["admission"][name] = asyncio.run(admission(url, args.admissions))
                print(f"admission {name}: {results['admission'][name]}")
            for name, url in backends.sql().items():
                results["ledger"][name] = ledger(url, args.records, args.naive_records)
                print(f"ledger {name}: {results['ledger'][name]}")
            results["cache"]["memory"] = asyncio.run(cache(None, args.cache_entries))
            for name, url in backends.all().items():
                results["cache"][name] = asyncio.run(cache(url, args.cache_entries))
                print(f"cache {name}: {results['cache'][name]}")
            results["sdk"] = sdk(args.rounds, args.per_round, workdir)
            print(f"sdk: {results['sdk']}")
        finally:
            backends.close()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "storage",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **results,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
