"""The Qwen byte-level BPE tokenizers, run by ``tiktoken``.

Two families:

- ``"qwen"`` — 151,643 ranks + 208 special tokens (``<|endoftext|>``=151643, ``<|im_start|>``=151644,
  ``<|im_end|>``=151645, ``<|extra_0|>``..``<|extra_204|>``=151646..151850); the vocabulary of the
  official DashScope SDK tokenizer, used by Qwen2.5 / Qwen3 / qwen-plus / qwen-max / qwq ...
- ``"qwen3.5"`` — 248,044 ranks + 33 special tokens from 248044, used by Qwen3.5 / Qwen3.6; the
  split pattern also keeps combining marks (``\\p{M}``) with letters.

``encode`` follows the official tokenizer: Unicode NFC first, special-token text becomes the
special token (``allowed_special="all"``). That is what ``count_messages`` uses, to match the
official counting. ``encode_ordinary`` treats special-token text as plain text: when a budget is
computed over user-supplied content, a user writing ``<|im_end|>`` must not turn into a control
token. Inputs longer than 100,000 characters are encoded in chunks (see ``split_chunks``) so the
regex never sees a pathological string (tiktoken's regex gives up on a run of a million spaces);
the chunk boundaries do not change the ids, except in the hard-split fallback for a 100,000-char
stretch with no safe boundary at all.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from qwenkit._exceptions import UsageError
from qwenkit.catalog import get_model
from qwenkit.tokens._memo import CountMemo
from qwenkit.tokens._vocab import load_ranks

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "CHUNK_CHARS",
    "FAMILIES",
    "Family",
    "QwenTokenizer",
    "UnknownTokenizerError",
    "family_for",
    "get_tokenizer",
    "split_chunks",
]

Family = Literal["qwen", "qwen3.5"]
FAMILIES: tuple[Family, ...] = ("qwen", "qwen3.5")

PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN3_5_PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"""
    r"""| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_CHATML = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
QWEN_SPECIALS: tuple[str, ...] = _CHATML + tuple(f"<|extra_{i}|>" for i in range(205))
QWEN3_5_SPECIALS: tuple[str, ...] = (
    *_CHATML,
    *("<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>"),
    *("<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>"),
    *("<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>"),
    *("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>"),
    *("<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>"),
    *("<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>"),
    *("<tts_text_bos_single>", "<|audio_pad|>"),
)
_LAYOUT: dict[Family, tuple[str, tuple[str, ...], int, bool]] = {
    # family: (split pattern, special tokens, first special id, exact)
    "qwen": (PAT_STR, QWEN_SPECIALS, 151_643, True),
    "qwen3.5": (QWEN3_5_PAT_STR, QWEN3_5_SPECIALS, 248_044, True),
}

CHUNK_CHARS = 100_000
"""Inputs longer than this are encoded in chunks (as the official SDK does)."""

# Unicode White_Space: what ``\s`` means in the split regex (Python's str.isspace differs).
_WS = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
_NOT_LINEBREAK_WS = _WS - {"\r", "\n"}


class UnknownTokenizerError(UsageError):
    """No tokenizer is known for this model or family name."""


_WS_CLASS = "".join(re.escape(c) for c in sorted(_WS))
_SPACE_CLASS = "".join(re.escape(c) for c in sorted(_NOT_LINEBREAK_WS))
_SAFE_SPLITS = (
    # "\n" then a non-space: no pre-token holds a newline followed by a non-space.
    re.compile(f"\n(?=[^{_WS_CLASS}])"),
    # a non-space then a non-newline space: such a space always starts a new pre-token.
    re.compile(f"[^{_WS_CLASS}](?=[{_SPACE_CLASS}])"),
)


def _boundary(text: str, start: int, end: int) -> int | None:
    """The last split point in ``(start, end]`` that cannot change the pre-tokenization."""
    for pattern in _SAFE_SPLITS:
        last = None
        for match in pattern.finditer(text, start, end + 1):
            last = match  # only the last split point in the range is wanted
        if last is not None:
            return last.end()
    return None


def split_chunks(text: str, limit: int = CHUNK_CHARS) -> tuple[list[str], bool]:
    """Split ``text`` into pieces of at most ``limit`` characters; also say if a split was hard.

    Split points are chosen where no pre-token of the split regex can cross them, so encoding
    the pieces one by one gives the same ids as encoding ``text`` at once: first after a newline
    followed by a non-space, else before a (non-newline) space that follows a non-space. Only
    when a window of ``limit`` characters holds neither (one giant word or whitespace run) is
    the text split hard, which may change a few tokens around the split (``True`` returned).
    """
    if len(text) <= limit:
        return [text], False
    chunks: list[str] = []
    hard = False
    start = 0
    while len(text) - start > limit:
        cut = _boundary(text, start, start + limit)
        if cut is None:
            cut, hard = start + limit, True
        chunks.append(text[start:cut])
        start = cut
    chunks.append(text[start:])
    return chunks, hard


@dataclass(frozen=True, eq=False)
class QwenTokenizer:
    """One Qwen BPE family. Build with ``get_tokenizer``; instances are shared and thread-safe."""

    family: Family
    encoding: tiktoken.Encoding
    special_tokens: Mapping[str, int]
    exact: bool
    """True when the vocabulary is the one the official SDK ships (billing-grade counts)."""
    memo: CountMemo = field(default_factory=CountMemo, repr=False, compare=False)
    """Counts of long texts seen before (the system prompt of every call)."""

    @property
    def n_vocab(self) -> int:
        return int(self.encoding.n_vocab)

    @property
    def endoftext_id(self) -> int:
        return self.special_tokens["<|endoftext|>"]

    @property
    def im_start_id(self) -> int:
        return self.special_tokens["<|im_start|>"]

    @property
    def im_end_id(self) -> int:
        return self.special_tokens["<|im_end|>"]

    def encode(self, text: str) -> list[int]:
        """Token ids as the official tokenizer gives them (NFC; special-token text is special)."""
        return self._run(text, self._encode_all)

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids with special-token text encoded as plain text (safe for untrusted input)."""
        return self._run(text, self.encoding.encode_ordinary)

    def count(self, text: str) -> int:
        """``len(encode(text))``; long texts seen before are answered from a bounded memo
        (``qwenkit.tokens._memo``)."""
        found = self.memo.get(text)
        if found is None:
            found = len(self.encode(text))
            self.memo.put(text, found)
        return found

    def count_ordinary(self, text: str) -> int:
        """``len(encode_ordinary(text))``."""
        return len(self.encode_ordinary(text))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` (invalid UTF-8 at a cut becomes U+FFFD)."""
        return str(self.encoding.decode(list(ids), errors="replace"))

    def _encode_all(self, text: str) -> list[int]:
        ids: list[int] = self.encoding.encode(text, allowed_special="all", disallowed_special=())
        return ids

    @staticmethod
    def _run(text: str, encode: Callable[[str], list[int]]) -> list[int]:
        text = unicodedata.normalize("NFC", text)
        if len(text) <= CHUNK_CHARS:
            return encode(text)
        ids: list[int] = []
        for chunk in split_chunks(text)[0]:
            ids.extend(encode(chunk))
        return ids


_lock = threading.Lock()
_cache: dict[Family, QwenTokenizer] = {}


def _build(family: Family) -> QwenTokenizer:
    pattern, specials, first, exact = _LAYOUT[family]
    special_ids = {token: first + index for index, token in enumerate(specials)}
    import tiktoken  # imported on first use: `import qwenkit` stays light

    encoding = tiktoken.Encoding(
        f"qwenkit-{family}",
        pat_str=pattern,
        mergeable_ranks=load_ranks(family),
        special_tokens=special_ids,
    )
    return QwenTokenizer(family, encoding, MappingProxyType(special_ids), exact)


_BY_NAME: dict[str, Family] = {family: family for family in FAMILIES}
_NEW_FAMILY = re.compile(r"qwen3\.(?:[5-9]|[1-9]\d)")


def family_for(family_or_model: str) -> Family:
    """The tokenizer family of a family name, a catalog model, or a Qwen-looking model name.

    Catalog models use their ``tokenizer`` field. Other names (a ``provider/`` prefix is dropped,
    case is ignored): ``qwen3.5*``, ``qwen3.6*`` ... ``qwen3.99*`` → ``"qwen3.5"``; any other
    ``qwen*`` or ``qwq*`` → ``"qwen"``; anything else raises ``UnknownTokenizerError``.
    """
    if family_or_model in _BY_NAME:
        return _BY_NAME[family_or_model]
    try:
        tokenizer = str(get_model(family_or_model).tokenizer)
    except KeyError:
        pass
    else:
        if tokenizer not in _BY_NAME:
            raise UnknownTokenizerError(f"model {family_or_model!r} uses tokenizer {tokenizer!r}")
        return _BY_NAME[tokenizer]
    name = family_or_model.rsplit("/", 1)[-1].strip().lower()
    if _NEW_FAMILY.match(name):
        return "qwen3.5"
    if name.startswith(("qwen", "qwq")):
        return "qwen"
    raise UnknownTokenizerError(
        f"no tokenizer known for {family_or_model!r}: not a catalog model, a family "
        f"({', '.join(FAMILIES)}), or a qwen*/qwq* name"
    )


def get_tokenizer(family_or_model: str = "qwen") -> QwenTokenizer:
    """The shared tokenizer of a family or model; each family is loaded once, on first use."""
    family = family_for(family_or_model)
    tokenizer = _cache.get(family)
    if tokenizer is None:
        with _lock:
            tokenizer = _cache.get(family)
            if tokenizer is None:
                tokenizer = _cache[family] = _build(family)
    return tokenizer
