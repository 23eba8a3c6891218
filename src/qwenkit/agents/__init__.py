"""Agents, the pure foundations: tools from typed functions (``@tool``, ``Toolbox``), the tool
schema lint, and the prefix-cache lint of system prompts. No network: the agent loop drives these.
"""

from qwenkit.agents._errors import (
    SchemaLintError,
    ToolArgumentsError,
    ToolError,
    ToolErrorBudgetExceeded,
    ToolTimeoutError,
)
from qwenkit.agents._serialize import canonical_arguments, serialize_result
from qwenkit.agents.prompt_lint import (
    PromptFinding,
    PromptMonitor,
    check_system_prompt,
    lint_prompt,
    warn_on_dynamic_system_prompt,
)
from qwenkit.agents.schema_lint import Finding, Severity, flatten_suggestion, lint_schema
from qwenkit.agents.tools import FunctionTool, Toolbox, ToolResult, tool

__all__ = [
    "Finding",
    "FunctionTool",
    "PromptFinding",
    "PromptMonitor",
    "SchemaLintError",
    "Severity",
    "ToolArgumentsError",
    "ToolError",
    "ToolErrorBudgetExceeded",
    "ToolResult",
    "ToolTimeoutError",
    "Toolbox",
    "canonical_arguments",
    "check_system_prompt",
    "flatten_suggestion",
    "lint_prompt",
    "lint_schema",
    "serialize_result",
    "tool",
    "warn_on_dynamic_system_prompt",
]
