"""Agents and conversations on the qwenkit client.

- ``Agent``: the guarded tool-calling loop (``run``/``arun``/``astream``); its decisions are the
  pure state machine of ``agents.step``.
- ``Conversation``: history that stays valid and fits the model's window (summarising the middle).
- Tools from typed functions (``@tool``, ``Toolbox``), the tool-schema lint and the prefix-cache
  lint of system prompts (``qwenkit lint tools`` / ``qwenkit lint prompt``).
"""

from qwenkit.agents._errors import (
    ToolArgumentsError,
    ToolError,
    ToolErrorBudgetExceeded,
    ToolTimeoutError,
)
from qwenkit.agents._serialize import canonical_arguments, serialize_result
from qwenkit.agents.conversation import ContextOverflowError, Conversation
from qwenkit.agents.result import (
    AgentDidNotConverge,
    AgentError,
    AgentEvent,
    AgentResult,
    AgentToolFailure,
    AnswerDelta,
    RoundStarted,
    RoundUsage,
    ToolCalled,
    ToolResult,
    ToolReturned,
    ToolTrace,
)
from qwenkit.agents.run import Agent
from qwenkit.agents.schema_lint import (
    Finding,
    SchemaLintError,
    Severity,
    flatten_suggestion,
    lint_schema,
)
from qwenkit.agents.tools import FunctionTool, Toolbox, tool
from qwenkit.tokens.prompt_lint import (
    PromptFinding,
    PromptMonitor,
    check_system_prompt,
    lint_prompt,
    warn_on_dynamic_system_prompt,
)

__all__ = [
    "Agent",
    "AgentDidNotConverge",
    "AgentError",
    "AgentEvent",
    "AgentResult",
    "AgentToolFailure",
    "AnswerDelta",
    "ContextOverflowError",
    "Conversation",
    "Finding",
    "FunctionTool",
    "PromptFinding",
    "PromptMonitor",
    "RoundStarted",
    "RoundUsage",
    "SchemaLintError",
    "Severity",
    "ToolArgumentsError",
    "ToolCalled",
    "ToolError",
    "ToolErrorBudgetExceeded",
    "ToolResult",
    "ToolReturned",
    "ToolTimeoutError",
    "ToolTrace",
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
