"""Emulator configuration: one pydantic model, loadable from YAML, JSON or TOML.

Every behaviour the reference marks UNCONFIRMED is a setting here, with the documented best guess
as its default (``shared/reference/dashscope-wire.md``). Defaults give a well-behaved service: no
faults, no quirks, no pacing, any ``sk-`` key accepted. Tests and users switch on what they need,
in the file, with flags of ``qwenkit emulate``, or at run time through ``/_emulator/config``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from qwenkit._exceptions import UsageError
from qwenkit._settings import Region

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KeyConfig(_Section):
    key: str
    region: Region | None = None
    """The region the key belongs to; a key used against an emulator of another region gets the
    real 401. ``None``: valid in every region."""


class AuthConfig(_Section):
    region: Region = Region.AP_SOUTHEAST_1
    """The region this emulator plays."""
    keys: list[KeyConfig] = Field(default_factory=list)
    """When not empty, only these keys are accepted (each in its region)."""
    accept_any_sk: bool = True
    """With no ``keys`` listed: accept any key of the real form (``sk-`` and more characters)."""


class PacingConfig(_Section):
    ttft_ms: float = Field(default=0.0, ge=0)
    """Time to first token (after the request is accepted)."""
    tokens_per_second: float | None = Field(default=None, gt=0)
    """Output speed; ``None`` sends as fast as possible."""
    chunk_tokens: int = Field(default=1, ge=1)
    """Tokens per stream chunk (the real service sends one to a few)."""
    slow_upstream_ms: float = Field(default=0.0, ge=0)
    """Delay before any response byte, for every request (a slow upstream)."""


ErrorEnvelope = Literal["dashscope", "llama.cpp"]
"""The shape of compatible-mode errors: DashScope's, or llama.cpp's server's."""


class QuirksConfig(_Section):
    json_fence_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of JSON-mode answers wrapped in a markdown fence (```json ... ```)."""
    tool_loop_rounds: int = Field(default=0, ge=0)
    """With ``tool_choice: auto``, keep calling the same tool with the same arguments until the
    history holds this many tool rounds, then answer (N call rounds in all, N-1 repeats)."""
    drop_nested_rate: float = Field(default=0.0, ge=0, le=1)
    """Rate at which one nested property of deeply nested tool arguments is left out."""
    cumulative_native_stream: bool = False
    """Native streams are cumulative even when ``incremental_output: true`` was asked for."""
    json_schema_requires_keyword: bool = False
    """Also enforce the "json" keyword rule for ``json_schema`` (honcho#663 says the real service
    does; the docs say it does not)."""
    thinking_flag_on_non_thinking_model: Literal["ignore", "error"] = "ignore"
    """``enable_thinking`` sent to a model without thinking: ignored (default) or
    ``InvalidParameter.NotSupportEnableThinking`` (unconfirmed fixture)."""
    retry_after_seconds: float | None = Field(default=None, ge=0)
    """Send ``Retry-After`` on 429s (the real service sends none as far as anyone has seen)."""
    think_in_content: bool = False
    """Compatible wire: reasoning sent inline in ``content`` as ``<think>\\n...\\n</think>\\n\\n``
    before the answer instead of in ``reasoning_content``, as servers without a reasoning parser do
    (llama.cpp ``reasoning_format: none``); streamed, the tags come in 1-3 character pieces."""
    named_tool_choice: Literal["honour", "ignore"] = "honour"
    """``ignore``: in compatible mode a ``tool_choice`` naming a function is taken as ``auto``
    (note ``named_tool_choice_ignored``), as llama.cpp's server does with any non-string value."""
    error_envelope: ErrorEnvelope = "dashscope"
    """``llama.cpp``: compatible-mode chat errors as llama.cpp's server sends them,
    ``{"error": {"code": <HTTP status>, "message", "type"}}`` with no request id."""
    request_id_header: bool = True
    """``False``: chat answers carry no ``x-request-id`` header (llama.cpp's server sends none)."""
    close_after_stream: bool | Literal["reset"] = False
    """After a streamed answer, the next request on the same connection is not answered and
    the connection closes, though keep-alive was announced (llama.cpp's server closes after
    every stream; ``qwenkit.emulator.connections``): ``true`` closes it (the client reads its
    end), ``"reset"`` resets it (the client's read fails). Needs a real server (uvicorn)."""


class ThrottleConfig(_Section):
    requests_per_minute: int | None = Field(default=None, ge=1)
    """Per key: 429 ``Throttling.RateQuota`` past this many requests in a sliding minute."""
    tokens_per_minute: int | None = Field(default=None, ge=1)
    """Per key: 429 ``Throttling.AllocationQuota`` past this many tokens in a sliding minute."""
    after_requests: int | None = Field(default=None, ge=0)
    """Per key: every request after the first N gets a 429 (until ``/_emulator/reset``)."""
    burst: int | None = Field(default=None, ge=1)
    """Per key: 429 "Request rate increased too quickly" past this many requests in one second."""


class FaultsConfig(_Section):
    seed: int = 0
    """Faults are drawn from a generator seeded with this, per key and request number."""
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: Literal[500, 503] = 500
    fail_first: int = Field(default=0, ge=0)
    """The first N requests (per key) fail with ``error_status``, then everything succeeds."""
    drop_after_chunks: int | None = Field(default=None, ge=0)
    """Close streaming connections after this many chunks."""
    stall_after_chunks: int | None = Field(default=None, ge=0)
    stall_seconds: float = Field(default=30.0, ge=0)


class CacheConfig(_Section):
    implicit: bool = True
    min_prefix_tokens: int = Field(default=256, ge=1)
    block_tokens: int = Field(default=256, ge=1)
    """Implicit hits are reported in whole blocks of this many tokens (UNCONFIRMED granularity)."""
    explicit_min_tokens: int = Field(default=1024, ge=1)
    explicit_ttl_seconds: float = Field(default=300.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)
    """Bound on remembered prefixes (least recently used are forgotten)."""


class TasksConfig(_Section):
    text_generation_async: bool = False
    """Accept ``X-DashScope-Async: enable`` on text generation (the real service rejects it)."""
    pending_seconds: float = Field(default=0.5, ge=0)
    running_seconds: float = Field(default=1.0, ge=0)
    retention_seconds: float = Field(default=86_400.0, gt=0)


class BatchesConfig(_Section):
    """The OpenAI-compatible Batch API (``/compatible-mode/v1/files``, ``.../batches``); the real
    service's timings, accepted endpoints and windows are UNCONFIRMED, so all are settings."""

    validating_seconds: float = Field(default=0.05, ge=0)
    """How long a new batch stays ``validating``."""
    in_progress_seconds: float = Field(default=0.1, ge=0)
    """The least time a batch stays ``in_progress`` (its lines are answered meanwhile)."""
    endpoints: list[str] = Field(default_factory=lambda: ["/v1/chat/completions"])
    completion_windows: list[str] = Field(default_factory=lambda: ["24h"])
    concurrency: int = Field(default=8, ge=1)
    """Lines of one batch answered at a time."""
    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)


class LimitsConfig(_Section):
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Larger request bodies get 413 ``BadRequest.TooLarge`` (the real limit is not documented)."""
    max_n: int = Field(default=4, ge=1)


ResultFormat = Literal["text", "message"]


def _default_result_formats() -> dict[str, ResultFormat]:
    return {"qwen3": "message", "qwq": "message", "qwen3.5": "message", "*": "text"}


class EmulatorConfig(_Section):
    auth: AuthConfig = Field(default_factory=AuthConfig)
    pacing: PacingConfig = Field(default_factory=PacingConfig)
    quirks: QuirksConfig = Field(default_factory=QuirksConfig)
    throttle: ThrottleConfig = Field(default_factory=ThrottleConfig)
    faults: FaultsConfig = Field(default_factory=FaultsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    tasks: TasksConfig = Field(default_factory=TasksConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    batches: BatchesConfig = Field(default_factory=BatchesConfig)
    scenarios: list[dict[str, Any]] = Field(default_factory=list)
    """Scenario rules (see ``qwenkit.emulator.engine.scenarios``); also loadable from their own file."""
    catalog_file: Path | None = None
    """A TOML file merged over the packaged model catalog (limits the emulator enforces)."""
    native_result_format_default: dict[str, ResultFormat] = Field(
        default_factory=_default_result_formats
    )
    """Default ``result_format`` when a native request sends none, by model-name prefix (longest
    prefix wins; ``*`` for the rest). UNCONFIRMED list: the reference's best guess."""

    def result_format_for(self, model: str) -> ResultFormat:
        table = self.native_result_format_default
        best = max((p for p in table if p != "*" and model.startswith(p)), key=len, default="*")
        return table.get(best, "text")


def read_data_file(path: str | Path) -> Any:
    """Parse a YAML, JSON or TOML file, chosen by its extension."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if suffix == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except Exception as exc:  # each parser has its own error type; all mean "bad file"
        raise UsageError(f"{path} is not valid {suffix.lstrip('.') or 'JSON'}: {exc}") from None


def load_config(path: str | Path | None = None, **overrides: Any) -> EmulatorConfig:
    """An ``EmulatorConfig`` from a file (YAML/JSON/TOML) with keyword overrides on top."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = read_data_file(path)
        if loaded is not None and not isinstance(loaded, dict):
            raise UsageError(f"{path}: the emulator config must be a mapping")
        data = dict(loaded or {})
    data.update(overrides)
    return EmulatorConfig.model_validate(data)
