"""Budget states of keys and environments: ``budget_states`` (``qwenkit budget show``, the
gateway's admin API and dashboard).

A key's scope is ``key:<id>`` with the key's own limits; an environment's is ``env:<name>``
with the limits set for it (``qwenkit budget set``). Asked for a key, the states of its
environment come too; asked for nothing, those of every active key and environment.
"""

from __future__ import annotations

from qwenkit.storage._protocols import Budgets, BudgetState, Keys, Limits

__all__ = ["budget_states"]


async def budget_states(
    keys: Keys, budgets: Budgets, *, key_id: str | None = None, env: str | None = None
) -> list[BudgetState]:
    """The states asked for (see the module docstring); ``LookupError`` for an unknown key."""
    scopes: dict[str, Limits] = {}
    if key_id is not None:
        info = await keys.get(key_id)
        if info is None:
            raise LookupError(f"no key with id {key_id!r}")
        scopes[f"key:{info.id}"] = info.limits
        if info.environment and env is None:
            env = info.environment
    elif env is None:
        for info in await keys.list():
            scopes[f"key:{info.id}"] = info.limits
            if info.environment:
                scopes.setdefault(f"env:{info.environment}", Limits())
    if env is not None:
        scopes[f"env:{env}"] = Limits()
    states: list[BudgetState] = []
    for scope, given in scopes.items():
        limits = given
        if scope.startswith("env:"):
            limits = await keys.environment(scope[4:]) or given
        states.extend(await budgets.status(scope, limits))
    return states
