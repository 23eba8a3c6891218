"""Split ``<think>`` reasoning left inside ``content`` into ``ReasoningDelta`` events.

Self-hosted servers without a reasoning parser (llama.cpp with ``reasoning_format: none``, vLLM
without ``--reasoning-parser``, some hosted Qwen3 deployments) send Qwen's reasoning inline in the
answer: ``"<think>\\n...\\n</think>\\n\\nThe answer."``, and streamed, the tags arrive cut at any
character (``"<"``, ``"t"``, ``"hi"``, ``"n"``, ``"k"``, ``">"``...). ``ThinkTagSplitter`` turns
that back into the canonical shape, incrementally and per choice, so ``result.reasoning`` and
``result.content`` mean the same on every upstream.

Hand-written on purpose: the work is a small state machine over qwenkit's own canonical events
(``ContentDelta``/``ReasoningDelta``/``Finished`` per choice) with a hold-back of at most a partial
tag; no library splits tags incrementally over such events (the servers' own reasoning parsers
work on their token streams, on their side of the wire).

The rules, per choice (``choice`` of the events; choices are independent):

1. **A leading block.** Content that begins, after optional leading whitespace, with ``<think>``
   is reasoning up to ``</think>``. The whitespace before ``<think>`` is dropped, and so are one
   ``"\\n"`` right after ``<think>`` and one ``"\\n"`` right before ``</think>`` (Qwen's template
   writes ``<think>\\n...\\n</think>``), then every ``"\\n"``/``"\\r"`` right after ``</think>``
   (the template writes ``</think>\\n\\n``); the rest is content, tags and all: only the leading
   block is special, and a ``<think>`` that does not start the content is content. A block still
   open when the choice finishes (or the stream ends) is all reasoning.
2. **A closing tag only** (``closing_tag=True`` and thinking on, ``thinking=True``: a server
   whose template opens ``<think>`` in the prompt and which parses no reasoning; the SDK's
   ``Settings.think_tag_in_prompt``): when the content does not start with ``<think>`` and the server sent no
   ``reasoning_content`` before it, a ``</think>`` in it ends the reasoning: what came before it
   is reasoning (one ``"\\n"`` before the tag dropped), the line breaks after it are dropped, the
   rest is content. Such content is held until ``</think>`` or the end; without a ``</think>`` it
   is released as content (nothing lost). Off by default: it holds back every answer of a
   thinking call that did not think, so a server that parses reasoning would stream nothing
   until the end.
3. **Reasoning as the answer** (thinking off, ``thinking=False``; vLLM #17609): reasoning deltas
   are held until the choice's first content that is not only whitespace (or a tool call): then
   they go on as reasoning. A choice that finishes with reasoning and no such content answered in
   its reasoning: it is released as content (and the whitespace-only content dropped).

Latency: text goes on as soon as it is decided. Rules 2 and 3 aside, only leading
whitespace, a partial ``<think>`` at the start, or a partial ``</think>`` (with the ``"\\n"``
before it) inside the block is ever held back. A ``ToolCallDelta`` starts the answer: text held
for rules 2 and 3 or at the start is decided (content, reasoning) before it passes. Every other
event passes through unchanged and in order; text a ``Finished`` releases comes right before it.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from dataclasses import dataclass

from qwenkit.types import ContentDelta, Event, Finished, ReasoningDelta, ToolCallDelta

__all__ = ["ThinkTagSplitter", "split_think_tags", "split_think_tags_sync"]

OPEN = "<think>"
CLOSE = "</think>"
_BREAKS = "\r\n"


class _Phase(enum.Enum):
    START = "start"
    """No content decided yet: leading whitespace and a partial ``<think>`` are held."""
    BLOCK = "block"
    """Inside a leading ``<think>`` block: reasoning; a partial ``</think>`` is held."""
    SEEK = "seek"
    """Rule 2: content without an opening tag, held until ``</think>`` or the end."""
    AFTER = "after"
    """Right after ``</think>``: line breaks are dropped."""
    ANSWER = "answer"
    """The answer: content passes through."""


@dataclass
class _Choice:
    phase: _Phase = _Phase.START
    buffer: str = ""
    """Content not decided yet (leading text, a partial tag, rule 2's held content)."""
    after_open: bool = False
    """Right after ``<think>``: one ``"\\n"`` is still to be dropped."""
    reasoning_seen: bool = False
    """The server sent ``reasoning_content`` for this choice (it has a reasoning parser)."""
    held_reasoning: str = ""
    """Rule 3: reasoning held until the answer shows (or the finish)."""
    answered: bool = False
    """Content that is not only whitespace, or a tool call, has arrived."""
    finished: bool = False


def _held_suffix(text: str) -> int:
    """Length of the end of ``text`` that may still become ``"\\n</think>"`` (kept back)."""
    keep = 0
    for size in range(min(len(CLOSE) - 1, len(text)), 0, -1):
        if text.endswith(CLOSE[:size]):
            keep = size
            break
    if text[: len(text) - keep].endswith("\n"):
        keep += 1
    return keep


class ThinkTagSplitter:
    """The synchronous core: ``feed`` each event, then ``close`` at the end of the stream.

    Both return the events to pass on (possibly none, possibly several). ``thinking`` is the
    call's effective thinking: ``False`` enables rule 3, ``True`` rule 2 when ``closing_tag``
    is set too, ``None`` neither.
    """

    def __init__(self, *, thinking: bool | None, closing_tag: bool = False) -> None:
        self.thinking = thinking
        self.closing_tag = closing_tag
        self._choices: dict[int, _Choice] = {}

    def _state(self, choice: int) -> _Choice:
        state = self._choices.get(choice)
        if state is None:
            state = self._choices[choice] = _Choice()
        return state

    def feed(self, event: Event) -> list[Event]:
        if isinstance(event, ContentDelta):
            return self._content(event)
        if isinstance(event, ReasoningDelta):
            return self._reasoning(event)
        if isinstance(event, ToolCallDelta):
            state = self._state(event.choice)
            if state.finished:
                return [event]
            out = self._answer_starts(state, event.choice)
            if state.phase in (_Phase.START, _Phase.SEEK):
                out += self._release(state, event.choice, as_content=True)
            return [*out, event]
        if isinstance(event, Finished):
            state = self._state(event.choice)
            out = [] if state.finished else self._finish(state, event.choice)
            return [*out, event]
        return [event]

    def close(self) -> list[Event]:
        """The end of the stream: what the choices that did not finish still hold."""
        out: list[Event] = []
        for choice, state in self._choices.items():
            if not state.finished:
                out += self._finish(state, choice)
        return out

    # -- events ----------------------------------------------------------------------------------

    def _reasoning(self, event: ReasoningDelta) -> list[Event]:
        state = self._state(event.choice)
        state.reasoning_seen = True
        if self.thinking is False and not state.answered and not state.finished:
            state.held_reasoning += event.text
            return []
        return [event]

    def _content(self, event: ContentDelta) -> list[Event]:
        state = self._state(event.choice)
        if state.finished or (state.phase is _Phase.ANSWER and not state.held_reasoning):
            return [event] if event.text else []
        out: list[Event] = []
        if not state.answered and event.text.strip():
            out += self._answer_starts(state, event.choice)
        state.buffer += event.text
        out += self._advance(state, event.choice)
        return out

    def _answer_starts(self, state: _Choice, choice: int) -> list[Event]:
        """The answer began: rule 3's held reasoning stays reasoning."""
        state.answered = True
        held, state.held_reasoning = state.held_reasoning, ""
        return [ReasoningDelta(held, choice)] if held else []

    def _finish(self, state: _Choice, choice: int) -> list[Event]:
        out: list[Event] = []
        if state.held_reasoning:  # rule 3: the content so far is whitespace at most
            out.append(ContentDelta(state.held_reasoning, choice))
            state.held_reasoning = state.buffer = ""
        elif state.phase is _Phase.BLOCK:  # an unclosed block: all reasoning
            out += self._release(state, choice, as_content=False)
        elif state.phase in (_Phase.START, _Phase.SEEK):  # no block after all
            out += self._release(state, choice, as_content=True)
        state.phase, state.buffer, state.finished = _Phase.ANSWER, "", True
        return out

    # -- the state machine -----------------------------------------------------------------------

    def _release(self, state: _Choice, choice: int, *, as_content: bool) -> list[Event]:
        text, state.buffer = state.buffer, ""
        if as_content:
            state.phase = _Phase.ANSWER
        if not text:
            return []
        return [ContentDelta(text, choice) if as_content else ReasoningDelta(text, choice)]

    def _advance(self, state: _Choice, choice: int) -> list[Event]:
        """Decide as much of ``state.buffer`` as can be decided now."""
        out: list[Event] = []
        while self._step(state, choice, out):
            pass
        return out

    def _step(self, state: _Choice, choice: int, out: list[Event]) -> bool:
        """One step of the state machine; ``False`` when it must wait for more text."""
        phase = state.phase
        if phase is _Phase.START:
            return self._start(state)
        if phase is _Phase.BLOCK or phase is _Phase.SEEK:
            return _inside(state, choice, out)
        if phase is _Phase.AFTER:
            state.buffer = state.buffer.lstrip(_BREAKS)
            if not state.buffer:
                return False
            state.phase = _Phase.ANSWER
            return True
        if state.buffer:  # ANSWER
            out.append(ContentDelta(state.buffer, choice))
            state.buffer = ""
        return False

    def _start(self, state: _Choice) -> bool:
        rest = state.buffer.lstrip()
        if rest.startswith(OPEN):
            state.buffer = rest[len(OPEN) :]
            state.phase, state.after_open = _Phase.BLOCK, True
            return True
        if OPEN.startswith(rest):  # empty or a partial tag: wait
            return False
        rule2 = self.closing_tag and self.thinking is True and not state.reasoning_seen
        state.phase = _Phase.SEEK if rule2 else _Phase.ANSWER
        return True


def _inside(state: _Choice, choice: int, out: list[Event]) -> bool:
    """``BLOCK`` (reasoning goes on at once) and ``SEEK`` (held): look for ``</think>``."""
    if state.phase is _Phase.BLOCK and state.after_open and state.buffer:
        state.after_open = False
        if state.buffer.startswith("\n"):
            state.buffer = state.buffer[1:]
    at = state.buffer.find(CLOSE)
    if at >= 0:
        reasoning = state.buffer[:at]
        reasoning = reasoning[:-1] if reasoning.endswith("\n") else reasoning
        if reasoning:
            out.append(ReasoningDelta(reasoning, choice))
        state.buffer = state.buffer[at + len(CLOSE) :]
        state.phase = _Phase.AFTER
        return True
    if state.phase is _Phase.SEEK:  # held until </think> or the end
        return False
    cut = len(state.buffer) - _held_suffix(state.buffer)
    if cut:
        out.append(ReasoningDelta(state.buffer[:cut], choice))
        state.buffer = state.buffer[cut:]
    return False


async def split_think_tags(
    events: AsyncIterator[Event], *, thinking: bool | None, closing_tag: bool = False
) -> AsyncGenerator[Event, None]:
    """``events`` with inline ``<think>`` reasoning split out (see the module docstring)."""
    splitter = ThinkTagSplitter(thinking=thinking, closing_tag=closing_tag)
    try:
        async for event in events:
            for out in splitter.feed(event):
                yield out
        for out in splitter.close():
            yield out
    finally:  # closed early: close the source too (its connection)
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def split_think_tags_sync(
    events: Iterable[Event], *, thinking: bool | None, closing_tag: bool = False
) -> list[Event]:
    """The same over a whole list of events (a non-streaming answer, tests)."""
    splitter = ThinkTagSplitter(thinking=thinking, closing_tag=closing_tag)
    out: list[Event] = []
    for event in events:
        out += splitter.feed(event)
    return out + splitter.close()
