"""Everything one emulator app holds between requests, in one object (no module-level state).

``EmulatorState`` is built once per ``create_app``: the configuration, the model catalog, the
engine, the context cache, the rate limiter, the fault plan, the task store, the Batch API's files
and batches, the bounded request
log and the per-key request counters. Tokenizers are loaded once per process by
``qwenkit.tokens`` (``warm()`` loads the families the catalog uses ahead of the first request).

A configuration change (``PATCH /_emulator/config``) replaces the config and rebuilds only what
depends on the sections that changed, so cache contents and throttle windows survive unrelated
changes; ``reset()`` empties every cache, counter, window, task and the log.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, cast

from starlette.requests import Request

from qwenkit._exceptions import UsageError
from qwenkit.catalog import Catalog, ModelProfile
from qwenkit.emulator.auth import AuthFailure, KeyRing
from qwenkit.emulator.batch_store import BatchStore
from qwenkit.emulator.config import EmulatorConfig, read_data_file
from qwenkit.emulator.engine import Engine, ScenarioRule, build_engine, load_scenarios
from qwenkit.emulator.tasks import TaskStore
from qwenkit.emulator.throttle import FaultPlan, RateLimiter
from qwenkit.emulator.usage import PrefixCache
from qwenkit.tokens import QwenTokenizer, get_tokenizer

__all__ = [
    "LOG_SIZE",
    "EmulatorState",
    "RequestLog",
    "ScenarioSource",
    "deep_merge",
    "emulator_state",
]

LOG_SIZE = 1000

ScenarioSource = str | PathLike[str] | Sequence[Mapping[str, Any]] | Mapping[str, Any]


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class RequestLog:
    """The last ``size`` requests, oldest first (entries are plain JSON-ready dicts)."""

    def __init__(self, size: int = LOG_SIZE) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def last(self, limit: int | None = None) -> list[dict[str, Any]]:
        entries = list(self._entries)
        return entries if limit is None else entries[max(0, len(entries) - limit) :]

    def clear(self) -> None:
        self._entries.clear()


class EmulatorState:
    """The mutable state of one emulator app."""

    def __init__(self, config: EmulatorConfig, *, scenarios: ScenarioSource | None = None) -> None:
        self.config = config
        self.extra_rules: list[ScenarioRule] = (
            load_scenarios(scenarios) if scenarios is not None else []
        )
        self.catalog = Catalog.load(config.catalog_file)
        self.engine: Engine = build_engine(config, self.extra_rules)
        self.keys = KeyRing.from_config(config.auth)
        self.cache = PrefixCache(config.cache)
        self.limiter = RateLimiter(config.throttle)
        self.faults = FaultPlan(config.faults)
        self.tasks = TaskStore()
        self.batches = BatchStore()
        self.log = RequestLog()
        self.counters: dict[str, int] = {}
        self.started = time.time()

    # -- lookups ----------------------------------------------------------------------------------

    def profile(self, model: str) -> ModelProfile | None:
        """The catalog profile of a model name, alias or snapshot; ``None`` when unknown."""
        name = self.catalog.resolve(model)
        return self.catalog.get(name) if name is not None else None

    def tokenizer(self, profile: ModelProfile | None) -> QwenTokenizer:
        return get_tokenizer(profile.tokenizer if profile is not None else "qwen")

    def check_key(self, authorization: str | None) -> tuple[str | None, AuthFailure | None]:
        return self.keys.check(authorization)

    def next_request_number(self, key_id: str) -> int:
        """The number of this request of ``key_id``, counting from 1 (until ``reset``)."""
        number = self.counters.get(key_id, 0) + 1
        self.counters[key_id] = number
        return number

    def warm(self) -> None:
        """Load the tokenizer of every family the catalog uses (so no request pays for it)."""
        for family in sorted({profile.tokenizer for profile in self.catalog}):
            get_tokenizer(family)

    # -- changes ----------------------------------------------------------------------------------

    def patch_config(self, patch: Mapping[str, Any]) -> EmulatorConfig:
        """Deep-merge ``patch`` into the configuration (validated; raises
        ``pydantic.ValidationError`` and changes nothing when invalid) and apply it."""
        merged = deep_merge(self.config.model_dump(mode="json"), patch)
        config = EmulatorConfig.model_validate(merged)
        self.apply_config(config)
        return config

    def apply_config(
        self, config: EmulatorConfig, extra_rules: list[ScenarioRule] | None = None
    ) -> None:
        """Switch to ``config``; everything that can fail (catalog, rules) is built first, so a
        failure leaves the state as it was."""
        old = self.config
        catalog = (
            Catalog.load(config.catalog_file) if config.catalog_file != old.catalog_file else None
        )
        rules = self.extra_rules if extra_rules is None else extra_rules
        engine = build_engine(config, rules)
        self.config, self.engine, self.extra_rules = config, engine, rules
        if catalog is not None:
            self.catalog = catalog
        if config.auth != old.auth:
            self.keys = KeyRing.from_config(config.auth)
        if config.cache != old.cache:
            self.cache = PrefixCache(config.cache)
        if config.throttle != old.throttle:
            self.limiter = RateLimiter(config.throttle)
        if config.faults != old.faults:
            self.faults = FaultPlan(config.faults)

    def replace_scenarios(self, source: ScenarioSource) -> int:
        """Replace every scenario rule (the config's and the extra ones) with the rules of
        ``source``, validated first (``UsageError`` changes nothing); returns their count. The
        rules land in ``config.scenarios``, so ``GET /_emulator/config`` shows them."""
        data = _rule_data(source)
        self.apply_config(self.config.model_copy(update={"scenarios": data}), extra_rules=[])
        return len(data)

    def reset(self) -> None:
        """Forget caches, counters, throttle windows, tasks, batch files and batches (running
        ones are cancelled) and the request log."""
        self.cache.reset()
        self.batches.clear()
        self.limiter.reset()
        self.tasks.clear()
        self.log.clear()
        self.counters.clear()


def _rule_data(source: ScenarioSource) -> list[dict[str, Any]]:
    """Scenario rules as plain data (a file is read; ``{"scenarios": [...]}`` is unwrapped)."""
    data: Any = read_data_file(Path(source)) if isinstance(source, (str, PathLike)) else source
    if isinstance(data, Mapping) and set(data) == {"scenarios"}:
        data = data["scenarios"] or []
    if data is None:
        return []
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise UsageError("scenarios: expected a list of rules or a mapping with 'scenarios'")
    return [
        item.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        if isinstance(item, ScenarioRule)
        else dict(item)
        if isinstance(item, Mapping)
        else item
        for item in data
    ]


def emulator_state(request: Request) -> EmulatorState:
    """The state of the app serving ``request``."""
    return cast(EmulatorState, request.app.state.emulator)
