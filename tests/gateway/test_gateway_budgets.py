"""Budgets and rate limits through the gateway under concurrency, with the official ``openai``
SDK as the client: 100 requests at once on a key whose daily budget fits 10 are answered with
at most 10 successes and 429s naming the budget for the rest; the same for a key made with
``qwenkit keys create NAME --rpm 10`` on the store named by ``QWENKIT_STORE_URL`` while the
gateway runs (it authenticates at once, no restart).

The answers are cut at ``max_tokens`` by the emulator, so a call's real cost equals its
reserved worst case and the budget fits exactly 10 calls, however the settlements interleave
with the admissions."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import openai
import pytest
from emulator_server import serve
from openai.types.chat import ChatCompletionMessageParam

from qwenkit import Settings, UsageRecord
from qwenkit.catalog import estimate_max_cost
from qwenkit.cli import main
from qwenkit.emulator import create_app as emulator_app
from qwenkit.gateway import Gateway, GatewayConfig, create_app
from qwenkit.storage import Limits, Store, recent_records
from qwenkit.tokens import count_messages

MASTER = "qk-master-budgets-0123456789"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me a long story about budgets."}
]
MAX_TOKENS = 8
REQUESTS = 100


@dataclass
class Served:
    url: str
    store_url: str
    gateway: Gateway


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('budgets') / 'store.db'}"
    with serve(emulator_app()) as upstream:
        settings = Settings(api_key="sk-emulator-upstream", base_url=upstream)
        gateway = Gateway(GatewayConfig(store_url=store_url, master_key=MASTER), settings=settings)
        with serve(create_app(gateway)) as url:
            yield Served(url, store_url, gateway)


def burst(served: Served, key: str) -> list[openai.types.chat.ChatCompletion | Exception]:
    """``REQUESTS`` chat calls at once through ``openai.AsyncOpenAI``."""

    async def run() -> list[openai.types.chat.ChatCompletion | Exception]:
        async with openai.AsyncOpenAI(
            api_key=key,
            base_url=served.url + "/compatible-mode/v1",
            max_retries=0,
        ) as client:
            calls = [
                client.chat.completions.create(
                    model="qwen-plus", messages=MESSAGES, max_tokens=MAX_TOKENS
                )
                for _ in range(REQUESTS)
            ]
            return list(await asyncio.gather(*calls, return_exceptions=True))  # type: ignore[arg-type]

    return asyncio.run(run())


def budgets_of(served: Served, key_id: str) -> list[dict[str, str]]:
    answer = httpx.get(
        served.url + "/admin/budgets",
        params={"key": key_id},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert answer.status_code == 200, answer.text
    states: list[dict[str, str]] = answer.json()["budgets"]
    return states


def outcome(
    results: list[openai.types.chat.ChatCompletion | Exception],
) -> tuple[int, list[openai.RateLimitError]]:
    others = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, openai.RateLimitError)
    ]
    assert not others, others[:3]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    return len(results) - len(refused), refused


def test_a_daily_budget_that_fits_ten_admits_ten_of_a_hundred_concurrent_requests(
    served: Served,
) -> None:
    prompt = count_messages(list(MESSAGES), model="qwen-plus").total
    one = estimate_max_cost(prompt, MAX_TOKENS, "qwen-plus", "ap-southeast-1").total
    budget = one * 10 + one / 2

    async def create() -> tuple[str, str]:
        store = Store.open(served.store_url, parts=["keys"])
        try:
            assert store.keys is not None
            made = await store.keys.create("burst", limits=Limits(daily_cost=budget))
            return made.key, made.info.id
        finally:
            await store.aclose()

    key, key_id = asyncio.run(create())
    successes, refused = outcome(burst(served, key))
    assert 9 <= successes <= 10
    assert len(refused) == REQUESTS - successes
    for error in refused:
        assert error.status_code == 429
        message = str(error)
        assert f"key:{key_id}" in message, message
        assert "daily" in message, message

    [state] = budgets_of(served, key_id)
    assert Decimal(state["spent"]) <= budget
    assert Decimal(state["spent"]) == one * successes  # each call cost its worst case
    assert Decimal(state["reserved"]) == 0  # nothing leaked
    records = recorded(served, key_id)
    assert len(records) == REQUESTS  # every request left a record, the refused ones too
    assert sorted(r.http_status or 0 for r in records) == [200] * successes + [429] * len(refused)


def test_a_key_made_by_the_cli_with_rpm_10_is_used_at_once_and_limited(
    served: Served, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QWENKIT_STORE_URL", served.store_url)
    capsys.readouterr()
    main(["keys", "create", "cli-burst", "--rpm", "10", "--json"])
    made = json.loads(capsys.readouterr().out)
    within_one_minute_window()
    successes, refused = outcome(burst(served, made["key"]))
    assert successes == 10
    for error in refused:
        assert error.status_code == 429
        message = str(error)
        assert f"key:{made['id']}" in message, message
        assert "requests-per-minute" in message, message
    records = recorded(served, made["id"])
    assert sorted(r.http_status or 0 for r in records) == [200] * 10 + [429] * (REQUESTS - 10)


def within_one_minute_window() -> None:
    """Wait for the next minute when this one ends within 10 s: the request limit's window is
    the calendar minute, and a burst across its end would be allowed twice."""
    second = datetime.now(timezone.utc).second
    if second >= 50:
        time.sleep(60.5 - second)


def recorded(served: Served, key_id: str) -> list[UsageRecord]:
    ledger = served.gateway.store.ledger
    assert ledger is not None
    assert ledger.flush(timeout=10)
    return recent_records(served.store_url, limit=1000, key_id=key_id)
