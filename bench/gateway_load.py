"""Load for the gateway benchmark: requests at a fixed concurrency, timed per request, in a
separate process so the load generator's CPU is neither the gateway's nor the emulator's.

``python bench/gateway_load.py URL KEY MODE N CONCURRENCY`` prints one JSON object: the wall
time of each request, its time to first byte of the body (``ttfb``, for streams the first
``data:`` event), the SSE events received, and requests per second. ``MODE`` is ``whole``
(non-streaming, ``max_tokens=16``) or ``stream`` (50 chunks). aiohttp, not httpx, drives the
load: at concurrency 256 httpx's own pool scan (it polls every pooled socket per request) would
make the load generator the bottleneck of the measure.

``python bench/gateway_load.py URL KEY slow CLIENTS SECONDS`` runs ``CLIENTS`` streaming clients
that each read one SSE event every 100 ms (slow readers), reopening a stream when one ends,
for ``SECONDS``; it prints how many events they read.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp

CHAT = "/compatible-mode/v1/chat/completions"
WHOLE = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Name a grey cat."}],
         "max_tokens": 16}  # fmt: skip
STREAM = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Tell me a long story"}],
          "max_tokens": 50, "stream": True}  # fmt: skip
LONG = {**STREAM, "max_tokens": 2000}


async def one(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any]
) -> tuple[float, float, int]:
    """(seconds, seconds to the first byte of the answer, SSE events)."""
    start = time.perf_counter()
    first = None
    events = 0
    async with session.post(
        url + CHAT, json=body, headers={"authorization": f"Bearer {key}"}
    ) as response:
        if response.status != 200:
            raise SystemExit(f"{response.status}: {(await response.read())[:300]!r}")
        if body.get("stream"):
            async for line in response.content:
                if line.startswith(b"data: {"):
                    events += 1
                    if first is None:
                        first = time.perf_counter()
        else:
            await response.content.read(1)
            first = time.perf_counter()
            await response.read()
    end = time.perf_counter()
    return end - start, (first or end) - start, events


async def load(url: str, key: str, mode: str, n: int, width: int) -> dict[str, Any]:
    body = STREAM if mode == "stream" else WHOLE
    connector = aiohttp.TCPConnector(limit=width, limit_per_host=width)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, url, key, body) for _ in range(min(width, n))))
        gate = asyncio.Semaphore(width)

        async def limited() -> tuple[float, float, int]:
            async with gate:
                return await one(session, url, key, body)

        start = time.perf_counter()
        results = await asyncio.gather(*(limited() for _ in range(n)))
        elapsed = time.perf_counter() - start
    return {
        "seconds": [r[0] for r in results],
        "ttfb": [r[1] for r in results],
        "events": sum(r[2] for r in results),
        "per_second": n / elapsed,
    }


async def slow(url: str, key: str, clients: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    read = 0

    async def reader(session: aiohttp.ClientSession) -> None:
        nonlocal read
        while time.monotonic() < deadline:
            async with session.post(
                url + CHAT, json=LONG, headers={"authorization": f"Bearer {key}"}
            ) as response:
                async for line in response.content:
                    if line.startswith(b"data: "):
                        read += 1
                        await asyncio.sleep(0.1)
                    if time.monotonic() >= deadline:
                        break

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(reader(session) for _ in range(clients)))
    return {"events_read": read}


def main() -> None:
    url, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "slow":
        result = asyncio.run(slow(url, key, int(sys.argv[4]), float(sys.argv[5])))
    else:
        result = asyncio.run(load(url, key, mode, int(sys.argv[4]), int(sys.argv[5])))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
