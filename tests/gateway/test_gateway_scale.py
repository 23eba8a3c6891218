"""Scale-out: two ``qwenkit serve`` processes on two ports, sharing PostgreSQL (keys, ledger)
and Redis (budgets, response cache), behave as one gateway.

- a key's daily budget that fits 10 calls holds across both: 100 concurrent requests, half to
  each process, are answered at most 10 times, the rest 429 naming the budget;
- a response cached by one process is served by the other (``x-qwenkit-cache: hit``);
- a key created through one process's admin API authenticates on the other at once;
- an asynchronous task submitted through one process is polled through the other, by its key
  only, and recorded once;
- the report of either process sees every request of both, refused ones included.

The upstream is the emulator over real HTTP in this process; the gateways are real processes
started the way users start them (``python -m qwenkit serve``)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from emulator_server import serve
from gateway_process import gateway_processes
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from qwenkit.catalog import estimate_max_cost
from qwenkit.emulator import EmulatorConfig
from qwenkit.emulator import create_app as emulator_app
from qwenkit.tokens import count_messages

MASTER = "qk-master-scale-0123456789"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me a long story about two gateways."}
]
MAX_TOKENS = 8


@pytest.fixture
def gateways(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two gateway processes on the shared stores; their base URLs."""
    tasks = {"text_generation_async": True, "pending_seconds": 0.05, "running_seconds": 0.05}
    with serve(emulator_app(EmulatorConfig.model_validate({"tasks": tasks}))) as upstream:
        env = {
            **os.environ,
            "DASHSCOPE_API_KEY": "sk-emulator-upstream",
            "QWENKIT_BASE_URL": upstream,
            "QWENKIT_STORE_URL": postgres_url,
            "QWENKIT_BUDGETS_URL": redis_url,
            "QWENKIT_CACHE_URL": redis_url,
            "QWENKIT_MASTER_KEY": MASTER,
            "QWENKIT_GATEWAY_CACHE": "true",
            "QWENKIT_HOME": str(tmp_path),
        }
        with gateway_processes(env, tmp_path, [[], []]) as urls:
            yield urls


def admin(
    url: str,
    method: str,
    path: str,
    *,
    json: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.request(
        method,
        url + path,
        json=json,
        params=params,
        headers={"authorization": f"Bearer {MASTER}"},
        timeout=10,
    )


def burst(urls: list[str], key: str, each: int) -> list[ChatCompletion | Exception]:
    """``each`` requests at once to every gateway, through ``openai.AsyncOpenAI``."""

    async def run() -> list[ChatCompletion | Exception]:
        clients = [
            openai.AsyncOpenAI(api_key=key, base_url=url + "/v1", max_retries=0) for url in urls
        ]
        try:
            calls = [
                client.chat.completions.create(
                    model="qwen-plus", messages=MESSAGES, max_tokens=MAX_TOKENS
                )
                for client in clients
                for _ in range(each)
            ]
            return list(await asyncio.gather(*calls, return_exceptions=True))  # type: ignore[arg-type]
        finally:
            for client in clients:
                await client.close()

    return asyncio.run(run())


def test_two_processes_on_shared_stores_behave_as_one_gateway(gateways: list[str]) -> None:
    first, second = gateways
    one = estimate_max_cost(
        count_messages(list(MESSAGES), model="qwen-plus").total, MAX_TOKENS, "qwen-plus"
    ).total
    budget = one * 10 + one / 2
    made = admin(first, "POST", "/admin/keys", json={"name": "shared", "daily_budget": str(budget)})
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]

    # the budget holds across the two processes
    results = burst(gateways, key, each=50)
    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, openai.RateLimitError)
    ]
    assert not unexpected, unexpected[:3]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    successes = len(results) - len(refused)
    assert 9 <= successes <= 10
    assert all(f"key:{key_id}" in str(error) for error in refused)
    [state] = admin(second, "GET", "/admin/budgets", params={"key": key_id}).json()["budgets"]
    assert Decimal(state["spent"]) == one * successes
    assert Decimal(state["spent"]) <= budget
    assert Decimal(state["reserved"]) == 0

    # an answer cached by one process is served by the other
    open_key = admin(first, "POST", "/admin/keys", json={"name": "cache"}).json()
    body = {"model": "qwen-plus", "temperature": 0, "max_tokens": 16,
            "messages": [{"role": "user", "content": "Cache me across processes."}]}  # fmt: skip
    answers = [
        httpx.post(
            url + "/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {open_key['key']}"},
            timeout=10,
        )
        for url in (first, second)
    ]
    assert [a.status_code for a in answers] == [200, 200], answers[1].text
    assert [a.headers["x-qwenkit-cache"] for a in answers] == ["miss", "hit"]
    assert answers[0].json()["choices"][0]["message"] == answers[1].json()["choices"][0]["message"]

    # a task submitted through one process is followed through the other, by its key only
    tasker = admin(first, "POST", "/admin/keys", json={"name": "tasks"}).json()
    bearer = {"authorization": f"Bearer {tasker['key']}"}
    submitted = httpx.post(
        first + "/api/v1/services/aigc/text-generation/generation",
        json={"model": "qwen-plus", "input": {"messages": [{"role": "user", "content": "Hi"}]}},
        headers={**bearer, "x-dashscope-async": "enable"},
        timeout=10,
    )
    assert submitted.status_code == 200, submitted.text
    task_url = f"/api/v1/tasks/{submitted.json()['output']['task_id']}"
    deadline = time.monotonic() + 10
    while True:
        polled = httpx.get(second + task_url, headers=bearer, timeout=10)
        assert polled.status_code == 200, polled.text
        if polled.json()["output"]["task_status"] == "SUCCEEDED" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert polled.json()["output"]["choices"][0]["message"]["content"]
    again = httpx.get(first + task_url, headers=bearer, timeout=10)  # the other process too
    assert again.json()["output"]["task_status"] == "SUCCEEDED"
    stranger = {"authorization": f"Bearer {open_key['key']}"}
    assert httpx.get(second + task_url, headers=stranger, timeout=10).status_code == 404

    # the report of either process sees every request of both, the task's once
    deadline = time.monotonic() + 15
    while True:
        report = admin(second, "GET", "/admin/report", params={"since": "1d", "by": "key"}).json()
        rows = {row["group"]: row for row in report["rows"]}
        counts = (
            rows.get(key_id, {}).get("requests"),
            rows.get(open_key["id"], {}).get("requests"),
            rows.get(tasker["id"], {}).get("requests"),
        )
        if counts == (100, 2, 1) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert counts == (100, 2, 1)
    assert rows[key_id]["ok"] == successes
    assert rows[key_id]["errors"] == 100 - successes
