"""The emulator's engines: what the emulated model answers, deterministically.

- ``Engine`` (protocol) and ``EngineContext``: ``engine.generate(request, context)`` returns a
  ``Generation``; the same request with the same ``context.seed`` gives the same ``Generation``.
- ``DefaultEngine``: prose, tool calls, answers from tool results, JSON, reasoning, all derived
  from the request (``default``).
- ``ScenarioEngine`` and ``load_scenarios``: scripted rules, first match wins (``scenarios``
  documents the file format).
- ``QuirkEngine`` / ``apply_quirks``: the switchable real quirks (``quirks``).
- ``build_engine(config)``: the engine the emulator serves with: the config's scenario rules
  (plus ``extra_rules``), falling back to the default engine, quirks applied to both.
"""

from __future__ import annotations

from collections.abc import Sequence

from qwenkit.emulator.config import EmulatorConfig
from qwenkit.emulator.engine.base import (
    Engine,
    EngineContext,
    last_user_text,
    pending_tool_results,
    tool_rounds,
)
from qwenkit.emulator.engine.default import DefaultEngine
from qwenkit.emulator.engine.quirks import QuirkEngine, apply_quirks
from qwenkit.emulator.engine.rules import (
    ScenarioError,
    ScenarioFault,
    ScenarioMatch,
    ScenarioRule,
    ScenarioToolCall,
)
from qwenkit.emulator.engine.scenarios import ScenarioEngine, load_scenarios

__all__ = [
    "DefaultEngine",
    "Engine",
    "EngineContext",
    "QuirkEngine",
    "ScenarioEngine",
    "ScenarioError",
    "ScenarioFault",
    "ScenarioMatch",
    "ScenarioRule",
    "ScenarioToolCall",
    "apply_quirks",
    "build_engine",
    "last_user_text",
    "load_scenarios",
    "pending_tool_results",
    "tool_rounds",
]


def build_engine(config: EmulatorConfig, extra_rules: Sequence[ScenarioRule] = ()) -> Engine:
    """Scenario rules from ``config.scenarios`` then ``extra_rules``, over the default engine.

    Quirks are read from the ``EngineContext`` config at each request, so a configuration changed
    at run time takes effect without rebuilding; the rules are read once, here.
    """
    rules = [*load_scenarios(config.scenarios), *extra_rules]
    return ScenarioEngine(rules, QuirkEngine(DefaultEngine()), quirks=True)
