"""What an engine answers: a ``Generation``, before it is cut into tokens and framed for a wire.

The engines (scripted scenarios, the default engine) decide *what* to say; ``render`` decides
*how* it goes out (chunks, usage, pacing); the routes decide the wire format. Keeping the answer
a plain value makes every engine testable without HTTP and the output identical across formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from qwenkit.types import ErrorInfo, ToolCall

FaultKind = Literal["drop", "stall", "error_mid_stream"]


@dataclass(frozen=True, slots=True)
class Fault:
    """Misbehave while answering.

    - ``drop``: close the connection after ``after_chunks`` chunks (no finish, no terminator).
    - ``stall``: stop sending after ``after_chunks`` chunks for ``seconds`` (then carry on).
    - ``error_mid_stream``: after ``after_chunks`` chunks, send ``error`` as an in-stream error
      event (native ``event:error``; compatible ``data: {"error": ...}``) and end the stream.
    """

    kind: FaultKind
    after_chunks: int = 0
    seconds: float = 0.0
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """The answer to one request (choice 0)."""

    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    """``stop``, ``length`` (the answer cut by ``max_tokens``) or ``tool_calls``. Reaching the
    thinking budget ends the reasoning, not the answer (reference §5.3)."""
    error: ErrorInfo | None = None
    """Answer with this error instead (HTTP error up front, in the caller's wire format)."""
    fault: Fault | None = None
    source: str = "default"
    """Which engine or scenario rule produced it (shown in ``/_emulator/requests``)."""
    notes: tuple[str, ...] = field(default=())
    """Quirks applied (``json_fenced``, ``tool_loop``, ``dropped_nested``...), for tests and logs."""
