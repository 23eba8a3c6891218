"""The packaged model catalog: every entry validates, lookup, regions, price tiers."""

from __future__ import annotations

from decimal import Decimal

import pytest

import qwenkit.catalog as catalog_pkg
from qwenkit.catalog import (
    Catalog,
    ModelProfile,
    PriceUnavailableError,
    ThinkingMode,
    UnknownModelError,
    default_catalog,
    get_model,
)
from qwenkit.catalog._loader import read_packaged_toml

REQUIRED = [
    "qwen-flash",
    "qwen-turbo",
    "qwen-plus",
    "qwen-max",
    "qwen3-max",
    "qwen3-coder-plus",
    "qwen3-coder-flash",
    "qwq-plus",
    "qwen3-vl-plus",
    "qwen3-vl-flash",
    "qwen3-omni-flash",
    "qwen-long",
    "qwen3-235b-a22b",
    "qwen3-32b",
    "qwen3-30b-a3b",
    "qwen3-14b",
    "qwen3-8b",
    "qwen3-4b",
    "qwen3-1.7b",
    "qwen3-0.6b",
    "qwen3.5-plus",
    "qwen3.6-plus",
]
OPEN_QWEN3 = [
    "qwen3-235b-a22b",
    "qwen3-32b",
    "qwen3-30b-a3b",
    "qwen3-14b",
    "qwen3-8b",
    "qwen3-4b",
    "qwen3-1.7b",
    "qwen3-0.6b",
]
REGIONS = ["cn-beijing", "ap-southeast-1", "us-east-1", "cn-hongkong"]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_every_required_model_is_in_the_data_file(catalog: Catalog) -> None:
    raw_names = set(read_packaged_toml("models.toml")["models"])
    assert set(REQUIRED) <= raw_names
    assert set(catalog.names()) == raw_names
    assert set(OPEN_QWEN3) <= set(REQUIRED)


def test_catalog_metadata(catalog: Catalog) -> None:
    assert catalog.figures_taken.startswith("2026-")
    assert catalog.sources
    assert set(catalog.regions) == set(REGIONS)
    assert catalog.regions["cn-beijing"].currency == "CNY"
    assert {catalog.regions[r].currency for r in REGIONS[1:]} == {"USD"}
    assert catalog.regions["cn-hongkong"].confidence == "unconfirmed"


@pytest.mark.parametrize("name", [*REQUIRED, "qwen3-max-2025-09-23"])
def test_every_profile_is_consistent(catalog: Catalog, name: str) -> None:
    p = catalog.get(name)
    assert p.name == name
    assert p.max_input_tokens <= p.context_window
    assert p.default_max_tokens == min(p.max_output_tokens, 2048)
    assert (p.max_reasoning_tokens is None) == (p.thinking is ThinkingMode.NONE)
    assert set(p.unconfirmed) <= {*ModelProfile.model_fields, "prices"}
    assert p.confidence == ("unconfirmed" if p.unconfirmed else "documented")
    assert "text" in p.modalities
    assert p.tokenizer == ("qwen3.5" if name.startswith(("qwen3.5", "qwen3.6")) else "qwen")
    assert p.regions, "every model has prices somewhere"
    for table in p.prices:
        assert table.currency == catalog.regions[table.region].currency
        assert table.confidence in ("documented", "unconfirmed")
        for tier in table.tiers:
            assert tier.input > 0
            assert tier.output > 0
            assert tier.cached_input < tier.input < tier.explicit_cache_create


def test_thinking_classes(catalog: Catalog) -> None:
    for name in ("qwen-flash", "qwen-turbo", "qwen-plus", "qwen3-vl-plus", "qwen3-omni-flash"):
        assert catalog.get(name).thinking is ThinkingMode.HYBRID_OFF
    for name in [*OPEN_QWEN3, "qwen3.5-plus", "qwen3.6-plus"]:
        assert catalog.get(name).thinking == "hybrid_on"
    assert catalog.get("qwq-plus").thinking is ThinkingMode.ALWAYS
    for name in ("qwen-max", "qwen3-coder-plus", "qwen-long", "qwen3-max-2025-09-23"):
        assert not catalog.get(name).supports_thinking
    assert catalog.get("qwen3-32b").thinks_by_default
    assert catalog.get("qwq-plus").thinks_by_default
    assert not catalog.get("qwen-plus").thinks_by_default


def test_requires_stream(catalog: Catalog) -> None:
    plus = catalog.get("qwen-plus")
    assert not plus.requires_stream(thinking=False)
    assert plus.requires_stream(thinking=True)
    for name in [*OPEN_QWEN3, "qwq-plus", "qwen3-omni-flash"]:
        assert catalog.get(name).requires_stream(thinking=False)
    assert not catalog.get("qwen-max").requires_stream(thinking=True)  # cannot think


def test_endpoints_and_modalities(catalog: Catalog) -> None:
    for name in ("qwen3-vl-plus", "qwen3-vl-flash", "qwen3-omni-flash", "qwen3.5-plus"):
        p = catalog.get(name)
        assert p.endpoint == "multimodal"
        assert "image" in p.modalities
    assert "audio" in catalog.get("qwen3-omni-flash").modalities
    assert catalog.get("qwen-plus").endpoint == "text"
    assert catalog.get("qwen-plus").modalities == ("text",)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen-plus", "qwen-plus"),
        ("Qwen-Plus ", "qwen-plus"),
        ("qwen-plus-2025-07-14", "qwen-plus"),
        ("qwen-plus-latest", "qwen-plus"),
        ("qwen3-max-2026-01-23", "qwen3-max"),
        ("qwen3-max-preview", "qwen3-max"),
        ("qwen3-max-2025-09-23", "qwen3-max-2025-09-23"),
        ("qwen3-vl-plus-2025-12-19", "qwen3-vl-plus"),
        ("qwen3-vl-flash-2026-02-01", "qwen3-vl-flash"),
        ("qwen3.5-plus-2026-02-15", "qwen3.5-plus"),
    ],
)
def test_names_aliases_and_snapshots_resolve(catalog: Catalog, name: str, expected: str) -> None:
    assert catalog.get(name).name == expected
    assert name in catalog


def test_the_non_thinking_qwen3_max_snapshot_is_its_own_entry(catalog: Catalog) -> None:
    old = catalog.get("qwen3-max-2025-09-23")
    assert old.thinking is ThinkingMode.NONE
    assert old.max_reasoning_tokens is None
    assert old.prices == catalog.get("qwen3-max").prices


def test_unknown_model_suggests_close_names(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError) as info:
        catalog.get("qwen-plsu")
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown model 'qwen-plsu'; did you mean: qwen-plus")
    assert "qwen-plus" in info.value.suggestions
    assert "qwen-plsu" not in catalog


def test_unknown_model_without_close_names_lists_known_models(catalog: Catalog) -> None:
    with pytest.raises(UnknownModelError, match=r"known models: .*qwen-flash"):
        catalog.get("gpt-4o")


def test_default_catalog_is_loaded_once() -> None:
    assert default_catalog() is default_catalog()
    assert get_model("qwen3-coder-plus") is default_catalog().get("qwen3-coder-plus")


def test_region_fallback_copies_international_prices(catalog: Catalog) -> None:
    p = catalog.get("qwen-plus")
    intl, hk = p.price_table("ap-southeast-1"), p.price_table("cn-hongkong")
    assert hk.tiers == intl.tiers
    assert hk.currency == "USD"
    assert hk.confidence == "unconfirmed"
    assert p.price_table("us-east-1").tiers == intl.tiers


def test_missing_region_prices_raise(catalog: Catalog) -> None:
    with pytest.raises(PriceUnavailableError, match=r"qwen-long.*'ap-southeast-1'.*cn-beijing"):
        catalog.get("qwen-long").tier_for(1000, "ap-southeast-1")


def test_derived_prices_match_documented_figures(catalog: Catalog) -> None:
    # dashscope-wire.md section 9: qwen3-max <=32K, CNY per 1k: 0.0025 / hit 0.0005 /
    # explicit create 0.003125 / explicit hit 0.00025.
    tier = catalog.get("qwen3-max").tier_for(1, "cn-beijing")
    assert (tier.input, tier.cached_input) == (Decimal("2.5"), Decimal("0.5"))
    assert tier.explicit_cache_create == Decimal("3.125")
    assert tier.explicit_cache_hit == Decimal("0.25")
    assert tier.batch_ratio == Decimal("0.5")
    # Beijing metadata, qwen-flash 256K-1M tier: hit 0.00024, create 0.0015, hit 0.00012 per 1k.
    top = catalog.get("qwen-flash").tier_for(500_000, "cn-beijing")
    assert (top.cached_input, top.explicit_cache_create) == (Decimal("0.24"), Decimal("1.5"))
    assert top.explicit_cache_hit == Decimal("0.12")


@pytest.mark.parametrize(
    ("tokens", "label"),
    [
        (0, "32k"),
        (32_768, "32k"),
        (32_769, "128k"),
        (131_072, "128k"),
        (131_073, "256k"),
        (262_144, "256k"),
    ],
)
def test_tier_selection_at_boundaries(catalog: Catalog, tokens: int, label: str) -> None:
    assert catalog.get("qwen3-max").tier_for(tokens, "cn-beijing").label == label


def test_tier_above_the_last_bound_is_an_error(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="262145 input tokens exceed the largest price tier"):
        catalog.get("qwen3-max").tier_for(262_145, "cn-beijing")


def test_unbounded_single_tier(catalog: Catalog) -> None:
    assert catalog.get("qwen-turbo").tier_for(10**7, "ap-southeast-1").label == "all"


def test_public_names_match_all() -> None:
    public = {n for n in dir(catalog_pkg) if not n.startswith("_")}
    modules = {"pricing", "routing"}
    assert set(catalog_pkg.__all__) == public - modules
