"""The extraction loop's pieces (``AsyncQwen.extract``/``stream_extract``), apart from the I/O.

- ``extract_params``: the call's parameters: the model's tool (``qwenkit.structured.tool_schema.model_tool``)
  forced with ``tool_choice``, temperature 0 unless given; ``tools``, ``tool_choice``,
  ``response_format`` and ``parallel_tool_calls`` belong to the method (``UsageError``).
- ``error_list``: what was wrong, compact: each error as ``{"loc", "msg", "input"}`` (inputs longer
  than 200 characters cut), also for arguments that are not JSON and for an answer with no call.
- ``reask_turns``: the turns that send a failed attempt back: the assistant's answer, then a tool
  message with the errors answering the call (any other call of the same answer gets "Ignored",
  since every call must be answered), or a user message when there was no call at all. Arguments
  that are not JSON are echoed as ``{}`` (the service rejects a history holding them); the raw
  text is the error's ``input``.
- ``ExtractionError``: every ``ExtractionAttempt`` (raw arguments, errors, ``ChatResult``) and the
  total usage, when no attempt validated.
- ``Arguments``: the argument fragments of the first call to the tool in a stream.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel

from qwenkit._exceptions import QwenError, UsageError
from qwenkit.structured.tool_schema import model_tool, tool_choice
from qwenkit.types import (
    AnyMessage,
    AssistantMessage,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
)

if TYPE_CHECKING:
    from qwenkit.client._result import AsyncChatStream, ChatResult

__all__ = [
    "Arguments",
    "ExtractionAttempt",
    "ExtractionError",
    "NoCall",
    "error_list",
    "extract_params",
    "extraction_failure",
    "owned",
    "reask_turns",
]

_EXTRACT_OWNED = frozenset({"tools", "tool_choice", "response_format", "parallel_tool_calls"})
_INPUT_CHARS = 200


@dataclass(frozen=True)
class ExtractionAttempt:
    """One try of ``extract``: the arguments as received (``None``: no call), what was wrong."""

    raw_arguments: str | None
    errors: list[dict[str, Any]]
    result: ChatResult


class ExtractionError(QwenError):
    """No valid instance after every attempt; ``attempts`` holds them all, oldest first."""

    def __init__(self, message: str, *, attempts: list[ExtractionAttempt]) -> None:
        super().__init__(message)
        self.attempts = attempts

    @property
    def usage(self) -> Usage:
        """The tokens of every attempt together."""
        total = Usage()
        for attempt in self.attempts:
            if attempt.result.usage is not None:
                total = total + attempt.result.usage
        return total


def _short(value: Any) -> Any:
    """``value``, or its JSON text cut to ``_INPUT_CHARS`` characters when longer."""
    if isinstance(value, str):
        return value if len(value) <= _INPUT_CHARS else value[:_INPUT_CHARS] + "…"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= _INPUT_CHARS else text[:_INPUT_CHARS] + "…"


def error_list(exc: Exception, content: str) -> list[dict[str, Any]]:
    """Each error as ``{"loc", "msg", "input"}`` (compact; long inputs cut)."""
    if isinstance(exc, pydantic.ValidationError):
        return [
            {
                "loc": ".".join(str(part) for part in error["loc"]),
                "msg": error["msg"],
                "input": _short(error.get("input")),
            }
            for error in exc.errors(include_url=False, include_context=False)
        ]
    return [{"loc": "", "msg": str(exc).split(";")[0], "input": _short(content)}]


def reask_turns(
    name: str, message: AssistantMessage, errors: list[dict[str, Any]]
) -> list[AnyMessage]:
    """The turns that send a failed attempt back: the answer, then what was wrong with it."""
    text = (
        f"The arguments of {name} are not valid: {json.dumps(errors, ensure_ascii=False)}. "
        f"Call {name} again with every argument corrected."
    )
    calls = [_sendable(call) for call in message.tool_calls or ()]
    if not calls:
        return [message, UserMessage(content=f"{text} Answer with the function call only.")]
    target = next((call.id for call in calls if call.name == name), None)
    replies: list[AnyMessage] = [
        ToolMessage(
            content=text if call.id == target else f"Ignored: call only {name}, once.",
            tool_call_id=call.id,
        )
        for call in calls
    ]
    return [message.model_copy(update={"tool_calls": calls}), *replies]


def _sendable(call: ToolCall) -> ToolCall:
    """``call``, with ``{}`` for arguments that are not JSON (history must hold JSON; the raw
    text is in the error's ``input``)."""
    try:
        json.loads(call.arguments)
    except ValueError:
        function = call.function.model_copy(update={"arguments": "{}"})
        return call.model_copy(update={"function": function})
    return call


def extraction_failure(
    schema: type[BaseModel], attempts: list[ExtractionAttempt]
) -> ExtractionError:
    """The ``ExtractionError`` of ``attempts``, its message naming the last errors."""
    last = attempts[-1].errors
    summary = "; ".join(f"{e['loc'] or '(root)'}: {e['msg']}" for e in last[:3])
    more = f" (+{len(last) - 3} more)" if len(last) > 3 else ""
    return ExtractionError(
        f"no valid {schema.__name__} after {len(attempts)} attempt(s); last: {summary}{more}",
        attempts=attempts,
    )


def owned(params: Mapping[str, Any], names: frozenset[str], method: str) -> None:
    """``UsageError`` when ``params`` sets one of ``names`` (they belong to ``method``)."""
    given = sorted(name for name in names if params.get(name) is not None)
    if given:
        raise UsageError(f"{', '.join(given)}: set by {method}(); leave it out")


def extract_params(schema: type[BaseModel], params: dict[str, Any]) -> tuple[Tool, dict[str, Any]]:
    """The tool of ``schema`` and the call's parameters (forced call, temperature 0 by default)."""
    owned(params, _EXTRACT_OWNED, "extract")
    tool = model_tool(schema)
    given = dict(params)
    if given.get("temperature") is None:
        given["temperature"] = 0.0
    given.update(tools=[tool], tool_choice=tool_choice(tool))
    return tool, given


class NoCall(Exception):
    """The answer holds no call to the tool."""


class Arguments:
    """The argument fragments of the first call to ``name`` in a stream; what arrived so far."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.index: int | None = None
        self.parts: list[str] = []

    @property
    def seen(self) -> bool:
        return self.index is not None

    @property
    def raw(self) -> str:
        return "".join(self.parts)

    async def of(self, stream: AsyncChatStream) -> AsyncIterator[str]:
        async for event in stream:
            if not isinstance(event, ToolCallDelta) or event.choice != 0:
                continue
            if self.index is None and event.name == self.name:
                self.index = event.index
            if event.index == self.index and event.arguments:
                self.parts.append(event.arguments)
                yield event.arguments
