"""Model knowledge: what each Qwen model can do, what it costs, and which one to use for a task.

- ``Catalog`` / ``get_model``: limits, capabilities and prices per model, from the packaged
  ``models.toml`` (overridable with a user TOML file). Every figure carries a confidence mark.
- ``cost`` / ``estimate_max_cost``: money from a ``Usage`` (``Decimal``, never float).
- ``Router``: task kind (or a free-text task) → model, temperature, thinking and ``max_tokens``,
  from the packaged ``routes.toml`` plus overrides.
"""

from qwenkit.catalog._loader import (
    Catalog,
    CatalogDataError,
    UnknownModelError,
    default_catalog,
    get_model,
)
from qwenkit.catalog._profiles import (
    ModelProfile,
    PriceTable,
    PriceTier,
    PriceUnavailableError,
    RegionPricing,
    ThinkingMode,
)
from qwenkit.catalog.pricing import Cost, cost, estimate_max_cost
from qwenkit.catalog.routing import (
    SUMMARISE,
    Route,
    Router,
    TaskKind,
    UnknownTaskError,
    classify_task,
)

__all__ = [
    "SUMMARISE",
    "Catalog",
    "CatalogDataError",
    "Cost",
    "ModelProfile",
    "PriceTable",
    "PriceTier",
    "PriceUnavailableError",
    "RegionPricing",
    "Route",
    "Router",
    "TaskKind",
    "ThinkingMode",
    "UnknownModelError",
    "UnknownTaskError",
    "classify_task",
    "cost",
    "default_catalog",
    "estimate_max_cost",
    "get_model",
]
