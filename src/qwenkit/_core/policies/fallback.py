"""``FallbackPolicy``: when a model keeps failing, try the next one of its chain.

``FallbackPolicy({"qwen-max": ["qwen-plus", "qwen-flash"]})``: a call to ``qwen-max`` that fails
with a retryable error (throttling, 5xx, a timeout or a dropped connection) *after the send
step's own retries*, and before any event reached the caller, is run again on ``qwen-plus``,
then ``qwen-flash``. Every later policy runs again for the new model (its route, ``max_tokens``
cap, context window and budget are that model's); the call's ``attempts`` keep the failures and
``notes`` say what was tried. A deterministic error (a 400, a budget refusal) or a failure after
the stream began is raised as it is: switching models mid-answer would splice two answers.

It sits right after the usage policy, so a call that fell back still leaves one usage record,
under the model that answered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qwenkit._core.pipeline import Call, EventStream, Handler, Timings, closing
from qwenkit._exceptions import APIError

__all__ = ["FallbackPolicy"]


class FallbackPolicy:
    """Try the next model of a chain on a retryable failure; see the module docstring."""

    def __init__(self, chains: Mapping[str, Sequence[str]]) -> None:
        self.chains = {model: tuple(chain) for model, chain in chains.items() if chain}

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        chain = self.chains.get(call.request.model, ())
        original, started = call.request, call.timings.started
        for index, model in enumerate((original.model, *chain)):
            if index:
                call.request = original.model_copy(update={"model": model})
                call.profile = call.route = call.upstream_stream = None
                call.timings = Timings(started=started)
            sent = False
            try:
                async with closing(call_next(call)) as stream:
                    async for event in stream:
                        sent = True
                        yield event
                return
            except APIError as error:
                if sent or not error.retryable or index == len(chain):
                    raise
                call.notes.append(
                    f"fallback: {model} failed ({error.status or ''} {error.code or type(error).__name__}),"
                    f" trying {chain[index]}"
                )

    def __repr__(self) -> str:
        return f"FallbackPolicy({self.chains!r})"
