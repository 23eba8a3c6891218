"""Benchmark the emulator over real HTTP: one uvicorn worker against a load generator.

Run: ``uv run --no-sync python bench/emulator_bench.py`` (under a minute). The server runs in a
subprocess (this file with ``--serve``: ``uvicorn.run`` with the settings ``qwenkit emulate``
uses: one worker, ``log_level="warning"``, ``ws="none"``, lifespan on; whichever HTTP parser and
event loop uvicorn finds installed). The load generator runs here: ``--concurrency`` workers
(default 32), one per pooled connection, over ``--clients`` ``httpx.AsyncClient``s (default 8,
with 4 connections each: one httpx pool serving 32 concurrent requests costs the client about three
times the CPU per request, which would make the client the bottleneck even sooner). Each phase is
bounded by a request count and a time limit. Phases, in order:

- warm-up: every kind of request below, 1,060 in all, so first-use costs are paid and the
  emulator's request log (the last 1,000 requests) is full before measuring;
- ``compat``: a small non-streaming answer (``max_tokens=16``) on the compatible route;
- ``native``: the same on the native text-generation route (``result_format="message"``);
- ``stream``: a 200-token stream on the compatible route (``max_tokens=200``,
  ``include_usage``; the emulator answers these prompts with a scenario rule whose text is longer
  than 200 tokens, and every stream's usage chunk is checked to report exactly 200 completion
  tokens);
- ``compat_c1``: the small request again at concurrency 1 (latency without queueing).

For each phase: requests/s, p50/p99 latency (request sent → whole body read), SSE events per
second for the stream, and the server's CPU time per request (``/proc/PID/stat``): with client
and server sharing the machine's cores, the throughput is bounded by whichever saturates first,
and the server's CPU per request is what says what one worker could do. The server's RSS
(``VmRSS`` of ``/proc/PID/status``) is read after the warm-up, after the ``compat`` phase (5,000
requests), after the ``native`` phase (10,000) and after the stream phase. The load average is
recorded too: other work on the machine shows in every figure but the CPU time per request.

The in-run baseline: the same load against a trivial Starlette app in the same uvicorn setup that
replays bodies captured from the emulator at the start (the same JSON bytes, and the same
SSE stream sent in the same 32 KiB pieces), so the client does the same work against both and the
ratios "emulator / trivial" isolate the emulator's own cost. Both servers run side by side and
take turns, phase by phase (an idle server costs nothing), so a change in the machine's other
load falls on both sides of a ratio alike. Results are printed as a table and
written to ``bench/results/emulator.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench_support import free_port, percentile

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "emulator.json"
KEY = {"Authorization": "Bearer sk-bench-emulator", "Content-Type": "application/json"}
COMPAT = "/compatible-mode/v1/chat/completions"
NATIVE = "/api/v1/services/aigc/text-generation/generation"
HEALTH = "/_emulator/health"
MODEL = "qwen-plus"
STREAM_TOKENS = 200
FLUSH_BYTES = 32 * 1024  # the emulator's coalescing size when pacing is off
PHASE_SECONDS = 40.0
STORY = " ".join(
    f"Part {k} of the story: the river carried the little wooden boat past the old mill, "
    "and the miller's daughter waved from the bridge."
    for k in range(1, 25)
)
WARMUP = (("compat", 500), ("native", 500), ("stream", 60))
"""More requests than the emulator's request log keeps (1,000), so it is full before measuring."""
STREAM_RULE = {"name": "bench-long-answer", "match": {"last_user": "long story"}, "text": STORY}


# -- the servers (subprocess side) ----------------------------------------------------------------


def trivial_app(bodies: dict[str, bytes]) -> Any:
    """A Starlette app that answers every request with a constant body (captured from the
    emulator): JSON for non-streaming requests, the SSE stream in ``FLUSH_BYTES`` pieces."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    stream_body = bodies["stream"]

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(stream_body), FLUSH_BYTES):
            yield stream_body[start : start + FLUSH_BYTES]

    async def compat(request: Request) -> Response:
        if b'"stream":true' in await request.body():
            return StreamingResponse(pieces(), media_type="text/event-stream")
        return Response(bodies["compat"], media_type="application/json")

    async def native(request: Request) -> Response:
        await request.body()
        return Response(bodies["native"], media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route(COMPAT, compat, methods=["POST"]),
            Route(NATIVE, native, methods=["POST"]),
            Route(HEALTH, health, methods=["GET"]),
        ]
    )


def serve(kind: str, port: int, bodies_file: str | None) -> None:
    """Run one server in this process, as ``qwenkit emulate`` runs uvicorn."""
    import uvicorn

    if kind == "emulator":
        from qwenkit.emulator import create_app

        app: Any = create_app()
    else:
        if bodies_file is None:
            raise SystemExit("--bodies is required for the trivial server")
        raw = json.loads(Path(bodies_file).read_text(encoding="utf-8"))
        app = trivial_app({name: text.encode("utf-8") for name, text in raw.items()})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="on")


# -- process metrics ----------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/PID/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A server subprocess (this file with ``--serve``)."""

    def __init__(self, kind: str, bodies_file: str | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, __file__, "--serve", kind, "--port", str(self.port)]
        if bodies_file is not None:
            command += ["--bodies", bodies_file]
        self.process = subprocess.Popen(command)
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
                    raise SystemExit(f"the {kind} server did not start")
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- requests -----------------------------------------------------------------------------------


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def compat_body(i: int) -> bytes:
    content = f"Question {i}: what is a good name for a small grey cat?"
    return _json(
        {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 16}
    )


def native_body(i: int) -> bytes:
    content = f"Question {i}: what is a good name for a small grey cat?"
    return _json(
        {
            "model": MODEL,
            "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": {"max_tokens": 16, "result_format": "message"},
        }
    )


def stream_body(i: int) -> bytes:
    content = f"Tell me a long story, number {i}."
    return _json(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": STREAM_TOKENS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )


@dataclass
class Outcome:
    latency: float
    events: int = 0


RequestFn = Callable[[httpx.AsyncClient, int], Awaitable[Outcome]]


async def small(client: httpx.AsyncClient, path: str, body: bytes) -> Outcome:
    start = time.perf_counter()
    response = await client.post(path, content=body, headers=KEY)
    latency = time.perf_counter() - start
    if response.status_code != 200 or not response.content.startswith(b"{"):
        raise RuntimeError(f"{path}: {response.status_code} {response.content[:200]!r}")
    return Outcome(latency)


async def compat_request(client: httpx.AsyncClient, i: int) -> Outcome:
    return await small(client, COMPAT, compat_body(i))


async def native_request(client: httpx.AsyncClient, i: int) -> Outcome:
    return await small(client, NATIVE, native_body(i))


async def stream_request(client: httpx.AsyncClient, i: int) -> Outcome:
    start = time.perf_counter()
    data = bytearray()
    async with client.stream("POST", COMPAT, content=stream_body(i), headers=KEY) as response:
        if response.status_code != 200:
            raise RuntimeError(f"stream: {response.status_code}")
        async for piece in response.aiter_bytes():
            data += piece
    latency = time.perf_counter() - start
    events = data.split(b"\n\n")
    if events[-1] != b"" or events[-2] != b"data: [DONE]":
        raise RuntimeError("stream: no [DONE] at the end")
    usage = json.loads(events[-3][len(b"data: ") :])["usage"]
    if usage["completion_tokens"] != STREAM_TOKENS:
        raise RuntimeError(f"stream: {usage['completion_tokens']} completion tokens")
    return Outcome(latency, events=len(events) - 2)  # every data event but [DONE]


KINDS: dict[str, RequestFn] = {
    "compat": compat_request,
    "native": native_request,
    "stream": stream_request,
}


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    concurrency: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    events_per_s: float | None
    events_per_request: float | None
    server_cpu_ms_per_request: float
    server_cpu_share: float
    """Server CPU seconds / wall seconds (1.0 = one core busy all the time)."""
    client_cpu_ms_per_request: float
    rss_mib_after: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pool:
    """The load generator's clients; one worker per pooled connection."""

    clients: list[httpx.AsyncClient]
    concurrency: int


async def load(
    pool: Pool, request: RequestFn, total: int, limit: float = PHASE_SECONDS
) -> tuple[list[Outcome], float]:
    """Run ``total`` requests with ``pool.concurrency`` workers spread over the pool's clients
    (no new request after ``limit`` seconds)."""
    outcomes: list[Outcome] = []
    counter = iter(range(total))
    deadline = time.perf_counter() + limit

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            outcomes.append(await request(client, i))
            if time.perf_counter() > deadline:
                return

    start = time.perf_counter()
    clients = pool.clients
    await asyncio.gather(*(worker(clients[k % len(clients)]) for k in range(pool.concurrency)))
    return outcomes, time.perf_counter() - start


async def phase(pool: Pool, server: Server, name: str, kind: str, total: int) -> Phase:
    """One measured phase: ``total`` requests of ``kind``."""
    cpu0, client0 = cpu_seconds(server.pid), time.process_time()
    outcomes, wall = await load(pool, KINDS[kind], total)
    cpu, client_cpu = cpu_seconds(server.pid) - cpu0, time.process_time() - client0
    latencies = [o.latency * 1000 for o in outcomes]
    events = sum(o.events for o in outcomes)
    n = len(outcomes)
    return Phase(
        name=name,
        concurrency=pool.concurrency,
        requests=n,
        seconds=wall,
        requests_per_s=n / wall,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        mean_ms=statistics.fmean(latencies),
        events_per_s=events / wall if kind == "stream" else None,
        events_per_request=events / n if kind == "stream" else None,
        server_cpu_ms_per_request=cpu * 1000 / n,
        server_cpu_share=cpu / wall,
        client_cpu_ms_per_request=client_cpu * 1000 / n,
        rss_mib_after=rss_mib(server.pid),
    )


@dataclass
class Run:
    server: str
    rss_mib: dict[str, float]
    phases: dict[str, Phase]


@asynccontextmanager
async def client_pool(url: str, clients: int, connections: int) -> AsyncIterator[Pool]:
    """``clients`` httpx clients with ``connections // clients`` pooled connections each."""
    per_client = max(1, connections // clients)
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    async with AsyncExitStack() as stack:
        members = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=60)
            )
            for _ in range(clients)
        ]
        yield Pool(members, per_client * clients)


async def run(servers: list[Server], args: argparse.Namespace) -> list[Run]:
    """Every phase on every server, the servers taking turns phase by phase (so a change in the
    machine's other load falls on both sides of a comparison alike)."""
    runs = [Run(server.kind, {}, {}) for server in servers]
    async with AsyncExitStack() as stack:
        pools = [
            await stack.enter_async_context(client_pool(server.url, args.clients, args.concurrency))
            for server in servers
        ]
        for server, pool, result in zip(servers, pools, runs, strict=True):
            for kind, count in WARMUP:
                await load(pool, KINDS[kind], count)
            result.rss_mib["after_warmup"] = rss_mib(server.pid)
        steps = [
            ("compat", args.requests, f"after_{args.requests}"),
            ("native", args.requests, f"after_{2 * args.requests}"),
            ("stream", args.streams, "after_stream_phase"),
        ]
        for kind, total, label in steps:
            for server, pool, result in zip(servers, pools, runs, strict=True):
                result.phases[kind] = await phase(pool, server, kind, kind, total)
                result.rss_mib[label] = rss_mib(server.pid)
    for server, result in zip(servers, runs, strict=True):
        async with client_pool(server.url, 1, 1) as pool:
            result.phases["compat_c1"] = await phase(pool, server, "compat_c1", "compat", 500)
    return runs


def capture_bodies(url: str) -> dict[str, str]:
    """One response body of each kind from the emulator (replayed by the trivial server)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        bodies = {
            "compat": client.post(COMPAT, content=compat_body(0), headers=KEY),
            "native": client.post(NATIVE, content=native_body(0), headers=KEY),
            "stream": client.post(COMPAT, content=stream_body(0), headers=KEY),
        }
    for name, response in bodies.items():
        if response.status_code != 200:
            raise SystemExit(f"capture {name}: {response.status_code} {response.text[:200]}")
    return {name: response.text for name, response in bodies.items()}


# -- report -------------------------------------------------------------------------------------


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def environment() -> dict[str, Any]:
    from qwenkit import __version__

    def has(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    import uvicorn

    return {
        "qwenkit": __version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.system(),
        "cpus": os.cpu_count(),
        "uvicorn": uvicorn.__version__,
        "httpx": httpx.__version__,
        "uvicorn_http": "httptools" if has("httptools") else "h11",
        "uvicorn_loop": "uvloop" if has("uvloop") else "asyncio",
    }


def ratios(emulator: Run, trivial: Run) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, mine in emulator.phases.items():
        base = trivial.phases[name]
        out[name] = {
            "requests_per_s": mine.requests_per_s / base.requests_per_s,
            "p50_ms": mine.p50_ms / base.p50_ms,
            "p99_ms": mine.p99_ms / base.p99_ms,
            "server_cpu_ms_per_request": mine.server_cpu_ms_per_request
            / base.server_cpu_ms_per_request,
        }
    return out


def report(emulator: Run, trivial: Run, env: dict[str, Any]) -> None:
    print(
        f"\nemulator benchmark: one uvicorn worker ({env['uvicorn_http']}, {env['uvicorn_loop']}),"
        f" {env['cpus']} CPUs shared by the server and the load generator\n"
    )
    header = (
        f"{'phase':<10} {'server':<9} {'conc':>4} {'req':>6} {'req/s':>8} {'events/s':>9} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'srv cpu ms/req':>14} {'srv cpu':>7} {'cli cpu ms/req':>14}"
    )
    print(header)
    print("-" * len(header))
    for name in emulator.phases:
        for result in (emulator, trivial):
            p = result.phases[name]
            events = f"{p.events_per_s:9.0f}" if p.events_per_s is not None else f"{'':>9}"
            print(
                f"{name:<10} {result.server:<9} {p.concurrency:>4} {p.requests:>6} "
                f"{p.requests_per_s:8.0f} {events} {p.p50_ms:8.2f} {p.p99_ms:8.2f} "
                f"{p.server_cpu_ms_per_request:14.3f} {p.server_cpu_share:6.0%} "
                f"{p.client_cpu_ms_per_request:14.3f}"
            )
    print("\nemulator / trivial server")
    for name, values in ratios(emulator, trivial).items():
        print(
            f"  {name:<10} req/s x{values['requests_per_s']:.2f}  p50 x{values['p50_ms']:.2f}  "
            f"p99 x{values['p99_ms']:.2f}  server CPU per request x"
            f"{values['server_cpu_ms_per_request']:.2f}"
        )
    for result in (emulator, trivial):
        series = ", ".join(f"{k} {v:.1f}" for k, v in result.rss_mib.items())
        print(f"RSS MiB ({result.server}): {series}")
    stream = emulator.phases["stream"]
    print(
        f"\nstream: {stream.events_per_request:.0f} SSE events per request "
        f"({STREAM_TOKENS} completion tokens each, checked from usage)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="per non-streaming phase")
    parser.add_argument("--streams", type=int, default=1000, help="in the stream phase")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent requests")
    parser.add_argument(
        "--clients", type=int, default=8, help="httpx clients the connections are spread over"
    )
    parser.add_argument("--serve", choices=["emulator", "trivial"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bodies", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.bodies)
        return

    started = time.perf_counter()
    load_before = load_average()
    servers: list[Server] = []
    try:
        emulator = Server("emulator")
        servers.append(emulator)
        with httpx.Client(base_url=emulator.url, timeout=10) as control:
            control.post("/_emulator/scenarios", json=[STREAM_RULE]).raise_for_status()
        with tempfile.TemporaryDirectory() as tmp:
            bodies_file = Path(tmp) / "bodies.json"
            bodies_file.write_text(json.dumps(capture_bodies(emulator.url)), encoding="utf-8")
            servers.append(Server("trivial", str(bodies_file)))
        emulator_run, trivial_run = asyncio.run(run(servers, args))
    finally:
        for server in servers:
            server.stop()

    env = environment()
    report(emulator_run, trivial_run, env)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "emulator",
                **env,
                "concurrency": args.concurrency,
                "requests_per_phase": args.requests,
                "streams": args.streams,
                "stream_completion_tokens": STREAM_TOKENS,
                "note": (
                    "client and server share the machine's CPUs; server_cpu_ms_per_request "
                    "is the server's own cost, requests_per_s what this client reached"
                ),
                "runs": {
                    r.server: {
                        "rss_mib": r.rss_mib,
                        "phases": {k: asdict(v) for k, v in r.phases.items()},
                    }
                    for r in (emulator_run, trivial_run)
                },
                "emulator_over_trivial": ratios(emulator_run, trivial_run),
                "load_average_before": load_before,
                "load_average_after": load_average(),
                "seconds": time.perf_counter() - started,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(
        f"\nwritten to {RESULTS.relative_to(HERE.parent)} in {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
