"""Canonical stream events: the one currency of streaming in qwenkit.

Both wire decoders turn chunks into these, both encoders turn these into chunks, and the stream
assembler folds them into a ``ChatResponse``. Text events are always *deltas*: the native decoder
converts cumulative (``incremental_output: false``) chunks into deltas.

Events are frozen slotted dataclasses rather than pydantic models: a long answer is thousands of
them, they are built only by qwenkit's own decoders (nothing to validate), and a dataclass costs a
fraction of the allocation and construction time (see ``bench/codec_bench.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from qwenkit.types.errors import ErrorInfo
from qwenkit.types.usage import Usage


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """First event of a stream: the identity every chunk of the response repeats."""

    id: str
    model: str
    created: int = 0
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a tool call. Fragments are keyed by ``index``; only the first one of an index
    is guaranteed to carry ``id`` and ``name`` (later ones may carry ``""`` or nothing), and the
    ``arguments`` of all fragments concatenate to the full JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0


@dataclass(frozen=True, slots=True)
class UsageReported:
    """Usage so far. Native streams report it (cumulatively) in every chunk; the last one wins."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error reported inside the stream (SSE ``event:error``), before or after other events."""

    error: ErrorInfo


Event = (
    ResponseStarted
    | ReasoningDelta
    | ContentDelta
    | ToolCallDelta
    | UsageReported
    | Finished
    | StreamError
)
