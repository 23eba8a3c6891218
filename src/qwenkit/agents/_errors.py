"""The exceptions of ``qwenkit.agents``, all ``QwenError``::

    QwenError
    ├── ToolError                      a tool call that failed (``tool`` names the tool)
    │   ├── ToolArgumentsError         the model's arguments: not JSON, or not fitting the schema
    │   ├── ToolTimeoutError           no result within the tool's ``timeout``
    │   └── ToolErrorBudgetExceeded    a tool failed more than its ``max_errors`` times
    └── UsageError → ValidationError
        └── SchemaLintError            strict mode: tool schemas with lint findings
                                       (in ``qwenkit.agents.schema_lint``, with its findings)

``Toolbox.dispatch`` turns the first two (and any exception of the tool itself) into an error
result for the model; only ``ToolErrorBudgetExceeded`` reaches the agent loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from qwenkit._exceptions import QwenError

if TYPE_CHECKING:
    from qwenkit.agents.result import ToolResult


class ToolError(QwenError):
    """A tool call that failed. ``tool`` is the tool's name."""

    def __init__(self, message: str, *, tool: str) -> None:
        super().__init__(message)
        self.tool = tool


class ToolArgumentsError(ToolError, ValueError):
    """The model's arguments are not valid JSON or do not fit the schema. ``raw`` is the model's
    text; ``errors`` one compact line per problem (``days: Input should be a valid integer``)."""

    def __init__(self, message: str, *, tool: str, raw: str, errors: Iterable[str] = ()) -> None:
        super().__init__(message, tool=tool)
        self.raw = raw
        self.errors = list(errors)


class ToolTimeoutError(ToolError, TimeoutError):
    """The tool did not return within its ``timeout`` seconds."""


class ToolErrorBudgetExceeded(ToolError):
    """A tool failed more than its ``max_errors`` times; ``result`` is the last failed result."""

    def __init__(self, message: str, *, tool: str, errors: int, result: ToolResult) -> None:
        super().__init__(message, tool=tool)
        self.errors = errors
        self.result = result
