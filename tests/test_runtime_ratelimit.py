"""Token bucket, Retry-After parsing, backoff and status classes, driven by a hand-moved clock."""

from __future__ import annotations

import ast
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from generator.runtime.ratelimit import (
    RetryPolicy,
    StatusClass,
    TokenBucket,
    backoff_seconds,
    classify_status,
    retry_after_seconds,
)

MODULE = Path(__file__).resolve().parents[1] / "generator" / "runtime" / "ratelimit.py"
NOW = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when something sleeps or the test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def bucket(rate: float = 10, per: float = 1.0, capacity: float | None = None
           ) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate, per, clock=clock, sleep=clock.sleep, capacity=capacity), clock


def test_bucket_starts_full() -> None:
    tokens, clock = bucket(rate=5)
    waits = [tokens.acquire() for _ in range(5)]
    assert waits == [0.0] * 5
    assert clock.sleeps == []


def test_bucket_waits_when_empty() -> None:
    tokens, clock = bucket(rate=10, per=1.0)
    for _ in range(10):
        tokens.acquire()
    waited = tokens.acquire()
    assert waited == pytest.approx(0.1)
    assert clock.sleeps == [pytest.approx(0.1)]


def test_bucket_queues_reservations() -> None:
    tokens, _ = bucket(rate=10, per=1.0, capacity=1)
    first = tokens.acquire()
    second = tokens.acquire()
    third = tokens.acquire()
    assert first == 0.0
    assert second == pytest.approx(0.1)
    assert third == pytest.approx(0.2)


def test_bucket_refills_with_time() -> None:
    tokens, clock = bucket(rate=10, per=1.0)
    for _ in range(10):
        tokens.acquire()
    clock.advance(0.5)
    assert tokens.available() == pytest.approx(5.0)
    clock.advance(60)
    assert tokens.available() == pytest.approx(10.0)


def test_bucket_multi_token_acquire() -> None:
    tokens, _ = bucket(rate=10, per=1.0)
    assert tokens.acquire(4) == 0.0
    assert tokens.available() == pytest.approx(6.0)
    assert tokens.acquire(8) == pytest.approx(0.2)


def test_try_acquire_never_sleeps() -> None:
    tokens, clock = bucket(rate=2, per=1.0)
    assert tokens.try_acquire()
    assert tokens.try_acquire()
    assert not tokens.try_acquire()
    assert clock.sleeps == []
    clock.advance(0.5)
    assert tokens.try_acquire()


def test_try_acquire_respects_reservations() -> None:
    tokens, clock = bucket(rate=1, per=1.0)
    tokens.acquire()
    tokens.acquire()
    clock.advance(1.0)
    # The second acquire reserved the token that just refilled.
    assert not tokens.try_acquire()


@pytest.mark.parametrize("amount", [0, -1, 11])
def test_acquire_rejects_bad_amount(amount: float) -> None:
    tokens, _ = bucket(rate=10)
    with pytest.raises(ValueError, match="tokens must be above 0"):
        tokens.acquire(amount)
    with pytest.raises(ValueError, match="tokens must be above 0"):
        tokens.try_acquire(amount)


@pytest.mark.parametrize(("rate", "per", "capacity"), [(0, 1, None), (1, 0, None), (-5, 1, None),
                                                        (1, 1, 0)])
def test_bucket_rejects_bad_numbers(rate: float, per: float, capacity: float | None) -> None:
    with pytest.raises(ValueError, match="must be above 0"):
        TokenBucket(rate, per, capacity=capacity)


def test_pause_holds_every_caller() -> None:
    tokens, _ = bucket(rate=10, per=1.0)
    tokens.pause(3.0)
    waited = tokens.acquire()
    assert waited == pytest.approx(3.1)


def test_pause_ignores_zero() -> None:
    tokens, _ = bucket(rate=10, per=1.0)
    tokens.pause(0)
    assert tokens.available() == pytest.approx(10.0)


def test_rolling_window_never_exceeds_limit() -> None:
    clock = FakeClock()
    limit, window = 100, 10.0
    tokens = TokenBucket.for_rolling_window(limit, window, burst=5, clock=clock,
                                            sleep=clock.advance)
    start = clock.now
    granted: list[float] = []
    for _ in range(1000):
        tokens.acquire()
        granted.append(clock.now - start)
    for index, at in enumerate(granted):
        inside = [t for t in granted[index:] if t < at + window]
        assert len(inside) <= limit, f"window from {at:.2f}s holds {len(inside)} calls"
    # 1000 calls at 95 per 10 s after a burst of 5 take about 104.7 s.
    assert granted[-1] == pytest.approx((1000 - 5) / 9.5, rel=0.01)


@pytest.mark.parametrize("burst", [0, 100, 150])
def test_rolling_window_rejects_bad_burst(burst: int) -> None:
    with pytest.raises(ValueError, match="burst must be from 1 to 99"):
        TokenBucket.for_rolling_window(100, 10.0, burst=burst)


def test_bucket_threads_share_tokens() -> None:
    clock = FakeClock()
    tokens = TokenBucket(10, 1.0, clock=clock, sleep=clock.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        waited = tokens.acquire()
        with lock:
            waits.append(waited)

    threads = [threading.Thread(target=take) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Ten tokens were there; the other twenty callers queued 0.1 s apart.
    assert sorted(waits) == pytest.approx([0.0] * 10 + [0.1 * n for n in range(1, 21)])


def test_retry_after_delta_seconds() -> None:
    assert retry_after_seconds({"Retry-After": "10"}, NOW) == 10.0


def test_retry_after_name_any_case() -> None:
    assert retry_after_seconds({"retry-after": " 3 "}, NOW) == 3.0


def test_retry_after_http_date() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT"}
    assert retry_after_seconds(headers, NOW) == 30.0


def test_retry_after_past_date() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2026 07:00:00 GMT"}
    assert retry_after_seconds(headers, NOW) == 0.0


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", "", "٣"])
def test_retry_after_unreadable(value: str) -> None:
    assert retry_after_seconds({"Retry-After": value}, NOW) is None


def test_retry_after_missing() -> None:
    assert retry_after_seconds({"Content-Type": "application/json"}, NOW) is None


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0),
                                                  (7, 30.0), (500, 30.0)])
def test_backoff_ceiling_doubles(attempt: int, ceiling: float) -> None:
    assert backoff_seconds(attempt, 0.5, 30.0, FixedRandom(0.999999)) == pytest.approx(ceiling,
                                                                                   rel=1e-5)


def test_backoff_full_jitter_low_end() -> None:
    assert backoff_seconds(5, 1.0, 60.0, FixedRandom(0.0)) == 0.0


def test_backoff_draws_uniformly() -> None:
    assert backoff_seconds(3, 1.0, 60.0, FixedRandom(0.25)) == pytest.approx(1.0)


def test_backoff_default_rng_in_range() -> None:
    for _ in range(200):
        assert 0.0 <= backoff_seconds(3, 1.0, 60.0) <= 4.0


@pytest.mark.parametrize(("attempt", "base", "cap"), [(0, 1.0, 1.0), (1, -1.0, 1.0),
                                                      (1, 1.0, -1.0)])
def test_backoff_rejects_bad_input(attempt: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        backoff_seconds(attempt, base, cap)


@pytest.mark.parametrize(("status", "expected"), [
    (200, StatusClass.OK), (201, StatusClass.OK), (204, StatusClass.OK), (207, StatusClass.OK),
    (429, StatusClass.RATE_LIMITED),
    (408, StatusClass.RETRY), (500, StatusClass.RETRY), (502, StatusClass.RETRY),
    (503, StatusClass.RETRY), (504, StatusClass.RETRY),
    (400, StatusClass.FAIL), (401, StatusClass.FAIL), (404, StatusClass.FAIL),
    (409, StatusClass.FAIL), (301, StatusClass.FAIL), (100, StatusClass.FAIL),
])
def test_classify_status(status: int, expected: StatusClass) -> None:
    assert classify_status(status) is expected


def test_status_class_values() -> None:
    assert [member.value for member in StatusClass] == ["ok", "rate_limited", "retry", "fail"]


def test_policy_counts_attempts() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.can_retry(1)
    assert policy.can_retry(2)
    assert not policy.can_retry(3)


def test_policy_prefers_retry_after() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=60.0)
    assert policy.delay_seconds(1, {"Retry-After": "7"}, NOW, FixedRandom(0.5)) == 7.0


def test_policy_falls_back_to_backoff() -> None:
    policy = RetryPolicy(base_seconds=2.0, cap_seconds=60.0)
    assert policy.delay_seconds(2, {}, NOW, FixedRandom(0.5)) == pytest.approx(2.0)


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_seconds": -1.0},
                                    {"cap_seconds": -1.0}, {"max_retry_after_seconds": -1.0}])
def test_policy_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_module_imports_stdlib_only() -> None:
    tree = ast.parse(MODULE.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names, name
