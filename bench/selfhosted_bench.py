"""Benchmark the self-hosted path against a real llama.cpp server, in one run.

Run: ``uv run --no-sync python bench/selfhosted_bench.py [--pairs 30]`` after ``make llama``
(``scripts/llama-server.sh build``). It starts ``llama-server`` (SmolLM2-135M, Qwen3's template,
one thread, as the ``llama`` tests run it) and measures:

- **after a stream**: llama.cpp closes the connection after every streamed answer while
  announcing keep-alive, so a pooling client's next request meets a dead connection. Each pair is
  a short stream then a short non-streaming call on the same client; the figure is the latency
  of that call, and how many requests were sent again, for the ``openai`` SDK (default settings:
  it retries the failed request after its backoff), qwenkit's
  ``AsyncQwen(upstream="openai-compatible")`` (sends it again at once on a new connection) and,
  as the floor, ``httpx`` with a new connection for every request;
- **the ``<think>`` splitter**: CPU per content event of ``qwenkit.streaming.split_think_tags``
  over a stream whose reasoning is inline, character by character, against passing the same
  events through untouched.

It writes ``bench/results/selfhosted.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai

from bench_support import free_port, percentile
from qwenkit import AsyncQwen, RetryPolicy
from qwenkit.types import ContentDelta, Event, Finished

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "selfhosted.json"
MODEL = "qwen3-0.6b"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "llama-server.sh"), "paths"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    paths = dict(line.split("=", 1) for line in out.splitlines())
    if not Path(paths["LLAMA_SERVER"]).exists():
        sys.exit("llama-server is not built: run `make llama` first")
    port = free_port()
    command = [
        paths["LLAMA_SERVER"], "-m", paths["LLAMA_MODEL"], "-t", "1", "--jinja",
        "--chat-template-file", paths["LLAMA_TEMPLATE"], "--reasoning-format", "deepseek",
        "--host", "127.0.0.1", "--port", str(port), "-c", "4096",
    ]  # fmt: skip
    with log.open("wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    sys.exit("llama-server did not start")


OFF = {"chat_template_kwargs": {"enable_thinking": False}}
"""Both clients send the same body: thinking off (as qwenkit sends ``thinking=False``)."""


def counting_client() -> tuple[httpx.AsyncClient, list[int]]:
    """An httpx client that counts the requests it sends (a retry or a resend is one more)."""
    sent = [0]

    async def count(request: httpx.Request) -> None:
        sent[0] += 1

    return httpx.AsyncClient(event_hooks={"request": [count]}), sent


async def openai_pairs(base: str, pairs: int) -> tuple[list[float], int]:
    times = []
    sent = [0]

    async def count(request: Any) -> None:
        sent[0] += 1

    http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [count]})
    messages: Any = QUESTION
    async with openai.AsyncOpenAI(api_key="none", base_url=base, http_client=http) as client:
        for _ in range(pairs):
            stream = await client.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=8, temperature=0, stream=True,
                extra_body=OFF,
            )  # fmt: skip
            async for _chunk in stream:
                pass
            started = time.perf_counter()
            await client.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=8, temperature=0, extra_body=OFF
            )
            times.append(time.perf_counter() - started)
    return times, sent[0] - 2 * pairs


async def qwenkit_pairs(base: str, pairs: int) -> tuple[list[float], int]:
    times = []
    retry = RetryPolicy(max_attempts=1)  # only the resend may save a call here
    http, sent = counting_client()
    async with (
        http,
        AsyncQwen(
            upstream="openai-compatible",
            base_url=base,
            retry=retry,
            usage_sinks=[],
            http_client=http,
        ) as client,
    ):
        for _ in range(pairs):
            async with client.stream(
                QUESTION, model=MODEL, max_tokens=8, temperature=0, thinking=False
            ) as stream:
                await stream.get_result()
            started = time.perf_counter()
            await client.chat(QUESTION, model=MODEL, max_tokens=8, temperature=0, thinking=False)
            times.append(time.perf_counter() - started)
    return times, sent[0] - 2 * pairs


async def fresh_pairs(base: str, pairs: int) -> tuple[list[float], int]:
    times = []
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 8, "temperature": 0, **OFF}
    for _ in range(pairs):
        async with httpx.AsyncClient() as client:
            await client.post(base + "/chat/completions", json={**body, "stream": True})
        started = time.perf_counter()
        async with httpx.AsyncClient() as client:
            (await client.post(base + "/chat/completions", json=body)).raise_for_status()
        times.append(time.perf_counter() - started)
    return times, 0


def summary(measured: tuple[list[float], int]) -> dict[str, float]:
    times, extra = measured
    return {
        "p50_ms": round(percentile(times, 0.5) * 1000, 1),
        "p95_ms": round(percentile(times, 0.95) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "requests_sent_again": extra,
    }


async def splitter_cost(events_per_run: int = 20_000, runs: int = 5) -> dict[str, float]:
    from qwenkit.streaming import split_think_tags

    text = "<think>\n" + "step by step " * (events_per_run // 26) + "\n</think>\n\n"
    text += "The answer is Paris. " * (events_per_run // 40)
    events: list[Event] = [ContentDelta(ch) for ch in text]
    events.append(Finished("stop"))

    async def source() -> AsyncIterator[Event]:
        for event in events:
            yield event

    async def drain(stream: AsyncIterator[Event]) -> float:
        started = time.perf_counter()
        async for _event in stream:
            pass
        return time.perf_counter() - started

    split = min([await drain(split_think_tags(source(), thinking=True)) for _ in range(runs)])
    plain = min([await drain(source()) for _ in range(runs)])
    per_event = (split - plain) / len(events)
    return {
        "events": len(events),
        "split_us_per_event": round(split / len(events) * 1e6, 3),
        "passthrough_us_per_event": round(plain / len(events) * 1e6, 3),
        "added_us_per_event": round(per_event * 1e6, 3),
    }


async def main(pairs: int) -> dict[str, Any]:
    log = HERE / "results" / "llama-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process, url = start_server(log)
    try:
        base = url + "/v1"
        await qwenkit_pairs(base, 2)  # warm the prompt cache and the slots
        results: dict[str, Any] = {
            "after_a_stream": {
                "openai_sdk": summary(await openai_pairs(base, pairs)),
                "qwenkit": summary(await qwenkit_pairs(base, pairs)),
                "fresh_connection_floor": summary(await fresh_pairs(base, pairs)),
                "pairs": pairs,
            },
            "think_splitter": await splitter_cost(),
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
    results["machine"] = {"python": platform.python_version(), "cpu": platform.processor()}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30)
    args = parser.parse_args()
    figures = asyncio.run(main(args.pairs))
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
