"""Benchmark ``qwenkit batch`` against the loop everyone writes by hand, in one run.

Run: ``uv run --no-sync python bench/batch_bench.py [--lines 2000] [--concurrency 64]``. The
emulator runs in a subprocess (``sdk_bench.py --serve``, pacing off). The same JSONL of plain
lines is answered twice:

- **qwenkit**: ``qwenkit.batch.run_batch`` over ``AsyncQwen`` (results appended and fsync'ed,
  resumable, the AIMD limit at ``--concurrency``, usage and cost on every row);
- **naive**: ``asyncio.gather`` over the ``openai`` SDK's ``AsyncOpenAI`` with a semaphore of
  ``--concurrency``, answers kept in memory and written at the end (no resume, no cost).

It reports lines/s of each and their ratio, and writes ``bench/results/batch.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import openai

from qwenkit import AsyncQwen
from qwenkit.batch import BatchOptions, ResultFile, run_batch
from sdk_bench import Emulator

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "batch.json"
KEY = "sk-bench-batch"


def lines(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"doc-{i}", "model": "qwen-plus", "max_tokens": 16,
         "messages": [{"role": "user", "content": f"Summarise document {i} in one line."}]}
        for i in range(n)
    ]  # fmt: skip


async def qwenkit_run(url: str, path: Path, out: Path, width: int) -> float:
    start = time.perf_counter()
    async with AsyncQwen(api_key=KEY, base_url=url, usage_sinks=[]) as client:
        results = ResultFile(out)
        try:
            summary = await run_batch(client, path, results, BatchOptions(concurrency=width))
        finally:
            results.close()
    elapsed = time.perf_counter() - start
    assert summary.progress.failed == 0, summary
    return elapsed


async def naive_run(url: str, items: list[dict[str, Any]], out: Path, width: int) -> float:
    start = time.perf_counter()
    gate = asyncio.Semaphore(width)
    async with openai.AsyncOpenAI(api_key=KEY, base_url=url + "/compatible-mode/v1") as client:

        async def one(item: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                answer = await client.chat.completions.create(
                    model=item["model"], messages=item["messages"], max_tokens=item["max_tokens"]
                )
                return {"id": item["id"], "response": answer.model_dump()}

        answers = await asyncio.gather(*(one(item) for item in items))
    out.write_text("".join(json.dumps(a) + "\n" for a in answers), encoding="utf-8")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    items = lines(args.lines)
    emulator = Emulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            path = folder / "input.jsonl"
            path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
            naive = asyncio.run(
                naive_run(emulator.url, items, folder / "naive.jsonl", args.concurrency)
            )
            ours = asyncio.run(
                qwenkit_run(emulator.url, path, folder / "out.jsonl", args.concurrency)
            )
    finally:
        emulator.stop()
    document = {
        "benchmark": "batch",
        "python": platform.python_version(),
        "lines": args.lines,
        "concurrency": args.concurrency,
        "qwenkit_lines_per_s": round(args.lines / ours, 1),
        "naive_openai_gather_lines_per_s": round(args.lines / naive, 1),
        "ratio": round(naive / ours, 2),
    }
    print(json.dumps(document, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
