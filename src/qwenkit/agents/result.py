"""What an agent run gives back: ``AgentResult``, the events of ``Agent.astream``, the errors.

``AgentResult`` is the answer with the whole story: ``transcript`` (every message sent or
received, the final answer last), ``rounds`` (one ``RoundUsage`` per request: usage, cost,
latency), ``usage`` and ``cost`` (their totals), ``trace`` (one ``ToolTrace`` per tool call, in
the order of the calls: timings, whether it was answered from memory, the error), ``notes`` (what
the loop did that a caller may want to know) and ``reasoning`` (the final answer's thinking, kept
out of ``answer``, ``str()`` and ``repr()``).

The events of ``Agent.astream``, in the order they come::

    RoundStarted(round, final)          before each request
    AnswerDelta(text, round)            content of a request whose answer may be the final one
    ReasoningDelta(text)                thinking of the final answer, only when asked for
    ToolCalled(round, id, name, arguments, cached)
    ToolReturned(round, id, name, ok, content, duration_s, cached)   in the order of the calls
    Finished(result)                    last

The errors, both ``AgentError(QwenError)`` carrying ``transcript``, ``trace`` and ``rounds``:

- ``AgentDidNotConverge``: ``max_rounds`` requests and the model still wants tools;
- ``AgentToolFailure``: a tool failed more than its ``max_errors`` times in one run
  (``ToolErrorBudgetExceeded`` is the ``__cause__``; ``tool`` names the tool).

Errors of a request (``APIError``, ``ValidationError``...) propagate unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from qwenkit._exceptions import QwenError
from qwenkit.catalog import Cost
from qwenkit.client._result import ChatResult
from qwenkit.types import AnyMessage, Usage

__all__ = [
    "AgentDidNotConverge",
    "AgentError",
    "AgentEvent",
    "AgentResult",
    "AgentToolFailure",
    "AnswerDelta",
    "Finished",
    "ReasoningDelta",
    "RoundStarted",
    "RoundUsage",
    "ToolCalled",
    "ToolReturned",
    "ToolTrace",
]


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call. ``content`` is the tool message text (the result, or an error
    the model can read); ``error`` says what went wrong, for logs; ``exception`` is the cause."""

    tool_call_id: str
    name: str
    content: str
    ok: bool
    error: str | None = None
    duration_s: float = 0.0
    exception: BaseException | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class RoundUsage:
    """One request of the run. ``cost`` is ``None`` where the catalog has no price."""

    round: int
    usage: Usage | None
    cost: Cost | None
    latency: float | None
    model: str = ""
    tool_calls: int = 0
    """Tool calls the model made in its reply."""

    @classmethod
    def of(cls, round_: int, result: ChatResult) -> RoundUsage:
        usage, cost, latency, model = result.usage, result.cost, result.latency, result.model
        return cls(round_, usage, cost, latency, model, len(result.tool_calls))


@dataclass(frozen=True)
class ToolTrace:
    """One tool call. ``cached``: answered by repeating an identical call's result, not run
    (``duration_s`` is then 0). ``error`` says what went wrong when ``ok`` is false."""

    round: int
    id: str
    name: str
    arguments: str
    """As the model wrote them."""
    ok: bool
    duration_s: float
    cached: bool = False
    error: str | None = None


def total_usage(rounds: Sequence[RoundUsage]) -> Usage:
    total = Usage()
    for item in rounds:
        if item.usage is not None:
            total = total + item.usage
    return total


def total_cost(rounds: Sequence[RoundUsage]) -> Cost | None:
    """The sum of the rounds' known costs; ``None`` when no round was priced."""
    known = [item.cost for item in rounds if item.cost is not None]
    if not known:
        return None
    total = known[0]
    for item in known[1:]:
        total = total + item
    return total


@dataclass(frozen=True, eq=False)
class AgentResult:
    """The answer of a run and how it was reached; see the module docstring."""

    answer: str
    transcript: list[AnyMessage]
    rounds: list[RoundUsage]
    trace: list[ToolTrace]
    notes: tuple[str, ...] = ()
    reasoning: str | None = field(default=None, repr=False)

    @property
    def usage(self) -> Usage:
        """Tokens of every request of the run, summed."""
        return total_usage(self.rounds)

    @property
    def cost(self) -> Cost | None:
        return total_cost(self.rounds)

    def __str__(self) -> str:
        return self.answer

    def __repr__(self) -> str:
        return (
            f"AgentResult(answer={self.answer!r}, rounds={len(self.rounds)}, "
            f"tool_calls={len(self.trace)}, usage={self.usage!r})"
        )


class AgentError(QwenError):
    """A run that ended without an answer; what happened until then is attached."""

    def __init__(
        self,
        message: str,
        *,
        transcript: Sequence[AnyMessage],
        trace: Sequence[ToolTrace],
        rounds: Sequence[RoundUsage],
    ) -> None:
        super().__init__(message)
        self.transcript = list(transcript)
        self.trace = list(trace)
        self.rounds = list(rounds)

    @property
    def usage(self) -> Usage:
        return total_usage(self.rounds)


class AgentDidNotConverge(AgentError):
    """``max_rounds`` requests were made and the model still asked for tools."""


class AgentToolFailure(AgentError):
    """A tool exhausted its error budget (``ToolErrorBudgetExceeded`` is the ``__cause__``)."""

    def __init__(
        self,
        message: str,
        *,
        tool: str,
        transcript: Sequence[AnyMessage],
        trace: Sequence[ToolTrace],
        rounds: Sequence[RoundUsage],
    ) -> None:
        super().__init__(message, transcript=transcript, trace=trace, rounds=rounds)
        self.tool = tool


@dataclass(frozen=True)
class RoundStarted:
    round: int
    final: bool = False
    """``tool_choice="none"``: this request's answer is the final one."""


@dataclass(frozen=True)
class AnswerDelta:
    """Answer text as it streams. With thinking off, every round streams its content: text a
    model writes before calling tools in the same message (rare with Qwen) comes too; the
    ``Finished`` result's ``answer`` is the final round's content only."""

    text: str
    round: int = 0


@dataclass(frozen=True)
class ReasoningDelta:
    """Thinking of the final answer (``astream(..., reasoning=True)`` only; never in the answer)."""

    text: str


@dataclass(frozen=True)
class ToolCalled:
    round: int
    id: str
    name: str
    arguments: str
    cached: bool = False
    """An identical call was answered before: this one will repeat that result, not run."""


@dataclass(frozen=True)
class ToolReturned:
    round: int
    id: str
    name: str
    ok: bool
    content: str
    duration_s: float
    cached: bool = False

    @classmethod
    def of(cls, trace: ToolTrace, content: str) -> ToolReturned:
        """The event of a traced call whose tool message is ``content``."""
        return cls(
            trace.round, trace.id, trace.name, trace.ok, content, trace.duration_s, trace.cached
        )


@dataclass(frozen=True)
class Finished:
    result: AgentResult


AgentEvent = RoundStarted | AnswerDelta | ReasoningDelta | ToolCalled | ToolReturned | Finished
