"""Fold a stream of canonical events into the final ``ChatResponse`` (pure, no I/O).

Both wire decoders emit the same events (``qwenkit.types.events``); this module is the one place
that turns them back into a whole answer, for the SDK's non-streaming view of a streamed call, for
the gateway's usage accounting and for UIs that show a response as it grows.

Rules:

- every event carries a ``choice`` index (``n > 1``); each choice folds into its own message;
- reasoning and content accumulate separately: reasoning never leaks into ``content``;
- tool-call fragments are keyed by ``index``. The first known ``id`` and ``name`` of an index are
  kept; later fragments with ``""``/``None`` never erase them, and a fragment may arrive before the
  one that names its call. ``arguments`` concatenate exactly (not parsed, not stripped). Tool calls
  come out ordered by ``index``;
- ``UsageReported`` replaces the usage so far (native usage is cumulative; the last one wins);
- ``Finished`` sets the choice's ``finish_reason``; ``ResponseStarted`` sets id, model, created and
  request_id (a stream without one gives ``id == model == ""``);
- ``StreamError`` is recorded as ``error``; ``result()`` then raises ``StreamFailed``, which
  carries the error *and* the partial response, so a caller can still show what arrived.

Text is accumulated in lists and joined once, so thousands of deltas cost linear time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qwenkit._exceptions import QwenError
from qwenkit.types.chat import AssistantMessage
from qwenkit.types.errors import ErrorInfo
from qwenkit.types.events import (
    ContentDelta,
    Event,
    Finished,
    ReasoningDelta,
    ResponseStarted,
    StreamError,
    ToolCallDelta,
    UsageReported,
)
from qwenkit.types.response import ChatResponse, Choice
from qwenkit.types.tools import FunctionCall, ToolCall
from qwenkit.types.usage import Usage

__all__ = ["StreamAssembler", "StreamFailed", "assemble"]


class StreamFailed(QwenError):
    """The stream reported an error (``error``, as the service sent it); ``partial`` is the
    response assembled from the events received before (and after) it."""

    def __init__(self, error: ErrorInfo, partial: ChatResponse) -> None:
        super().__init__(str(error))
        self.error = error
        self.partial = partial


class _ToolCallState:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def build(self, index: int) -> ToolCall:
        return ToolCall(
            id=self.id or "",
            function=FunctionCall(name=self.name or "", arguments=_joined(self.arguments)),
            index=index,
        )


class _ChoiceState:
    __slots__ = ("content", "finish_reason", "reasoning", "tool_calls")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, _ToolCallState] = {}
        self.finish_reason: str | None = None

    def build_tool_calls(self) -> list[ToolCall]:
        return [self.tool_calls[i].build(i) for i in sorted(self.tool_calls)]

    def build(self, index: int) -> Choice:
        message: dict[str, Any] = {"content": _joined(self.content)}
        reasoning = _joined(self.reasoning)
        if reasoning:
            message["reasoning_content"] = reasoning
        if self.tool_calls:
            message["tool_calls"] = self.build_tool_calls()
        return Choice(
            index=index,
            message=AssistantMessage(**message),
            finish_reason=self.finish_reason,
        )


def _joined(parts: list[str]) -> str:
    """Join the parts and keep the result as the only part (cheap repeated reads)."""
    if len(parts) == 1:
        return parts[0]
    text = "".join(parts)
    parts[:] = [text] if text else []
    return text


class StreamAssembler:
    """Accumulate events; read the response so far at any time, and the final one at the end.

    >>> from qwenkit.types import ContentDelta, Finished
    >>> a = StreamAssembler()
    >>> a.extend([ContentDelta("Hel"), ContentDelta("lo"), Finished("stop")])
    >>> a.content, a.finished, a.result().finish_reason
    ('Hello', True, 'stop')
    """

    __slots__ = ("_choices", "_created", "_error", "_id", "_model", "_request_id", "_usage")

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._created = 0
        self._request_id: str | None = None
        self._choices: dict[int, _ChoiceState] = {}
        self._usage: Usage | None = None
        self._error: ErrorInfo | None = None

    # -- feeding ---------------------------------------------------------------------------------

    def _choice(self, index: int) -> _ChoiceState:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _ChoiceState()
        return state

    def add(self, event: Event) -> None:
        """Fold one event into the response."""
        # Ordered by frequency: text deltas are nearly every event of a stream.
        if isinstance(event, ContentDelta):
            state = self._choices.get(event.choice) or self._choice(event.choice)
            if event.text:
                state.content.append(event.text)
        elif isinstance(event, ReasoningDelta):
            state = self._choices.get(event.choice) or self._choice(event.choice)
            if event.text:
                state.reasoning.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self._add_tool_call(event)
        elif isinstance(event, UsageReported):
            self._usage = event.usage
        elif isinstance(event, Finished):
            self._choice(event.choice).finish_reason = event.reason
        elif isinstance(event, ResponseStarted):
            self._start(event)
        elif isinstance(event, StreamError):
            if self._error is None:
                self._error = event.error
        else:
            raise TypeError(f"not a stream event: {event!r}")

    def extend(self, events: Iterable[Event]) -> None:
        """Fold every event of ``events``, in order."""
        add = self.add
        for event in events:
            add(event)

    def _add_tool_call(self, event: ToolCallDelta) -> None:
        calls = self._choice(event.choice).tool_calls
        call = calls.get(event.index)
        if call is None:
            call = calls[event.index] = _ToolCallState()
        if event.id and not call.id:
            call.id = event.id
        if event.name and not call.name:
            call.name = event.name
        if event.arguments:
            call.arguments.append(event.arguments)

    def _start(self, event: ResponseStarted) -> None:
        # A later ResponseStarted may complete the identity, never blank it out.
        if event.id:
            self._id = event.id
        if event.model:
            self._model = event.model
        if event.created:
            self._created = event.created
        if event.request_id:
            self._request_id = event.request_id

    # -- live view -------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._id

    @property
    def model(self) -> str:
        return self._model

    @property
    def request_id(self) -> str | None:
        return self._request_id

    @property
    def content(self) -> str:
        """The answer text so far (choice 0)."""
        return self.content_of(0)

    @property
    def reasoning(self) -> str:
        """The reasoning text so far (choice 0); ``""`` when there is none."""
        return self.reasoning_of(0)

    @property
    def tool_calls(self) -> list[ToolCall]:
        """The tool calls so far (choice 0), ordered by index; arguments may still be incomplete."""
        return self.tool_calls_of(0)

    @property
    def finish_reason(self) -> str | None:
        """The finish reason of choice 0, once it has finished."""
        state = self._choices.get(0)
        return state.finish_reason if state else None

    @property
    def finished(self) -> bool:
        """Every choice seen so far has finished (and there was at least one)."""
        return bool(self._choices) and all(
            s.finish_reason is not None for s in self._choices.values()
        )

    @property
    def usage(self) -> Usage | None:
        """The latest usage reported (``None`` until one is)."""
        return self._usage

    @property
    def error(self) -> ErrorInfo | None:
        """The error the stream reported, if any (the first one)."""
        return self._error

    @property
    def choice_indexes(self) -> list[int]:
        """The indexes of the choices seen so far, ascending."""
        return sorted(self._choices)

    def content_of(self, choice: int) -> str:
        state = self._choices.get(choice)
        return _joined(state.content) if state else ""

    def reasoning_of(self, choice: int) -> str:
        state = self._choices.get(choice)
        return _joined(state.reasoning) if state else ""

    def tool_calls_of(self, choice: int) -> list[ToolCall]:
        state = self._choices.get(choice)
        return state.build_tool_calls() if state else []

    # -- results ---------------------------------------------------------------------------------

    def snapshot(self) -> ChatResponse:
        """The response so far, whether or not the stream finished or failed (never raises).

        Choice 0 is always present, so ``response.message`` works even on an empty stream.
        """
        indexes = sorted(self._choices)
        if not indexes or indexes[0] != 0:
            indexes.insert(0, 0)
        empty = _ChoiceState()
        fields: dict[str, Any] = {
            "id": self._id,
            "model": self._model,
            "created": self._created,
            "choices": [self._choices.get(i, empty).build(i) for i in indexes],
        }
        if self._usage is not None:
            fields["usage"] = self._usage
        if self._request_id is not None:
            fields["request_id"] = self._request_id
        return ChatResponse(**fields)

    def result(self) -> ChatResponse:
        """The assembled response; raises ``StreamFailed`` if the stream reported an error."""
        response = self.snapshot()
        if self._error is not None:
            raise StreamFailed(self._error, response)
        return response


def assemble(events: Iterable[Event]) -> ChatResponse:
    """Fold a whole stream into its ``ChatResponse`` (raises ``StreamFailed`` on a stream error)."""
    assembler = StreamAssembler()
    assembler.extend(events)
    return assembler.result()
