"""``PromptCachePolicy``: warn when a system prompt would defeat the implicit prefix cache.

DashScope caches the longest prefix (of at least 256 tokens) it has seen; a date, an id or a
counter near the top of a system prompt changes that prefix on every request, so nothing is ever
served from the cache (and cached tokens cost a fifth of the rest). This policy runs the prompt
lint of ``qwenkit.tokens.prompt_lint`` on the system messages of every call and logs one WARNING
(logger ``qwenkit.prompt``) per prompt *shape* (the text with its dynamic parts masked), so a
timestamp that changes on every call is reported once, not on every request; the call that
reports it also gets a line in ``result.notes``. It never blocks a call; ``qwenkit lint prompt
FILE`` is the same check for CI.
"""

from __future__ import annotations

import logging

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import BeforeCall
from qwenkit.tokens.prompt_lint import PromptMonitor, warn_on_dynamic_system_prompt


class PromptCachePolicy(BeforeCall):
    """Log dynamic content in system prompts, once per prompt shape (never raises)."""

    def __init__(
        self, monitor: PromptMonitor | None = None, logger: logging.Logger | None = None
    ) -> None:
        self.monitor = monitor
        """``None``: the process-wide monitor, shared with ``Conversation`` so a prompt is
        reported once however it is sent."""
        self.logger = logger

    def prepare(self, call: Call) -> None:
        findings = warn_on_dynamic_system_prompt(
            call.request.messages, self.logger, monitor=self.monitor
        )
        if findings:
            call.notes.append(
                "prompt cache: dynamic content in the system prompt ("
                + ", ".join(sorted({f.rule for f in findings}))
                + ")"
            )
