"""Named upstreams: other regions or servers a fallback chain can send a call to.

``AsyncQwen(upstreams={"virginia": UpstreamSpec(Settings(region="us-east-1", api_key=...)),
"local": UpstreamSpec(Settings(base_url="http://gpu-box:8000/v1"), flavour="openai-compatible")},
fallbacks={"qwen-plus": ["qwen-plus@virginia", "qwen3-8b@local"]})``: a fallback entry
``MODEL@NAME`` runs the call on ``MODEL`` at upstream ``NAME`` (a plain ``MODEL`` stays on the
client's own upstream). ``Upstreams`` is the send step's target: it hands each attempt to the
upstream its call names (``call.state[UPSTREAM]``, set by ``FallbackPolicy``), so retries,
timeouts and the shared connection pool are the same for all of them.

A call that moves to another upstream is priced in that upstream's region (``call.tags
["region"]``, which the usage record and the budget read); on an OpenAI-compatible server it is
not priced (the region tag is empty), like every call of a client whose own upstream is one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import httpx

from qwenkit._core.pipeline import Call, EventStream
from qwenkit._core.transport import Flavour, Upstream
from qwenkit._exceptions import UsageError
from qwenkit._settings import Settings
from qwenkit._timeouts import Timeout

__all__ = ["UPSTREAM", "UpstreamSpec", "Upstreams", "check_targets", "split_target"]

UPSTREAM = "upstream"
"""``call.state`` key: the name of the upstream this call goes to (absent: the client's own)."""


@dataclass(frozen=True)
class UpstreamSpec:
    """Where a named upstream is and how to speak to it: the SDK's ``Settings`` (region, mode,
    base URL, key) and its flavour (``dashscope`` or ``openai-compatible``)."""

    settings: Settings
    flavour: Flavour = "dashscope"


def split_target(target: str) -> tuple[str, str | None]:
    """``"qwen-plus@virginia"`` → ``("qwen-plus", "virginia")``; ``"qwen-plus"`` → ``(.., None)``."""
    model, sep, name = target.rpartition("@")
    if not sep:
        return target, None
    if not model or not name:
        raise UsageError(f"a fallback target is MODEL or MODEL@UPSTREAM, not {target!r}")
    return model, name


def check_targets(chains: Mapping[str, Sequence[str]], names: Collection[str]) -> None:
    """Every ``MODEL@NAME`` of ``chains`` names one of the upstreams ``names``."""
    for model, chain in chains.items():
        for target in chain:
            _, name = split_target(target)
            if name is not None and name not in names:
                known = ", ".join(sorted(names)) or "none configured"
                raise UsageError(
                    f"the fallback {target!r} of {model!r} names an unknown upstream {name!r} "
                    f"(upstreams: {known})"
                )


class Upstreams:
    """The client's own upstream and the named ones; ``events`` sends one attempt to the one
    the call names."""

    def __init__(
        self,
        default: Upstream,
        named: Mapping[str, UpstreamSpec | Settings] | None = None,
        *,
        http: httpx.AsyncClient,
        timeout: Timeout | None = None,
    ) -> None:
        self.default = default
        self.named: dict[str, Upstream] = {}
        for name, spec in (named or {}).items():
            if not name or "@" in name:
                raise UsageError(f"an upstream name is a non-empty word without '@', not {name!r}")
            given = UpstreamSpec(spec) if isinstance(spec, Settings) else spec
            self.named[name] = Upstream(
                http, given.settings, flavour=given.flavour, timeout=timeout
            )

    def region(self, name: str) -> str:
        """The pricing region of upstream ``name`` (``""``: not priced, a self-hosted server)."""
        upstream = self.named[name]
        return upstream.settings.region.value if upstream.flavour == "dashscope" else ""

    def pick(self, call: Call) -> Upstream:
        name = call.state.get(UPSTREAM)
        return self.default if name is None else self.named[name]

    def events(self, call: Call) -> EventStream:
        return self.pick(call).events(call)
