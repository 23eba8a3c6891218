"""Prompt token accounting for chat requests (ChatML, as rendered by the Qwen chat template).

Exact part (plain text turns): every message is ``<|im_start|>{role}\\n{content}<|im_end|>\\n``
(5 tokens of overhead: system/user/assistant/tool/developer are one token each in both
vocabularies, verified in the tests, so mapping ``developer`` to ``system`` changes nothing),
and the prompt ends with the generation prefix ``<|im_start|>assistant\\n`` (3 tokens). Each
message is encoded as rendered, so a content starting with a newline merges with the role's
newline as it does in the full prompt. Content is encoded like the official tokenizer
(special-token text becomes special tokens) to match the official counting. Text parts of a
list content are joined. With the "qwen" family this reproduces the official SDK's counts.
Caveat: for qwen3.6-plus, QwenCloud's example reports 22 input tokens where both vocabularies
count 23 (reference section 11.2); Qwen3.5+ commercial counts may differ by a token or so.

Estimated part (``TokenCount.estimated_tokens``), following the open-weight Qwen3 template; how
DashScope renders these for commercial models is not public:

- tool definitions: a system block ``# Tools ... <tools>\\n{tool JSON}...\\n</tools> ...`` with
  the template's fixed instructions, merged into the first system message or added as one;
- assistant tool calls: ``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>``;
- tool results: ``<tool_response>\\n{content}\\n</tool_response>`` inside a ``user`` turn
  (consecutive results share one turn).

``<tool_call>``, ``</tool_call>``, ``<tool_response>`` and ``</tool_response>`` written by the
template count as one token each, as in the Qwen3 and Qwen3.5 vocabularies.

Not counted: ``reasoning_content`` of earlier assistant turns (the template drops it from the
history), a ``name`` on a message (the template ignores it), the ``<think>\\n\\n</think>\\n\\n``
the open-weight template adds when thinking is disabled, and media: image/audio/video parts are
only counted in ``TokenCount.media_parts`` (their tokens depend on resolution and duration).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qwenkit.catalog import ModelProfile, get_model
from qwenkit.tokens.tokenizer import Family, QwenTokenizer, get_tokenizer
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    ChatRequest,
    Content,
    TextPart,
    Tool,
    ToolMessage,
    content_text,
    parse_messages,
)

__all__ = ["FitResult", "TokenCount", "count_messages", "count_request", "count_text", "fits"]

_MARKER = re.compile(r"(</?tool_call>|</?tool_response>)")
_TOOLS_HEADER = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
_GENERATION_PREFIX = "<|im_start|>assistant\n"


@dataclass(frozen=True)
class TokenCount:
    """The prompt tokens of a chat request.

    ``total`` = sum of ``messages`` + ``tools`` + ``prefix``. ``estimated_tokens`` is the part
    rendered by a template estimate (tools, tool calls, tool results); ``exact`` is True only when
    that part is zero, no media part was skipped and the family's vocabulary is a pinned, trusted
    copy (both families are; a family without one would be marked inexact).
    """

    total: int
    exact: bool
    estimated_tokens: int
    messages: tuple[int, ...]
    family: Family
    tools: int = 0
    prefix: int = 0
    media_parts: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FitResult:
    """Whether a prompt plus its answer budget fits a model.

    The rule: ``prompt_tokens <= limit`` (the model's max input) and
    ``prompt_tokens + max_tokens <= context_window``. ``remaining`` is how many more prompt
    tokens would still fit under both (negative when over); ``max_tokens`` is the answer budget
    used (the one given, else the model's default).
    """

    fits: bool
    prompt_tokens: int
    max_tokens: int
    limit: int
    context_window: int
    remaining: int
    reason: str
    count: TokenCount


def count_text(text: str, model: str | None = None) -> int:
    """Tokens of ``text`` (official behaviour: special-token text counts as one token)."""
    return get_tokenizer(model or "qwen").count(text)


Piece = tuple[str, bool]
"""A rendered fragment and whether it is template text (whose markers count as one token)."""


def _t(text: str) -> Piece:
    return (text, True)


def _c(text: str) -> Piece:
    return (text, False)


def _count(tokenizer: QwenTokenizer, *pieces: Piece) -> int:
    """Tokens of the concatenated pieces; template markers are single tokens that split the text."""
    total = 0
    run: list[str] = []
    for text, template in pieces:
        if not template:
            run.append(text)
            continue
        for index, fragment in enumerate(_MARKER.split(text)):
            if index % 2:
                total += tokenizer.count("".join(run)) + 1
                run = []
            else:
                run.append(fragment)
    return total + tokenizer.count("".join(run))


def _turn(role: str, text: str, *, close: bool = True) -> str:
    return f"<|im_start|>{role}\n{text}" + ("<|im_end|>\n" if close else "")


def _tool_calls(message: AssistantMessage, text: str) -> list[Piece]:
    pieces: list[Piece] = []
    for index, call in enumerate(message.tool_calls or ()):
        if index or text:
            pieces.append(_t("\n"))
        pieces += [_t('<tool_call>\n{"name": "'), _c(call.function.name), _t('", "arguments": ')]
        pieces += [_c(call.function.arguments or "{}"), _t("}\n</tool_call>")]
    return pieces


def _media_parts(content: Content | None) -> int:
    if content is None or isinstance(content, str):
        return 0
    return sum(1 for part in content if not isinstance(part, TextPart))


def _parse_tools(tools: Iterable[Tool | Mapping[str, Any]] | None) -> list[Tool]:
    return [t if isinstance(t, Tool) else Tool.model_validate(t) for t in tools or ()]


def _message(tokenizer: QwenTokenizer, items: list[AnyMessage], index: int) -> tuple[int, int]:
    """(tokens, of which estimated) of ``items[index]``."""
    message = items[index]
    text = content_text(message.content)
    last_item = index == len(items) - 1
    if isinstance(message, ToolMessage):
        first = index == 0 or items[index - 1].role != "tool"
        last = last_item or items[index + 1].role != "tool"
        head = ("<|im_start|>user" if first else "") + "\n<tool_response>\n"
        tail = "\n</tool_response>" + ("<|im_end|>\n" if last else "")
        tokens = _count(tokenizer, _t(head), _c(text), _t(tail))
        return tokens, tokens
    if not isinstance(message, AssistantMessage):
        return tokenizer.count(_turn(message.role, text)), 0
    close = not (last_item and _continues(items))
    plain = tokenizer.count(_turn("assistant", text, close=close))
    if not message.tool_calls:
        return plain, 0
    calls = _tool_calls(message, text)
    opening = _t("<|im_start|>assistant\n")
    tokens = _count(tokenizer, opening, _c(text), *calls, _t("<|im_end|>\n"))
    return tokens, tokens - plain


def _continues(items: list[AnyMessage]) -> bool:
    """True when the last message is a partial assistant turn the model is to continue."""
    last = items[-1] if items else None
    return isinstance(last, AssistantMessage) and bool(last.partial) and not last.tool_calls


def _tools(tokenizer: QwenTokenizer, items: list[AnyMessage], tools: list[Tool], first: int) -> int:
    """Tokens the tool definitions add (``first``: the tokens of ``items[0]``)."""
    if not tools:
        return 0
    schemas = [_c("\n" + json.dumps(t.to_wire(), ensure_ascii=False)) for t in tools]
    block = [_t(_TOOLS_HEADER), *schemas, _t(_TOOLS_FOOTER + "<|im_end|>\n")]
    if items and items[0].role == "system":
        prompt = _c(content_text(items[0].content))
        return _count(tokenizer, _t("<|im_start|>system\n"), prompt, _t("\n\n"), *block) - first
    return _count(tokenizer, _t("<|im_start|>system\n"), *block)


def count_messages(
    messages: Iterable[AnyMessage | Mapping[str, Any]],
    model: str | None = None,
    tools: Iterable[Tool | Mapping[str, Any]] | None = None,
) -> TokenCount:
    """Count the prompt tokens of ``messages`` (+ ``tools``) for ``model`` (default: "qwen")."""
    tokenizer = get_tokenizer(model or "qwen")
    items = parse_messages(messages)
    counted = [_message(tokenizer, items, index) for index in range(len(items))]
    per_message = tuple(tokens for tokens, _ in counted)
    tools_tokens = _tools(tokenizer, items, _parse_tools(tools), per_message[0] if items else 0)
    estimated = sum(part for _, part in counted) + tools_tokens
    media = sum(_media_parts(message.content) for message in items)
    prefix = 0 if _continues(items) else tokenizer.count(_GENERATION_PREFIX)
    return TokenCount(
        total=sum(per_message) + tools_tokens + prefix,
        exact=tokenizer.exact and estimated == 0 and media == 0,
        estimated_tokens=estimated,
        messages=per_message,
        family=tokenizer.family,
        tools=tools_tokens,
        prefix=prefix,
        media_parts=media,
        notes=_notes(tokenizer, estimated, media),
    )


def _notes(tokenizer: QwenTokenizer, estimated: int, media: int) -> tuple[str, ...]:
    notes = [
        f"the {tokenizer.family!r} vocabulary is not a trusted copy: its counts are estimates",
        f"{estimated} tokens of tools, tool calls or tool results follow the open-weight Qwen3 "
        "template: an estimate",
        f"{media} image/audio/video parts are not counted (their tokens depend on resolution)",
    ]
    flags = (not tokenizer.exact, estimated > 0, media > 0)
    return tuple(note for note, on in zip(notes, flags, strict=True) if on)


def count_request(request: ChatRequest) -> TokenCount:
    """``count_messages`` for a canonical request (its model, messages and tools)."""
    return count_messages(request.messages, request.model, request.tools)


def fits(
    messages: Iterable[AnyMessage | Mapping[str, Any]],
    model: str | ModelProfile,
    max_tokens: int | None = None,
    tools: Iterable[Tool | Mapping[str, Any]] | None = None,
    *,
    thinking: bool = False,
) -> FitResult:
    """Whether ``messages`` (+ ``tools``) and an answer of ``max_tokens`` fit ``model``.

    ``model`` must be a catalog model (or its profile): the limits come from the catalog. With
    ``thinking=True`` the model's smaller thinking-mode max input applies, if it has one.
    Raises ``UnknownModelError`` for unknown names and ``ValueError`` for ``max_tokens < 1``.
    """
    profile = get_model(model) if isinstance(model, str) else model
    count = count_messages(messages, profile.name, tools)
    answer = max_tokens if max_tokens is not None else profile.default_max_tokens
    if answer < 1:
        raise ValueError(f"max_tokens must be at least 1, got {answer}")
    prompt = count.total
    limit, window = profile.max_input_tokens, profile.context_window
    if thinking and profile.max_input_tokens_thinking is not None:
        limit = profile.max_input_tokens_thinking
    remaining = min(limit - prompt, window - answer - prompt)
    label = f"{prompt} prompt tokens" + ("" if count.exact else " (estimated)")
    name = profile.name
    if answer > profile.max_output_tokens:
        reason = (
            f"max_tokens {answer} exceeds the max output ({profile.max_output_tokens}) of {name}"
        )
    elif prompt > limit:
        reason = f"{label} exceed the max input ({limit}) of {name}"
    elif prompt + answer > window:
        reason = f"{label} + max_tokens {answer} exceed the context window ({window}) of {name}"
    else:
        reason = f"fits: {label} + {answer} answer tokens, {remaining} prompt tokens to spare"
    ok = reason.startswith("fits")
    return FitResult(ok, prompt, answer, limit, window, remaining, reason, count)
