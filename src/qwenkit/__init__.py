"""qwenkit: run products on the Qwen API (Alibaba Cloud Model Studio / DashScope) in production.

The names below are the public API. The subpackages ``qwenkit.types`` (canonical data),
``qwenkit.wire`` (the two wire formats) and ``qwenkit.emulator`` are public too; modules whose
names start with an underscore are not.
"""

from qwenkit._exceptions import DataError, QwenError, UsageError, WireError
from qwenkit._settings import ConfigError, Region, Settings
from qwenkit._version import __version__
from qwenkit.catalog import (
    Catalog,
    Cost,
    ModelProfile,
    Route,
    Router,
    TaskKind,
    ThinkingMode,
    UnknownModelError,
    cost,
    estimate_max_cost,
    get_model,
)
from qwenkit.streaming import StreamAssembler, StreamFailed, assemble
from qwenkit.tokens import (
    FitResult,
    QwenTokenizer,
    TokenCount,
    count_messages,
    count_request,
    count_text,
    fits,
    get_tokenizer,
)
from qwenkit.types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    ErrorInfo,
    Event,
    SystemMessage,
    Tool,
    ToolCall,
    ToolMessage,
    Usage,
    UserMessage,
)

__all__ = [
    "AssistantMessage",
    "Catalog",
    "ChatRequest",
    "ChatResponse",
    "ConfigError",
    "Cost",
    "DataError",
    "ErrorInfo",
    "Event",
    "FitResult",
    "ModelProfile",
    "QwenError",
    "QwenTokenizer",
    "Region",
    "Route",
    "Router",
    "Settings",
    "StreamAssembler",
    "StreamFailed",
    "SystemMessage",
    "TaskKind",
    "ThinkingMode",
    "TokenCount",
    "Tool",
    "ToolCall",
    "ToolMessage",
    "UnknownModelError",
    "Usage",
    "UsageError",
    "UserMessage",
    "WireError",
    "__version__",
    "assemble",
    "cost",
    "count_messages",
    "count_request",
    "count_text",
    "estimate_max_cost",
    "fits",
    "get_model",
    "get_tokenizer",
]
