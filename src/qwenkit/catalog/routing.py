"""Pick a model for a task: ``Router.route(kind)`` and ``Router.route_text("free text")``.

Routes (model, temperature, thinking, ``max_tokens`` and the reason for the choice) come from the
packaged ``routes.toml``, with per-kind overrides of any field. Besides the task kinds there is a
``summarise`` route: the cheap model used to compact conversation history.

A built route always fits its model: ``max_tokens`` is clamped to ``max_output_tokens``, and
thinking is forced off for models that never think and on for models that always do; each
adjustment is stated in ``Route.reason``.

``route_text`` maps a free-text task description to a kind with the keyword table below
(case-insensitive, whole words; the first rule in this order that matches wins; otherwise chat):

====================  ===========================================================
kind                  keywords
====================  ===========================================================
vision                image, photo, picture, screenshot
audio                 audio, speech, voice, recording, transcribe/transcript
classify              classify, categorize/categorise, label
extract               extract, parse, pull out
summarize             summarize/summarise/summary, tl;dr
review                review, critique
code                  code, coding, function, bug, debug, refactor, python, sql, ...
creative              poem, poetry, story, slogan, lyrics
reason                prove, proof, plan, step by step, math/maths
rag                   document(s), knowledge base, retrieval/retrieve
====================  ===========================================================

Modalities come first (text in a screenshot still needs the vision model); the mechanical kinds
come before review ("label each review", "summarize the reviews"), and review before code
("review this function" is a review).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwenkit._exceptions import UsageError
from qwenkit.catalog._loader import (
    Catalog,
    CatalogDataError,
    deep_merge,
    default_catalog,
    read_packaged_toml,
    read_toml,
)
from qwenkit.catalog._profiles import ThinkingMode


class TaskKind(str, Enum):
    """The kinds of work the router knows."""

    CLASSIFY = "classify"
    EXTRACT = "extract"
    SUMMARIZE = "summarize"
    CHAT = "chat"
    RAG = "rag"
    REASON = "reason"
    REVIEW = "review"
    CODE = "code"
    VISION = "vision"
    AUDIO = "audio"
    CREATIVE = "creative"


SUMMARISE = "summarise"
"""Name of the extra route for conversation summaries (context compaction)."""

ROUTE_NAMES: tuple[str, ...] = (*(kind.value for kind in TaskKind), SUMMARISE)

_C = re.IGNORECASE
KEYWORD_RULES: tuple[tuple[TaskKind, re.Pattern[str]], ...] = (
    (TaskKind.VISION, re.compile(r"\b(images?|photos?|pictures?|screenshots?)\b", _C)),
    (
        TaskKind.AUDIO,
        re.compile(r"\b(audio|speech|voice|recordings?|transcri(be|bes|bing|pts?|ption))\b", _C),
    ),
    (TaskKind.CLASSIFY, re.compile(r"\b(classif\w*|categori[sz]\w*|label\w*)\b", _C)),
    (TaskKind.EXTRACT, re.compile(r"\b(extract\w*|pars(e|es|ed|ing)|pull(s|ing)? out)\b", _C)),
    (TaskKind.SUMMARIZE, re.compile(r"\b(summar\w*|tl;?dr)\b", _C)),
    (TaskKind.REVIEW, re.compile(r"\b(review\w*|critique\w*)\b", _C)),
    (
        TaskKind.CODE,
        re.compile(
            r"\b(code|coding|functions?|bugs?|debug\w*|refactor\w*|python|javascript|"
            r"typescript|sql|unit tests?)\b",
            _C,
        ),
    ),
    (TaskKind.CREATIVE, re.compile(r"\b(poems?|poetry|stor(y|ies)|slogans?|lyrics)\b", _C)),
    (
        TaskKind.REASON,
        re.compile(r"\b(prove|proof|plan|planning|step[- ]by[- ]step|maths?)\b", _C),
    ),
    (TaskKind.RAG, re.compile(r"\b(documents?|knowledge base|retriev\w*|retrieval)\b", _C)),
)
"""``route_text`` rules, tried in order; see the table in the module docstring."""


class UnknownTaskError(UsageError):
    """A route name that is neither a task kind nor ``summarise``."""


class Route(BaseModel):
    """How to call the API for one kind of task, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    model: str
    temperature: float = Field(ge=0.0, lt=2.0)
    thinking: bool
    max_tokens: int = Field(gt=0)
    reason: str


class Router:
    """Task kind → ``Route``, from ``routes.toml`` plus ``overrides`` (any field, per kind)."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        overrides: Mapping[str, Any] | str | Path | None = None,
    ) -> None:
        self.catalog = catalog or default_catalog()
        routes: Mapping[str, Any] = read_packaged_toml("routes.toml")["routes"]
        if overrides is not None:
            table = _override_table(overrides)
            changes = {name: _explained(fields, routes[name]) for name, fields in table.items()}
            routes = deep_merge(routes, changes)
        self._routes = {name: self._build(name, fields) for name, fields in routes.items()}

    def route(self, task: TaskKind | str) -> Route:
        """The route for a task kind (enum or name, case-insensitive) or ``summarise``."""
        name = task.value if isinstance(task, TaskKind) else task.strip().lower()
        try:
            return self._routes[name]
        except KeyError:
            raise UnknownTaskError(
                f"unknown task kind {task!r}; valid kinds: {', '.join(ROUTE_NAMES)}"
            ) from None

    def route_text(self, text: str) -> Route:
        """The route for a free-text task description; ``reason`` says which rule matched."""
        kind, word = classify_task(text)
        route = self.route(kind)
        if word is None:
            why = f"no keyword matched, so {kind.value}"
        else:
            why = f"keyword {word!r} matched the {kind.value} rule"
        return route.model_copy(update={"reason": f"{why}. {route.reason}"})

    def routes(self) -> dict[str, Route]:
        """Every route by name."""
        return dict(self._routes)

    def _build(self, name: str, fields: Mapping[str, Any]) -> Route:
        try:
            route = Route.model_validate({"task": name, **fields})
        except ValidationError as exc:
            raise CatalogDataError(f"route {name!r}: {exc}") from exc
        profile = self.catalog.get(route.model)
        notes: list[str] = []
        update: dict[str, Any] = {}
        if route.max_tokens > profile.max_output_tokens:
            update["max_tokens"] = profile.max_output_tokens
            notes.append(
                f"max_tokens clamped from {route.max_tokens} to {profile.name}'s "
                f"max_output_tokens {profile.max_output_tokens}"
            )
        if route.thinking and not profile.supports_thinking:
            update["thinking"] = False
            notes.append(f"thinking off: {profile.name} does not think")
        elif not route.thinking and profile.thinking is ThinkingMode.ALWAYS:
            update["thinking"] = True
            notes.append(f"thinking on: {profile.name} always thinks")
        if notes:
            update["reason"] = f"{route.reason} ({'; '.join(notes)})"
        return route.model_copy(update=update)


def classify_task(text: str) -> tuple[TaskKind, str | None]:
    """The task kind of a free-text description and the keyword that decided it (if any)."""
    for kind, pattern in KEYWORD_RULES:
        match = pattern.search(text)
        if match:
            return kind, match.group(0)
    return TaskKind.CHAT, None


def _explained(fields: Mapping[str, Any], default: Mapping[str, Any]) -> Mapping[str, Any]:
    """Override fields, with a reason saying what changed unless the override gives one."""
    if "reason" in fields or not fields:
        return fields
    changed = ", ".join(f"{key}={value!r}" for key, value in fields.items())
    return {**fields, "reason": f"Configured override ({changed}); default: {default['reason']}"}


def _override_table(overrides: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    data = read_toml(overrides) if isinstance(overrides, (str, Path)) else overrides
    table = data.get("routes", data)
    if not isinstance(table, Mapping):
        raise CatalogDataError("route overrides must be a table of [routes.<kind>] tables")
    unknown = sorted(set(table) - set(ROUTE_NAMES))
    if unknown:
        raise UnknownTaskError(
            f"overrides for unknown task kinds {unknown}; valid kinds: {', '.join(ROUTE_NAMES)}"
        )
    for name, fields in table.items():
        if not isinstance(fields, Mapping):
            raise CatalogDataError(f"override for route {name!r} must be a table of fields")
    return table
