"""Which messages of a history to send verbatim and which to summarise: pure, no I/O.

``plan_window(messages, costs, budget=..., keep_last=...)`` takes the per-message token costs
(``count_messages(...).messages``) and returns a ``WindowPlan``:

- everything, when the whole history fits the budget;
- else the first system message (``head``), one summary of the ``middle``, and the ``tail``: the
  last ``keep_last`` messages, extended backwards to the start of their tool-call group. A group
  is an assistant message with ``tool_calls`` and the tool messages that answer it; it is atomic,
  so a kept tool message always keeps the assistant message that made its call.

A summary made earlier (``cached``: the tail start it was made for, and its token cost) is reused
while the first system message + that summary + everything after it still fit: the summarised
prefix then stays stable for several turns (no new summary call, and a stable prefix for the
service's prefix cache), and only when it no longer fits is a new boundary (the last
``keep_last``) chosen. ``fits`` says whether the planned prompt is within the budget; when it is
not even with the summary, the caller refuses to send.

Also for ``Conversation``, pure as well: ``ContextOverflowError``, ``check_prefix`` (the history
rules on a history still being built), ``digest`` (the cache key of summarised messages),
``summary_request`` (the messages of a summary call) and ``SummaryMemory`` (the summaries made so
far; a new one continues the last when the middle only grew: only new messages are summarised).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qwenkit._core.policies.history import validate_history
from qwenkit._exceptions import QwenError
from qwenkit.types import AnyMessage, AssistantMessage, SystemMessage, ToolMessage, UserMessage

SUMMARY_INSTRUCTIONS = (
    "You compress chat history for an assistant that continues the conversation. Write a concise "
    "summary of the messages given: facts, decisions, names, numbers, tool results that matter, "
    "the user's goals and preferences, and open questions. Plain prose in the conversation's "
    "language, no preamble."
)


class ContextOverflowError(QwenError):
    """The history does not fit ``budget`` tokens (it needs ``tokens``) and may not, or cannot,
    be summarised further. Nothing was sent."""

    def __init__(self, message: str, *, tokens: int, budget: int) -> None:
        super().__init__(message)
        self.tokens = tokens
        self.budget = budget


def overflow(tokens: int, budget: int, what: str) -> ContextOverflowError:
    """The error for a prompt of ``tokens`` over ``budget``; ``what`` says what it holds."""
    return ContextOverflowError(
        f"{tokens} prompt tokens ({what}) exceed the budget of {budget}: lower keep_last, raise "
        "budget_tokens or shorten the recent messages",
        tokens=tokens,
        budget=budget,
    )


@dataclass(frozen=True)
class WindowPlan:
    """The plan for one request. Indices point into the history; the prompt to send is
    ``head`` (if any), then one summary message of ``middle`` (if any), then ``tail``."""

    head: int | None
    """The first system message, kept in front (``None``: none, or it is in ``tail``)."""
    middle: tuple[int, ...]
    """The messages replaced by the summary, in order (empty: nothing to summarise)."""
    tail: tuple[int, ...]
    """The messages kept verbatim after the summary, in order."""
    tokens: int
    """Estimated prompt tokens: kept messages + summary (its reserve or cached cost) + overhead."""
    fits: bool
    """``tokens <= budget``."""
    reused: bool = False
    """The cached summary covers exactly ``middle`` (no new summary call is needed)."""

    @property
    def start(self) -> int:
        """Where the verbatim tail starts (the summary covers the non-head messages before it)."""
        return self.tail[0] if self.tail else max((*self.middle, -1)) + 1

    @property
    def kept(self) -> tuple[int, ...]:
        """The messages sent verbatim, in the order they are sent."""
        return ((self.head,) if self.head is not None else ()) + self.tail


def group_starts(messages: Sequence[AnyMessage]) -> list[int]:
    """For each message, the index where its atomic group starts: a tool message belongs to the
    assistant message with ``tool_calls`` before its run of tool messages; any other message is
    a group of its own. A tool message without such an assistant message starts its own group."""
    starts: list[int] = []
    for index, message in enumerate(messages):
        owner = starts[index - 1] if index else None
        if isinstance(message, ToolMessage) and owner is not None:
            first = messages[owner]
            if isinstance(first, AssistantMessage) and first.tool_calls:
                starts.append(owner)
                continue
        starts.append(index)
    return starts


def _first_system(messages: Sequence[AnyMessage]) -> int | None:
    return next((i for i, m in enumerate(messages) if m.role == "system"), None)


def _plan(
    costs: Sequence[int],
    head: int | None,
    start: int,
    *,
    summary_tokens: int,
    overhead: int,
    budget: int,
) -> WindowPlan:
    """Keep ``head`` and everything from ``start`` on; summarise the rest."""
    kept_head = head if head is not None and head < start else None
    middle = tuple(i for i in range(start) if i != kept_head)
    tail = tuple(i for i in range(start, len(costs)) if i != kept_head)
    tokens = overhead + sum(costs[i] for i in tail) + (summary_tokens if middle else 0)
    tokens += costs[kept_head] if kept_head is not None else 0
    return WindowPlan(kept_head, middle, tail, tokens, tokens <= budget)


def plan_window(
    messages: Sequence[AnyMessage],
    costs: Sequence[int],
    *,
    budget: int,
    keep_last: int = 6,
    summary_tokens: int,
    overhead: int = 0,
    cached: tuple[int, int] | None = None,
) -> WindowPlan:
    """The plan for sending ``messages`` within ``budget`` tokens (see the module docstring).

    ``costs[i]`` is the token cost of ``messages[i]``; ``overhead`` the tokens that do not
    depend on the messages kept (tool definitions, the generation prefix); ``summary_tokens``
    the reserve for a new summary message; ``cached`` an earlier ``(start, summary cost)``.
    """
    if len(costs) != len(messages):
        raise ValueError(f"{len(costs)} costs for {len(messages)} messages")
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    total = overhead + sum(costs)
    everything = tuple(range(len(messages)))
    if total <= budget:
        return WindowPlan(None, (), everything, total, True)
    starts = group_starts(messages)
    head = _first_system(messages)
    if cached is not None:
        start, tokens = cached
        if 0 < start <= len(messages) - keep_last and starts[start] == start:
            plan = _plan(
                costs, head, start, summary_tokens=tokens, overhead=overhead, budget=budget
            )
            if plan.fits and plan.middle:
                return WindowPlan(plan.head, plan.middle, plan.tail, plan.tokens, True, True)
    start = starts[max(0, len(messages) - keep_last)]
    plan = _plan(
        costs, head, start, summary_tokens=summary_tokens, overhead=overhead, budget=budget
    )
    if not plan.middle:  # nothing to summarise: the whole history, which does not fit
        return WindowPlan(None, (), everything, total, False)
    return plan


def _pending(messages: Sequence[AnyMessage]) -> list[str]:
    """The ids of the calls of the last assistant message not answered (yet) by tool messages."""
    index = len(messages) - 1
    while index >= 0 and isinstance(messages[index], ToolMessage):
        index -= 1
    owner = messages[index] if index >= 0 else None
    if not isinstance(owner, AssistantMessage) or not owner.tool_calls:
        return []
    answered = {m.tool_call_id for m in messages[index + 1 :] if isinstance(m, ToolMessage)}
    return [call.id for call in owner.tool_calls if call.id not in answered]


def check_prefix(messages: Sequence[AnyMessage]) -> None:
    """``validate_history`` on a history whose last calls may still be answered by tool messages
    appended later: those calls are checked as if answered next, in order."""
    stand_ins = [ToolMessage(content="", tool_call_id=id_) for id_ in _pending(messages)]
    validate_history([*messages, *stand_ins])


def digest(messages: Iterable[AnyMessage]) -> str:
    """A hash of messages (their JSON form): the key of a cached summary."""
    dumped = [m.model_dump(mode="json", exclude_none=True) for m in messages]
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()


def _render(message: AnyMessage) -> str:
    if isinstance(message, ToolMessage):
        return f"[tool result for {message.tool_call_id}]: {message.text}"
    calls = (message.tool_calls or []) if isinstance(message, AssistantMessage) else []
    made = [f"[called {c.function.name}({c.function.arguments})]" for c in calls]
    return "\n".join([f"[{message.role}]: {message.text}", *made])


def summary_request(messages: Iterable[AnyMessage], earlier: str | None) -> list[AnyMessage]:
    """The messages of a summary call over ``messages``, continuing the summary ``earlier``."""
    transcript = "\n\n".join(_render(message) for message in messages)
    if earlier:
        transcript = f"Summary so far:\n{earlier}\n\nNew messages:\n{transcript}"
    return [
        SystemMessage(content=SUMMARY_INSTRUCTIONS),
        UserMessage(content=f"{transcript}\n\nSummarise the conversation above."),
    ]


@dataclass(frozen=True)
class FitStep:
    """A ``Conversation`` fit in progress; ``request`` is the summary call still to make (``None``: none)."""

    budget: int
    plan: WindowPlan | None = None
    digest: str = ""
    text: str = ""
    request: list[AnyMessage] | None = None


@dataclass(frozen=True)
class _Made:
    middle: tuple[int, ...]
    start: int
    text: str
    tokens: int


class SummaryMemory:
    """Summary texts by ``digest`` of the messages they cover (the last ``size`` kept), and the
    last summary used: its ``cached`` ``(start, tokens)`` is what ``plan_window`` may reuse."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._last: _Made | None = None

    @property
    def cached(self) -> tuple[int, int] | None:
        return (self._last.start, self._last.tokens) if self._last else None

    def find(self, history: Sequence[AnyMessage], plan: WindowPlan) -> tuple[str, str | None]:
        """The digest of the plan's middle and its summary, if one was made."""
        key = digest(history[i] for i in plan.middle)
        return key, self._texts.get(key)

    def request(self, history: Sequence[AnyMessage], plan: WindowPlan) -> list[AnyMessage]:
        """The summary call for the plan's middle: incremental when it extends the last middle
        (the history only grows, so a same-index prefix is the same messages)."""
        covered, earlier, last = plan.middle, None, self._last
        if last is not None and plan.middle[: len(last.middle)] == last.middle:
            covered, earlier = plan.middle[len(last.middle) :], last.text
        return summary_request((history[i] for i in covered), earlier)

    def store(self, key: str, plan: WindowPlan, text: str, tokens: int) -> None:
        """Remember the summary sent for ``plan`` (``tokens``: its message's cost)."""
        self._texts[key] = text
        self._texts.move_to_end(key)
        while len(self._texts) > self.size:
            self._texts.popitem(last=False)
        self._last = _Made(plan.middle, plan.start, text, tokens)
