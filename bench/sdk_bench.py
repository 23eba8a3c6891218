"""Benchmark the per-call overhead of ``AsyncQwen.chat`` and ``AsyncQwen.stream``.

Run: ``uv run --no-sync python bench/sdk_bench.py`` (about a minute). The emulator runs once, over
real HTTP, in a subprocess (this file with ``--serve``: uvicorn as ``qwenkit emulate`` runs it,
pacing off), so its CPU is not this process's. Against it, in this process and in the same run,
these clients make the same calls, one at a time:

- ``httpx``: a raw ``httpx.AsyncClient`` POST of the same body, the response read whole (the
  stream read to its end): the floor, what the emulator and the HTTP round trip cost alone;
- ``openai``: the official ``openai.AsyncOpenAI`` on the emulator's compatible-mode route,
  ``chat.completions.create`` (the stream with ``include_usage``, iterated to its end);
- ``qwenkit``: ``AsyncQwen`` with its defaults in ``compat`` mode (every policy: route,
  ``max_tokens``, thinking, history, parameters, the context-window check with the Qwen
  tokenizer, usage record, observe; the result with its cost);
- ``qwenkit-nocheck``: the same with ``check_context=False``, to show what counting the prompt
  costs;
- ``httpx-native`` and ``qwenkit-native``: the floor and ``AsyncQwen`` in ``native`` mode (there
  is no openai baseline for the native wire).

Calls: ``chat``, a small answer (``max_tokens=16``); ``stream``, a 200-token answer consumed fully
(the emulator answers "long story" prompts with a scenario text longer than 200 tokens; every
client's result is checked to report 200 completion tokens). Each client makes ``--warmup`` calls
first, then ``--rounds`` rounds of ``--per-round`` calls of each kind; the order of the clients
turns every round, so drift in the machine's load falls on all of them alike.

Reported per client and kind: median and p90 wall time per call, the client's CPU time per call
(this process's CPU over a batch: the emulator is another process), the overhead ratio to
``openai`` (median over median) and the time above the floor (median minus the floor's median).
Results are printed as a table and written to ``bench/results/sdk.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from bench_support import free_port, percentile

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "sdk.json"
KEY = "sk-bench-sdk"
COMPAT = "/compatible-mode/v1/chat/completions"
NATIVE = "/api/v1/services/aigc/text-generation/generation"
HEALTH = "/_emulator/health"
MODEL = "qwen-plus"
SMALL_TOKENS = 16
STREAM_TOKENS = 200
QUESTION = "What is a good name for a small grey cat?"
STORY_PROMPT = "Tell me a long story about a boat."
STORY = " ".join(
    f"Part {k} of the story: the river carried the little wooden boat past the old mill, "
    "and the miller's daughter waved from the bridge."
    for k in range(1, 25)
)
STREAM_RULE = {"name": "bench-long-answer", "match": {"last_user": "long story"}, "text": STORY}
KINDS = ("chat", "stream")
Call = Callable[[], Awaitable[int | None]]
"""One call; returns the completion tokens it reported (``None`` when it does not count them)."""


# -- the emulator (subprocess side) -------------------------------------------------------------


def serve(port: int) -> None:
    import uvicorn

    from qwenkit.emulator import create_app

    app = create_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")


class Emulator:
    """``qwenkit.emulator`` over HTTP in a subprocess (this file with ``--serve``)."""

    def __init__(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port)])
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while True:
                try:
                    if client.get(HEALTH).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit("the emulator did not start")
                time.sleep(0.05)
            client.post("/_emulator/scenarios", json=[STREAM_RULE]).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- the clients --------------------------------------------------------------------------------


def _messages(kind: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": STORY_PROMPT if kind == "stream" else QUESTION}]


def _max_tokens(kind: str) -> int:
    return STREAM_TOKENS if kind == "stream" else SMALL_TOKENS


def raw_calls(http: httpx.AsyncClient, *, native: bool) -> dict[str, Call]:
    """The floor: the request body written by hand, the response read whole."""
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def body(kind: str) -> bytes:
        data: dict[str, Any]
        if native:
            parameters: dict[str, Any] = {
                "max_tokens": _max_tokens(kind),
                "result_format": "message",
            }
            if kind == "stream":
                parameters["incremental_output"] = True
            data = {
                "model": MODEL,
                "input": {"messages": _messages(kind)},
                "parameters": parameters,
            }
        else:
            data = {"model": MODEL, "messages": _messages(kind), "max_tokens": _max_tokens(kind)}
            if kind == "stream":
                data |= {"stream": True, "stream_options": {"include_usage": True}}
        return json.dumps(data, separators=(",", ":")).encode()

    path = NATIVE if native else COMPAT
    small_body, stream_body = body("chat"), body("stream")
    stream_headers = {**headers, "X-DashScope-SSE": "enable"} if native else headers

    async def chat() -> int | None:
        response = await http.post(path, content=small_body, headers=headers)
        response.raise_for_status()
        return None

    async def stream() -> int | None:
        async with http.stream("POST", path, content=stream_body, headers=stream_headers) as r:
            r.raise_for_status()
            async for _ in r.aiter_bytes():
                pass
        return None

    return {"chat": chat, "stream": stream}


def openai_calls(client: Any) -> dict[str, Call]:
    async def chat() -> int | None:
        answer = await client.chat.completions.create(
            model=MODEL, messages=_messages("chat"), max_tokens=SMALL_TOKENS
        )
        return int(answer.usage.completion_tokens)

    async def stream() -> int | None:
        tokens = None
        chunks = await client.chat.completions.create(
            model=MODEL,
            messages=_messages("stream"),
            max_tokens=STREAM_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in chunks:
            if chunk.usage is not None:
                tokens = int(chunk.usage.completion_tokens)
        return tokens

    return {"chat": chat, "stream": stream}


def qwenkit_calls(client: Any) -> dict[str, Call]:
    async def chat() -> int | None:
        result = await client.chat(_messages("chat"), model=MODEL, max_tokens=SMALL_TOKENS)
        return int(result.usage.completion_tokens)

    async def stream() -> int | None:
        async with client.stream(_messages("stream"), model=MODEL, max_tokens=STREAM_TOKENS) as s:
            async for _ in s:
                pass
        return int(s.result().usage.completion_tokens)

    return {"chat": chat, "stream": stream}


async def open_clients(stack: AsyncExitStack, url: str) -> dict[str, dict[str, Call]]:
    import openai

    from qwenkit import AsyncQwen

    raw = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
    oai = openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/compatible-mode/v1", max_retries=0)
    stack.push_async_callback(oai.close)

    def qwen(**options: Any) -> AsyncQwen:
        client = AsyncQwen(api_key=KEY, base_url=url, **options)
        stack.push_async_callback(client.aclose)
        return client

    return {
        "httpx": raw_calls(raw, native=False),
        "openai": openai_calls(oai),
        "qwenkit": qwenkit_calls(qwen(mode="compat")),
        "qwenkit-nocheck": qwenkit_calls(qwen(mode="compat", check_context=False)),
        "httpx-native": raw_calls(raw, native=True),
        "qwenkit-native": qwenkit_calls(qwen(mode="native")),
    }


# -- measuring ----------------------------------------------------------------------------------


async def batch(call: Call, count: int, kind: str) -> tuple[list[float], float]:
    """``count`` sequential calls: each one's wall time, and this process's CPU time in all."""
    times: list[float] = []
    cpu = time.process_time()
    for _ in range(count):
        start = time.perf_counter()
        tokens = await call()
        times.append(time.perf_counter() - start)
        if tokens is not None and tokens != _max_tokens(kind):
            raise RuntimeError(f"{kind}: {tokens} completion tokens, expected {_max_tokens(kind)}")
    return times, time.process_time() - cpu


async def measure(url: str, args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    async with AsyncExitStack() as stack:
        clients = await open_clients(stack, url)
        names = list(clients)
        for name in names:
            for kind in KINDS:
                await batch(clients[name][kind], args.warmup, kind)
        samples: dict[str, dict[str, list[float]]] = {k: {n: [] for n in names} for k in KINDS}
        cpu = {kind: dict.fromkeys(names, 0.0) for kind in KINDS}
        for round_number in range(args.rounds):
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            for kind in KINDS:
                for name in order:
                    times, spent = await batch(clients[name][kind], args.per_round, kind)
                    samples[kind][name] += times
                    cpu[kind][name] += spent
    return summarise(samples, cpu)


def summarise(
    samples: dict[str, dict[str, list[float]]], cpu: dict[str, dict[str, float]]
) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind, by_client in samples.items():
        rows: dict[str, dict[str, float]] = {}
        for name, times in by_client.items():
            rows[name] = {
                "calls": len(times),
                "median_ms": statistics.median(times) * 1000,
                "p90_ms": percentile(times, 0.9) * 1000,
                "cpu_ms_per_call": cpu[kind][name] / len(times) * 1000,
            }
        for name, row in rows.items():
            floor = rows["httpx-native" if name.endswith("native") else "httpx"]["median_ms"]
            row["above_floor_ms"] = row["median_ms"] - floor
            if not name.endswith("native"):
                row["ratio_to_openai"] = row["median_ms"] / rows["openai"]["median_ms"]
            elif name != "httpx-native":
                row["ratio_to_compat"] = row["median_ms"] / rows["qwenkit"]["median_ms"]
        out[kind] = rows
    return out


# -- report -------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import openai

    from qwenkit import __version__

    return {
        "qwenkit": __version__,
        "openai": openai.__version__,
        "httpx": httpx.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "load_average": [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]],
    }


def report(results: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace) -> None:
    calls = args.rounds * args.per_round
    print(f"\nper-call time against the emulator over HTTP ({calls} sequential calls each)\n")
    header = (
        f"{'call':<7}{'client':<16}{'median ms':>10}{'p90 ms':>9}{'cpu ms':>8}"
        f"{'> floor ms':>11}{'x openai':>10}{'x compat':>10}"
    )
    print(header)
    print("-" * len(header))
    for kind, rows in results.items():
        for name, row in rows.items():
            ratio = f"{row['ratio_to_openai']:10.2f}" if "ratio_to_openai" in row else " " * 10
            native = f"{row['ratio_to_compat']:10.2f}" if "ratio_to_compat" in row else ""
            print(
                f"{kind:<7}{name:<16}{row['median_ms']:10.2f}{row['p90_ms']:9.2f}"
                f"{row['cpu_ms_per_call']:8.2f}{row['above_floor_ms']:11.2f}{ratio}{native}"
            )
    print(
        "\nfloor: raw httpx, same body; x openai: median / openai's median (compat wire); "
        "x compat: qwenkit native / qwenkit compat"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=30, help="calls per client and kind")
    parser.add_argument("--warmup", type=int, default=30, help="calls per client and kind")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return
    started = time.perf_counter()
    emulator = Emulator()
    try:
        results = asyncio.run(measure(emulator.url, args))
    finally:
        emulator.stop()
    report(results, args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "sdk",
        **environment(),
        "model": MODEL,
        "chat_max_tokens": SMALL_TOKENS,
        "stream_completion_tokens": STREAM_TOKENS,
        "rounds": args.rounds,
        "calls_per_round": args.per_round,
        "warmup_calls": args.warmup,
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS.relative_to(HERE.parent)} in {document['seconds']} s")


if __name__ == "__main__":
    main()
