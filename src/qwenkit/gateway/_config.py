"""The gateway's configuration: ``GatewayConfig``, from a TOML file, ``QWENKIT_GATEWAY_*``
environment variables and explicit arguments (strongest last).

The upstream (which service, region, mode, key) is the SDK's ``Settings``; this holds only what
the gateway adds: the store, the admin key, who may call, and the limits on what callers send.
A TOML file has a ``[gateway]`` table with these fields (``qwenkit serve --config FILE``)::

    [gateway]
    upstream = "dashscope"           # or "openai-compatible": a vLLM/SGLang/llama.cpp server
    store_url = "postgresql://qwenkit@db/qwenkit"
    reasoning = "strip"
    max_body_bytes = 4194304
    [gateway.aliases]
    fast = "qwen-flash"
    [gateway.upstreams.virginia]     # another region a fallback may name
    region = "us-east-1"
    [gateway.fallbacks]
    "qwen-plus" = ["qwen-plus@virginia", "qwen-flash"]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from qwenkit._core.transport import Flavour
from qwenkit._core.upstreams import UpstreamSpec
from qwenkit._settings import ConfigError, Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["GatewayConfig", "LogFormat", "ReasoningMode", "UpstreamEntry"]

ReasoningMode = Literal["strip", "pass", "log"]
"""What happens to the model's reasoning: ``strip`` never sends it to the client (the default),
``pass`` sends it (``reasoning_content``), ``log`` keeps it out of the answer and logs it at
debug level on ``qwenkit.gateway.reasoning``."""

LogFormat = Literal["text", "json"]
"""``qwenkit serve``'s log lines: uvicorn's text (the default) or one JSON object per line."""

_ENV_PREFIX = "QWENKIT_GATEWAY_"


class UpstreamEntry(BaseModel):
    """A named upstream of the configuration file::

        [gateway.upstreams.virginia]        # DashScope in another region
        region = "us-east-1"
        api_key_env = "DASHSCOPE_API_KEY_US"  # the variable holding its key (never the key)
        [gateway.upstreams.local]           # a self-hosted OpenAI-compatible server
        flavour = "openai-compatible"
        base_url = "http://gpu-box:8000/v1"

    Without ``api_key_env`` the gateway's own upstream key is used (keys are per account, and a
    region may need its own: set it when in doubt)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flavour: Flavour = "dashscope"
    region: str | None = None
    mode: Literal["compat", "native"] | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    workspace: str | None = None

    def spec(self, name: str, base: Settings) -> UpstreamSpec:
        """The SDK's ``UpstreamSpec``: this entry over the gateway's own ``base`` settings (the
        environment is not read again, so ``QWENKIT_BASE_URL`` stays the gateway's own)."""
        key = base.api_key
        if self.api_key_env is not None:
            value = os.environ.get(self.api_key_env)
            if not value:
                raise ConfigError(
                    f"upstream {name!r}: the variable {self.api_key_env} (api_key_env) is not set"
                )
            key = SecretStr(value)
        fields: dict[str, Any] = {
            "api_key": key,
            "region": self.region or base.region,
            "mode": self.mode or base.mode,
            "base_url": self.base_url,
            "compat_base_url": None,
            "native_base_url": None,
            "workspace": self.workspace,
        }
        try:
            return UpstreamSpec(Settings(**fields), flavour=self.flavour)
        except ValueError as exc:
            raise ConfigError(f"upstream {name!r}: {exc}") from exc


class GatewayConfig(BaseModel):
    """What the gateway adds to the SDK's settings; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstream: Flavour = "dashscope"
    """What the gateway's own upstream is: DashScope (the SDK's settings: key, region, mode), or
    ``openai-compatible``, a self-hosted server (vLLM, SGLang, llama.cpp) at the settings'
    ``base_url`` (``QWENKIT_BASE_URL``), where no key is needed and calls are not priced."""
    store_url: str | None = None
    """The store of keys, budgets, ledger and cache (``None``: the SDK's settings, else the
    embedded SQLite file)."""
    master_key: SecretStr | None = None
    """The admin key (``QWENKIT_MASTER_KEY``); it may also call the model routes."""
    require_keys: bool = True
    """Every model call needs a virtual key (or the master key). ``False`` lets anonymous
    callers through (a gateway on a private network only)."""
    reasoning: ReasoningMode = "strip"
    metrics_public: bool = False
    """``GET /metrics`` without the master key (a scraper on a private network)."""
    cache: bool = False
    """Serve identical requests from the store's response cache."""
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(64, ge=4)
    max_messages: int = Field(2048, ge=1)
    relay_buffer: int = Field(32, ge=1)
    """Events queued between the upstream and a slow client before the upstream read waits."""
    keepalive_seconds: float = Field(15.0, gt=0)
    """A stream silent this long (the model thinking, its reasoning stripped) gets an SSE
    comment, so proxies and clients do not time out."""
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    """Models to try, in order, when a model fails with a retryable error before answering
    (``qwen-max`` → ``["qwen-plus"]``); see ``qwenkit._core.policies.fallback``."""
    aliases: dict[str, str] = Field(default_factory=dict)
    """Model names callers may use for others (``fast`` → ``qwen-flash``)."""
    upstreams: dict[str, UpstreamEntry] = Field(default_factory=dict)
    """Other regions or servers a fallback may name (``"qwen-plus@virginia"``), each a
    ``[gateway.upstreams.NAME]`` table; see ``UpstreamEntry``."""
    otel: bool | None = None
    """OpenTelemetry traces: ``None`` when the ``OTEL_*`` variables configure an exporter (or the
    application set a global provider), ``True`` always, ``False`` never; see
    ``qwenkit.gateway._telemetry``."""
    log_format: LogFormat = "text"
    """``json``: one JSON object per line on stderr, with an access line per request (``qwenkit
    serve --log-format``, ``QWENKIT_LOG_FORMAT``); see ``qwenkit.gateway._logging``."""

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> GatewayConfig:
        """The file's ``[gateway]`` table, then the environment, then ``overrides``."""
        data: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, "rb") as handle:
                    document = tomllib.load(handle)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read the gateway config {path}: {exc}") from exc
            table = document.get("gateway", {})
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: [gateway] must be a table")
            data.update(table)
        for name in cls.model_fields:
            value = os.environ.get(_ENV_PREFIX + name.upper())
            if value is not None and name not in ("aliases", "fallbacks", "upstreams"):
                data[name] = value
        master = os.environ.get("QWENKIT_MASTER_KEY")
        if master:
            data["master_key"] = master
        data.update({name: value for name, value in overrides.items() if value is not None})
        try:
            return cls.model_validate(data)
        except ValueError as exc:
            raise ConfigError(f"invalid gateway configuration: {exc}") from exc
