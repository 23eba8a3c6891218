"""``CountMemo``: token counts of long texts seen before, bounded by the characters it holds.

A gateway or an agent counts the same long texts on every call: the system prompt, a tool
block, the earlier turns of a conversation. Tokenizing 8,000 characters takes about a
millisecond; looking them up takes the time to hash them (microseconds). Texts shorter than
``min_chars`` are counted every time (cheap, and not worth an entry). The memo keeps the most
recently used texts up to ``max_chars`` characters in all, so its memory is bounded whatever
the traffic; it is thread-safe (one lock around the dictionary, never held while tokenizing).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["CountMemo"]


class CountMemo:
    """Least-recently-used ``text -> count``, at most ``max_chars`` characters of text."""

    def __init__(self, *, min_chars: int = 256, max_chars: int = 4_000_000) -> None:
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.chars = 0
        self.hits = 0
        self.misses = 0
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> int | None:
        """The remembered count of ``text`` (``None``: not remembered, or too short)."""
        if len(text) < self.min_chars:
            return None
        with self._lock:
            found = self._counts.get(text)
            if found is None:
                self.misses += 1
                return None
            self._counts.move_to_end(text)
            self.hits += 1
            return found

    def put(self, text: str, count: int) -> None:
        size = len(text)
        if size < self.min_chars or size > self.max_chars:
            return
        with self._lock:
            if text in self._counts:
                return
            self._counts[text] = count
            self.chars += size
            while self.chars > self.max_chars:
                evicted, _ = self._counts.popitem(last=False)
                self.chars -= len(evicted)

    def __len__(self) -> int:
        return len(self._counts)
