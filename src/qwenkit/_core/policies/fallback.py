"""``FallbackPolicy``: when a model keeps failing, try the next one of its chain.

``FallbackPolicy({"qwen-max": ["qwen-plus", "qwen-flash"]})``: a call to ``qwen-max`` that fails
with a retryable error (throttling, 5xx, a timeout or a dropped connection) *after the send
step's own retries*, and before any event reached the caller, is run again on ``qwen-plus``,
then ``qwen-flash``. Every later policy runs again for the new model (its route, ``max_tokens``
cap, context window and budget are that model's); the call's ``attempts`` keep the failures and
``notes`` say what was tried. A deterministic error (a 400, a budget refusal) or a failure after
the stream began is raised as it is: switching models mid-answer would splice two answers.

A target may name another upstream too, ``MODEL@NAME`` (``"qwen-plus@virginia"``: the same model
in another region; ``"qwen3-8b@local"``: a self-hosted server), one of the client's
``upstreams=`` (``qwenkit._core.upstreams``): the call then goes there (``call.state
["upstream"]``) and is priced in that upstream's region.

It sits right after the usage policy, so a call that fell back still leaves one usage record,
under the model (and region) that answered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qwenkit._core.pipeline import Call, EventStream, Handler, Timings, closing
from qwenkit._core.upstreams import UPSTREAM, Upstreams, check_targets, split_target
from qwenkit._exceptions import APIError

__all__ = ["FallbackPolicy"]


class FallbackPolicy:
    """Try the next model of a chain on a retryable failure; see the module docstring."""

    def __init__(
        self, chains: Mapping[str, Sequence[str]], upstreams: Upstreams | None = None
    ) -> None:
        self.chains = {model: tuple(chain) for model, chain in chains.items() if chain}
        self.upstreams = upstreams
        check_targets(self.chains, upstreams.named if upstreams is not None else ())

    async def __call__(self, call: Call, call_next: Handler) -> EventStream:
        chain = self.chains.get(call.request.model, ())
        original, started = call.request, call.timings.started
        region = call.tags.get("region")
        for index, target in enumerate((original.model, *chain)):
            if index:
                model, upstream = split_target(target)
                call.request = original.model_copy(update={"model": model})
                call.profile = call.route = call.upstream_stream = None
                call.timings = Timings(started=started)
                self._aim(call, upstream, region)
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
                    f"fallback: {target} failed ({error.status or ''} {error.code or type(error).__name__}),"
                    f" trying {chain[index]}"
                )

    def _aim(self, call: Call, upstream: str | None, region: str | None) -> None:
        """Send the call to ``upstream`` (``None``: the client's own, and its ``region`` tag),
        priced in that upstream's region."""
        if upstream is None:
            call.state.pop(UPSTREAM, None)
            if region is None:
                call.tags.pop("region", None)
            else:
                call.tags["region"] = region
            return
        assert self.upstreams is not None
        call.state[UPSTREAM] = upstream
        call.tags["region"] = self.upstreams.region(upstream)

    def __repr__(self) -> str:
        return f"FallbackPolicy({self.chains!r})"
