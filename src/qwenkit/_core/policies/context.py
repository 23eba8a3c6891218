"""``ContextWindowPolicy``: the prompt and its answer budget fit the model, counted locally.

With a known model profile, the prompt (messages and tool definitions) is counted with the
model's Qwen tokenizer (``qwenkit.tokens.count_messages``) and two limits are checked:

- ``prompt <= profile.max_input_for(thinking)`` (some models take less input in thinking mode);
- ``prompt + max_tokens <= profile.context_window``.

A prompt over either raises ``ContextLengthError`` with the numbers and a hint, before any
network call. The count goes to ``call.state["prompt_tokens"]`` so a later policy can compare it
with the usage the service reports. Unknown models (no profile) are not checked.

Tool definitions, tool calls and tool results are counted with a template *estimate*
(see ``qwenkit.tokens.accounting``); the error says so when the count is not exact.
"""

from __future__ import annotations

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import BeforeCall
from qwenkit._exceptions import ValidationError


class ContextLengthError(ValidationError):
    """A prompt (plus its answer budget) that does not fit the model's context window."""

    def __init__(
        self,
        message: str,
        *,
        model: str,
        prompt_tokens: int,
        max_tokens: int,
        max_input_tokens: int,
        context_window: int,
    ) -> None:
        super().__init__(message, param="messages")
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.max_input_tokens = max_input_tokens
        self.context_window = context_window


_HINT = "trim or summarise the history, lower max_tokens, or pick a model with a larger window"


class ContextWindowPolicy(BeforeCall):
    """Count the prompt and check it against the model's limits (``enabled=False``: skip)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled

    def prepare(self, call: Call) -> None:
        profile = call.profile
        if not self.enabled or profile is None:
            return
        from qwenkit.tokens import count_messages  # the tokenizer loads only when needed

        request = call.request
        count = count_messages(request.messages, profile.tokenizer, request.tools)
        prompt = count.total
        call.state["prompt_tokens"] = prompt
        thinking = bool(call.state.get("thinking", False))
        limit = profile.max_input_for(thinking)
        window = profile.context_window
        answer = (
            request.max_tokens if request.max_tokens is not None else profile.default_max_tokens
        )
        label = f"{prompt} prompt tokens" + ("" if count.exact else " (estimated)")
        mode = " in thinking mode" if limit != profile.max_input_tokens else ""
        if prompt > limit:
            reason = f"{label} exceed the max input of {profile.name}{mode} ({limit})"
        elif prompt + answer > window:
            reason = (
                f"{label} + max_tokens {answer} = {prompt + answer} exceed the context window of "
                f"{profile.name} ({window})"
            )
        else:
            return
        raise ContextLengthError(
            f"{reason}: {_HINT}",
            model=profile.name,
            prompt_tokens=prompt,
            max_tokens=answer,
            max_input_tokens=limit,
            context_window=window,
        )

    def __repr__(self) -> str:
        return f"ContextWindowPolicy(enabled={self.enabled!r})"
