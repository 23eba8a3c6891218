"""Message-history rules, checked before any network call: ``validate_history`` and its policy.

The service answers a broken tool-call history with a 400 (``messages with role "tool" must be a
response to a preceeding message with "tool_calls"``, reference §6.3) after the request was
queued and, for a long history, after its tokens were counted. These rules catch it locally, with
the index and role of the offending message and what to do:

1. there is at least one message;
2. a tool message answers a call of the assistant message with ``tool_calls`` that comes right
   before the run of tool messages it belongs to (tool messages may follow one another);
3. every call of such an assistant message is answered exactly once, by the tool messages that
   directly follow it, and (``strict_order=True``, the default) in the order of the calls; no
   duplicate and no unknown ``tool_call_id``;
4. no user, system or assistant message comes before all calls were answered, and the history
   does not end with unanswered calls;
5. the ``arguments`` of every tool call are JSON text (``json.loads``); an empty string is not
   (the service requires JSON: send ``"{}"`` for a call without arguments).

A system message after the first position is allowed (the reference says it "should be first"):
``HistoryPolicy`` leaves a note rather than rejecting it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import BeforeCall
from qwenkit._exceptions import ValidationError
from qwenkit.types import AnyMessage, AssistantMessage, ToolCall, ToolMessage


class HistoryError(ValidationError):
    """A message history the service would refuse; ``index`` is the offending message (or
    ``None`` when the history as a whole is at fault)."""

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message, param="messages" if index is None else f"messages[{index}]")
        self.index = index


class _Open:
    """The tool calls of one assistant message and which of them were answered."""

    def __init__(self, index: int, calls: list[ToolCall]) -> None:
        self.index = index
        self.calls = {call.id: call for call in calls}
        self.pending = [call.id for call in calls]

    def describe(self, ids: Sequence[str]) -> str:
        return ", ".join(f"{id_!r} ({self.calls[id_].name})" for id_ in ids)


def _where(index: int, message: AnyMessage) -> str:
    return f"message {index} ({message.role})"


def _check_calls(index: int, message: AssistantMessage) -> list[ToolCall]:
    calls = list(message.tool_calls or ())
    seen: set[str] = set()
    for call in calls:
        if call.id in seen:
            raise HistoryError(
                f"{_where(index, message)} has two tool calls with id {call.id!r}: "
                "each call needs its own id",
                index=index,
            )
        seen.add(call.id)
        try:
            json.loads(call.arguments)
        except ValueError:
            shown = call.arguments if len(call.arguments) <= 80 else call.arguments[:77] + "..."
            hint = ' (send "{}" for a call without arguments)' if not call.arguments.strip() else ""
            raise HistoryError(
                f"{_where(index, message)}: the arguments of tool call {call.id!r} "
                f"({call.name}) are not JSON: {shown!r}{hint}",
                index=index,
            ) from None
    return calls


def _answer(index: int, message: ToolMessage, block: _Open | None, strict_order: bool) -> None:
    where, id_ = _where(index, message), message.tool_call_id
    if block is None:
        raise HistoryError(
            f"{where} answers tool call {id_!r}, but no assistant message with tool_calls comes "
            "right before it: append the assistant message carrying tool_calls before the tool "
            "results",
            index=index,
        )
    if id_ not in block.calls:
        raise HistoryError(
            f"{where} answers tool call {id_!r}, which message {block.index} (assistant) did not "
            f"make; its calls are {block.describe(list(block.calls))}",
            index=index,
        )
    if id_ not in block.pending:
        raise HistoryError(
            f"{where} answers tool call {id_!r} a second time: send one tool message per call",
            index=index,
        )
    if strict_order and block.pending[0] != id_:
        raise HistoryError(
            f"{where} answers tool call {id_!r} out of order: the next answer must be for "
            f"{block.describe(block.pending[:1])}; send the tool results in the order of the "
            f"calls of message {block.index} (assistant)",
            index=index,
        )
    block.pending.remove(id_)


def _unanswered(block: _Open, index: int, what: str) -> HistoryError:
    return HistoryError(
        f"{what} before tool calls {block.describe(block.pending)} of message {block.index} "
        "(assistant) were answered: append one tool message per call (with its tool_call_id) "
        "right after that assistant message",
        index=index,
    )


def validate_history(messages: Sequence[AnyMessage], *, strict_order: bool = True) -> None:
    """Raise ``HistoryError`` (a ``ValidationError``) if the service would refuse ``messages``.

    See the module docstring for the rules. Reusable outside the pipeline (the agent loop and
    ``Conversation`` check their history with it).
    """
    if not messages:
        raise HistoryError("a request needs at least one message")
    block: _Open | None = None
    for index, message in enumerate(messages):
        if isinstance(message, ToolMessage):
            _answer(index, message, block, strict_order)
            continue
        if block is not None and block.pending:
            raise _unanswered(block, index, f"{_where(index, message)} comes")
        block = None
        if isinstance(message, AssistantMessage):
            calls = _check_calls(index, message)
            if calls:
                block = _Open(index, calls)
    if block is not None and block.pending:
        raise _unanswered(block, block.index, "the history ends")


class HistoryPolicy(BeforeCall):
    """``validate_history`` on the request's messages, before any network call."""

    def __init__(self, *, strict_order: bool = True) -> None:
        self.strict_order = strict_order

    def prepare(self, call: Call) -> None:
        messages = call.request.messages
        validate_history(messages, strict_order=self.strict_order)
        late = [i for i, message in enumerate(messages) if message.role == "system" and i > 0]
        if late:
            call.notes.append(
                f"system message at index {', '.join(map(str, late))}: it should come first"
            )

    def __repr__(self) -> str:
        return f"HistoryPolicy(strict_order={self.strict_order!r})"
