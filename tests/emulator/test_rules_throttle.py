"""Emulator rate limits (sliding windows with a fake clock) and seeded fault draws."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from qwenkit.emulator import throttle
from qwenkit.emulator.config import FaultsConfig, QuirksConfig, ThrottleConfig
from qwenkit.emulator.generation import Fault
from qwenkit.emulator.throttle import FaultPlan, RateLimiter, retry_after_header
from qwenkit.types import ErrorInfo

RPM_NATIVE = "Requests rate limit exceeded, please try again later."
TPM_NATIVE = "Allocated quota exceeded, please increase your quota limit."
TPM_COMPAT = (
    "You exceeded your current quota, please check your plan and billing details. For details, "
    "see: https://help.aliyun.com/zh/model-studio/error-code#token-limit"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(**limits: int) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(ThrottleConfig(**limits), clock=clock), clock


def test_no_limits_admit_everything() -> None:
    rate, _ = limiter()
    assert all(rate.admit("k", 10**9) is None for _ in range(1000))


def test_requests_per_minute_slide() -> None:
    rate, clock = limiter(requests_per_minute=2)
    assert rate.admit("k", 1) is None
    clock.now += 30
    assert rate.admit("k", 1) is None
    error = rate.admit("k", 1)
    assert error is not None
    assert (error.status, error.code, error.message) == (429, "Throttling.RateQuota", RPM_NATIVE)
    assert rate.admit("other", 1) is None  # per key
    clock.now += 30  # the first request leaves the window
    assert rate.admit("k", 1) is None
    assert rate.admit("k", 1) is not None


def test_rate_quota_compat_form() -> None:
    rate, _ = limiter(requests_per_minute=1)
    rate.admit("k", 1)
    error = rate.admit("k", 1, wire="compat")
    assert error is not None
    assert (error.compat_code, error.compat_type) == ("limit_requests", "limit_requests")
    assert error.message.startswith("You have exceeded your current request limit.")


def test_refused_requests_do_not_count() -> None:
    rate, clock = limiter(requests_per_minute=1)
    assert rate.admit("k", 1) is None
    for _ in range(5):
        clock.now += 10
        assert rate.admit("k", 1) is not None
    clock.now = 1060.0
    assert rate.admit("k", 1) is None


def test_tokens_per_minute() -> None:
    rate, clock = limiter(tokens_per_minute=1000)
    assert rate.admit("k", 600) is None
    clock.now += 59.5
    native = rate.admit("k", 500)
    assert native == ErrorInfo(
        429,
        "Throttling.AllocationQuota",
        TPM_NATIVE,
        compat_code="insufficient_quota",
        compat_type="insufficient_quota",
    )
    compat = rate.admit("k", 500, wire="compat")
    assert compat is not None
    assert compat.message == TPM_COMPAT
    assert rate.admit("k", 400) is None  # 1000 exactly is within the quota
    clock.now += 0.5  # the 600 expire, the 400 stay
    assert rate.admit("k", 600) is None
    assert rate.admit("k", 1) is not None


def test_charge_counts_completion_tokens() -> None:
    rate, clock = limiter(tokens_per_minute=1000)
    assert rate.admit("k", 100) is None
    rate.charge("k", 850)
    assert rate.admit("k", 100) is not None
    assert rate.admit("k", 50) is None
    clock.now += 60
    assert rate.admit("k", 1000) is None


def test_after_requests_until_reset() -> None:
    rate, clock = limiter(after_requests=2)
    assert rate.admit("k", 1) is None
    assert rate.admit("k", 1) is None
    clock.now += 3600
    error = rate.admit("k", 1)
    assert error is not None
    assert (error.code, error.message) == ("Throttling.RateQuota", RPM_NATIVE)
    assert rate.admit("k2", 1) is None
    rate.reset()
    assert rate.admit("k", 1) is None


def test_burst() -> None:
    rate, clock = limiter(burst=2)
    assert rate.admit("k", 1) is None
    clock.now += 0.4
    assert rate.admit("k", 1) is None
    clock.now += 0.5
    error = rate.admit("k", 1)
    assert error is not None
    assert (error.status, error.code) == (429, "Throttling.BurstRate")
    assert error.message.startswith("Request rate increased too quickly.")
    assert (error.compat_code, error.compat_type) == ("limit_burst_rate", "limit_burst_rate")
    clock.now += 0.1  # one second after the first
    assert rate.admit("k", 1) is None


def test_config_changes_apply_at_once() -> None:
    rate, _ = limiter()
    rate.admit("k", 1)
    rate.config.after_requests = 1
    assert rate.admit("k", 1) is not None


def test_tracked_keys_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_KEYS", 3)
    rate, _ = limiter(after_requests=1)
    for key in ("a", "b", "c", "d"):
        assert rate.admit(key, 1) is None
    assert len(rate._keys) == 3
    assert rate.admit("a", 1) is None  # "a" was forgotten: it starts again
    assert rate.admit("d", 1) is not None


# -- faults --------------------------------------------------------------------------------------


def draws(seed: int, n: int = 200, key: str = "k") -> list[object]:
    plan = FaultPlan(FaultsConfig(seed=seed, error_rate=0.3))
    return [plan.draw(key, number) for number in range(1, n + 1)]


def test_same_seed_same_draws_and_different_seed_different() -> None:
    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert draws(7, key="a") != draws(7, key="b")
    failures = sum(1 for draw in draws(7, n=2000) if draw is not None)
    assert 480 < failures < 720


def test_draws_do_not_depend_on_the_hash_seed() -> None:
    code = (
        "from qwenkit.emulator.config import FaultsConfig\n"
        "from qwenkit.emulator.throttle import FaultPlan\n"
        "p = FaultPlan(FaultsConfig(seed=7, error_rate=0.3))\n"
        "print(''.join('x' if p.draw('k', i) else '.' for i in range(1, 201)))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(run.stdout.strip())
    expected = "".join("x" if draw else "." for draw in draws(7))
    assert outputs == {expected}


def test_fail_first_and_error_status() -> None:
    plan = FaultPlan(FaultsConfig(fail_first=2))
    first = plan.draw("k", 1)
    assert first == ErrorInfo(
        500,
        "InternalError",
        "An internal error has occurred, please try again later or contact service support.",
        compat_code="internal_error",
        compat_type="internal_error",
    )
    assert plan.draw("k", 2) == first
    assert plan.draw("k", 3) is None
    unavailable = FaultPlan(FaultsConfig(fail_first=1, error_status=503)).draw("k", 1)
    assert isinstance(unavailable, ErrorInfo)
    assert (unavailable.status, unavailable.code) == (503, "ModelUnavailable")
    assert unavailable.message == "Model is unavailable, please try again later."
    with pytest.raises(ValueError, match="count from 1"):
        plan.draw("k", 0)


def test_stream_faults() -> None:
    assert FaultPlan(FaultsConfig(drop_after_chunks=3)).draw("k", 1) == Fault(
        "drop", after_chunks=3
    )
    stall = FaultPlan(FaultsConfig(stall_after_chunks=2, stall_seconds=5)).draw("k", 1)
    assert stall == Fault("stall", after_chunks=2, seconds=5.0)
    both = FaultsConfig(drop_after_chunks=4, stall_after_chunks=2)
    assert FaultPlan(both).draw("k", 1) == Fault("stall", after_chunks=2, seconds=30.0)
    both.stall_after_chunks = 4
    assert FaultPlan(both).draw("k", 1) == Fault("drop", after_chunks=4)
    errors_win = FaultPlan(FaultsConfig(fail_first=1, drop_after_chunks=1))
    assert isinstance(errors_win.draw("k", 1), ErrorInfo)
    assert FaultPlan(FaultsConfig()).draw("k", 1) is None


def test_retry_after_header() -> None:
    assert retry_after_header(QuirksConfig()) == {}
    assert retry_after_header(QuirksConfig(retry_after_seconds=1.2)) == {"Retry-After": "2"}
    assert retry_after_header(QuirksConfig(retry_after_seconds=0)) == {"Retry-After": "0"}
