"""Local token counting for Qwen models: the official BPE vocabularies run by ``tiktoken``.

- ``get_tokenizer(family_or_model)`` → ``QwenTokenizer`` (``encode``, ``encode_ordinary``,
  ``decode``, ``count``) for the "qwen" (151k, official SDK vocabulary) and "qwen3.5" (248k,
  Qwen3.5/3.6) families; vocabularies are located without importing their packages, verified
  against pinned sha256 hashes and loaded once per family.
- ``count_text``, ``count_messages``, ``count_request`` → ChatML prompt accounting
  (``TokenCount``), with tool definitions, tool calls and tool results as labelled estimates.
- ``fits`` → whether a prompt plus its answer budget fits a catalog model (``FitResult``).
- ``lint_prompt``, ``check_system_prompt``, ``warn_on_dynamic_system_prompt`` → dynamic content in
  system prompts that would defeat the implicit prefix cache.
"""

from qwenkit.tokens._vocab import VocabularyError
from qwenkit.tokens.accounting import (
    FitResult,
    TokenCount,
    count_messages,
    count_request,
    count_text,
    fits,
)
from qwenkit.tokens.prompt_lint import (
    PromptFinding,
    PromptMonitor,
    check_system_prompt,
    lint_prompt,
    warn_on_dynamic_system_prompt,
)
from qwenkit.tokens.tokenizer import (
    FAMILIES,
    Family,
    QwenTokenizer,
    UnknownTokenizerError,
    family_for,
    get_tokenizer,
)

__all__ = [
    "FAMILIES",
    "Family",
    "FitResult",
    "PromptFinding",
    "PromptMonitor",
    "QwenTokenizer",
    "TokenCount",
    "UnknownTokenizerError",
    "VocabularyError",
    "check_system_prompt",
    "count_messages",
    "count_request",
    "count_text",
    "family_for",
    "fits",
    "get_tokenizer",
    "lint_prompt",
    "warn_on_dynamic_system_prompt",
]
