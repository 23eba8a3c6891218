"""Prompt accounting and the context cache, as the emulator reports them in ``usage``.

Prompt ids (``render_prompt``): ChatML as in reference §11.2, encoded with the family's Qwen
tokenizer; plain text turns get their exact ids, as many as ``qwenkit.tokens.count_messages``
counts. Tool definitions (after a leading system message, else first), tool calls and tool
results are counted by ``count_messages``'s documented template estimate; as that template text
is private to ``qwenkit.tokens.accounting``, their ids here are the encoded content fitted to the
count (cut, or padded with ``<|endoftext|>``): stable and content-derived, as the cache needs.

``PrefixCache`` (reference §9; sizes in ``CacheConfig``):

- implicit: per (key, model), the longest prefix seen before, in whole ``block_tokens``
  (UNCONFIRMED granularity), at most the prompt minus its last token, reported when at least
  ``min_prefix_tokens``; kept as 16-byte digests of block-aligned prefixes in an LRU of
  ``max_entries``;
- explicit: ``cache_control`` markers (``RenderedPrompt.marks``: where a marked text part ends).
  A marked prefix of at least ``explicit_min_tokens`` is created on first sight
  (``cache_creation_tokens``: the tokens past any hit, up to the last valid marker, INFERRED); a
  prompt starting with a cached prefix used within ``explicit_ttl_seconds`` reports it as
  ``cached_tokens`` and refreshes it. Markers make a request explicit-only (the implicit cache is
  neither read nor written). The 4-marker and 20-block look-back limits are not enforced.

``lookup`` before answering and ``store`` after (a cache exists only once its response is done),
or ``observe`` for both.
"""

from __future__ import annotations

import hashlib
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from qwenkit.emulator.config import CacheConfig
from qwenkit.tokens import QwenTokenizer, TokenCount, count_messages, get_tokenizer
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    ChatRequest,
    TextPart,
    ToolMessage,
    Usage,
    content_text,
)

__all__ = ["CacheResult", "PrefixCache", "RenderedPrompt", "completion_usage", "explicit_marks"]
__all__ += ["render_prompt", "render_prompt_ids"]


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    ids: list[int]
    marks: list[int]
    """Explicit-cache marker positions: the prefix ``ids[:mark]`` ends a marked text part."""


def render_prompt(request: ChatRequest, family: str) -> RenderedPrompt:
    """The prompt ids of ``request`` and its explicit-cache markers (``family``: "qwen"...)."""
    tokenizer = get_tokenizer(family)
    items: list[AnyMessage] = list(request.messages)
    estimated = bool(request.tools) or any(_estimated(message) for message in items)
    counts = count_messages(items, family, request.tools) if estimated else None
    ids: list[int] = []
    marks: list[int] = []
    for index, message in enumerate(items):
        if index == 0 and message.role != "system":
            ids += _tools_ids(tokenizer, request, counts)
        start = len(ids)
        message_ids = _message_ids(tokenizer, items, index)
        if counts is not None and _estimated(message):
            message_ids = _fit(message_ids, counts.messages[index], tokenizer)
        ids += message_ids
        marks += [start + at for at in _part_ends(tokenizer, message, message_ids)]
        if index == 0 and message.role == "system":
            ids += _tools_ids(tokenizer, request, counts)
    if not items:
        ids += _tools_ids(tokenizer, request, counts)
    if not _continues(items):
        ids += tokenizer.encode("<|im_start|>assistant\n")
    return RenderedPrompt(ids, sorted(set(marks)))


def render_prompt_ids(request: ChatRequest, family: str) -> list[int]:
    """The ChatML prompt as token ids (its length is ``count_messages(...).total``)."""
    return render_prompt(request, family).ids


def explicit_marks(request: ChatRequest, family: str) -> list[int]:
    """Positions in ``render_prompt_ids`` where a ``cache_control`` text part ends."""
    return render_prompt(request, family).marks


def _estimated(message: AnyMessage) -> bool:
    return isinstance(message, ToolMessage) or (
        isinstance(message, AssistantMessage) and bool(message.tool_calls)
    )


def _continues(items: Sequence[AnyMessage]) -> bool:
    last = items[-1] if items else None
    return isinstance(last, AssistantMessage) and bool(last.partial) and not last.tool_calls


def _message_ids(tokenizer: QwenTokenizer, items: Sequence[AnyMessage], index: int) -> list[int]:
    message = items[index]
    text = content_text(message.content)
    if isinstance(message, AssistantMessage):
        for call in message.tool_calls or ():
            text += f"\n{call.function.name} {call.function.arguments}"
    close = not (index == len(items) - 1 and _continues(items))
    tail = "<|im_end|>\n" if close else ""
    return tokenizer.encode(f"<|im_start|>{message.role}\n{text}{tail}")


def _part_ends(tokenizer: QwenTokenizer, message: AnyMessage, message_ids: list[int]) -> list[int]:
    """Offsets in ``message_ids`` where each ``cache_control`` text part ends: the tokens the
    message shares with the encoding of its text up to that part (a token that straddles the
    end, such as a trailing space merged with the next word, is left out)."""
    content = message.content
    if content is None or isinstance(content, str):
        return []
    ends: list[int] = []
    text = f"<|im_start|>{message.role}\n"
    for part in content:
        if isinstance(part, TextPart):
            text += part.text
            if part.cache_control is not None:
                ends.append(_common_prefix(tokenizer.encode(text), message_ids))
    return ends


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def _tools_ids(
    tokenizer: QwenTokenizer, request: ChatRequest, counts: TokenCount | None
) -> list[int]:
    tools = request.tools or []
    if not tools or counts is None:
        return []
    schemas = "\n".join(tool.function.model_dump_json(exclude_unset=True) for tool in tools)
    ids = tokenizer.encode(f"<|im_start|>system\n{schemas}<|im_end|>\n")
    return _fit(ids, counts.tools, tokenizer)


def _fit(ids: list[int], length: int, tokenizer: QwenTokenizer) -> list[int]:
    if len(ids) >= length:
        return ids[:length]
    return ids + [tokenizer.endoftext_id] * (length - len(ids))


# -- usage ----------------------------------------------------------------------------------------

CacheKind = Literal["none", "implicit", "explicit"]


@dataclass(frozen=True, slots=True)
class CacheResult:
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    kind: CacheKind = "none"


NO_CACHE = CacheResult()


def completion_usage(
    prompt_tokens: int,
    cache: CacheResult = NO_CACHE,
    *,
    reasoning_tokens: int = 0,
    content_tokens: int = 0,
    tool_call_tokens: int = 0,
) -> Usage:
    """``Usage`` of one answer: completion = reasoning + answer + tool-call argument tokens."""
    completion = reasoning_tokens + content_tokens + tool_call_tokens
    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion,
        total_tokens=prompt_tokens + completion,
        cached_tokens=cache.cached_tokens,
        cache_creation_tokens=cache.cache_creation_tokens,
        reasoning_tokens=reasoning_tokens,
    )


# -- the cache ------------------------------------------------------------------------------------

Ids = Sequence[int]
_ImplicitKey = tuple[str, str, bytes]
_ExplicitKey = tuple[str, str, int, bytes]


def _digests(ids: Ids, positions: Iterable[int]) -> dict[int, bytes]:
    """Digest of ``ids[:p]`` for each position ``p`` (one pass over the ids)."""
    hasher = hashlib.blake2b(digest_size=16)
    out: dict[int, bytes] = {}
    done = 0
    for position in sorted(set(positions)):
        hasher.update(array("I", ids[done:position]).tobytes())
        done = position
        out[position] = hasher.copy().digest()
    return out


class PrefixCache:
    """Implicit and explicit context cache, per API key and model (see the module docstring)."""

    def __init__(self, config: CacheConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._implicit: OrderedDict[_ImplicitKey, None] = OrderedDict()
        self._explicit: OrderedDict[_ExplicitKey, float] = OrderedDict()
        """Explicit entries and when each expires."""

    def __len__(self) -> int:
        return len(self._implicit) + len(self._explicit)

    def reset(self) -> None:
        self._implicit.clear()
        self._explicit.clear()

    def observe(self, key_id: str, model: str, ids: Ids, explicit_marks: Ids = ()) -> CacheResult:
        """``lookup`` then ``store``: the result for this request, remembered for later ones."""
        result = self.lookup(key_id, model, ids, explicit_marks)
        self.store(key_id, model, ids, explicit_marks)
        return result

    def lookup(self, key_id: str, model: str, ids: Ids, explicit_marks: Ids = ()) -> CacheResult:
        """What this prompt gets from the cache now (nothing is recorded)."""
        if explicit_marks:
            return self._explicit_lookup(key_id, model, ids, explicit_marks)[0]
        if not self.config.implicit:
            return NO_CACHE
        digests = _digests(ids, self._blocks(len(ids) - 1))  # the last token is always computed
        for position in sorted(digests, reverse=True):
            if position < self.config.min_prefix_tokens:
                break
            if (key_id, model, digests[position]) in self._implicit:
                return CacheResult(cached_tokens=position, kind="implicit")
        return NO_CACHE

    def store(self, key_id: str, model: str, ids: Ids, explicit_marks: Ids = ()) -> None:
        """Remember this prompt (implicit) or create/refresh its marked prefixes (explicit)."""
        if explicit_marks:
            self._explicit_store(key_id, model, ids, explicit_marks)
        elif self.config.implicit:
            digests = _digests(ids, self._blocks(len(ids)))
            for position in sorted(digests, reverse=True):  # shortest prefixes end most recent
                key = (key_id, model, digests[position])
                self._implicit[key] = None
                self._implicit.move_to_end(key)
            while len(self._implicit) > self.config.max_entries:
                self._implicit.popitem(last=False)

    def _blocks(self, length: int) -> range:
        block = self.config.block_tokens
        return range(block, length + 1, block)

    def _valid_marks(self, ids: Ids, marks: Ids) -> list[int]:
        low = self.config.explicit_min_tokens
        return sorted({mark for mark in marks if low <= mark <= len(ids)})

    def _explicit_lookup(
        self, key_id: str, model: str, ids: Ids, marks: Ids
    ) -> tuple[CacheResult, _ExplicitKey | None]:
        valid = self._valid_marks(ids, marks)
        if not valid:
            return NO_CACHE, None
        top, now = valid[-1], self._clock()
        lengths = {k[2] for k in self._explicit if k[0] == key_id and k[1] == model and k[2] <= top}
        digests = _digests(ids, lengths)
        for length in sorted(digests, reverse=True):
            key = (key_id, model, length, digests[length])
            if now < self._explicit.get(key, now):
                return CacheResult(length, top - length, "explicit"), key
        return CacheResult(0, top, "explicit"), None

    def _explicit_store(self, key_id: str, model: str, ids: Ids, marks: Ids) -> None:
        _, hit = self._explicit_lookup(key_id, model, ids, marks)
        digests = _digests(ids, self._valid_marks(ids, marks))
        keys = [(key_id, model, length, digest) for length, digest in digests.items()]
        expires = self._clock() + self.config.explicit_ttl_seconds
        for key in [*keys, *([hit] if hit else [])]:
            self._explicit[key] = expires
            self._explicit.move_to_end(key)
        now = self._clock()  # drop the least recently used past max_entries, and expired ones
        while self._explicit:
            oldest_expiry = next(iter(self._explicit.values()))
            if len(self._explicit) <= self.config.max_entries and oldest_expiry > now:
                break
            self._explicit.popitem(last=False)
