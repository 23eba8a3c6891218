"""Benchmark the streaming codecs, the stream assembler, and the event representation.

Run: ``uv run python bench/codec_bench.py [--rounds N]`` (about 15 s). On one realistic stream of
2,000 canonical events (``ResponseStarted``, 600 reasoning deltas, 1,200 answer deltas, one tool
call in 196 fragments, ``Finished``, ``UsageReported``; Chinese and English tokens) it measures,
in one process, single-threaded:

- encoding: events → ``StreamEncoder`` → bytes, for the compatible mode (``include_usage``) and
  the native mode, incremental and cumulative (``incremental_output: false``);
- decoding: those bytes, cut into 1,400-byte network chunks → ``SSEDecoder`` → the codec's
  ``StreamDecoder`` → events (checked to assemble to the same answer);
- the in-run baseline: the same decode done naively (``b"".join`` of the chunks,
  ``split(b"\\n\\n")``, the ``data:`` line, ``json.loads``, the delta fields pulled out into plain
  tuples; no chunk-boundary handling, no bounds, no validation), reported as a ratio;
- ``assemble()`` of the 2,000 events;
- memory, in a separate pass from the timing (``tracemalloc``): the peak per run, and the bytes
  allocated per event, measured as the sum over steps (one event encoded, one network chunk
  decoded, one event assembled) of the step's peak above its start: a lower bound of the total
  allocated, since it misses what a step frees before reaching its peak;
- constructing 2,000 events as the frozen slotted dataclasses of ``qwenkit.types.events`` against
  an equivalent frozen pydantic model (the design choice documented in that module).

Times are the best of ``--rounds``. Results are printed as a table and written to
``bench/results/codec.json``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import platform
import random
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from qwenkit import __version__
from qwenkit.streaming import StreamAssembler, assemble
from qwenkit.types import (
    ChatResponse,
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    ToolCallDelta,
    Usage,
    UsageReported,
)
from qwenkit.wire import compat, native
from qwenkit.wire.sse import SSEDecoder

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "codec.json"
N_EVENTS = 2_000
NET_CHUNK = 1_400  # about one TCP segment

_TOKENS = (
    "The", " user", " is", " asking", " about", " the", " weather", " in", " Hangzhou", ".",
    " Let", " me", " think", " step", " by", " step", ",", " then", " call", " a", " tool",
    "杭州", "今天", "的", "天气", "晴朗", "，", "气温", "大约", "二十", "度", "。", "\n", "**",
    " résumé", " 😀", " 1", "0", "%", ' "', "quoted", '"',
)  # fmt: skip


# -- the stream ---------------------------------------------------------------------------------


def make_events(seed: int = 7) -> list[Event]:
    """A 2,000-event stream: thinking, an answer, then one tool call whose arguments stream."""
    rng = random.Random(seed)
    request_id = "a1959ad1-2637-4672-a21f-4d351371d254"
    events: list[Event] = [
        ResponseStarted(
            id="chatcmpl-" + request_id,
            model="qwen3-max",
            created=1761899724,
            request_id=request_id,
        )
    ]
    events += [ReasoningDelta(rng.choice(_TOKENS)) for _ in range(600)]
    events += [ContentDelta(rng.choice(_TOKENS)) for _ in range(1_200)]
    arguments = json.dumps(
        {"location": "杭州", "days": 3, "notes": "".join(rng.choice(_TOKENS) for _ in range(300))},
        ensure_ascii=False,
    )
    n_pieces = N_EVENTS - len(events) - 3  # room for the named fragment, Finished and usage
    cuts = [round(i * len(arguments) / n_pieces) for i in range(n_pieces + 1)]
    events.append(ToolCallDelta(0, id="call_8f08d2b0fc0c4d8fab7123", name="get_weather"))
    events += [
        ToolCallDelta(0, id="", arguments=arguments[a:b]) for a, b in itertools.pairwise(cuts)
    ]
    events.append(Finished("tool_calls"))
    events.append(
        UsageReported(
            Usage(
                prompt_tokens=287, completion_tokens=1_996, total_tokens=2_283, reasoning_tokens=600
            )
        )
    )
    assert len(events) == N_EVENTS, len(events)
    return events


@dataclass(frozen=True)
class Format:
    name: str
    make_encoder: Callable[[], compat.StreamEncoder | native.StreamEncoder]
    make_decoder: Callable[[], compat.StreamDecoder | native.StreamDecoder]
    naive: Callable[[list[bytes]], list[tuple[str, Any]]]

    def decode(self, chunks: list[bytes]) -> list[Event]:
        """bytes → ``SSEDecoder`` → the codec's ``StreamDecoder`` → events."""
        sse, decoder = SSEDecoder(), self.make_decoder()
        events: list[Event] = []
        for chunk in chunks:
            for item in sse.feed(chunk):
                events += decoder.feed(item)
        for item in sse.close():
            events += decoder.feed(item)
        return events


def encode(fmt: Format, events: Iterable[Event]) -> bytes:
    encoder = fmt.make_encoder()
    out = [encoder.encode(event) for event in events]
    out.append(encoder.close())
    return b"".join(out)


def network_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + NET_CHUNK] for i in range(0, len(data), NET_CHUNK)]


# -- the naive reference decoders ------------------------------------------------------------------


def _data_lines(chunks: list[bytes]) -> Iterable[bytes]:
    for block in b"".join(chunks).split(b"\n\n"):
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                yield line[5:]


def naive_compat(chunks: list[bytes]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for payload in _data_lines(chunks):
        if payload.strip() == b"[DONE]":
            continue
        chunk = json.loads(payload)
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if delta.get("reasoning_content"):
                out.append(("reasoning", delta["reasoning_content"]))
            if delta.get("content"):
                out.append(("content", delta["content"]))
            for call in delta.get("tool_calls") or ():
                out.append(("tool", (call["index"], call["function"].get("arguments"))))
            if choice["finish_reason"]:
                out.append(("finish", choice["finish_reason"]))
        if chunk.get("usage"):
            out.append(("usage", chunk["usage"]))
    return out


def naive_native(incremental: bool) -> Callable[[list[bytes]], list[tuple[str, Any]]]:
    def decode(chunks: list[bytes]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        seen = {"reasoning_content": 0, "content": 0, "arguments": 0}
        for payload in _data_lines(chunks):
            chunk = json.loads(payload)
            choice = chunk["output"]["choices"][0]
            message = choice["message"]
            texts = [(key, message.get(key) or "") for key in ("reasoning_content", "content")]
            for call in message.get("tool_calls") or ():
                texts.append(("arguments", call["function"].get("arguments") or ""))
            for key, whole in texts:
                text = whole
                if not incremental:  # cumulative: keep what is new
                    text, seen[key] = whole[seen[key] :], len(whole)
                if text:
                    out.append((key, text))
            if choice["finish_reason"] != "null":
                out.append(("finish", choice["finish_reason"]))
            out.append(("usage", chunk["usage"]))
        return out

    return decode


FORMATS = (
    Format(
        "compat",
        lambda: compat.StreamEncoder(include_usage=True, thinking=True),
        compat.StreamDecoder,
        naive_compat,
    ),
    Format(
        "native incremental",
        lambda: native.StreamEncoder(incremental=True),
        lambda: native.StreamDecoder(model="qwen3-max", incremental=True),
        naive_native(True),
    ),
    Format(
        "native cumulative",
        lambda: native.StreamEncoder(incremental=False),
        lambda: native.StreamDecoder(model="qwen3-max", incremental=False),
        naive_native(False),
    ),
)


# -- measuring -------------------------------------------------------------------------------------


def best_time(run: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def step_memory(steps: Callable[[], Iterable[Callable[[], object]]]) -> tuple[int, int]:
    """(peak, allocated) in bytes for one run, under ``tracemalloc``.

    ``steps`` builds the run's state and returns its steps. ``peak`` is the most memory held at
    once above the start (outputs are dropped after each step, as a relay passes them on; state
    kept by the encoder, decoder or assembler counts). ``allocated`` is the sum of the steps'
    peaks above their own start.
    """
    tracemalloc.start()
    try:
        run = list(steps())
        start = tracemalloc.get_traced_memory()[0]
        peak = total = 0
        for step in run:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            step()
            step_peak = tracemalloc.get_traced_memory()[1]
            total += step_peak - before
            peak = max(peak, step_peak - start)
    finally:
        tracemalloc.stop()
    return peak, total


def encode_steps(fmt: Format, events: list[Event]) -> Callable[[], list[Callable[[], object]]]:
    def steps() -> list[Callable[[], object]]:
        encoder = fmt.make_encoder()
        return [*(lambda e=e: encoder.encode(e) for e in events), encoder.close]

    return steps


def decode_steps(fmt: Format, chunks: list[bytes]) -> Callable[[], list[Callable[[], object]]]:
    def steps() -> list[Callable[[], object]]:
        # The same pipeline as ``Format.decode``, one network chunk per step.
        sse, decoder = SSEDecoder(), fmt.make_decoder()

        def feed(chunk: bytes) -> list[Event]:
            return [event for item in sse.feed(chunk) for event in decoder.feed(item)]

        def close() -> list[Event]:
            return [event for item in sse.close() for event in decoder.feed(item)]

        return [*(lambda c=c: feed(c) for c in chunks), close]

    return steps


def assemble_steps(events: list[Event]) -> Callable[[], list[Callable[[], object]]]:
    def steps() -> list[Callable[[], object]]:
        assembler = StreamAssembler()
        return [*(lambda e=e: assembler.add(e) for e in events), assembler.result]

    return steps


# -- events: dataclass vs pydantic ---------------------------------------------------------------


class PydanticContentDelta(BaseModel):
    """``ContentDelta`` as a frozen pydantic model (what ``types/events.py`` decided against)."""

    model_config = ConfigDict(frozen=True)
    text: str
    choice: int = 0


def event_construction(texts: list[str], rounds: int) -> dict[str, float]:
    dataclass_s = best_time(lambda: [ContentDelta(t, 0) for t in texts], rounds)
    pydantic_s = best_time(lambda: [PydanticContentDelta(text=t, choice=0) for t in texts], rounds)
    memory = {}
    for name, build in (
        ("dataclass", lambda: [ContentDelta(t, 0) for t in texts]),
        ("pydantic", lambda: [PydanticContentDelta(text=t, choice=0) for t in texts]),
    ):
        tracemalloc.start()
        kept = build()
        memory[name] = tracemalloc.get_traced_memory()[0] / len(texts)
        del kept
        tracemalloc.stop()
    return {
        "dataclass_ns_per_event": dataclass_s / len(texts) * 1e9,
        "pydantic_ns_per_event": pydantic_s / len(texts) * 1e9,
        "pydantic_over_dataclass_time": pydantic_s / dataclass_s,
        "dataclass_bytes_per_event": memory["dataclass"],
        "pydantic_bytes_per_event": memory["pydantic"],
    }


# -- main ------------------------------------------------------------------------------------------


def same_answer(a: ChatResponse, b: ChatResponse) -> bool:
    return (a.content, a.reasoning, a.tool_calls, a.finish_reason, a.usage) == (
        b.content,
        b.reasoning,
        b.tool_calls,
        b.finish_reason,
        b.usage,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (best is kept)")
    args = parser.parse_args()
    rounds: int = args.rounds

    events = make_events()
    expected = assemble(events)
    rows: list[dict[str, Any]] = []

    for fmt in FORMATS:
        data = encode(fmt, events)
        chunks = network_chunks(data)
        decoded = fmt.decode(chunks)
        if not same_answer(assemble(decoded), expected):
            raise SystemExit(f"{fmt.name}: the decoded stream does not assemble to the same answer")
        encode_s = best_time(functools.partial(encode, fmt, events), rounds)
        decode_s = best_time(functools.partial(fmt.decode, chunks), rounds)
        naive_s = best_time(functools.partial(fmt.naive, chunks), rounds)
        sse_s = best_time(functools.partial(_sse_only, chunks), rounds)
        enc_peak, enc_total = step_memory(encode_steps(fmt, events))
        dec_peak, dec_total = step_memory(decode_steps(fmt, chunks))
        rows.append(
            {
                "format": fmt.name,
                "wire_bytes": len(data),
                "sse_events": len(_sse_only(chunks)),
                "encode_events_per_s": N_EVENTS / encode_s,
                "decode_events_per_s": N_EVENTS / decode_s,
                "naive_decode_events_per_s": N_EVENTS / naive_s,
                "decode_vs_naive": naive_s / decode_s,
                "sse_framing_share_of_decode": sse_s / decode_s,
                "encode_peak_bytes_per_event": enc_peak / N_EVENTS,
                "encode_alloc_bytes_per_event": enc_total / N_EVENTS,
                "decode_peak_bytes_per_event": dec_peak / N_EVENTS,
                "decode_alloc_bytes_per_event": dec_total / N_EVENTS,
            }
        )

    assemble_s = best_time(lambda: assemble(events), rounds)
    asm_peak, asm_total = step_memory(assemble_steps(events))
    assembler = {
        "events_per_s": N_EVENTS / assemble_s,
        "peak_bytes_per_event": asm_peak / N_EVENTS,
        "alloc_bytes_per_event": asm_total / N_EVENTS,
    }
    texts = [e.text for e in events if isinstance(e, (ContentDelta, ReasoningDelta))] * 10
    construction = event_construction(texts, rounds)

    report(rows, assembler, construction)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "codec",
                "qwenkit": __version__,
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "machine": platform.machine(),
                "system": platform.system(),
                "events": N_EVENTS,
                "network_chunk_bytes": NET_CHUNK,
                "rounds": rounds,
                "formats": rows,
                "assembler": assembler,
                "event_construction": construction,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwritten to {RESULTS.relative_to(HERE.parent)}")


def _sse_only(chunks: list[bytes]) -> list[object]:
    sse = SSEDecoder()
    out: list[object] = []
    for chunk in chunks:
        out += sse.feed(chunk)
    out += sse.close()
    return out


def report(
    rows: list[dict[str, Any]], assembler: dict[str, float], construction: dict[str, float]
) -> None:
    print(f"codec benchmark: {N_EVENTS} events, {NET_CHUNK}-byte network chunks, best of runs\n")
    header = (
        f"{'format':<20}{'wire KB':>9}{'encode ev/s':>13}{'decode ev/s':>13}"
        f"{'naive ev/s':>12}{'vs naive':>10}{'sse share':>10}"
        f"{'enc B/ev':>10}{'enc peak':>10}{'dec B/ev':>10}{'dec peak':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['format']:<20}{row['wire_bytes'] / 1024:>9.0f}"
            f"{row['encode_events_per_s']:>13,.0f}{row['decode_events_per_s']:>13,.0f}"
            f"{row['naive_decode_events_per_s']:>12,.0f}{row['decode_vs_naive']:>9.2f}x"
            f"{row['sse_framing_share_of_decode']:>10.0%}"
            f"{row['encode_alloc_bytes_per_event']:>10,.0f}{row['encode_peak_bytes_per_event']:>10,.1f}"
            f"{row['decode_alloc_bytes_per_event']:>10,.0f}{row['decode_peak_bytes_per_event']:>10,.1f}"
        )
    print(
        f"\nassembler: {assembler['events_per_s']:,.0f} events/s, "
        f"{assembler['alloc_bytes_per_event']:,.0f} B allocated/event, "
        f"peak {assembler['peak_bytes_per_event']:,.0f} B/event"
    )
    print(
        "event construction: frozen slotted dataclass "
        f"{construction['dataclass_ns_per_event']:,.0f} ns and "
        f"{construction['dataclass_bytes_per_event']:,.0f} B/event vs frozen pydantic model "
        f"{construction['pydantic_ns_per_event']:,.0f} ns and "
        f"{construction['pydantic_bytes_per_event']:,.0f} B/event "
        f"({construction['pydantic_over_dataclass_time']:.1f}x slower)"
    )
    print(
        "\nvs naive: our decode speed over the naive split + json.loads loop's (below 1: slower)."
        "\nsse share: the part of our decode time spent in SSE framing (SSEDecoder alone)."
        "\nB/ev: bytes allocated per event (sum of per-step tracemalloc peaks); peak: the most"
        " held at once, per event (outputs passed on, not kept)."
    )


if __name__ == "__main__":
    main()
