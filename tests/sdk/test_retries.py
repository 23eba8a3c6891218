"""The retry policy: what is retried, how long to wait, and the per-request state (all pure)."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwenkit._core.retries import (
    NO_RETRIES,
    GiveUp,
    Retry,
    Retrying,
    RetryPolicy,
    backoff_ceiling,
    is_retryable,
    next_delay,
    parse_retry_after,
)
from qwenkit._exceptions import (
    APIConnectionError,
    APITimeoutError,
    RateLimitError,
    StreamInterruptedError,
    UsageError,
    error_from_info,
)
from qwenkit.types import ErrorInfo
from qwenkit.wire.errors import ERROR_CODES, make_error

RETRYABLE_CODES = {
    "Throttling",
    "Throttling.RateQuota",
    "Throttling.AllocationQuota",  # TPM quota: recovers within a minute
    "Throttling.BurstRate",
    "RequestTimeOut",
    "InternalError",
    "InternalError.Algo",
    "SystemError",
    "ModelUnavailable",
}
NOW = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fail(code: str, headers: dict[str, str] | None = None) -> Exception:
    return error_from_info(make_error(code, "m", request_id="r"), headers=headers)


# -- what is retryable --------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_every_wire_code_has_the_right_retry_class(code: str) -> None:
    info = make_error(code, "m")
    expected = code in RETRYABLE_CODES
    assert is_retryable(info) is expected
    assert is_retryable(error_from_info(info)) is expected
    assert is_retryable(info, body_started=True) is False


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        *[(400, False), (401, False), (403, False), (404, False), (408, True), (409, False)],
        *[(413, False), (429, True), (500, True), (501, False), (502, True), (503, True)],
        *[(504, True), (505, False)],
    ],
)
def test_bare_statuses(status: int, expected: bool) -> None:
    assert is_retryable(status) is expected


@pytest.mark.parametrize(
    "code",
    [
        *[
            "InvalidParameter",
            "DataInspectionFailed",
            "Arrearage",
            "InvalidApiKey",
            "ModelNotFound",
        ],
        *[
            "AllocationQuota.FreeTierOnly",
            "PostpaidBillOverdue",
            "InternalError.Algo.InvalidParameter",
        ],
    ],
)
def test_deterministic_codes_are_never_retried_whatever_the_status(code: str) -> None:
    for status in (400, 429, 500, 503):
        assert not is_retryable(ErrorInfo(status=status, code=code, message="m")), status


def test_connection_errors_are_retried_only_before_the_body_started() -> None:
    for error in (APIConnectionError(), APITimeoutError()):
        assert is_retryable(error)
        assert not is_retryable(error, body_started=True)


def test_interrupted_streams_and_foreign_exceptions_are_never_retried() -> None:
    assert not is_retryable(StreamInterruptedError("cut", status=503))
    assert not is_retryable(TimeoutError())  # drivers translate transport errors first
    assert not is_retryable(ValueError())


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"RETRY-AFTER": " 3 "}, 3.0),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250.5"}, 0.2505),
        ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),  # ms first
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # garbage ms falls through
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc))}, 30.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 -0000"}, 30.0),  # naive date: UTC
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW - 5, timezone.utc))}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after-ms": "-5"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "Tue, 99 Foo 2023"}, None),
        ({}, None),
        ({"content-type": "application/json"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    got = parse_retry_after(headers, now=NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_parse_retry_after_uses_the_wall_clock_by_default() -> None:
    later = datetime.now(timezone.utc).timestamp() + 3600
    got = parse_retry_after(
        {"retry-after": format_datetime(datetime.fromtimestamp(later, timezone.utc))}
    )
    assert got is not None
    assert 3500 < got <= 3600


# -- how long to wait ---------------------------------------------------------------------------


def test_backoff_without_jitter_doubles_up_to_max_delay() -> None:
    policy = RetryPolicy(max_attempts=10, jitter="none", deadline=None)
    delays = [next_delay(policy, n) for n in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert next_delay(policy, 10) is None  # the 10th attempt was the last


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=1_000_000)
    assert backoff_ceiling(policy, 100_000) == policy.max_delay


def test_max_attempts_counts_the_first_attempt() -> None:
    policy = RetryPolicy(max_attempts=3, jitter="none")
    assert next_delay(policy, 1) == 0.5
    assert next_delay(policy, 2) == 1.0
    assert next_delay(policy, 3) is None
    assert next_delay(NO_RETRIES, 1) is None


def test_a_wait_that_would_cross_the_deadline_is_refused() -> None:
    policy = RetryPolicy(max_attempts=5, jitter="none", deadline=10.0)
    assert next_delay(policy, 3, elapsed=8.0) == 2.0  # lands exactly on the deadline
    assert next_delay(policy, 3, elapsed=8.5) is None
    assert next_delay(policy, 1, retry_after=30.0, elapsed=0.0) is None


def test_retry_after_replaces_the_backoff_and_is_capped() -> None:
    policy = RetryPolicy(jitter="none", retry_after_cap=20.0, deadline=None)
    assert next_delay(policy, 1, retry_after=7.0) == 7.0
    assert next_delay(policy, 1, retry_after=0.0) == 0.0
    assert next_delay(policy, 1, retry_after=3600.0) == 20.0
    assert next_delay(policy, 1, retry_after=0.01) == 0.01  # shorter than the backoff: obeyed


def test_retry_after_jitter_only_adds_a_little() -> None:
    policy = RetryPolicy(retry_after_cap=20.0, deadline=None)
    rng = random.Random(1)
    for _ in range(200):
        delay = next_delay(policy, 1, retry_after=5.0, rng=rng)
        assert delay is not None
        assert 5.0 <= delay <= 5.5
        capped = next_delay(policy, 1, retry_after=19.5, rng=rng)
        assert capped is not None
        assert 19.5 <= capped <= 20.0
        long = next_delay(RetryPolicy(deadline=None), 1, retry_after=30.0, rng=rng)
        assert long is not None
        assert 30.0 <= long <= 31.0  # at most one second above


def test_full_jitter_spreads_over_the_whole_range_and_never_beyond() -> None:
    policy = RetryPolicy(max_attempts=5, deadline=None)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        draws = [next_delay(policy, attempt, rng=rng) for _ in range(2000)]
        assert all(d is not None and 0.0 <= d <= ceiling for d in draws)
        assert max(d for d in draws if d is not None) > 0.99 * ceiling
        assert min(d for d in draws if d is not None) < 0.01 * ceiling


@given(
    attempt=st.integers(1, 40),
    initial=st.floats(0, 5),
    extra=st.floats(0, 60),
    multiplier=st.floats(1, 4),
    rng=st.randoms(use_true_random=False),
)
def test_full_jitter_stays_between_zero_and_a_non_decreasing_ceiling(
    attempt: int, initial: float, extra: float, multiplier: float, rng: random.Random
) -> None:
    policy = RetryPolicy(
        max_attempts=50, initial_delay=initial, max_delay=initial + extra, multiplier=multiplier
    )
    ceiling = backoff_ceiling(policy, attempt)
    assert ceiling <= policy.max_delay
    assert backoff_ceiling(policy, attempt + 1) >= ceiling
    delay = next_delay(policy, attempt, rng=rng, elapsed=0.0)
    if policy.deadline is not None and ceiling > policy.deadline:
        return  # the draw may cross the deadline: None is allowed
    assert delay is not None
    assert 0.0 <= delay <= ceiling


@given(
    retry_after=st.floats(0, 1e6),
    cap=st.floats(0, 120),
    jitter=st.sampled_from(["full", "none"]),
    rng=st.randoms(use_true_random=False),
)
def test_retry_after_never_exceeds_the_cap(
    retry_after: float, cap: float, jitter: str, rng: random.Random
) -> None:
    policy = RetryPolicy(retry_after_cap=cap, deadline=None, jitter=jitter)  # type: ignore[arg-type]
    delay = next_delay(policy, 1, retry_after=retry_after, rng=rng)
    assert delay is not None
    assert min(retry_after, cap) <= delay <= cap


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_delay": -1.0},
        {"initial_delay": 10.0, "max_delay": 1.0},
        {"multiplier": 0.5},
        {"deadline": 0.0},
        {"retry_after_cap": -1.0},
        {"jitter": "some"},
    ],
)
def test_policy_rejects_impossible_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# -- the per-request state ----------------------------------------------------------------------


def test_retrying_retries_throttling_then_gives_up_with_every_attempt() -> None:
    clock = FakeClock()
    retrying = Retrying(RetryPolicy(jitter="none"), clock=clock, rng=random.Random(0))
    assert retrying.attempt == 1

    clock.now += 0.2
    first = retrying.on_error(fail("Throttling.RateQuota"))
    assert first == Retry(delay=0.5, attempt=2)
    clock.now += 0.5 + 0.3
    second = retrying.on_error(fail("ModelUnavailable"))
    assert second == Retry(delay=1.0, attempt=3)
    clock.now += 1.0 + 0.1
    last = fail("InternalError")
    decision = retrying.on_error(last)

    assert isinstance(decision, GiveUp)
    assert decision.reason == "attempts_exhausted"
    assert last.attempts == decision.attempts == retrying.attempts  # type: ignore[attr-defined]
    summary = [(a.number, a.status, a.code, a.delay) for a in decision.attempts]
    assert summary == [
        (1, 429, "Throttling.RateQuota", 0.5),
        (2, 503, "ModelUnavailable", 1.0),
        (3, 500, "InternalError", None),
    ]
    assert [a.elapsed for a in decision.attempts] == pytest.approx([0.2, 1.0, 2.1])
    assert (
        decision.attempts[0].error == "RateLimitError: 429 Throttling.RateQuota: m (request_id r)"
    )


@pytest.mark.parametrize(
    "code", ["InvalidParameter", "DataInspectionFailed", "Arrearage", "InvalidApiKey"]
)
def test_retrying_gives_up_at_once_on_deterministic_errors(code: str) -> None:
    retrying = Retrying(clock=FakeClock())
    error = fail(code)
    decision = retrying.on_error(error)
    assert isinstance(decision, GiveUp)
    assert decision.reason == "not_retryable"
    assert len(error.attempts) == 1  # type: ignore[attr-defined]


def test_retrying_never_retries_once_the_body_started() -> None:
    retrying = Retrying(clock=FakeClock())
    decision = retrying.on_error(APITimeoutError(), body_started=True)
    assert isinstance(decision, GiveUp)
    assert decision.reason == "body_started"
    interrupted = StreamInterruptedError("cut")
    decision = Retrying(clock=FakeClock()).on_error(interrupted, headers={"x-should-retry": "true"})
    assert isinstance(decision, GiveUp)
    assert decision.reason == "body_started"


def test_retrying_connection_errors_before_any_byte() -> None:
    retrying = Retrying(RetryPolicy(jitter="none"), clock=FakeClock())
    assert retrying.on_error(APIConnectionError()) == Retry(0.5, 2)
    assert retrying.on_error(APITimeoutError()) == Retry(1.0, 3)


def test_retrying_stops_at_the_deadline() -> None:
    clock = FakeClock()
    retrying = Retrying(RetryPolicy(max_attempts=10, jitter="none", deadline=5.0), clock=clock)
    assert retrying.remaining() == 5.0
    clock.now += 4.8
    assert retrying.remaining() == pytest.approx(0.2)
    decision = retrying.on_error(fail("Throttling"))
    assert isinstance(decision, GiveUp)
    assert decision.reason == "deadline"
    clock.now += 10
    assert retrying.remaining() == 0.0
    assert Retrying(RetryPolicy(deadline=None), clock=clock).remaining() is None


def test_retrying_honours_retry_after_from_the_error_or_the_given_headers() -> None:
    clock, wall = FakeClock(), FakeClock(NOW)
    retrying = Retrying(RetryPolicy(jitter="none"), clock=clock, wall_clock=wall)
    assert retrying.on_error(fail("Throttling", {"Retry-After": "3"})) == Retry(3.0, 2)
    date = format_datetime(datetime.fromtimestamp(NOW + 7, timezone.utc))
    assert retrying.on_error(fail("Throttling"), headers={"retry-after": date}) == Retry(7.0, 3)


def test_retry_after_beyond_the_deadline_gives_up() -> None:
    retrying = Retrying(RetryPolicy(jitter="none", deadline=10.0), clock=FakeClock())
    decision = retrying.on_error(fail("Throttling", {"retry-after": "30"}))
    assert isinstance(decision, GiveUp)
    assert decision.reason == "deadline"


def test_x_should_retry_overrides_the_status() -> None:
    policy = RetryPolicy(jitter="none")
    no = Retrying(policy, clock=FakeClock()).on_error(
        fail("InternalError", {"X-Should-Retry": "false"})
    )
    assert isinstance(no, GiveUp)
    assert no.reason == "not_retryable"
    yes = Retrying(policy, clock=FakeClock()).on_error(
        fail("InvalidParameter", {"x-should-retry": "true"})
    )
    assert yes == Retry(0.5, 2)
    odd = Retrying(policy, clock=FakeClock()).on_error(
        fail("InternalError", {"x-should-retry": "maybe"})
    )
    assert odd == Retry(0.5, 2)


def test_foreign_exceptions_give_up_and_are_recorded() -> None:
    retrying = Retrying(clock=FakeClock())
    decision = retrying.on_error(OSError("disk"))
    assert isinstance(decision, GiveUp)
    assert decision.reason == "not_retryable"
    assert decision.attempts[0].error == "OSError: disk"
    assert decision.attempts[0].status is None


def test_full_jitter_is_reproducible_with_an_injected_rng() -> None:
    def run() -> list[float]:
        retrying = Retrying(RetryPolicy(max_attempts=5), clock=FakeClock(), rng=random.Random(42))
        out = []
        for _ in range(4):
            decision = retrying.on_error(RateLimitError("slow"))
            assert isinstance(decision, Retry)
            out.append(decision.delay)
        return out

    first = run()
    assert first == run()
    assert all(0 <= d <= backoff_ceiling(RetryPolicy(), n) for n, d in enumerate(first, 1))
    assert len(set(first)) == 4
