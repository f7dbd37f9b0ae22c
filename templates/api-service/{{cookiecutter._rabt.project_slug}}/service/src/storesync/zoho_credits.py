"""Zoho API credits: the rolling 24-hour budget, pacing before it runs out, and backfill plans.

Zoho charges credits per call (most calls 1; insert, update and upsert 1 per 10
records, so 10 for 100) against a budget per rolling 24 hours that depends on the
edition and the user licences, and limits the calls one app has in flight per org.
The limits come from the table in ``storesync.standins.zoho_config``, taken from
Zoho's API limits page; ``ZOHO_CREDITS_PER_DAY`` and ``ZOHO_CONCURRENCY`` override it.

The budget counts the credits spent in the last 24 hours by every process of the
deployment: in Redis when ``REDIS_URL`` is set, else in the state file, which the
processes on one machine share (``storesync.zoho_credits_file``). When Zoho sends
``X-API-CREDITS-REMAINING``, it takes the lower of the two, because other apps of
the org spend from the same budget. Once less than ``SLOWDOWN_FRACTION`` of the budget
is left, calls are spaced so that the rest lasts until the oldest credits spent leave
the window; with no credit left, :class:`CreditsExhausted` stops the caller until then.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from . import metrics
from .hubspot import DailyLimitReached
from .standins.zoho_config import (
    CREDIT_WINDOW_SECONDS,
    EDITIONS,
    HEAVY_CONCURRENCY_LIMIT,
    HEAVY_WRITE_RECORDS,
    MAX_RECORDS_PER_WRITE,
    RECORDS_PER_CREDIT,
)

# Below this share of the daily budget left, calls are spaced out.
SLOWDOWN_FRACTION = 0.2
# The maximum pause between two spaced calls. A longer one would stall the
# flusher's heartbeat, so the flusher would look stuck.
MAX_PACE_SECONDS = 60.0
# NOTE: an estimate for one batch call of 100 records measured on the stand-in with a
# latency like Zoho's; real calls vary with the org's workflows and layout rules.
DEFAULT_SECONDS_PER_CALL = 1.5
CREDITS_REMAINING_HEADER = "X-API-CREDITS-REMAINING"


class CreditsExhausted(DailyLimitReached):
    """The rolling 24-hour credit budget is used up; calls stop until credits return.

    Attributes:
        wait_seconds: Seconds until enough credits leave the window, when known.
    """

    def __init__(self, message: str, wait_seconds: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, status)
        self.wait_seconds = wait_seconds


def write_cost(records: int) -> int:
    """Return the credits of one insert, update or upsert call of ``records`` records."""
    return max(1, math.ceil(min(records, MAX_RECORDS_PER_WRITE) / RECORDS_PER_CREDIT))


def is_heavy(records: int) -> bool:
    """Return whether a write of ``records`` records counts against the sub-concurrency limit."""
    return records > HEAVY_WRITE_RECORDS


def daily_credits(edition: str, user_licences: int, override: int | None = None) -> int:
    """Return the credits per rolling 24 hours of ``edition`` with ``user_licences`` users."""
    if override is not None:
        return override
    return EDITIONS[edition].daily_credits(user_licences)


def concurrency_limit(edition: str, override: int | None = None) -> int:
    """Return how many calls the app may have in flight for one org."""
    return override if override is not None else EDITIONS[edition].concurrency


@dataclass(frozen=True)
class CreditState:
    """The budget at one moment.

    Attributes:
        used: Credits spent in the last 24 hours.
        remaining: Credits left: the lower of the own count and Zoho's last report.
        oldest_spend: When the oldest credits in the window were spent, or None.
    """

    used: int
    remaining: int
    oldest_spend: float | None


class CreditBudget:
    """The credits spent in the rolling 24-hour window, shared by the threads of a process.

    :class:`storesync.shared_limits.RedisCreditBudget` keeps the same count in Redis, and
    :class:`storesync.zoho_credits_file.SqliteCreditBudget` in the state file, for every
    process; they replace :meth:`_record` and :meth:`_state`.
    """

    def __init__(self, daily_limit: int, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """Create an empty budget of ``daily_limit`` credits."""
        self.daily_limit = daily_limit
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[tuple[float, int]] = deque()
        self._reported: tuple[float, int] | None = None
        self._lock = threading.Lock()
        self._publish()

    def used(self) -> int:
        """Return the credits spent in the last 24 hours."""
        return self._state(self._clock()).used

    def remaining(self) -> int:
        """Return the credits left: the lower of the own count and Zoho's last report."""
        return self._state(self._clock()).remaining

    def spend(self, cost: int, reported_remaining: int | None = None) -> None:
        """Record a call's credits and, when Zoho sent it, the remaining count it reported."""
        self._record(self._clock(), cost, reported_remaining)
        self._publish()

    def exhausted(self, reported_remaining: int | None = None) -> CreditsExhausted:
        """Record that Zoho refused a call for lack of credits; return the error to raise."""
        now = self._clock()
        self._record(now, 0, reported_remaining or 0)
        wait = _wait_for_credits(now, self._state(now))
        self._publish()
        return CreditsExhausted(
            f"Zoho's API credits for the last 24 hours are used up (budget {self.daily_limit}); "
            f"the first credits return in {wait:.0f} s", wait, 429)

    def before_call(self, cost: int) -> None:
        """Wait as the remaining budget requires before a call of ``cost`` credits.

        Raises:
            CreditsExhausted: fewer than ``cost`` credits are left.
        """
        now = self._clock()
        state = self._state(now)
        if state.remaining < cost:
            wait = _wait_for_credits(now, state)
            raise CreditsExhausted(
                f"{state.remaining} Zoho API credits are left of {self.daily_limit} for 24 "
                f"hours, and the call needs {cost}; the first credits return in {wait:.0f} s",
                wait)
        delay = self._pace(now, state, cost)
        if delay > 0:
            metrics.ZOHO_CREDIT_PAUSES.inc()
            self._sleep(delay)

    def _pace(self, now: float, state: CreditState, cost: int) -> float:
        """Return the pause that spreads the remaining credits until the oldest ones return."""
        if state.remaining >= self.daily_limit * SLOWDOWN_FRACTION:
            return 0.0
        calls_left = max(1, state.remaining // cost)
        return min(MAX_PACE_SECONDS, _wait_for_credits(now, state) / calls_left)

    def _record(self, now: float, cost: int, reported_remaining: int | None) -> None:
        """Store a spend of ``cost`` credits (0 for none) and Zoho's report, when given."""
        with self._lock:
            if cost > 0:
                self._spent.append((now, cost))
            if reported_remaining is not None:
                self._reported = (now, reported_remaining)

    def _state(self, now: float) -> CreditState:
        with self._lock:
            while self._spent and self._spent[0][0] <= now - CREDIT_WINDOW_SECONDS:
                self._spent.popleft()
            used = sum(cost for _, cost in self._spent)
            remaining = max(0, self.daily_limit - used)
            if self._reported is not None and self._reported[0] > now - CREDIT_WINDOW_SECONDS:
                # Credits spent after Zoho's report are not in the report yet.
                since = sum(cost for when, cost in self._spent if when > self._reported[0])
                remaining = max(0, min(remaining, self._reported[1] - since))
            oldest = self._spent[0][0] if self._spent else None
        return CreditState(used, remaining, oldest)

    def _publish(self) -> None:
        state = self._state(self._clock())
        metrics.ZOHO_CREDITS_USED.set(state.used)
        metrics.ZOHO_CREDITS_REMAINING.set(state.remaining)
        metrics.ZOHO_CREDITS_LIMIT.set(self.daily_limit)


def _wait_for_credits(now: float, state: CreditState) -> float:
    """Return the seconds until the oldest credits spent leave the 24-hour window."""
    if state.oldest_spend is None:
        # Zoho reported the budget gone, but the credits went to other apps: their
        # times are unknown, so the wait is a whole window at most.
        return float(CREDIT_WINDOW_SECONDS)
    return max(1.0, state.oldest_spend + CREDIT_WINDOW_SECONDS - now)


class SlotPool(Protocol):
    """Zoho's limits on calls in flight: :class:`CallSlots`, or the ones shared in Redis."""

    def hold(self, heavy: bool) -> AbstractContextManager[None]:
        """Return a context manager that keeps a slot reserved for one call."""


class CallSlots:
    """Keeps the calls in flight under Zoho's concurrency limit and its limit for heavy calls."""

    def __init__(self, limit: int, heavy_limit: int = HEAVY_CONCURRENCY_LIMIT) -> None:
        """Allow ``limit`` calls at once, of which ``heavy_limit`` heavy ones."""
        self._all = threading.BoundedSemaphore(limit)
        self._heavy = threading.BoundedSemaphore(min(limit, heavy_limit))

    def hold(self, heavy: bool) -> _Slot:
        """Return a context manager that holds a slot for one call."""
        return _Slot(self, heavy)


class _Slot:
    def __init__(self, slots: CallSlots, heavy: bool) -> None:
        self._slots = slots
        self._heavy = heavy

    def __enter__(self) -> None:
        if self._heavy:
            self._slots._heavy.acquire()
        self._slots._all.acquire()

    def __exit__(self, *_: object) -> None:
        self._slots._all.release()
        if self._heavy:
            self._slots._heavy.release()


@dataclass(frozen=True)
class BackfillPlan:
    """What a backfill of store history costs in Zoho and how long it takes.

    Attributes:
        records: Records written (contacts, deals, products, sales orders).
        calls: API calls, each of up to 100 records.
        credits: Credits the calls cost.
        credits_available: Credits left in the current 24 hours when planned.
        days: Rolling 24-hour windows the credits need (1 when they fit now).
        seconds: Estimated duration, counting the waits for credits to return.
    """

    records: int
    calls: int
    credits: int
    credits_available: int
    days: int
    seconds: float


def plan_backfill(orders: int, contacts: int, *, daily_limit: int,
                  credits_available: int | None = None, products: int = 0,
                  seconds_per_call: float = DEFAULT_SECONDS_PER_CALL) -> BackfillPlan:
    """Estimate the credits and duration of writing ``orders`` and ``contacts`` to Zoho.

    Each order is a deal, a lookup from the deal to its contact and a sales order
    with its lines, each written 100 to a call; contacts and products are upserted 100
    to a call. Calls go one after another, as the flusher's batches of one object do.

    Args:
        orders: Orders to import.
        contacts: Contacts to import.
        daily_limit: Credits per rolling 24 hours (:func:`daily_credits`).
        credits_available: Credits left now; the whole budget when None.
        products: Products to import.
        seconds_per_call: Time one call takes.
    """
    if min(orders, contacts, products) < 0:
        raise ValueError("orders, contacts and products must not be negative")
    available = daily_limit if credits_available is None else max(0, credits_available)
    batches: Mapping[str, int] = {"contacts": contacts, "products": products, "deals": orders,
                                  "deal_contacts": orders, "sales_orders": orders}
    calls = 0
    credits = 0
    for count in batches.values():
        full, rest = divmod(count, MAX_RECORDS_PER_WRITE)
        calls += full + (1 if rest else 0)
        credits += full * write_cost(MAX_RECORDS_PER_WRITE) + (write_cost(rest) if rest else 0)
    beyond = max(0, credits - available)
    extra_days = math.ceil(beyond / daily_limit) if daily_limit > 0 else 0
    seconds = calls * seconds_per_call + extra_days * CREDIT_WINDOW_SECONDS
    return BackfillPlan(records=contacts + products + 2 * orders, calls=calls, credits=credits,
                        credits_available=available, days=1 + extra_days, seconds=seconds)
