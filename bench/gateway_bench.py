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

- **matrix** (``gateway_load.py`` in its own process, aiohttp): non-streaming and streaming at
  concurrency 1, 16, 64 and 256, through the gateway and direct: added p50/p99 latency, added
  time to the first byte of the answer (TTFB), requests or streams per second, and the gateway's
  CPU per request or per streamed chunk;
- **soak**: 200 slow-reading streaming clients (one event every 100 ms) for ``--soak`` seconds
  (300 by default); the gateway's RSS sampled every 5 s (flat means within 10% of its value
  after the first minute: the bounded relay buffer makes a slow client slow the upstream read).

The issue's goals: added p50 <= 0.5 ms and p99 <= 2 ms at concurrency 1, added TTFB <= 1 ms,
>= 1,500 requests/s and >= 400 streams/s of 50 chunks on one core, RSS flat across the soak.

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

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

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


LEVELS = {"whole": {1: 500, 16: 2000, 64: 3000, 256: 4000},
          "stream": {1: 100, 16: 400, 64: 800, 256: 1000}}  # fmt: skip


def run_load(url: str, key: str, mode: str, n: int, width: int) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "gateway_load.py"), url, key, mode, str(n), str(width)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def matrix(gateway: Gateway, upstream: str, direct_key: str) -> dict[str, Any]:
    """Every mode and concurrency, direct then through the gateway (see the docstring)."""
    table: dict[str, Any] = {}
    for mode, levels in LEVELS.items():
        table[mode] = {}
        for width, n in levels.items():
            direct = run_load(upstream, direct_key, mode, n, width)
            cpu = gateway.cpu_seconds()
            through = run_load(gateway.url, gateway.key, mode, n, width)
            cpu = gateway.cpu_seconds() - cpu
            unit = through["events"] if mode == "stream" else n + min(n, width)
            row = {
                "added_p50_ms": ms(percentile(through["seconds"], 0.5)
                                   - percentile(direct["seconds"], 0.5)),
                "added_p99_ms": ms(percentile(through["seconds"], 0.99)
                                   - percentile(direct["seconds"], 0.99)),
                "added_ttfb_p50_ms": ms(percentile(through["ttfb"], 0.5)
                                        - percentile(direct["ttfb"], 0.5)),
                "gateway_per_s": round(through["per_second"], 1),
                "direct_per_s": round(direct["per_second"], 1),
                ("gateway_cpu_ms_per_chunk" if mode == "stream"
                 else "gateway_cpu_ms_per_request"): round(cpu / max(unit, 1) * 1000, 4),
            }  # fmt: skip
            table[mode][str(width)] = row
            print(f"{mode} at concurrency {width}: {row}", flush=True)
    return table


def soak(gateway: Gateway, seconds: float, clients: int = 200) -> dict[str, Any]:
    """The gateway's RSS while ``clients`` slow readers stream for ``seconds``."""
    command = [sys.executable, str(HERE / "gateway_load.py"), gateway.url, gateway.key, "slow",
               str(clients), str(seconds)]  # fmt: skip
    readers = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    while readers.poll() is None:
        samples.append((time.monotonic() - start, gateway.rss_mb()))
        time.sleep(5)
    out, _ = readers.communicate()
    settled = [rss for at, rss in samples if at >= min(60.0, seconds / 5)] or [samples[-1][1]]
    base = settled[0]
    return {
        "clients": clients,
        "seconds": seconds,
        "events_read": json.loads(out)["events_read"],
        "rss_mb_start": round(samples[0][1], 1),
        "rss_mb_after_warmup": round(base, 1),
        "rss_mb_max": round(max(settled), 1),
        "rss_mb_end": round(settled[-1], 1),
        "growth_after_warmup": round(max(settled) / base - 1, 3),
        "flat": max(settled) <= base * 1.10,
    }


def ms(value: float) -> float:
    return round(value * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--disconnects", type=int, default=20)
    parser.add_argument("--soak", type=float, default=300.0, help="seconds of the slow-client soak")
    parser.add_argument("--no-matrix", action="store_true", help="skip the concurrency matrix")
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
            table = {} if args.no_matrix else matrix(gateway, emulator.url, direct_key)
            soaked = soak(gateway, args.soak) if args.soak > 0 else {}
            print(f"soak: {soaked}")
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
        "matrix": table,
        "soak": soaked,
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
