"""``RoutePolicy``: the model and its task defaults, and the model's profile from the catalog.

Precedence, for every field: what the caller set > the task's route > the default. The caller
set a field when it is listed in ``call.explicit`` or already on the request; for ``model``
(always present on a ``ChatRequest``) a non-empty ``request.model`` counts as the caller's when
there is no task, so a door that forgets ``explicit`` never has its model silently replaced.
"""

from __future__ import annotations

from qwenkit._core.pipeline import Call
from qwenkit._core.policies._base import (
    ROUTE_MAX_TOKENS,
    THINKING_SOURCE,
    BeforeCall,
    caller_set,
    updated,
)
from qwenkit.catalog import Catalog, Route, Router, UnknownModelError


class RoutePolicy(BeforeCall):
    """Pick the model, temperature, thinking and ``max_tokens`` of a call; resolve its profile.

    - ``call.task`` set: ``call.route = router.route(task)`` (an unknown task raises
      ``UnknownTaskError`` before any network call).
    - model: the caller's (``"model" in call.explicit``), else the route's, else the request's
      (when not empty), else ``default_model``.
    - temperature: the route's unless the caller set one.
    - ``call.thinking``: the route's when the caller expressed no wish (neither ``call.thinking``
      nor ``request.enable_thinking``); marked ``call.state["thinking_source"] = "route"`` so
      ``ThinkingPolicy`` can resolve a conflict with a note instead of an error.
    - ``max_tokens``: the route's, stashed in ``call.state["route_max_tokens"]`` for
      ``MaxTokensPolicy`` (which applies the caps), unless the caller set one.
    - ``call.profile``: the catalog's profile of the model, or ``None`` with a note for a model the
      catalog does not know (new models appear monthly, self-hosted names are free-form): later
      policies then skip their model-specific checks.
    """

    def __init__(self, router: Router, catalog: Catalog, default_model: str = "qwen-plus") -> None:
        self.router = router
        self.catalog = catalog
        self.default_model = default_model

    def prepare(self, call: Call) -> None:
        route = call.route = self.router.route(call.task) if call.task else None
        request = call.request
        changes: dict[str, object] = {}
        model = self._model(call, route)
        if model != request.model:
            changes["model"] = model
        if route is not None:
            if not caller_set(call, "temperature"):
                changes["temperature"] = route.temperature
                call.notes.append(f"temperature {route.temperature} from the {route.task} route")
            if not caller_set(call, "max_tokens"):
                call.state[ROUTE_MAX_TOKENS] = route.max_tokens
                call.notes.append(f"max_tokens {route.max_tokens} from the {route.task} route")
            wants = call.thinking is not None or caller_set(call, "enable_thinking")
            if not wants and "thinking" not in call.explicit:
                call.thinking = route.thinking
                call.state[THINKING_SOURCE] = "route"
                state = "on" if route.thinking else "off"
                call.notes.append(f"thinking {state} from the {route.task} route")
        if changes:
            call.request = updated(request, **changes)
        try:
            call.profile = self.catalog.get(model)
        except UnknownModelError:
            call.profile = None
            call.notes.append(
                f"model {model!r} is not in the catalog: checks that need its limits and "
                "thinking mode are skipped"
            )

    def _model(self, call: Call, route: Route | None) -> str:
        requested = call.request.model
        if "model" in call.explicit and requested:
            call.notes.append(f"model {requested}: the caller's choice")
            return requested
        if route is not None:
            call.notes.append(f"model {route.model} for task {route.task}: {route.reason}")
            return route.model
        if requested:
            return requested
        call.notes.append(f"model {self.default_model}: the default (no model, no task)")
        return self.default_model

    def __repr__(self) -> str:
        return f"RoutePolicy(default_model={self.default_model!r})"
