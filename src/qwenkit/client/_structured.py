"""JSON mode and structured output on the client: ``json``, ``extract`` and their streams.

``AsyncStructuredMixin`` gives ``AsyncQwen`` (and through the runner ``Qwen``) these methods, each
one or a few ordinary ``chat``/``stream`` calls (every policy, retry and usage record applies):

- ``json``/``json_result``: ``response_format`` ``json_object`` with thinking off (``thinking=True``
  is a ``ValidationError``: the service rejects the pair). The service wants the word "JSON" in a
  system or user message (any case): when missing, ``JSON_INSTRUCTION`` is appended to the first
  system message (or put first as one), logged at DEBUG on ``qwenkit``. The answer is read by
  ``parse_json`` (fences, prose, BOM; never repaired): ``JSONParseError`` with ``.raw`` if none.
  ``json_result`` also returns the ``ChatResult`` (usage, cost, request id).
- ``extract``: one tool made from the model (``qwenkit.structured.tool_schema``), forced by ``tool_choice``,
  temperature 0 unless given; arguments validated by ``model_validate_json``; a failure (bad JSON,
  validation errors, no call) is sent back and asked again up to ``max_retries`` times, then
  ``ExtractionError`` holds every attempt.
- ``stream_extract``: partial instances (``partial_model``) as the arguments stream, each strictly
  more complete, then the validated instance (``isinstance(item, Model)`` marks it). No re-ask:
  what was streamed cannot be taken back, so a final failure raises ``ExtractionError``.
- ``stream_json``: ever more complete dicts of a JSON-mode stream, the final object last.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic
from pydantic import BaseModel

from qwenkit._exceptions import UsageError, ValidationError
from qwenkit.client._extraction import (
    Arguments,
    ExtractionAttempt,
    ExtractionError,
    NoCall,
    error_list,
    extract_params,
    extraction_failure,
    owned,
    reask_turns,
)
from qwenkit.structured import JSONParseError, apartial_instances, asnapshots, parse_json
from qwenkit.types import (
    AnyMessage,
    SystemMessage,
    TextPart,
    UserMessage,
    parse_messages,
)

if TYPE_CHECKING:
    from qwenkit.catalog import TaskKind
    from qwenkit.client._call import MessagesInput
    from qwenkit.client._result import AsyncChatStream, ChatResult
    from qwenkit.structured.parse import Expect

__all__ = [
    "JSON_INSTRUCTION",
    "AsyncStructuredMixin",
    "ExtractionAttempt",
    "ExtractionError",
    "JSONResult",
]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
JSON_INSTRUCTION = "Respond with a JSON object."
_log = logging.getLogger("qwenkit")
_JSON_OWNED = frozenset({"response_format"})


@dataclass(frozen=True)
class JSONResult:
    """``json_result``'s answer: the parsed ``value`` and the call's ``result``."""

    value: Any
    result: ChatResult


class AsyncStructuredMixin:
    """``json``, ``json_result``, ``extract``, ``stream_extract``, ``stream_json`` (module doc)."""

    if TYPE_CHECKING:

        async def chat(
            self,
            messages: MessagesInput,
            *,
            model: str | None = None,
            task: TaskKind | str | None = None,
            thinking: bool | None = None,
            **params: Any,
        ) -> ChatResult: ...

        def stream(
            self,
            messages: MessagesInput,
            *,
            model: str | None = None,
            task: TaskKind | str | None = None,
            thinking: bool | None = None,
            **params: Any,
        ) -> AsyncChatStream: ...

    async def json(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        expect: Expect = dict,
        thinking: bool | None = None,
        **params: Any,
    ) -> Any:
        """The JSON value of one JSON-mode answer (``dict`` by default; ``list``; ``None``: any)."""
        answer = await self.json_result(
            messages, model=model, task=task, expect=expect, thinking=thinking, **params
        )
        return answer.value

    async def json_result(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        expect: Expect = dict,
        thinking: bool | None = None,
        **params: Any,
    ) -> JSONResult:
        """``json``, with the ``ChatResult`` of the call beside the value."""
        turns = _json_turns(messages, thinking, params)
        result = await self.chat(turns, model=model, task=task, thinking=False, **params)
        return JSONResult(parse_json(result.content, expect=expect), result)

    async def stream_json(
        self,
        messages: MessagesInput,
        *,
        model: str | None = None,
        task: TaskKind | str | None = None,
        thinking: bool | None = None,
        **params: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Ever more complete dicts of a JSON-mode answer as it streams, the final one last."""
        turns = _json_turns(messages, thinking, params)
        stream = self.stream(turns, model=model, task=task, thinking=False, **params)
        async with (
            stream,
            _closing(stream.text_stream) as texts,
            _closing(asnapshots(texts)) as snapshots,
        ):
            async for snapshot in snapshots:
                yield snapshot

    async def extract(
        self,
        messages: MessagesInput,
        schema: type[M],
        *,
        max_retries: int = 2,
        model: str | None = None,
        task: TaskKind | str | None = "extract",
        **params: Any,
    ) -> M:
        """A validated ``schema`` instance through a forced function call (module docstring)."""
        if max_retries < 0:
            raise UsageError(f"max_retries must be 0 or more, got {max_retries}")
        tool, params = extract_params(schema, params)
        turns = _turns(messages)
        attempts: list[ExtractionAttempt] = []
        while True:
            result = await self.chat(turns, model=model, task=task, **params)
            call = next((c for c in result.tool_calls if c.name == tool.name), None)
            raw = call.arguments if call is not None else None
            try:
                if raw is None:
                    raise NoCall(f"no call to {tool.name}")
                return schema.model_validate_json(raw)
            except (pydantic.ValidationError, NoCall) as exc:
                attempts.append(ExtractionAttempt(raw, error_list(exc, result.content), result))
            if len(attempts) > max_retries:
                raise extraction_failure(schema, attempts)
            turns = [*turns, *reask_turns(tool.name, result.message, attempts[-1].errors)]

    async def stream_extract(
        self,
        messages: MessagesInput,
        schema: type[M],
        *,
        model: str | None = None,
        task: TaskKind | str | None = "extract",
        **params: Any,
    ) -> AsyncIterator[BaseModel]:
        """Partial instances while the arguments stream, then the validated ``schema`` instance."""
        tool, params = extract_params(schema, params)
        stream = self.stream(_turns(messages), model=model, task=task, **params)
        arguments = Arguments(tool.name)
        async with (
            stream,
            _closing(arguments.of(stream)) as deltas,
            _closing(apartial_instances(schema, deltas)) as items,
        ):
            try:
                async for item in items:
                    yield item
            except (pydantic.ValidationError, JSONParseError) as exc:
                result = await stream.get_result()
                raw = arguments.raw if arguments.seen else None
                attempt = ExtractionAttempt(raw, error_list(exc, result.content), result)
                raise extraction_failure(schema, [attempt]) from exc


@asynccontextmanager
async def _closing(items: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    try:  # close the generator ``items`` however the block ends
        yield items
    finally:
        await getattr(items, "aclose")()  # noqa: B009 - AsyncIterator does not declare it


def _turns(messages: MessagesInput) -> list[AnyMessage]:
    """Canonical messages (``ValidationError`` for a message that is not one)."""
    if isinstance(messages, str):
        return [UserMessage(content=messages)]
    try:
        return parse_messages(messages)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = "messages." + ".".join(str(part) for part in first["loc"])
        raise ValidationError(f"{where}: {first['msg']}", param="messages") from None


def _json_turns(
    messages: MessagesInput, thinking: bool | None, params: dict[str, Any]
) -> list[AnyMessage]:
    """Check a JSON-mode call, set ``response_format`` and return the messages with the keyword."""
    owned(params, _JSON_OWNED, "json")
    if thinking or params.get("enable_thinking"):
        raise ValidationError(
            "JSON mode cannot be combined with thinking: the service rejects enable_thinking=true "
            "with response_format json_object; drop thinking=True",
            param="enable_thinking",
        )
    params.pop("enable_thinking", None)
    params["response_format"] = {"type": "json_object"}
    return with_json_keyword(_turns(messages))


def with_json_keyword(turns: list[AnyMessage]) -> list[AnyMessage]:
    """``turns``, with ``JSON_INSTRUCTION`` added when no system or user message says "json"."""
    spoken = (m for m in turns if isinstance(m, SystemMessage | UserMessage))
    if any("json" in message.text.lower() for message in spoken):
        return turns
    for position, message in enumerate(turns):
        if isinstance(message, SystemMessage):
            content = message.content
            added: str | list[Any]
            if isinstance(content, str):
                added = f"{content.rstrip()}\n\n{JSON_INSTRUCTION}".lstrip()
            else:
                added = [*content, TextPart(text=f"\n\n{JSON_INSTRUCTION}")]
            _log.debug(
                "JSON mode: no 'JSON' in the prompt; added %r to the system message",
                JSON_INSTRUCTION,
            )
            changed = message.model_copy(update={"content": added})
            return [*turns[:position], changed, *turns[position + 1 :]]
    _log.debug("JSON mode: no 'JSON' in the prompt; added a system message %r", JSON_INSTRUCTION)
    return [SystemMessage(content=JSON_INSTRUCTION), *turns]
