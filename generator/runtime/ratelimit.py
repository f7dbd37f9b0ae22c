"""Client-side rate limiting and retry timing for calls to CRM APIs.

Generated services copy this module verbatim and ``rabt crm`` uses it too, so it
imports only the standard library. Clocks and sleeps are injectable, so tests
drive time by hand instead of waiting.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol

__all__ = [
    "RandomSource",
    "RetryPolicy",
    "StatusClass",
    "TokenBucket",
    "backoff_seconds",
    "classify_status",
    "retry_after_seconds",
]


class RandomSource(Protocol):
    """Anything with ``random()`` returning a float in [0, 1), such as ``random.Random``."""

    def random(self) -> float: ...


class TokenBucket:
    """A thread-safe token bucket: ``rate`` tokens every ``per_seconds``, ``capacity`` at most.

    Tokens refill continuously. ``acquire`` reserves its tokens at once, even when
    that leaves the balance negative, and then sleeps outside the lock until the
    balance would have covered them. Concurrent callers therefore queue in arrival
    order and never sleep on the lock itself.

    In any window of ``per_seconds`` at most ``capacity + rate`` tokens are handed
    out, so a bucket full at the start allows a burst on top of the steady rate.
    Use ``for_rolling_window`` to stay under a limit that counts calls in a
    rolling window, as HubSpot does.
    """

    def __init__(
        self,
        rate: float,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        capacity: float | None = None,
    ) -> None:
        """Create a bucket that starts full.

        Args:
            rate: Tokens added every ``per_seconds``; must be above 0.
            per_seconds: Length of the refill period in seconds; must be above 0.
            clock: Monotonic time in seconds.
            sleep: Blocks for the given seconds.
            capacity: Most tokens the bucket saves up; ``rate`` when None.

        Raises:
            ValueError: When a number is not above 0.
        """
        if rate <= 0 or per_seconds <= 0:
            raise ValueError(f"rate and per_seconds must be above 0, got {rate} and {per_seconds}")
        if capacity is not None and capacity <= 0:
            raise ValueError(f"capacity must be above 0, got {capacity}")
        self.rate = float(rate)
        self.per_seconds = float(per_seconds)
        self.capacity = float(rate if capacity is None else capacity)
        self._tokens_per_second = self.rate / self.per_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._updated = clock()

    @classmethod
    def for_rolling_window(
        cls,
        limit: int,
        window_seconds: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> TokenBucket:
        """Create a bucket that never hands out more than ``limit`` tokens in any window.

        The bucket saves up at most ``burst`` tokens and refills ``limit - burst``
        per window, so burst plus refill stays at ``limit``. A small burst keeps the
        steady rate close to the limit.

        Args:
            limit: Most calls the server accepts in ``window_seconds``.
            window_seconds: Length of the server's rolling window.
            burst: Tokens saved for a burst; from 1 to ``limit - 1``.
            clock: Monotonic time in seconds.
            sleep: Blocks for the given seconds.

        Raises:
            ValueError: When ``burst`` is outside 1 to ``limit - 1``.
        """
        if not 1 <= burst < limit:
            raise ValueError(f"burst must be from 1 to {limit - 1} for a limit of {limit}, "
                             f"got {burst}")
        return cls(limit - burst, window_seconds, clock=clock, sleep=sleep, capacity=burst)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self._tokens_per_second)

    def _check_request(self, tokens: float) -> None:
        if not 0 < tokens <= self.capacity:
            raise ValueError(f"tokens must be above 0 and at most the capacity {self.capacity}, "
                             f"got {tokens}")

    def acquire(self, tokens: float = 1) -> float:
        """Take ``tokens``, sleeping until the bucket can cover them.

        Args:
            tokens: How many tokens to take; above 0 and at most the capacity.

        Returns:
            The seconds this call slept (0.0 when the tokens were there).

        Raises:
            ValueError: When ``tokens`` is not above 0 or exceeds the capacity.
        """
        self._check_request(tokens)
        with self._lock:
            self._refill()
            self._tokens -= tokens
            wait = -self._tokens / self._tokens_per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def try_acquire(self, tokens: float = 1) -> bool:
        """Take ``tokens`` only when the bucket contains them now, without sleeping.

        Raises:
            ValueError: When ``tokens`` is not above 0 or exceeds the capacity.
        """
        self._check_request(tokens)
        with self._lock:
            self._refill()
            if self._tokens < tokens:
                return False
            self._tokens -= tokens
            return True

    def pause(self, seconds: float) -> None:
        """Empty the bucket and hold back refills for ``seconds``.

        Call this when the server returns 429, so every thread sharing the bucket
        waits out the server's ``Retry-After`` instead of only the one that saw it.
        """
        if seconds <= 0:
            return
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0) - seconds * self._tokens_per_second

    def available(self) -> float:
        """Return the current balance; negative while callers wait for reserved tokens."""
        with self._lock:
            self._refill()
            return self._tokens


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header as seconds from ``now``.

    The header contains either delta-seconds (``"10"``) or an HTTP-date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``), as RFC 9110 section 10.2.3 allows.
    A date in the past gives 0.0.

    Args:
        headers: Response headers; names match case-insensitively.
        now: The current time for HTTP-dates; the system clock in UTC when None.

    Returns:
        Seconds to wait, or None when the header is missing or unreadable.
    """
    value = _header(headers, "Retry-After")
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: RandomSource | None = None,
) -> float:
    """Pick a delay before retry number ``attempt`` by exponential backoff with full jitter.

    The ceiling doubles with each attempt (``base``, ``2 * base``, ``4 * base``, ...)
    up to ``cap``, and the delay is drawn uniformly between 0 and that ceiling, so
    clients that failed together do not retry together.

    Args:
        attempt: The number of the failed attempt, starting at 1.
        base: Ceiling for the first retry, in seconds.
        cap: Largest ceiling, in seconds.
        rng: Source of randomness; the ``random`` module when None.

    Returns:
        Seconds to wait, from 0 up to ``min(cap, base * 2 ** (attempt - 1))``.

    Raises:
        ValueError: When ``attempt`` is below 1 or ``base`` or ``cap`` is negative.
    """
    if attempt < 1:
        raise ValueError(f"attempt starts at 1, got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError(f"base and cap must not be negative, got {base} and {cap}")
    # Clamp the exponent so a long outage cannot overflow the float.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    fraction = rng.random() if rng is not None else random.random()
    return fraction * ceiling


class StatusClass(StrEnum):
    """Action a client takes for an HTTP status."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    RETRY = "retry"
    FAIL = "fail"


def classify_status(status: int) -> StatusClass:
    """Sort an HTTP status into ok, rate_limited, retry or fail.

    2xx is ok (207 Multi-Status too: its per-record results still need reading),
    429 is rate_limited, 408 and 5xx are worth retrying, and everything else,
    other 4xx included, fails without a retry because sending the same request
    again gets the same response.
    """
    if 200 <= status < 300:
        return StatusClass.OK
    if status == 429:
        return StatusClass.RATE_LIMITED
    if status == 408 or 500 <= status < 600:
        return StatusClass.RETRY
    return StatusClass.FAIL


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to try a call and how long to wait between tries.

    Attributes:
        max_attempts: Total tries including the first; at least 1.
        base_seconds: Backoff ceiling after the first failure.
        cap_seconds: Largest backoff ceiling.
        max_retry_after_seconds: Longest ``Retry-After`` honoured before the call
            counts as failed, so a server asking for hours does not block a worker.
    """

    max_attempts: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_seconds < 0 or self.cap_seconds < 0 or self.max_retry_after_seconds < 0:
            raise ValueError("base_seconds, cap_seconds and max_retry_after_seconds must not be "
                             "negative")

    def can_retry(self, attempt: int) -> bool:
        """Return whether another try is allowed after failed attempt number ``attempt``."""
        return attempt < self.max_attempts

    def delay_seconds(
        self,
        attempt: int,
        headers: Mapping[str, str] | None = None,
        now: datetime | None = None,
        rng: RandomSource | None = None,
    ) -> float:
        """Return the wait before the next try: the server's ``Retry-After`` when it sent one.

        Args:
            attempt: The number of the failed attempt, starting at 1.
            headers: Response headers of the failed attempt, if any.
            now: The current time for an HTTP-date ``Retry-After``.
            rng: Source of randomness for the backoff.
        """
        if headers is not None:
            requested = retry_after_seconds(headers, now)
            if requested is not None:
                return requested
        return backoff_seconds(attempt, self.base_seconds, self.cap_seconds, rng)
