"""The agent loop as a pure state machine: what to do next, decided without any I/O.

A run is a ``RunState`` (the history, the rounds done, the identical-call memory, the trace) and
three functions, each returning a ``Step`` (the new state and the next ``Action``)::

    begin(messages, limits)       → Request
    after_reply(state, message)   → RunTools | Request (thinking re-ask) | Finish | Fail
    after_tools(state, results)   → Request

The driver (``qwenkit.agents.run.Agent``) sends each ``Request``, runs each ``RunTools``' calls and
feeds what came back into the next function; it decides nothing itself. The rules:

- A *round* is one request. A reply with tool calls appends ONE assistant message carrying all of
  them (``reasoning_content`` never sent back; empty or non-JSON ``arguments`` sent back as
  ``"{}"`` and duplicate or empty ids renamed, so the history stays valid), then, once the tools
  ran, one tool message per call in the order of the calls, and ``validate_history`` must pass.
- An identical call (same name and ``canonical_arguments``) already answered successfully in this
  run, or made earlier in the same message, is not executed: the earlier content is repeated,
  prefixed with ``"(same call as in round N; result repeated)"``. Failed results are not
  remembered across rounds (a retry may succeed; the tool's error budget bounds retries).
- Forcing: the *force counter* is the number of tool rounds in which at least one call was
  executed plus the number of identical calls answered without executing (so each tool round
  counts at least one; a repeat counts one more where its round also ran a call). Once it reaches
  ``force_answer_after``, the next request sends ``tool_choice="none"`` (``None``: never forces).
  Tool calls in a reply to ``"none"`` (a misbehaving upstream) are ignored, with a note.
- Thinking is off on every request that may call tools. With ``Limits.thinking``, the forced
  request thinks; a model that answers an ``auto`` round without tools is asked once more with
  ``tool_choice="none"`` and thinking on, and that answer is final (the unthought one is dropped).
- ``max_rounds`` caps the requests: a reply with tool calls in the last allowed round is a
  ``Fail`` (the driver raises ``AgentDidNotConverge``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from qwenkit._core.policies.history import validate_history
from qwenkit._exceptions import UsageError
from qwenkit.agents._serialize import canonical_arguments
from qwenkit.agents.result import ToolResult, ToolTrace
from qwenkit.types import AnyMessage, AssistantMessage, FunctionCall, ToolCall, ToolMessage

__all__ = [
    "REPEAT_NOTE",
    "Action",
    "Fail",
    "Finish",
    "Limits",
    "Request",
    "RunState",
    "RunTools",
    "Step",
    "after_reply",
    "after_tools",
    "begin",
]

REPEAT_NOTE = "(same call as in round {round}; result repeated)"
"""The first line of the tool message of a repeated identical call."""


@dataclass(frozen=True)
class Limits:
    """The guards of a run: see the module docstring."""

    max_rounds: int = 8
    force_answer_after: int | None = 3
    thinking: bool = False
    """Think for the final answer (and only for it)."""

    def __post_init__(self) -> None:
        if self.max_rounds < 1:
            raise UsageError(f"max_rounds must be at least 1, got {self.max_rounds}")
        if self.force_answer_after is not None and self.force_answer_after < 0:
            raise UsageError(f"force_answer_after must be >= 0, got {self.force_answer_after}")


@dataclass(frozen=True)
class Request:
    """Send the history: round ``round`` (1-based) with this ``tool_choice`` and thinking."""

    round: int
    messages: tuple[AnyMessage, ...]
    tool_choice: Literal["auto", "none"]
    thinking: bool

    @property
    def final(self) -> bool:
        """The model may not call tools: whatever it says is the answer."""
        return self.tool_choice == "none"


@dataclass(frozen=True)
class RunTools:
    """Run ``execute`` (fresh calls, with the model's own arguments so an invalid-JSON error says
    what it sent), then call ``after_tools``. ``calls``: every call of the message in order, as
    sent back; ``arguments``: as the model wrote them; ``cached``: ids answered without running →
    the round of the call they repeat."""

    round: int
    calls: tuple[ToolCall, ...]
    arguments: tuple[str, ...]
    execute: tuple[ToolCall, ...]
    cached: Mapping[str, int]

    def key(self, index: int) -> tuple[str, str]:
        """What makes call ``index`` identical to another: its name and canonical arguments."""
        return self.calls[index].name, canonical_arguments(self.arguments[index])


@dataclass(frozen=True)
class Finish:
    answer: str
    round: int


@dataclass(frozen=True)
class Fail:
    reason: str


Action = Request | RunTools | Finish | Fail


@dataclass(frozen=True)
class RunState:
    """Everything the loop knows; never mutated (each step returns a new state)."""

    limits: Limits
    messages: tuple[AnyMessage, ...]
    rounds: int = 0
    """Requests made (the current one included once it was sent)."""
    tool_rounds: int = 0
    working_rounds: int = 0
    """Tool rounds in which at least one call was executed."""
    repeats: int = 0
    """Identical calls answered without executing."""
    last: Request | None = None
    pending: RunTools | None = None
    memory: Mapping[tuple[str, str], tuple[str, int]] = field(default_factory=dict)
    """Successful results by (name, canonical arguments): (content, round)."""
    trace: tuple[ToolTrace, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def force_counter(self) -> int:
        return self.working_rounds + self.repeats


@dataclass(frozen=True)
class Step:
    state: RunState
    action: Action


def begin(messages: Sequence[AnyMessage], limits: Limits) -> Step:
    """The first request of a run (``HistoryError`` if ``messages`` could never be sent)."""
    validate_history(messages)
    return _request(RunState(limits=limits, messages=tuple(messages)))


def _request(state: RunState, *, final: bool | None = None) -> Step:
    limit = state.limits.force_answer_after
    if final is None:
        final = limit is not None and state.force_counter >= limit
    thinking = state.limits.thinking and final
    request = Request(state.rounds + 1, state.messages, "none" if final else "auto", thinking)
    return Step(dataclasses.replace(state, rounds=request.round, last=request), request)


def _note(state: RunState, note: str) -> RunState:
    return dataclasses.replace(state, notes=(*state.notes, note))


def after_reply(state: RunState, message: AssistantMessage) -> Step:
    """The next action once the model answered the last ``Request`` with ``message``."""
    request = state.last
    if request is None or state.pending is not None:
        raise UsageError("after_reply: no request is waiting for a reply")
    state = dataclasses.replace(state, last=None)
    calls = list(message.tool_calls or ())
    text = message.text
    if request.final:
        if calls:
            names = ", ".join(call.name for call in calls)
            state = _note(
                state,
                f"round {request.round}: tool calls ignored ({names}): "
                'the model was told tool_choice="none"',
            )
        return Step(state, Finish(text, request.round))
    if not calls:
        if state.limits.thinking and not request.thinking:
            if state.rounds < state.limits.max_rounds:
                note = f"round {request.round}: answered without thinking; asked again to think"
                return _request(_note(state, note), final=True)
            state = _note(state, f"round {request.round}: no round left to think; answer as is")
        return Step(state, Finish(text, request.round))
    calls, fixes = _sendable(calls, request.round)
    reply = AssistantMessage(content=message.content, tool_calls=calls)
    state = dataclasses.replace(state, messages=(*state.messages, reply), notes=state.notes + fixes)
    if state.rounds >= state.limits.max_rounds:
        return Step(state, Fail(f"no answer after {state.rounds} rounds (max_rounds)"))
    return _plan(state, request.round, calls, message.tool_calls or ())


def _sendable(calls: list[ToolCall], round_: int) -> tuple[list[ToolCall], tuple[str, ...]]:
    """The calls as they can be sent back: JSON arguments, unique non-empty ids."""
    fixed: list[ToolCall] = []
    notes: list[str] = []
    seen: set[str] = set()
    for index, call in enumerate(calls):
        update: dict[str, object] = {}
        if not call.id or call.id in seen:
            update["id"] = f"call_r{round_}_{index}"
            notes.append(f"round {round_}: tool call {index} id {call.id!r} renamed")
        try:
            json.loads(call.arguments)
        except ValueError:
            update["function"] = FunctionCall(name=call.name, arguments="{}")
            if call.arguments.strip():
                notes.append(
                    f"round {round_}: {call.name} arguments are not JSON; sent back as {{}}"
                )
        fixed.append(call.model_copy(update=update) if update else call)
        seen.add(fixed[-1].id)
    return fixed, tuple(notes)


def _plan(
    state: RunState, round_: int, calls: list[ToolCall], originals: Sequence[ToolCall]
) -> Step:
    """Which calls run, and which repeat an earlier answer (of this run or of this message)."""
    arguments = tuple(original.arguments for original in originals)
    tools = RunTools(round_, tuple(calls), arguments, (), {})
    execute: list[ToolCall] = []
    cached: dict[str, int] = {}
    first: set[tuple[str, str]] = set()
    for index, (call, original) in enumerate(zip(calls, originals, strict=True)):
        key = tools.key(index)
        if key in state.memory:
            cached[call.id] = state.memory[key][1]
        elif key in first:
            cached[call.id] = round_
        else:
            first.add(key)
            execute.append(original.model_copy(update={"id": call.id}))
    tools = dataclasses.replace(tools, execute=tuple(execute), cached=cached)
    return Step(dataclasses.replace(state, pending=tools), tools)


def after_tools(state: RunState, results: Iterable[ToolResult]) -> Step:
    """Answer every call of the pending ``RunTools`` (results of ``execute``, in any order)."""
    tools = state.pending
    if tools is None:
        raise UsageError("after_tools: no tool calls are waiting for results")
    by_id = {result.tool_call_id: result for result in results}
    if set(by_id) != {call.id for call in tools.execute}:
        raise UsageError("after_tools: give exactly one result per call of RunTools.execute")
    memory = dict(state.memory)
    this_round: dict[tuple[str, str], ToolResult] = {}
    messages, trace = list(state.messages), list(state.trace)
    for index, call in enumerate(tools.calls):
        key, result = tools.key(index), by_id.get(call.id)
        if result is not None:  # executed
            this_round[key] = result
            if result.ok:
                memory[key] = (result.content, tools.round)
            source, content = result, result.content
        else:  # repeated: from earlier in this message, else from the memory of the run
            remembered = state.memory.get(key, ("", 0))[0]
            source = this_round.get(key) or ToolResult(call.id, call.name, remembered, True)
            note = REPEAT_NOTE.format(round=tools.cached[call.id])
            content = f"{note}\n{source.content}"
        messages.append(ToolMessage(content=content, tool_call_id=call.id))
        duration, cached = (0.0, True) if result is None else (result.duration_s, False)
        arguments, ok, error = tools.arguments[index], source.ok, source.error
        trace.append(
            ToolTrace(tools.round, call.id, call.name, arguments, ok, duration, cached, error)
        )
    validate_history(messages)  # defensive: the loop only ever builds valid histories
    state = dataclasses.replace(
        state,
        messages=tuple(messages),
        pending=None,
        memory=memory,
        trace=tuple(trace),
        tool_rounds=state.tool_rounds + 1,
        working_rounds=state.working_rounds + (1 if tools.execute else 0),
        repeats=state.repeats + len(tools.cached),
    )
    return _request(state)
