"""Load the model catalog and look models up: ``Catalog``, ``default_catalog()``, ``get_model()``.

Loading goes: parse the packaged ``models.toml`` (floats read as ``Decimal``, so prices stay
exact) → deep-merge an optional user file over it (tables merge key by key; any other value
replaces) → resolve ``extends`` / ``unset`` → fill the derived prices of each tier from
``[ratios]`` → copy prices to regions that are priced like another (``prices_from``) → validate
every entry into a frozen ``ModelProfile``.

Lookup accepts canonical names, aliases and dated snapshots: ``qwen-plus-2025-07-14`` and
``qwen-plus-latest`` resolve to ``qwen-plus`` unless the catalog lists the snapshot itself (as it
does for the non-thinking ``qwen3-max-2025-09-23``).
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from qwenkit._exceptions import DataError, UsageError
from qwenkit.catalog._profiles import ModelProfile, RegionPricing

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

RawTable = dict[str, Any]

_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|latest)$")
_FIGURES_TAKEN = re.compile(r"^\d{4}-\d{2}(?:-\d{2})?$")
_CACHE_RATIOS = ("cached_input", "explicit_cache_create", "explicit_cache_hit")
"""Tier prices that default to a ratio of the input price (same key in ``[ratios]``)."""


class CatalogDataError(DataError, ValueError):
    """The catalog data (packaged or user file) is malformed; the message names the entry."""


class UnknownModelError(UsageError, KeyError):
    """No model of that name, alias or snapshot in the catalog."""

    def __init__(self, name: str, suggestions: Iterable[str], known: Iterable[str]) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        if self.suggestions:
            hint = "did you mean: " + ", ".join(self.suggestions) + "?"
        else:
            hint = "known models: " + ", ".join(sorted(known))
        super().__init__(f"unknown model {name!r}; {hint}")

    def __str__(self) -> str:
        return str(self.args[0])


def read_toml(source: str | Path, *, decimal: bool = False) -> RawTable:
    """Parse a TOML file; with ``decimal`` floats become ``Decimal`` instead of ``float``."""
    text = Path(source).read_text(encoding="utf-8")
    return _parse(text, str(source), decimal=decimal)


def read_packaged_toml(name: str, *, decimal: bool = False) -> RawTable:
    """Parse a TOML data file shipped in the ``qwenkit.catalog`` package."""
    text = resources.files("qwenkit.catalog").joinpath(name).read_text(encoding="utf-8")
    return _parse(text, f"qwenkit.catalog/{name}", decimal=decimal)


def _parse(text: str, origin: str, *, decimal: bool) -> RawTable:
    try:
        data: RawTable = tomllib.loads(text, parse_float=Decimal if decimal else float)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogDataError(f"{origin}: {exc}") from exc
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> RawTable:
    """A new table: ``override`` over ``base``; tables merge recursively, other values replace."""
    merged: RawTable = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_extends(name: str, models: Mapping[str, Any], chain: tuple[str, ...] = ()) -> RawTable:
    entry = models[name]
    if not isinstance(entry, Mapping):
        raise CatalogDataError(f"model {name!r}: expected a table")
    own = {k: v for k, v in entry.items() if k not in ("extends", "unset")}
    parent = entry.get("extends")
    if parent is None:
        merged = own
    elif parent in (*chain, name):
        raise CatalogDataError(f"model {name!r}: 'extends' cycle through {parent!r}")
    elif parent not in models:
        raise CatalogDataError(f"model {name!r} extends unknown model {parent!r}")
    else:
        merged = deep_merge(_resolve_extends(parent, models, (*chain, name)), own)
    for key in entry.get("unset", ()):
        merged.pop(key, None)
    return merged


def _price_tables(
    raw: Mapping[str, Any], ratios: Mapping[str, Decimal], regions: Mapping[str, RegionPricing]
) -> list[RawTable]:
    tables: dict[str, RawTable] = {}
    for region_name, table in raw.items():
        region = regions.get(region_name)
        if region is None:
            raise CatalogDataError(f"prices for unknown region {region_name!r}")
        tiers = [_tier(label, tier, ratios) for label, tier in table.get("tiers", {}).items()]
        tiers.sort(key=lambda t: (t.get("max_input_tokens") is None, t.get("max_input_tokens", 0)))
        rest = {k: v for k, v in table.items() if k != "tiers"}
        tables[region_name] = {
            **rest,
            "region": region_name,
            "currency": region.currency,
            "tiers": tiers,
        }
    for region in regions.values():
        source = tables.get(region.prices_from or "")
        if region.name in tables or source is None:
            continue
        if source["currency"] != region.currency:
            raise CatalogDataError(f"region {region.name!r} cannot be priced in another currency")
        tables[region.name] = {
            **source,
            "region": region.name,
            "confidence": "unconfirmed",
            "notes": region.notes or f"assumed equal to {region.prices_from}",
        }
    return list(tables.values())


def _tier(label: str, raw: Mapping[str, Any], ratios: Mapping[str, Decimal]) -> RawTable:
    tier: RawTable = {"label": label, **raw}
    if "input" in tier:
        price = Decimal(str(tier["input"]))
        for key in _CACHE_RATIOS:
            tier.setdefault(key, price * ratios[key])
    tier.setdefault("batch_ratio", ratios["batch"])
    return tier


class Catalog:
    """The models qwenkit knows: limits, capabilities and prices, looked up by name."""

    def __init__(
        self,
        profiles: Iterable[ModelProfile],
        *,
        regions: Mapping[str, RegionPricing] | None = None,
        figures_taken: str = "",
        sources: Iterable[str] = (),
    ) -> None:
        self._models: dict[str, ModelProfile] = {}
        self._aliases: dict[str, str] = {}
        for profile in profiles:
            if profile.name in self._models or profile.name in self._aliases:
                raise CatalogDataError(f"model name {profile.name!r} is defined twice")
            self._models[profile.name] = profile
        for profile in self._models.values():
            for alias in profile.aliases:
                if alias in self._models or alias in self._aliases:
                    raise CatalogDataError(f"alias {alias!r} of {profile.name!r} is taken")
                self._aliases[alias] = profile.name
        self.regions: Mapping[str, RegionPricing] = dict(regions or {})
        self.figures_taken = figures_taken
        self.sources = tuple(sources)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Catalog:
        """The packaged catalog, with the user TOML file at ``path`` (if any) merged over it."""
        data = read_packaged_toml("models.toml", decimal=True)
        if path is not None:
            data = deep_merge(data, read_toml(path, decimal=True))
        return cls.from_data(data)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Catalog:
        """Build a catalog from parsed (already merged) ``models.toml`` data."""
        figures_taken = str(data.get("figures_taken", ""))
        if not _FIGURES_TAKEN.match(figures_taken):
            raise CatalogDataError(f"figures_taken must be YYYY-MM[-DD], got {figures_taken!r}")
        ratios = {k: Decimal(str(v)) for k, v in data.get("ratios", {}).items()}
        missing = {*_CACHE_RATIOS, "batch"} - set(ratios)
        if missing:
            raise CatalogDataError(f"[ratios] lacks {sorted(missing)}")
        try:
            regions = {
                name: RegionPricing.model_validate({"name": name, **raw})
                for name, raw in data.get("regions", {}).items()
            }
        except ValidationError as exc:
            raise CatalogDataError(f"[regions]: {exc}") from exc
        models: Mapping[str, Any] = data.get("models", {})
        profiles = []
        for name in models:
            try:
                entry = _resolve_extends(name, models)
                entry["prices"] = _price_tables(entry.get("prices", {}), ratios, regions)
                profiles.append(ModelProfile.model_validate({"name": name, **entry}))
            except (ValidationError, ArithmeticError, TypeError, AttributeError) as exc:
                raise CatalogDataError(f"model {name!r}: {exc}") from exc
            except CatalogDataError as exc:
                raise CatalogDataError(f"model {name!r}: {exc}") from exc
        sources = data.get("source", ())
        return cls(
            profiles,
            regions=regions,
            figures_taken=figures_taken,
            sources=[sources] if isinstance(sources, str) else sources,
        )

    def resolve(self, name: str) -> str | None:
        """The canonical name for a name, alias or dated snapshot, or ``None``."""
        key = name.strip().lower()
        for candidate in (key, _SNAPSHOT_SUFFIX.sub("", key)):
            if candidate in self._models:
                return candidate
            if candidate in self._aliases:
                return self._aliases[candidate]
        return None

    def get(self, name: str) -> ModelProfile:
        """The profile of ``name`` (name, alias or snapshot); raises ``UnknownModelError``."""
        canonical = self.resolve(name)
        if canonical is None:
            choices = [*self._models, *self._aliases]
            close = difflib.get_close_matches(name.strip().lower(), choices, n=4, cutoff=0.6)
            raise UnknownModelError(name, close, self._models)
        return self._models[canonical]

    def models(self) -> tuple[ModelProfile, ...]:
        """Every profile, in data-file order."""
        return tuple(self._models.values())

    def names(self) -> tuple[str, ...]:
        """Every canonical model name, in data-file order."""
        return tuple(self._models)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) is not None

    def __iter__(self) -> Iterator[ModelProfile]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"<Catalog {len(self)} models, figures taken {self.figures_taken}>"


@functools.cache
def default_catalog() -> Catalog:
    """The packaged catalog, loaded once per process."""
    return Catalog.load()


def get_model(name: str) -> ModelProfile:
    """The profile of ``name`` in the packaged catalog; raises ``UnknownModelError``."""
    return default_catalog().get(name)
