"""Reports over the ledger: every number of a small hand-computed ledger, on SQLite and
PostgreSQL alike; grouping by each dimension and by local day; the week-over-week bloat flag."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, text

from qwenkit import StorageError, UsageRecord
from qwenkit.storage import parse_store_url, upgrade_store
from qwenkit.storage._reports import parse_since, percentile, recent_records, usage_report
from qwenkit.storage._rows import record_to_row
from qwenkit.storage._schema import usage
from qwenkit.storage._sql import sync_engine

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
BASE = UsageRecord(
    timestamp=NOW - timedelta(hours=1), request_id="r", model="qwen-plus", task="chat",
    endpoint="faq", key_id="k1", region="ap-southeast-1", stream=False, prompt_tokens=1000,
    completion_tokens=100, cached_tokens=500, cache_creation_tokens=0, reasoning_tokens=0,
    cost=Decimal("0.000500"), currency="USD", latency_s=1.0, ttft_s=0.2, status="ok",
    http_status=None, error_code=None, cache_hit=False, attempts=1, finish_reason="stop",
    environment="prod",
)  # fmt: skip


def seed(url: str, records: list[UsageRecord]) -> None:
    upgrade_store(url)
    engine = sync_engine(parse_store_url(url, part="ledger"))
    try:
        with engine.begin() as conn:
            rows = [record_to_row(replace(r, record_id=uuid.uuid4().hex)) for r in records]
            conn.execute(insert(usage), rows)
    finally:
        engine.dispose()


def ledger() -> list[UsageRecord]:
    """faq: 4 calls (one error, one edge-cache hit); summarize: 2 calls on qwen-max, key k2."""
    return [
        replace(BASE, latency_s=1.0, ttft_s=0.1),
        replace(BASE, latency_s=2.0, ttft_s=0.3, reasoning_tokens=50),
        replace(BASE, latency_s=4.0, ttft_s=None, status="error", http_status=429,
                error_code="Throttling", prompt_tokens=0, completion_tokens=0, cached_tokens=0,
                cost=None, attempts=3),
        replace(BASE, latency_s=0.01, ttft_s=0.005, cache_hit=True, cost=Decimal(0), attempts=0),
        replace(BASE, endpoint="summarize", model="qwen-max", key_id="k2", prompt_tokens=3000,
                cached_tokens=0, cost=Decimal("0.004800"), latency_s=3.0, ttft_s=0.5),
        replace(BASE, endpoint="summarize", model="qwen-max", key_id="k2", prompt_tokens=3000,
                cached_tokens=0, cost=Decimal("0.004800"), latency_s=5.0, ttft_s=0.7,
                status="cancelled"),
        replace(BASE, timestamp=NOW - timedelta(days=30)),  # outside the range
    ]  # fmt: skip


def test_every_number_of_a_small_ledger(sql_url: str) -> None:
    seed(sql_url, ledger())
    report = usage_report(sql_url, since=NOW - timedelta(days=7), until=NOW)
    rows = {row.group: row for row in report.rows}
    assert [row.group for row in report.rows] == ["summarize", "faq"]  # by cost, highest first
    faq = rows["faq"]
    assert (faq.requests, faq.ok, faq.errors, faq.cancelled) == (4, 3, 1, 0)
    assert faq.error_rate == 0.25
    assert (faq.prompt_tokens, faq.completion_tokens, faq.cached_tokens) == (3000, 300, 1500)
    assert faq.reasoning_tokens == 50
    assert faq.cost == Decimal("0.001000")
    assert faq.currency == "USD"
    assert faq.prefix_cache_hit_rate == 0.5
    assert faq.edge_cache_hit_rate == 0.25
    latencies = [1.0, 2.0, 4.0, 0.01]
    assert faq.latency_p50 == pytest.approx(statistics.median(latencies))
    assert faq.latency_p95 == pytest.approx(
        statistics.quantiles(latencies, n=20, method="inclusive")[-1]
    )
    assert faq.ttft_p50 == pytest.approx(0.1)  # the error had no first token
    assert faq.prompt_tokens_per_request == 750
    total = report.total
    assert total.group == "total"
    assert total.requests == 6
    assert total.cost == Decimal("0.010600")
    assert total.prefix_cache_hit_rate == pytest.approx(1500 / 9000)
    data = report.to_dict()
    assert data["total"]["requests"] == 6
    assert data["total"]["cost"] == "0.0106"
    assert {row["group"] for row in data["rows"]} == {"faq", "summarize"}


@pytest.mark.parametrize(
    ("by", "groups"),
    [("model", {"qwen-plus": 4, "qwen-max": 2}), ("key", {"k1": 4, "k2": 2}), ("env", {"prod": 6})],
)
def test_grouping_by_each_dimension(sqlite_url: str, by: str, groups: dict[str, int]) -> None:
    seed(sqlite_url, ledger())
    report = usage_report(sqlite_url, since=NOW - timedelta(days=7), until=NOW, by=by)  # type: ignore[arg-type]
    assert {row.group: row.requests for row in report.rows} == groups


def test_days_are_local_days(sqlite_url: str) -> None:
    late = datetime(2026, 12, 5, 17, 0, tzinfo=timezone.utc)  # 01:00 on the 6th in Shanghai
    seed(
        sqlite_url,
        [replace(BASE, timestamp=late), replace(BASE, timestamp=late - timedelta(hours=2))],
    )
    since = NOW - timedelta(days=2)
    utc = usage_report(sqlite_url, since=since, until=NOW, by="day")
    shanghai = usage_report(sqlite_url, since=since, until=NOW, by="day", tz="Asia/Shanghai")
    assert [(r.group, r.requests) for r in utc.rows] == [("2026-12-05", 2)]
    assert [(r.group, r.requests) for r in shanghai.rows] == [("2026-12-05", 1), ("2026-12-06", 1)]


def test_hours_in_time_order_and_filters_narrow_every_number(sql_url: str) -> None:
    seed(
        sql_url,
        [
            replace(BASE, timestamp=NOW - timedelta(minutes=30)),
            replace(BASE, timestamp=NOW - timedelta(minutes=150), key_id="k2"),
            replace(BASE, timestamp=NOW - timedelta(minutes=170), endpoint="summarize"),
        ],
    )
    since = NOW - timedelta(hours=24)
    hours = usage_report(sql_url, since=since, until=NOW, by="hour")
    assert [(r.group, r.requests) for r in hours.rows] == [
        ("2026-12-06T09:00", 2),
        ("2026-12-06T11:00", 1),
    ]
    only = usage_report(sql_url, since=since, until=NOW, by="hour", key_id="k2")
    assert [(r.group, r.requests) for r in only.rows] == [("2026-12-06T09:00", 1)]
    assert only.total.requests == 1
    assert only.total.cost == BASE.cost
    faq = usage_report(sql_url, since=since, until=NOW, by="endpoint", endpoint="faq")
    assert [(r.group, r.requests) for r in faq.rows] == [("faq", 2)]
    assert [g.endpoint for g in faq.week_over_week] == ["faq"]


def test_a_prompt_that_tripled_is_flagged_and_one_that_grew_a_little_is_not(sql_url: str) -> None:
    last_week = NOW - timedelta(days=10)
    seed(sql_url, [
        replace(BASE, endpoint="rag", prompt_tokens=1000, timestamp=last_week),
        replace(BASE, endpoint="rag", prompt_tokens=3000),
        replace(BASE, endpoint="chat", prompt_tokens=1000, timestamp=last_week),
        replace(BASE, endpoint="chat", prompt_tokens=1200),
        replace(BASE, endpoint="new", prompt_tokens=500),
    ])  # fmt: skip
    report = usage_report(sql_url, since=NOW - timedelta(days=7), until=NOW)
    growth = {g.endpoint: g for g in report.week_over_week}
    assert growth["rag"].ratio == pytest.approx(3.0)
    assert growth["rag"].bloat
    assert growth["chat"].ratio == pytest.approx(1.2)
    assert not growth["chat"].bloat
    assert growth["new"].ratio is None
    assert not growth["new"].bloat
    strict = usage_report(sql_url, since=NOW - timedelta(days=7), until=NOW, bloat_threshold=1.1)
    assert {g.endpoint for g in strict.week_over_week if g.bloat} == {"rag", "chat"}


def test_the_request_log_is_newest_first_and_filtered(sql_url: str) -> None:
    seed(sql_url, ledger())
    newest = recent_records(sql_url, limit=3)
    assert len(newest) == 3
    assert [r.timestamp for r in newest] == sorted((r.timestamp for r in newest), reverse=True)
    assert {r.endpoint for r in recent_records(sql_url, endpoint="summarize")} == {"summarize"}
    [failed] = recent_records(sql_url, status="error")
    assert failed.error_code == "Throttling"
    assert failed.cost is None


def test_the_range_query_uses_an_index(sqlite_url: str) -> None:
    upgrade_store(sqlite_url)
    engine = sync_engine(parse_store_url(sqlite_url, part="ledger"))
    try:
        with engine.connect() as conn:
            plan = conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT * FROM qk_usage WHERE endpoint = 'a' AND ts >= '2026-12-01'"
                )
            ).all()
    finally:
        engine.dispose()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_qk_usage_endpoint_ts" in detail, detail


def test_percentiles_and_durations() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.95) == 5.0
    assert parse_since("24h", now=NOW) == NOW - timedelta(hours=24)
    assert parse_since("2w", now=NOW) == NOW - timedelta(weeks=2)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="not a duration"):
        parse_since("last week")


def test_an_unmigrated_store_is_one_clear_error(tmp_path: object) -> None:
    with pytest.raises(StorageError, match="never migrated"):
        usage_report(f"sqlite:///{tmp_path}/empty.db", since=NOW - timedelta(days=1), until=NOW)


def test_the_reports_api_is_public_in_qwenkit_storage(sqlite_url: str) -> None:
    import qwenkit.storage as storage

    seed(sqlite_url, ledger())
    report = storage.usage_report(sqlite_url, since=NOW - timedelta(days=7), until=NOW)
    assert isinstance(report, storage.UsageReport)
    assert report.total.requests == 6
    assert storage.recent_records(sqlite_url, limit=1)[0].model in ("qwen-plus", "qwen-max")
    assert storage.parse_since("7d", now=NOW) == NOW - timedelta(days=7)
    with pytest.raises(AttributeError):
        storage.no_such_name  # noqa: B018
