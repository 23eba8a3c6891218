"""From a ``Generation`` to what goes out: canonical stream events or a ``ChatResponse``.

The engine decides *what* the model says; this module decides *how* it is cut and counted, the
same way for both wire formats (the codecs frame it afterwards):

- Text (reasoning first, then the answer) is cut into pieces of ``pacing.chunk_tokens`` tokens of
  the model's own tokenizer. The token ids are turned back into bytes and a piece ends only on a
  complete UTF-8 sequence: a character split across tokens (common for CJK and emoji) waits for its
  last byte, and the tokens it took count with the piece that finally carries it.
- An answer with the ``think_in_content`` quirk (reasoning inline in ``content``) has its
  ``<think>`` and ``</think>`` tags cut into pieces of 1, 2, 3, 1... characters, as self-hosted
  servers stream them (``"<"``, ``"th"``, ``"ink"``, ``">"``; ``"<"``, ``"/t"``, ``"hin"``,
  ``"k"``, ``">"``); each tag's tokens count with its first piece.
- Tool calls follow as fragments: the first of each call carries ``id`` and ``name`` with empty
  arguments, then the arguments in token pieces with an empty ``id`` (reference §2.3).
- Usage is exact: completion tokens are the tokens of the pieces (the reasoning ones also counted
  apart), tool calls count as the Qwen template renders them
  (``<tool_call>\\n{"name": ..., "arguments": ...}\\n</tool_call>``). With ``cumulative`` (native
  streams) a ``UsageReported`` precedes every piece with the output so far; the final usage always
  comes right before ``Finished``.

Each step of a plan carries the number of output tokens it emits, for pacing.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from qwenkit.emulator.generation import Generation
from qwenkit.tokens import QwenTokenizer
from qwenkit.types import (
    AssistantMessage,
    ChatResponse,
    Choice,
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    UsageReported,
    content_text,
)
from qwenkit.wire import compat, native

__all__ = [
    "OutputTokens",
    "Plan",
    "build_response",
    "count_output",
    "encode_body",
    "make_usage",
    "plan_events",
    "token_pieces",
]

Plan = list[tuple[Event, int]]
"""Events in order, each with the number of output tokens it emits (0 for bookkeeping events)."""


def _ids(tokenizer: QwenTokenizer, text: str) -> list[int]:
    """Token ids of generated text; exact bytes even for text that NFC would change."""
    if unicodedata.is_normalized("NFC", text):
        return tokenizer.encode_ordinary(text)
    raw: list[int] = tokenizer.encoding.encode_ordinary(text)
    return raw


def _complete_utf8(buf: bytes | bytearray) -> int:
    """Length of the longest prefix of ``buf`` that does not end inside a UTF-8 sequence."""
    end = len(buf)
    i = end - 1
    while i >= 0 and end - i <= 4 and (buf[i] & 0xC0) == 0x80:
        i -= 1
    if i < 0 or end - i > 4:
        return end
    lead = buf[i]
    need = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return end if end - i >= need else i


def token_pieces(tokenizer: QwenTokenizer, text: str, chunk_tokens: int) -> list[tuple[str, int]]:
    """``text`` cut after every ``chunk_tokens`` tokens (only at complete characters), each piece
    with its token count. The pieces join to ``text``; their counts add up to its token count."""
    if not text:
        return []
    ids = _ids(tokenizer, text)
    pieces_bytes: list[bytes] = tokenizer.encoding.decode_tokens_bytes(ids)
    pieces: list[tuple[str, int]] = []
    buf = bytearray()
    pending = 0
    for start in range(0, len(ids), chunk_tokens):
        group = pieces_bytes[start : start + chunk_tokens]
        for part in group:
            buf += part
        pending += len(group)
        cut = _complete_utf8(buf)
        if cut:
            pieces.append((buf[:cut].decode("utf-8", "replace"), pending))
            del buf[:cut]
            pending = 0
    if buf or pending:
        pieces.append((buf.decode("utf-8", "replace"), pending))
    return pieces


_THINK_TAGS = ("<think>", "</think>")
_TAG_PIECES = (1, 2, 3)


def _content_pieces(
    tokenizer: QwenTokenizer, generation: Generation, chunk_tokens: int
) -> list[tuple[str, int]]:
    """The answer's pieces: ``token_pieces``, with the inline think tags cut into 1-3 characters
    (the ``think_in_content`` quirk; a tag comes as one or two tokens otherwise)."""
    text = generation.content
    if "think_in_content" not in generation.notes:
        return token_pieces(tokenizer, text, chunk_tokens)
    pieces: list[tuple[str, int]] = []
    for tag in _THINK_TAGS:
        at = text.find(tag)
        if at < 0:
            break
        pieces += token_pieces(tokenizer, text[:at], chunk_tokens)
        tokens, start, size = len(_ids(tokenizer, tag)), 0, 0
        while start < len(tag):
            width = _TAG_PIECES[size % len(_TAG_PIECES)]
            pieces.append((tag[start : start + width], tokens if start == 0 else 0))
            start, size = start + width, size + 1
        text = text[at + len(tag) :]
    return pieces + token_pieces(tokenizer, text, chunk_tokens)


def _tool_call_text(call: ToolCall) -> str:
    name = json.dumps(call.name, ensure_ascii=False)
    return f'<tool_call>\n{{"name": {name}, "arguments": {call.arguments}}}\n</tool_call>'


@dataclass(frozen=True, slots=True)
class OutputTokens:
    completion: int
    reasoning: int


def count_output(tokenizer: QwenTokenizer, generation: Generation) -> OutputTokens:
    """Completion and reasoning tokens of a generation (what ``plan_events`` would emit)."""
    reasoning = len(_ids(tokenizer, generation.reasoning)) if generation.reasoning else 0
    content = len(_ids(tokenizer, generation.content)) if generation.content else 0
    tools = sum(len(_ids(tokenizer, _tool_call_text(c))) for c in generation.tool_calls)
    return OutputTokens(completion=reasoning + content + tools, reasoning=reasoning)


def make_usage(
    *,
    prompt: int,
    completion: int,
    reasoning: int,
    cached: int = 0,
    cache_creation: int = 0,
    report_cache: bool = True,
) -> Usage:
    """A ``Usage``. ``report_cache``: write ``cached_tokens`` even when 0 (the compatible mode
    reports ``prompt_tokens_details: {"cached_tokens": 0}``; native usage omits it on a miss)."""
    fields: dict[str, int] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "reasoning_tokens": reasoning,
    }
    if report_cache or cached or cache_creation:
        fields["cached_tokens"] = cached
    if cache_creation:
        fields["cache_creation_tokens"] = cache_creation
    return Usage(**fields)


def _tool_steps(
    tokenizer: QwenTokenizer, calls: Sequence[ToolCall], chunk: int
) -> list[tuple[Event, int]]:
    steps: list[tuple[Event, int]] = []
    for position, call in enumerate(calls):
        index = call.index if call.index is not None else position
        pieces = token_pieces(tokenizer, call.arguments, chunk)
        whole = len(_ids(tokenizer, _tool_call_text(call)))
        overhead = max(0, whole - sum(n for _, n in pieces))
        steps.append((ToolCallDelta(index=index, id=call.id, name=call.name), overhead))
        steps.extend((ToolCallDelta(index=index, id="", arguments=t), n) for t, n in pieces)
    return steps


def plan_events(
    generation: Generation,
    *,
    tokenizer: QwenTokenizer,
    chunk_tokens: int,
    usage: Usage,
    started: ResponseStarted,
    cumulative: bool,
) -> Plan:
    """The stream of one answer: ``ResponseStarted``, pieces, the final usage, ``Finished``.

    ``usage`` is the final usage (prompt side and cache already known); with ``cumulative`` every
    piece is preceded by a ``UsageReported`` of the output so far.
    """
    steps: list[tuple[Event, int]] = [
        (ReasoningDelta(text), n)
        for text, n in token_pieces(tokenizer, generation.reasoning, chunk_tokens)
    ]
    reasoning_steps = len(steps)
    steps += [
        (ContentDelta(text), n) for text, n in _content_pieces(tokenizer, generation, chunk_tokens)
    ]
    steps += _tool_steps(tokenizer, generation.tool_calls, chunk_tokens)
    plan: Plan = [(started, 0)]
    if cumulative:
        prompt = usage.prompt_tokens
        extra = {
            k: getattr(usage, k)
            for k in ("cached_tokens", "cache_creation_tokens")
            if k in usage.model_fields_set
        }
        out = reasoning = 0
        for position, (event, tokens) in enumerate(steps):
            out += tokens
            if position < reasoning_steps:
                reasoning += tokens
            so_far = Usage(
                prompt_tokens=prompt,
                completion_tokens=out,
                total_tokens=prompt + out,
                reasoning_tokens=reasoning,
                **extra,
            )
            plan.append((UsageReported(so_far), 0))
            plan.append((event, tokens))
    else:
        plan.extend(steps)
    plan.append((UsageReported(usage), 0))
    plan.append((Finished(generation.finish_reason), 0))
    return plan


def build_response(
    generation: Generation,
    *,
    usage: Usage,
    request_id: str,
    model: str,
    created: int,
) -> ChatResponse:
    """The non-streaming answer (choice 0) as a canonical ``ChatResponse``."""
    fields: dict[str, object] = {"content": generation.content}
    if generation.reasoning:
        fields["reasoning_content"] = generation.reasoning
    if generation.tool_calls:
        fields["tool_calls"] = [
            call if call.index is not None else call.model_copy(update={"index": i})
            for i, call in enumerate(generation.tool_calls)
        ]
    message = AssistantMessage.model_validate(fields)
    return ChatResponse(
        id="chatcmpl-" + request_id,
        model=model,
        created=created,
        choices=[Choice(index=0, message=message, finish_reason=generation.finish_reason)],
        usage=usage,
        request_id=request_id,
    )


def encode_body(
    response: ChatResponse,
    *,
    wire: Literal["compat", "native"],
    result_format: Literal["text", "message"] = "message",
    multimodal: bool = False,
) -> dict[str, Any]:
    """The non-streaming JSON body of ``response`` on ``wire``. The native multimodal endpoint
    answers with content parts (``"content": [{"text": "..."}]``)."""
    if wire == "compat":
        return compat.encode_response(response)
    if multimodal:
        message = response.choices[0].message
        message.content = [TextPart(text=content_text(message.content))]
    return native.encode_response(response, result_format=result_format)
