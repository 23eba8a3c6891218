"""Long inputs are encoded in chunks whose boundaries do not change the ids."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwenkit.tokens import get_tokenizer
from qwenkit.tokens.tokenizer import CHUNK_CHARS, split_chunks

PARAGRAPHS = [
    "The tide came in twice a day, and twice a day the harbour master wrote it down.",
    "    indented line with trailing spaces   ",
    "def f(x):\n    return x ** 2  # square",
    "中文段落没有空格，但是有标点符号。第二句话也在这里。",
    "Emoji 🎉🇨🇳 and numbers 1234567890 and symbols <>{}[]!!",
    "\tTabbed\tcolumns\tof\tdata\t",
    "It's, isn't, we'll, they've — contractions 'S 'LL.",
]


def _whole(family: str, text: str) -> list[int]:
    """What tiktoken gives for the text at once (no chunking), like the official tokenizer."""
    encoding = get_tokenizer(family).encoding
    ids: list[int] = encoding.encode(
        unicodedata.normalize("NFC", text), allowed_special="all", disallowed_special=()
    )
    return ids


@pytest.mark.parametrize("family", ["qwen", "qwen3.5"])
def test_many_paragraphs_same_ids_chunked_and_not(family: str) -> None:
    text = "\n".join(PARAGRAPHS[i % len(PARAGRAPHS)] for i in range(6000))
    assert len(text) > 2 * CHUNK_CHARS
    chunks, hard = split_chunks(text)
    assert len(chunks) >= 3
    assert not hard
    assert get_tokenizer(family).encode(text) == _whole(family, text)


@pytest.mark.parametrize("family", ["qwen", "qwen3.5"])
def test_one_long_line_splits_before_spaces(family: str) -> None:
    text = " ".join(f"word{i} 词{i} 'll," for i in range(30_000))
    assert "\n" not in text
    assert len(text) > 2 * CHUNK_CHARS
    chunks, hard = split_chunks(text)
    assert len(chunks) >= 3
    assert not hard
    assert get_tokenizer(family).encode(text) == _whole(family, text)
    assert get_tokenizer(family).encode_ordinary(text) == _whole(family, text)


def test_no_boundary_falls_back_to_hard_splits() -> None:
    tokenizer = get_tokenizer("qwen")
    letters = "a" * (CHUNK_CHARS * 2 + 7)
    chunks, hard = split_chunks(letters)
    assert hard
    assert [len(c) for c in chunks] == [CHUNK_CHARS, CHUNK_CHARS, 7]
    assert tokenizer.decode(tokenizer.encode(letters)) == letters
    # A million spaces is one pathological whitespace run for the split regex.
    spaces = " " * 1_000_000
    assert tokenizer.decode(tokenizer.encode(spaces)) == spaces


def test_short_text_is_one_chunk() -> None:
    assert split_chunks("a\nb", limit=10) == (["a\nb"], False)
    assert split_chunks("x" * CHUNK_CHARS) == (["x" * CHUNK_CHARS], False)


def test_boundary_rules_at_small_limits() -> None:
    # After "\n" + non-space: preferred even when a space boundary is later.
    assert split_chunks("ab\ncd ef gh", limit=9) == (["ab\n", "cd ef gh"], False)
    # Else before a space that follows a non-space.
    assert split_chunks("ab cd ef gh", limit=9) == (["ab cd ef", " gh"], False)
    # "\n" followed by a space is not a boundary, nor a space after a space.
    assert split_chunks("ab\n  cd", limit=5) == (["ab\n  ", "cd"], True)
    # "." then "\n" then " ": no safe point before the limit → hard split.
    assert split_chunks(".\n\n\n\n\nx", limit=4) == ([".\n\n\n", "\n\nx"], True)


FRAGMENTS = st.sampled_from(
    [" ", "  ", "\n", "\n\n", "\r\n", "\t", "\u3000", "\xa0", "a", "word", "Word", "'s", "'LL",
     "1", "42", ".", "!?", "...", "<|im_end|>", "中文", "。", "é", "e\u0301", "\u0301", "🎉",
     "\x1c", "\x85", "\u2028", "(", "\"", "#"]
)  # fmt: skip
TEXTS = st.lists(FRAGMENTS, min_size=1, max_size=80).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, limit=st.integers(min_value=1, max_value=40))
def test_chunk_boundaries_never_change_ids(text: str, limit: int) -> None:
    text = unicodedata.normalize("NFC", text)
    chunks, hard = split_chunks(text, limit)
    assert "".join(chunks) == text
    assert all(0 < len(chunk) <= limit for chunk in chunks)
    if hard:
        return
    for family in ("qwen", "qwen3.5"):
        encoding = get_tokenizer(family).encoding
        whole = encoding.encode(text, allowed_special="all", disallowed_special=())
        pieces = [
            i
            for chunk in chunks
            for i in encoding.encode(chunk, allowed_special="all", disallowed_special=())
        ]
        assert pieces == whole
        ordinary = [i for chunk in chunks for i in encoding.encode_ordinary(chunk)]
        assert ordinary == encoding.encode_ordinary(text)
