"""Cost arithmetic against hand-computed figures (prices per 1M tokens from models.toml)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from qwenkit.catalog import Catalog, Cost, PriceUnavailableError, cost, estimate_max_cost, get_model
from qwenkit.types import Usage

D = Decimal


def usage(
    prompt: int,
    completion: int = 0,
    *,
    cached: int = 0,
    created: int = 0,
    reasoning: int = 0,
) -> Usage:
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=cached,
        cache_creation_tokens=created,
        reasoning_tokens=reasoning,
    )


def test_implicit_cache_hits_cost_20_percent_cn_beijing() -> None:
    # qwen3-max, Beijing, <=32K tier: input 2.5, hit 0.5, output 10 CNY per 1M.
    c = cost(usage(10_000, 1_000, cached=4_000), "qwen3-max", "cn-beijing")
    assert c.currency == "CNY"
    assert c.tier == "32k"
    assert c.input == D("0.015")  # 6,000 x 2.5 / 1M
    assert c.cached_input == D("0.002")  # 4,000 x 0.5 / 1M
    assert c.cache_creation == 0
    assert c.output == D("0.01")  # 1,000 x 10 / 1M
    assert c.thinking_output == 0
    assert c.total == D("0.027")
    assert all(isinstance(x, Decimal) for x in (c.input, c.cached_input, c.output, c.total))


def test_explicit_cache_creation_and_hits() -> None:
    # 10,000 uncached x 2.5 + 8,000 created x 3.125 + 2,000 explicit hits x 0.25 + 500 out x 10
    c = cost(usage(20_000, 500, cached=2_000, created=8_000), "qwen3-max", "cn-beijing")
    assert c.input == D("0.025")
    assert c.cache_creation == D("0.025")
    assert c.cached_input == D("0.0005")
    assert c.output == D("0.005")
    assert c.total == D("0.0555")


def test_explicit_cache_flag_overrides_the_inference() -> None:
    u = usage(20_000, 0, cached=2_000, created=8_000)
    assert cost(u, "qwen3-max", "cn-beijing", explicit_cache=False).cached_input == D("0.001")
    hits_only = usage(10_000, 0, cached=4_000)
    c = cost(hits_only, "qwen3-max", "cn-beijing", explicit_cache=True)
    assert c.cached_input == D("0.001")  # 4,000 x 0.25 / 1M


def test_thinking_bills_the_whole_completion_at_the_thinking_price() -> None:
    # qwen-plus intl <=256K: input 0.4, output 1.2, thinking 4.0 USD per 1M.
    u = usage(1_000, 3_000, reasoning=2_000)
    c = cost(u, "qwen-plus")
    assert c.currency == "USD"
    assert c.input == D("0.0004")
    assert c.output == 0
    assert c.thinking_output == D("0.012")  # 3,000 x 4.0 / 1M, answer included
    assert c.total == D("0.0124")


def test_explicit_thinking_flag_wins() -> None:
    plain = usage(1_000, 3_000)
    assert cost(plain, "qwen-plus", thinking=True).thinking_output == D("0.012")
    assert cost(plain, "qwen-plus").output == D("0.0036")  # 3,000 x 1.2 / 1M
    reasoned = usage(1_000, 3_000, reasoning=2_000)
    assert cost(reasoned, "qwen-plus", thinking=False).output == D("0.0036")


def test_thinking_without_a_thinking_price_uses_the_output_price() -> None:
    # qwen3-max intl <=32K: output 6 USD; one output price for both modes.
    c = cost(usage(1_000, 2_000, reasoning=1_500), "qwen3-max")
    assert c.output == D("0.012")
    assert c.thinking_output == 0


def test_models_that_never_think_ignore_the_flag() -> None:
    # qwen-max intl: 1.6 / 6.4
    c = cost(usage(1_000, 1_000), "qwen-max", thinking=True)
    assert (c.input, c.output, c.thinking_output) == (D("0.0016"), D("0.0064"), D(0))


def test_batch_halves_every_line() -> None:
    # qwen-turbo intl: 100,000 x 0.05 + 10,000 x 0.2 = 0.005 + 0.002; halved.
    u = usage(100_000, 10_000, cached=0)
    assert cost(u, "qwen-turbo").total == D("0.007")
    c = cost(u, "qwen-turbo", batch=True)
    assert (c.input, c.output, c.total) == (D("0.0025"), D("0.001"), D("0.0035"))


def test_the_whole_request_is_billed_at_the_tier_of_its_input() -> None:
    # qwen-flash Beijing: <=128K input 0.15 / output 1.5; 128K-256K input 0.6 / output 6.
    at_limit = cost(usage(131_072, 1_000), "qwen-flash", "cn-beijing")
    assert at_limit.tier == "128k"
    assert at_limit.input == D("0.0196608")  # 131,072 x 0.15 / 1M
    assert at_limit.output == D("0.0015")
    above = cost(usage(131_073, 1_000), "qwen-flash", "cn-beijing")
    assert above.tier == "256k"
    assert above.input == D("0.0786438")  # 131,073 x 0.6 / 1M
    assert above.output == D("0.006")  # output too is billed at the higher tier


def test_hong_kong_is_priced_like_international() -> None:
    u = usage(1_000, 1_000)
    hk, intl = cost(u, "qwen-plus", "cn-hongkong"), cost(u, "qwen-plus")
    assert (hk.total, hk.currency, hk.region) == (intl.total, "USD", "cn-hongkong")


def test_unpriced_region_raises() -> None:
    with pytest.raises(PriceUnavailableError):
        cost(usage(1_000, 1_000), "qwen-long", "ap-southeast-1")


@pytest.mark.parametrize(
    "bad",
    [
        usage(100, 0, cached=80, created=30),
        usage(100, 10, reasoning=11),
        usage(-1, 0),
    ],
)
def test_inconsistent_usage_is_rejected(bad: Usage) -> None:
    with pytest.raises(ValueError, match=r"exceed|negative"):
        cost(bad, "qwen-plus")


def test_profile_and_catalog_arguments(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text("[models.qwen-max.prices.ap-southeast-1.tiers.all]\ninput = 2\n")
    custom = Catalog.load(path)
    assert cost(usage(1_000_000), "qwen-max", catalog=custom).total == D("2")
    assert cost(usage(1_000_000), get_model("qwen-max")).total == D("1.6")


def test_costs_add_up_per_currency() -> None:
    a = cost(usage(1_000, 1_000), "qwen-max")
    b = cost(usage(1_000, 1_000), "qwen-plus")
    both = a + b
    assert both.total == a.total + b.total
    assert (both.model, both.region) == ("", "ap-southeast-1")
    with pytest.raises(ValueError, match="cannot add CNY to USD"):
        _ = a + cost(usage(1_000, 1_000), "qwen-max", "cn-beijing")
    assert Cost("USD").total == 0


def test_estimate_max_cost_thinking_by_default() -> None:
    # qwen3-32b thinks by default: 500 answer + 38,912 thinking at 8.4; 1,000 input at 0.7 USD.
    c = estimate_max_cost(1_000, 500, "qwen3-32b")
    assert c.input == D("0.0007")
    assert c.thinking_output == D("0.3310608")  # 39,412 x 8.4 / 1M
    assert c.total == D("0.3317608")


def test_estimate_max_cost_options() -> None:
    no_think = estimate_max_cost(1_000, 500, "qwen3-32b", thinking=False)
    assert no_think.total == D("0.0021")  # 0.0007 + 500 x 2.8 / 1M
    budget = estimate_max_cost(1_000, 500, "qwen3-32b", thinking_budget=1_000)
    assert budget.thinking_output == D("0.0126")  # 1,500 x 8.4 / 1M
    capped = estimate_max_cost(1_000, 500, "qwen3-32b", thinking_budget=10**6)
    assert capped.total == estimate_max_cost(1_000, 500, "qwen3-32b").total
    full = estimate_max_cost(1_000, None, "qwen-max")
    assert full.output == D("0.0524288")  # 8,192 x 6.4 / 1M
    cached = estimate_max_cost(1_000, 0, "qwen3-32b", explicit_cache=True)
    assert cached.cache_creation == D("0.000875")  # 1,000 x 0.7 x 1.25 / 1M
    halved = estimate_max_cost(1_000, 500, "qwen3-32b", thinking=False, batch=True)
    assert halved.total == D("0.00105")
    with pytest.raises(ValueError, match="negative"):
        estimate_max_cost(-5, 10, "qwen-plus")


def test_models_that_always_think_bill_thinking_whatever_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "qwq.toml"
    path.write_text("[models.qwq-plus.prices.ap-southeast-1.tiers.all]\nthinking_output = 5\n")
    custom = Catalog.load(path)
    c = cost(usage(1_000, 1_000), "qwq-plus", thinking=False, catalog=custom)
    assert (c.output, c.thinking_output) == (D(0), D("0.005"))  # 1,000 x 5 / 1M
