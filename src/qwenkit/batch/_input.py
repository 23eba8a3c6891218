"""The input of a batch: JSONL lines, OpenAI batch-file lines or plain ones.

An OpenAI batch-file line is ``{"custom_id", "method", "url", "body"}`` (``body`` holds
``messages`` and the chat parameters); a plain line is ``{"id", "messages", ...}`` where every
other key is a chat parameter (``model``, ``temperature``, ``max_tokens``...). Blank lines are
skipped. A line that cannot be used (bad JSON, no id, no messages, an id seen before) becomes a
``BadLine`` with its 1-based line number; its error row is keyed ``line-<N>`` so that it is
written once and never collides with a real id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BadLine", "Item", "parse_line", "read_items"]


@dataclass(frozen=True)
class Item:
    """One request of the batch: its ``custom_id``, line number, messages and chat params."""

    custom_id: str
    line: int
    messages: list[Any]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadLine:
    """A line that cannot be sent: written as an error row keyed ``custom_id`` (``line-<N>``)."""

    line: int
    message: str

    @property
    def custom_id(self) -> str:
        return f"line-{self.line}"


def parse_line(text: str, line: int) -> Item | BadLine:
    """One input line as an ``Item``, or a ``BadLine`` saying what is wrong with it."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadLine(line, f"line {line}: not JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(data, dict):
        return BadLine(line, f"line {line}: not a JSON object")
    if "custom_id" in data:
        ident, body = data.get("custom_id"), data.get("body")
        if not isinstance(body, dict):
            return BadLine(line, f"line {line}: an OpenAI batch line needs an object 'body'")
        url = data.get("url", "/v1/chat/completions")
        if not str(url).endswith("/chat/completions"):
            return BadLine(line, f"line {line}: url {url!r} is not /v1/chat/completions")
        params = dict(body)
    else:
        ident = data.get("id")
        params = {name: value for name, value in data.items() if name != "id"}
    if not isinstance(ident, (str, int)) or isinstance(ident, bool) or str(ident) == "":
        return BadLine(line, f"line {line}: missing 'id' (or 'custom_id')")
    messages = params.pop("messages", None)
    if not isinstance(messages, (list, str)) or not messages:
        return BadLine(line, f"line {line}: missing 'messages'")
    params.pop("stream", None)  # a batch line is answered whole
    return Item(str(ident), line, messages if isinstance(messages, list) else [messages], params)


def read_items(path: str | Path) -> Iterator[Item | BadLine]:
    """Every non-blank line of ``path`` in order; a repeated id is a ``BadLine``."""
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            item = parse_line(text, number)
            if isinstance(item, Item):
                if item.custom_id in seen:
                    yield BadLine(number, f"line {number}: duplicate id {item.custom_id!r}")
                    continue
                seen.add(item.custom_id)
            yield item
