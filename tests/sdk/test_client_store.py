"""The clients with a store: every call in the ledger (rejected and cancelled ones too), budgets
refusing before anything is sent, the store's response cache, tags, settings and closing."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from qwenkit import (
    BudgetExceededError,
    Limits,
    PromptCapture,
    Qwen,
    Settings,
    Store,
    UsageError,
    UsageRecord,
    ValidationError,
)
from qwenkit.emulator import create_app
from qwenkit.storage import parse_store_url
from qwenkit.storage._rows import record_from_row
from qwenkit.storage._schema import usage
from qwenkit.storage._sql import sync_engine
from qwenkit.testing import StreamingASGITransport, emulated


def ledger_rows(url: str) -> list[UsageRecord]:
    engine = sync_engine(parse_store_url(url, part="ledger"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(usage).order_by(usage.c.ts)).all()
        return [record_from_row(row) for row in rows]
    finally:
        engine.dispose()


@pytest.mark.anyio
async def test_every_call_lands_in_the_ledger_with_its_tags(sqlite_url: str) -> None:
    async with emulated(store=sqlite_url, usage_sinks=[], tags={"environment": "prod"}) as client:
        summarize = client.with_tags(endpoint="summarize")
        await summarize.chat("Why is the sky blue?", max_tokens=20)
        async with client.stream("Tell me a long story", max_tokens=200) as stream:
            async for _ in stream:
                break  # the consumer leaves early: a cancelled call
        with pytest.raises(ValidationError):
            await client.chat("hi", temperature=5)  # refused before sending
    records = ledger_rows(sqlite_url)
    assert [r.status for r in records] == ["ok", "cancelled", "error"]
    ok, cancelled, refused = records
    assert ok.endpoint == "summarize"
    assert ok.environment == "prod"
    assert ok.prompt_tokens > 0
    assert ok.completion_tokens > 0
    assert ok.cost
    assert ok.cost > 0
    assert ok.prompt is None  # no prompt text unless captured
    assert cancelled.endpoint is None
    assert cancelled.environment == "prod"
    assert refused.error_code == "ValidationError"
    assert refused.attempts == 0


@pytest.mark.anyio
async def test_prompt_capture_is_opt_in_and_redacted(sqlite_url: str) -> None:
    capture = PromptCapture(
        rate=1.0, redact=lambda text: text.replace("alice@example.com", "<email>")
    )
    async with emulated(store=sqlite_url, usage_sinks=[], prompt_capture=capture) as client:
        await client.chat("Mail alice@example.com the report", max_tokens=10)
    [record] = ledger_rows(sqlite_url)
    assert record.prompt is not None
    assert "<email>" in record.prompt
    assert "alice@example.com" not in record.prompt


@pytest.mark.anyio
async def test_a_budget_refuses_before_sending_and_the_refusal_is_recorded(
    sqlite_url: str,
) -> None:
    # qwen-plus, 2,000 max tokens: the worst case is well above 0.0001 USD; one call fits 0.01.
    limits = Limits(daily_cost=Decimal("0.002"))
    async with emulated(store=sqlite_url, usage_sinks=[], budget=limits) as client:
        await client.chat("Why is the sky blue?", max_tokens=50)
        with pytest.raises(BudgetExceededError) as refused:
            await client.chat("Why is the sky blue?", max_tokens=8000)
        assert client.store is not None
        assert client.store.budgets is not None
        [daily] = await client.store.budgets.status("sdk", limits)
    error = refused.value
    assert error.scope == "sdk"
    assert error.kind == "daily_cost"
    assert error.code == "BudgetExceeded"
    assert error.limit == Decimal("0.002")
    assert error.spent > 0
    assert daily.reserved == 0
    assert 0 < daily.spent < Decimal("0.002")
    first, second = ledger_rows(sqlite_url)
    assert first.status == "ok"
    assert first.cost == daily.spent
    assert (second.status, second.http_status, second.error_code) == (
        "error",
        429,
        "BudgetExceeded",
    )
    assert second.attempts == 0


@pytest.mark.anyio
async def test_a_rate_limit_counts_requests(sqlite_url: str) -> None:
    async with emulated(
        store=sqlite_url, usage_sinks=[], budget={"env:ci": Limits(requests_per_minute=2)}
    ) as client:
        await client.chat("one", max_tokens=5)
        await client.chat("two", max_tokens=5)
        with pytest.raises(BudgetExceededError) as refused:
            await client.chat("three", max_tokens=5)
    assert refused.value.kind == "requests_per_minute"
    assert refused.value.code == "RateLimited"
    assert refused.value.scope == "env:ci"
    assert 0 < refused.value.retry_after <= 60


@pytest.mark.anyio
async def test_the_store_cache_serves_a_repeat_and_counts_it(sqlite_url: str) -> None:
    async with emulated(store=sqlite_url, usage_sinks=[], cache=True) as client:
        tagged = client.with_tags(endpoint="faq")
        first = await tagged.chat("What is Qwen?", temperature=0, max_tokens=30)
        again = await tagged.chat("What is Qwen?", temperature=0, max_tokens=30)
        assert again.content == first.content
        assert client.cache_policy is not None
        assert client.cache_policy.stats.hit_rate("faq") == 0.5
    records = ledger_rows(sqlite_url)
    assert [r.cache_hit for r in records] == [False, True]
    assert records[1].cost == 0
    assert records[1].attempts == 0


@pytest.mark.anyio
async def test_a_budget_or_cache_without_a_store_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="budget= needs a store"):
        async with emulated(budget=Limits(requests_per_minute=1)):
            pass
    with pytest.raises(UsageError, match="cache=True needs a store"):
        async with emulated(cache=True):
            pass


@pytest.mark.anyio
async def test_the_store_comes_from_the_settings(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWENKIT_STORE_URL", sqlite_url)
    async with emulated(usage_sinks=[]) as client:
        assert client.store is not None
        assert client.store.ledger is not None
        await client.chat("hi", max_tokens=5)
    assert len(ledger_rows(sqlite_url)) == 1


@pytest.mark.anyio
async def test_a_passed_store_stays_open_and_is_shared(sqlite_url: str) -> None:
    store = Store.open(sqlite_url, settings=Settings(), parts=["ledger"])
    try:
        for _ in range(2):
            async with emulated(store=store, usage_sinks=[]) as client:
                await client.chat("hi", max_tokens=5)
        assert store.ledger is not None
        assert store.ledger.flush(5)
        assert len(ledger_rows(sqlite_url)) == 2
    finally:
        await store.aclose()


def test_the_sync_client_flushes_on_close(tmp_path: Path) -> None:
    import httpx

    url = f"sqlite:///{tmp_path / 'sync.db'}"
    http = httpx.AsyncClient(transport=StreamingASGITransport(create_app()))
    with Qwen(
        api_key="sk-x", base_url="http://emulator", http_client=http, store=url, usage_sinks=[]
    ) as client:
        client.chat("hi", max_tokens=5)
        client.with_tags(endpoint="e2").chat("hi again", max_tokens=5)
    assert [r.endpoint for r in ledger_rows(url)] == [None, "e2"]
