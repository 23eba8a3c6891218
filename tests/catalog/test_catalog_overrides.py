"""User catalog files and raw data: deep merge, ``extends``, and the checks on bad data."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qwenkit.catalog import Catalog, CatalogDataError, ThinkingMode, default_catalog
from qwenkit.catalog._loader import read_packaged_toml

USER_FILE = """
[models.qwen-plus.prices.ap-southeast-1.tiers.256k]
input = 0.35

[models.qwen-plus.prices.cn-beijing.tiers.128k]
cached_input = 0.1

[models.qwen-plus]
max_output_tokens = 16384
stream_only_when_thinking = false

[models.my-flash]
extends = "qwen-flash"
aliases = ["mine"]
max_output_tokens = 1000

[ratios]
batch = 0.4
"""


def test_user_file_is_deep_merged(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    cat = Catalog.load(path)
    plus = cat.get("qwen-plus")
    intl = plus.tier_for(1000, "ap-southeast-1")
    assert intl.input == Decimal("0.35")
    assert intl.cached_input == Decimal("0.07")  # derived from the overridden input
    assert intl.output == Decimal("1.2")  # untouched
    assert intl.batch_ratio == Decimal("0.4")
    assert plus.tier_for(500_000, "ap-southeast-1").input == Decimal("1.2")
    beijing = plus.tier_for(1000, "cn-beijing")
    assert (beijing.input, beijing.cached_input) == (Decimal("0.8"), Decimal("0.1"))
    assert plus.max_output_tokens == 16384
    assert plus.max_reasoning_tokens == 81_920
    assert not plus.requires_stream(thinking=True)
    mine = cat.get("mine")
    assert (mine.name, mine.max_output_tokens, mine.default_max_tokens) == ("my-flash", 1000, 1000)
    assert mine.thinking is ThinkingMode.HYBRID_OFF
    untouched = cat.get("qwen-max").tier_for(1, "ap-southeast-1")
    assert (untouched.input, untouched.batch_ratio) == (Decimal("1.6"), Decimal("0.4"))
    assert cat.get("qwen3-8b") != default_catalog().get("qwen3-8b")  # the batch ratio is global
    assert cat.get("qwen3-8b").context_window == default_catalog().get("qwen3-8b").context_window


def test_user_file_errors_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[models.qwen-plus]\nmax_ouptut_tokens = 5\n", encoding="utf-8")
    with pytest.raises(CatalogDataError, match=r"(?s)model 'qwen-plus'.*max_ouptut_tokens"):
        Catalog.load(path)
    path.write_text("[models.qwen-plus\n", encoding="utf-8")
    with pytest.raises(CatalogDataError, match=r"bad\.toml"):
        Catalog.load(path)


def _data(**models: Any) -> dict[str, Any]:
    base = read_packaged_toml("models.toml", decimal=True)
    return {**base, "models": models}


def test_extends_cycle_is_rejected() -> None:
    with pytest.raises(CatalogDataError, match="cycle"):
        Catalog.from_data(_data(a={"extends": "b"}, b={"extends": "a"}))


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"x": {"max_input_tokens": 10, "input": 1, "output": 1}}, "tiers end at 10 input tokens"),
        (
            {
                "x": {"max_input_tokens": 10, "input": 1, "output": 1},
                "y": {"max_input_tokens": 10, "input": 2, "output": 2},
                "z": {"input": 3, "output": 3},
            },
            "must increase strictly",
        ),
    ],
)
def test_bad_tiers_are_rejected(tiers: dict[str, Any], message: str) -> None:
    plus = read_packaged_toml("models.toml", decimal=True)["models"]["qwen-plus"]
    prices = {"cn-beijing": {"confidence": "unconfirmed", "tiers": tiers}}
    with pytest.raises(CatalogDataError, match=message):
        Catalog.from_data(_data(**{"qwen-plus": {**plus, "prices": prices}}))


def test_documented_models_have_no_unconfirmed_fields() -> None:
    plus = read_packaged_toml("models.toml", decimal=True)["models"]["qwen-plus"]
    with pytest.raises(CatalogDataError, match="confidence is 'documented'"):
        Catalog.from_data(_data(**{"qwen-plus": {**plus, "confidence": "documented"}}))
