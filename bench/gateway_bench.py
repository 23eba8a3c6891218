"""Benchmark the gateway's hot path against the same upstream called directly, in one run.

Run: ``uv run --no-sync python bench/gateway_bench.py`` (about a minute). Three processes: the
emulator (``sdk_bench.py --serve``, pacing off), the gateway (``qwenkit serve`` with its
embedded SQLite store, pinned to one core with ``os.sched_setaffinity`` where the OS has it,
the condition of the reference figures below) and this load generator (``httpx.AsyncClient``,
keep-alive). The gateway is called with a virtual key, so every request is authenticated,
admitted through the pipeline's policies and leaves a ledger record. The baseline of every
figure is the same request sent straight to the emulator, measured in the same run.

- **overhead**: non-streaming chat (``max_tokens=16``) at concurrency 1; p50/p99 of the wall
  time through the gateway minus the same percentile direct;
- **throughput**: non-streaming requests/s at concurrency 32, through the gateway and direct,
  and the gateway's CPU time per request over that run (its capacity on one core is 1000 / that
  many requests/s: at concurrency 32 the load generator and the emulator, on the other core, can
  be what limits the requests/s);
- **streams**: streams of 50 content chunks (``max_tokens=50``, one token per chunk) per second
  at concurrency 16, and the gateway process's CPU time per relayed chunk (``/proc`` user + system
  time over the run, divided by the chunks received);
- **disconnect**: a client that reads three chunks of a paced stream (100 tokens/s) and closes
  its connection; the time until the emulator's request log shows that stream ended with its
  client gone (``ended``, ``disconnected``), through the gateway (which must close its upstream
  request) and direct; the goal is 100 ms through the gateway.

The reference: LiteLLM's proxy on this kind of machine with one core adds about 11 ms p50 and
21 ms p99 to a non-streaming call at concurrency 1, serves about 88 requests/s and 20 streams/s
of 50 chunks, and uses about 0.9 ms of CPU per streamed chunk (the gateway issue's figures).
Results are printed and written to ``bench/results/gateway.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench_support import free_port, percentile
from sdk_bench import Emulator

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "gateway.json"
MASTER = "qk-master-bench-0123456789"
CHAT = "/compatible-mode/v1/chat/completions"
SMALL = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Name a grey cat."}],
         "max_tokens": 16}  # fmt: skip
STREAM = {"model": "qwen-plus", "messages": [{"role": "user", "content": "Tell me a long story"}],
          "max_tokens": 50, "stream": True}  # fmt: skip
LITELLM = {"overhead_p50_ms": 11.0, "overhead_p99_ms": 21.0, "requests_per_s": 88.0,
           "streams_per_s": 20.0, "cpu_ms_per_chunk": 0.9}  # fmt: skip


class Gateway:
    """``qwenkit serve`` in a subprocess, in front of ``upstream``."""

    def __init__(self, upstream: str, home: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DASHSCOPE_API_KEY": "sk-bench-upstream",
            "QWENKIT_BASE_URL": upstream,
            "QWENKIT_MASTER_KEY": MASTER,
            "QWENKIT_HOME": str(home),
            "QWENKIT_STORE_URL": f"sqlite:///{home / 'gateway.db'}",
        }
        command = [sys.executable, "-m", "qwenkit", "serve", "--port", str(port)]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(self.process.pid, {1})
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit("the gateway did not start")
                time.sleep(0.05)
            created = client.post(
                "/admin/keys", json={"name": "bench"}, headers={"authorization": f"Bearer {MASTER}"}
            )
            created.raise_for_status()
            self.key = created.json()["key"]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def one(client: httpx.AsyncClient, body: dict[str, Any], key: str) -> tuple[float, int]:
    """One request read to its end: (seconds, SSE data chunks)."""
    start = time.perf_counter()
    chunks = 0
    async with client.stream(
        "POST", CHAT, json=body, headers={"authorization": f"Bearer {key}"}
    ) as r:
        if r.status_code != 200:
            raise SystemExit(f"{r.status_code}: {(await r.aread())[:300]!r}")
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                chunks += 1
    return time.perf_counter() - start, chunks


async def sequential(url: str, key: str, n: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(20):
            await one(client, SMALL, key)
        return [(await one(client, SMALL, key))[0] for _ in range(n)]


async def concurrent(
    url: str, key: str, body: dict[str, Any], n: int, width: int
) -> tuple[float, int]:
    """(requests per second, chunks) of ``n`` requests, ``width`` at a time."""
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(client, body, key) for _ in range(width)))
        gate = asyncio.Semaphore(width)

        async def limited() -> int:
            async with gate:
                return (await one(client, body, key))[1]

        start = time.perf_counter()
        chunks = await asyncio.gather(*(limited() for _ in range(n)))
        return n / (time.perf_counter() - start), sum(chunks)


async def disconnect_delay(url: str, key: str, upstream: str) -> float:
    """Seconds from the client closing a paced stream after three chunks to the upstream
    request's end (the emulator's log)."""
    body = {**STREAM, "max_tokens": 2000}
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        httpx.AsyncClient(base_url=upstream, timeout=30) as control,
    ):
        async with client.stream(
            "POST", CHAT, json=body, headers={"authorization": f"Bearer {key}"}
        ) as r:
            chunks = 0
            async for line in r.aiter_lines():
                chunks += line.startswith("data: {")
                if chunks == 3:
                    break
            left = time.time()
        # leaving the block closes the response's connection: the client is gone
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [entry] = (await control.get("/_emulator/requests", params={"limit": 1})).json()[
                "requests"
            ]
            if "ended" in entry:
                if not entry["disconnected"]:
                    raise SystemExit("the upstream stream ran to its end: nothing cancelled it")
                return max(0.0, float(entry["ended"]) - left)
            await asyncio.sleep(0.002)
    raise SystemExit("the upstream stream did not end within 10 s of the client leaving")


def disconnects(url: str, key: str, upstream: str, n: int) -> list[float]:
    pacing = {"pacing": {"tokens_per_second": 100, "chunk_tokens": 1, "ttft_ms": 0}}
    httpx.patch(upstream + "/_emulator/config", json=pacing).raise_for_status()
    try:
        return [asyncio.run(disconnect_delay(url, key, upstream)) for _ in range(n)]
    finally:
        off = {"pacing": {"tokens_per_second": None}}
        httpx.patch(upstream + "/_emulator/config", json=off).raise_for_status()


def ms(value: float) -> float:
    return round(value * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--disconnects", type=int, default=20)
    args = parser.parse_args()
    emulator = Emulator()
    with tempfile.TemporaryDirectory() as tmp:
        gateway = Gateway(emulator.url, Path(tmp))
        try:
            direct_key = "sk-bench-direct"
            direct = asyncio.run(sequential(emulator.url, direct_key, args.calls))
            through = asyncio.run(sequential(gateway.url, gateway.key, args.calls))
            overhead = {
                "p50_ms": ms(percentile(through, 0.5) - percentile(direct, 0.5)),
                "p99_ms": ms(percentile(through, 0.99) - percentile(direct, 0.99)),
                "direct_p50_ms": ms(percentile(direct, 0.5)),
                "gateway_p50_ms": ms(percentile(through, 0.5)),
            }
            print(f"overhead at concurrency 1: {overhead}")
            rps_direct, _ = asyncio.run(
                concurrent(emulator.url, direct_key, SMALL, args.requests, 32)
            )
            cpu_before = gateway.cpu_seconds()
            rps, _ = asyncio.run(concurrent(gateway.url, gateway.key, SMALL, args.requests, 32))
            cpu_per_request = (gateway.cpu_seconds() - cpu_before) / (args.requests + 32)
            throughput = {
                "gateway_requests_per_s": round(rps, 1),
                "direct_requests_per_s": round(rps_direct, 1),
                "gateway_cpu_ms_per_request": round(cpu_per_request * 1000, 3),
                "gateway_capacity_per_core": round(1 / cpu_per_request, 1),
            }
            print(f"throughput at concurrency 32: {throughput}")
            sps_direct, _ = asyncio.run(
                concurrent(emulator.url, direct_key, STREAM, args.streams, 16)
            )
            cpu_before = gateway.cpu_seconds()
            sps, chunks = asyncio.run(
                concurrent(gateway.url, gateway.key, STREAM, args.streams, 16)
            )
            cpu = gateway.cpu_seconds() - cpu_before
            streams = {
                "gateway_streams_per_s": round(sps, 1),
                "direct_streams_per_s": round(sps_direct, 1),
                "chunks_per_stream": round(chunks / args.streams, 1),
                "gateway_cpu_ms_per_chunk": round(cpu / chunks * 1000, 4),
            }
            print(f"streams at concurrency 16: {streams}")
            gone_direct = disconnects(emulator.url, direct_key, emulator.url, args.disconnects)
            gone = disconnects(gateway.url, gateway.key, emulator.url, args.disconnects)
            disconnect = {
                "gateway_p50_ms": ms(percentile(gone, 0.5)),
                "gateway_max_ms": ms(max(gone)),
                "direct_p50_ms": ms(percentile(gone_direct, 0.5)),
                "direct_max_ms": ms(max(gone_direct)),
                "goal_ms": 100,
            }
            print(f"client disconnect to upstream closed: {disconnect}")
        finally:
            gateway.stop()
            emulator.stop()
    document = {
        "benchmark": "gateway",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "gateway_pinned_to_one_core": hasattr(os, "sched_setaffinity"),
        "overhead": overhead,
        "throughput": throughput,
        "streams": streams,
        "disconnect": disconnect,
        "litellm_reference": LITELLM,
        "ratio_to_litellm": {
            "overhead_p50": round(LITELLM["overhead_p50_ms"] / max(overhead["p50_ms"], 0.01), 1),
            "overhead_p99": round(LITELLM["overhead_p99_ms"] / max(overhead["p99_ms"], 0.01), 1),
            "requests_per_s": round(rps / LITELLM["requests_per_s"], 1),
            "streams_per_s": round(sps / LITELLM["streams_per_s"], 1),
            "cpu_per_chunk": round(LITELLM["cpu_ms_per_chunk"] / max(cpu / chunks * 1000, 1e-6), 1),
        },
    }
    print(json.dumps(document["ratio_to_litellm"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
