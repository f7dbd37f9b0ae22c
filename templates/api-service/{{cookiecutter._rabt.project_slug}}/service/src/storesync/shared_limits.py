"""CRM rate limits shared by every process of the deployment through Redis.

Without ``REDIS_URL`` each process keeps its own token bucket and Zoho call slots, so
two processes calling one CRM account together can exceed its limit. With ``REDIS_URL``
set, :func:`storesync.flusher.client_for` gives every CRM client (the flusher, the
playbook timers, the consent pulls and the privacy actions, in every process) the
objects of this module instead:

* :class:`RedisTokenBucket`: one token bucket per CRM account and limit, updated by a
  Lua script, so taking a token is atomic across processes. A 429 sets a pause key
  with the wait as its expiry, and every process waits until the key expires.
* :class:`RedisCallSlots`: Zoho's limit on calls in flight, as a sorted set of holders
  whose scores are lease deadlines, so the slot of a killed process frees itself.
* :class:`RedisCreditBudget`: Zoho's rolling 24-hour credit budget, as a sorted set of
  spends and a running total, so ``/metrics`` of every process reports the shared count.

The bucket and the slots use Redis's own clock (``TIME`` inside the scripts), because
``time.monotonic`` differs between machines, so the injectable clock of the in-process
bucket does not apply to them. The credit budget takes the injected wall clock, as the
in-process one does, since clocks of a few seconds apart do not matter over 24 hours.
When Redis is unreachable, all three fall back to the per-process limit and log it once
per failing spell, because sending under a per-process limit is better than stopping.

The account is the deployment: the keys sit under ``REDIS_KEY_PREFIX``, and one
deployment talks to one CRM account.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from .runtime.ratelimit import TokenBucket
from .standins.zoho_config import CREDIT_WINDOW_SECONDS
from .zoho_credits import CallSlots, CreditBudget, CreditState

log = logging.getLogger("storesync.shared_limits")

# Reserve ``tokens`` from the bucket in KEYS[1] unless the pause key KEYS[2] is live.
# Returns {1, wait} with the seconds until the reserved tokens are covered, or {0, wait}
# with the seconds the pause has left and nothing reserved. ARGV: tokens per second,
# capacity, tokens. Numbers travel as strings, because Redis turns Lua floats in a
# reply into integers.
_ACQUIRE_SCRIPT = """
local pause_ms = redis.call('PTTL', KEYS[2])
if pause_ms > 0 then
  return {0, tostring(pause_ms / 1000)}
end
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(state[1]) or capacity
local updated = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate) - tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
-- The key outlives the time the bucket needs to refill, so an expired key means a full bucket.
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
return {1, tostring(wait)}
"""

# Set the pause key KEYS[1] to expire in ARGV[1] milliseconds, unless a longer pause is set.
_PAUSE_SCRIPT = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""

# Take a slot for holder ARGV[1]: drop expired holders from KEYS[1] (all calls) and
# KEYS[2] (heavy calls), then add the holder with its lease deadline when both sets
# have room. ARGV: holder, limit, heavy limit, heavy ('1' or '0'), lease milliseconds.
_SLOT_SCRIPT = """
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local lease_ms = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
if ARGV[4] == '1' then
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
    return 0
  end
  redis.call('ZADD', KEYS[2], now_ms + lease_ms, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], lease_ms)
end
redis.call('ZADD', KEYS[1], now_ms + lease_ms, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease_ms)
return 1
"""

# Drop the spends of sorted set KEYS[1] older than the window and subtract them from the
# running total in KEYS[2]. Members end in ":<cost>". The spend script then adds a spend
# of ARGV[3] credits as member ARGV[4], and Zoho's report ARGV[5] (empty for none) to the
# hash KEYS[3]. ARGV: now, window seconds, cost, member, report.
_CREDIT_EXPIRE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #gone > 0 then
  local total = 0
  for _, member in ipairs(gone) do
    total = total + tonumber(string.match(member, ':(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  redis.call('DECRBY', KEYS[2], total)
end
"""
_CREDIT_SPEND_SCRIPT = _CREDIT_EXPIRE + """
local ttl_ms = math.ceil(window * 1000) + 60000
local cost = tonumber(ARGV[3])
if cost > 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('INCRBY', KEYS[2], cost)
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[3], 'at', ARGV[1], 'remaining', ARGV[5])
  redis.call('PEXPIRE', KEYS[3], ttl_ms)
end
-- The spends and their total expire together, a minute after the newest spend leaves
-- the window.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ttl_ms)
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
end
return 1
"""
# Return {used, reported remaining minus the credits spent since the report ('' when
# there is no report in the window), time of the oldest spend ('' when none)}.
_CREDIT_STATE_SCRIPT = _CREDIT_EXPIRE + """
local used = math.max(0, tonumber(redis.call('GET', KEYS[2]) or '0'))
local reported = ''
local report = redis.call('HMGET', KEYS[3], 'at', 'remaining')
if report[1] and tonumber(report[1]) > now - window then
  local since = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. report[1], '+inf')) do
    since = since + tonumber(string.match(member, ':(%d+)$'))
  end
  reported = tostring(tonumber(report[2]) - since)
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {tostring(used), reported, oldest[2] or ''}
"""

# Key parts of the buckets under REDIS_KEY_PREFIX.
HUBSPOT_BUCKET = "crm-rate:hubspot"
HUBSPOT_SEARCH_BUCKET = "crm-rate:hubspot-search"
# A Zoho call slot outlives the call's timeout by this many seconds before it counts
# as the slot of a dead process.
SLOT_LEASE_MARGIN_SECONDS = 30.0

# The maximum pause before a caller waiting for a Zoho call slot tries again.
SLOT_POLL_SECONDS = 0.05


class _FallbackLog:
    """Logs the first Redis failure of a spell and the recovery after it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._failing = False

    def failed(self, error: redis.RedisError) -> None:
        if not self._failing:
            log.warning("Redis is unreachable for the shared %s; this process uses its own "
                        "limit until Redis responds", self.what, extra={"error": repr(error)})
        self._failing = True

    def answered(self) -> None:
        if self._failing:
            log.info("Redis responds again; the %s is shared again", self.what)
        self._failing = False


class RedisTokenBucket:
    """A token bucket in Redis with the contract of :class:`TokenBucket`, for all processes.

    ``rate``, ``per_seconds`` and ``capacity`` mean what they mean for
    :class:`TokenBucket`, and :meth:`for_rolling_window` sizes the bucket the same way,
    so the deployment as a whole stays under the limit one process used to.
    """

    def __init__(self, client: redis.Redis, key: str, rate: float, per_seconds: float, *,
                 capacity: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """Create the bucket stored under ``key``; the pause key is ``key + ":pause"``.

        ``clock`` drives only the per-process bucket used while Redis cannot be reached.

        Raises:
            ValueError: When a number is not above 0.
        """
        self.local = TokenBucket(rate, per_seconds, capacity=capacity, clock=clock, sleep=sleep)
        self.client = client
        self.key = key
        self.pause_key = f"{key}:pause"
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE_SCRIPT)
        self._pause = client.register_script(_PAUSE_SCRIPT)
        self._fallback = _FallbackLog(f"rate limit {key}")

    @classmethod
    def for_rolling_window(cls, client: redis.Redis, key: str, limit: int,
                           window_seconds: float, burst: int, *,
                           clock: Callable[[], float] = time.monotonic,
                           sleep: Callable[[float], None] = time.sleep) -> RedisTokenBucket:
        """Create a bucket that hands out at most ``limit`` tokens in any window, as
        :meth:`TokenBucket.for_rolling_window` does.

        Raises:
            ValueError: When ``burst`` is outside 1 to ``limit - 1``.
        """
        if not 1 <= burst < limit:
            raise ValueError(f"burst must be from 1 to {limit - 1} for a limit of {limit}, "
                             f"got {burst}")
        return cls(client, key, limit - burst, window_seconds, capacity=burst, clock=clock,
                   sleep=sleep)

    @property
    def rate(self) -> float:
        """Tokens added every ``per_seconds``."""
        return self.local.rate

    @property
    def capacity(self) -> float:
        """Most tokens the bucket saves up."""
        return self.local.capacity

    def acquire(self, tokens: float = 1) -> float:
        """Take ``tokens``, sleeping while a pause lasts and until the bucket covers them.

        Returns:
            The seconds this call slept.

        Raises:
            ValueError: When ``tokens`` is not above 0 or exceeds the capacity.
        """
        if not 0 < tokens <= self.capacity:
            raise ValueError(f"tokens must be above 0 and at most the capacity "
                             f"{self.capacity}, got {tokens}")
        per_second = self.local.rate / self.local.per_seconds
        slept = 0.0
        while True:
            try:
                reserved, wait = self._acquire(keys=[self.key, self.pause_key],
                                               args=[repr(per_second), repr(self.capacity),
                                                     repr(float(tokens))])
            except redis.RedisError as error:
                self._fallback.failed(error)
                return slept + self.local.acquire(tokens)
            self._fallback.answered()
            seconds = float(wait)
            if seconds > 0:
                self._sleep(seconds)
                slept += seconds
            if int(reserved):
                break
        if slept > 0:
            # A 429 in another process may have set a pause while this one slept.
            slept += self._wait_for_pause()
        return slept

    def pause(self, seconds: float) -> None:
        """Hold back every process's calls for ``seconds``, unless a longer pause is set.

        Call this when the server returns 429, so every process waits out the server's
        ``Retry-After`` instead of only the one that saw it.
        """
        if seconds <= 0:
            return
        try:
            self._pause(keys=[self.pause_key], args=[max(1, round(seconds * 1000))])
        except redis.RedisError as error:
            self._fallback.failed(error)
            self.local.pause(seconds)
            return
        self._fallback.answered()

    def paused_seconds(self) -> float:
        """Return the seconds the shared pause has left; 0.0 when none is set."""
        milliseconds = int(self.client.pttl(self.pause_key))
        return milliseconds / 1000 if milliseconds > 0 else 0.0

    def close(self) -> None:
        """Close the Redis client's connections."""
        self.client.close()

    def _wait_for_pause(self) -> float:
        try:
            seconds = self.paused_seconds()
        except redis.RedisError as error:
            self._fallback.failed(error)
            return 0.0
        if seconds > 0:
            self._sleep(seconds)
        return seconds


class RedisCallSlots:
    """Zoho's limits on calls in flight (all calls, and heavy ones), shared by all processes.

    A slot is a lease: a holder that dies without releasing it loses it after
    ``lease_seconds``, which must exceed the longest call. Callers waiting for a slot
    ask again every ``SLOT_POLL_SECONDS`` or so, in no fixed order.
    """

    def __init__(self, client: redis.Redis, prefix: str, limit: int, heavy_limit: int, *,
                 lease_seconds: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """Allow ``limit`` calls at once across processes, of which ``heavy_limit`` heavy."""
        self.local = CallSlots(limit, heavy_limit)
        self.client = client
        self.limit = limit
        self.heavy_limit = min(limit, heavy_limit)
        self.keys = [f"{prefix}:zoho:call-slots", f"{prefix}:zoho:heavy-call-slots"]
        self.lease_milliseconds = max(1000, round(lease_seconds * 1000))
        self._sleep = sleep
        self._take = client.register_script(_SLOT_SCRIPT)
        self._fallback = _FallbackLog("Zoho call slots")

    @contextmanager
    def hold(self, heavy: bool) -> Iterator[None]:
        """Hold a slot for one call, waiting until one is free."""
        holder = uuid.uuid4().hex
        if not self._take_shared(holder, heavy):
            with self.local.hold(heavy):
                yield
            return
        try:
            yield
        finally:
            self._release(holder)

    def holders(self) -> int:
        """Count the calls in flight across processes, expired leases included."""
        return int(self.client.zcard(self.keys[0]))

    def close(self) -> None:
        """Close the Redis client's connections."""
        self.client.close()

    def _take_shared(self, holder: str, heavy: bool) -> bool:
        """Wait for a shared slot; False when Redis is unreachable."""
        args: list[str | int] = [holder, self.limit, self.heavy_limit, "1" if heavy else "0",
                                 self.lease_milliseconds]
        while True:
            try:
                taken = self._take(keys=self.keys, args=args)
            except redis.RedisError as error:
                self._fallback.failed(error)
                return False
            self._fallback.answered()
            if int(taken):
                return True
            self._sleep(SLOT_POLL_SECONDS * (0.5 + random.random()))

    def _release(self, holder: str) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key in self.keys:
                    pipe.zrem(key, holder)
                pipe.execute()
        except redis.RedisError as error:
            # The lease expires on its own.
            self._fallback.failed(error)



class RedisCreditBudget(CreditBudget):
    """Zoho's credit budget counted in Redis for every process of the deployment.

    The spends are a sorted set ``<prefix>:zoho:credits-spent`` (score: time spent) with
    their total in ``<prefix>:zoho:credits-used``, and Zoho's latest
    ``X-API-CREDITS-REMAINING`` is the hash ``<prefix>:zoho:credits-reported``. Each
    update is one Lua script. Two processes can still both pass :meth:`before_call` with
    the last credit, and Zoho then refuses one of the calls with a 429 that
    :meth:`exhausted` records.
    """

    def __init__(self, client: redis.Redis, prefix: str, daily_limit: int, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """Create the budget of ``daily_limit`` credits; credits already spent in Redis are kept."""
        self.client = client
        self.keys = [f"{prefix}:zoho:credits-spent", f"{prefix}:zoho:credits-used",
                     f"{prefix}:zoho:credits-reported"]
        self._spend_script = client.register_script(_CREDIT_SPEND_SCRIPT)
        self._state_script = client.register_script(_CREDIT_STATE_SCRIPT)
        self._fallback = _FallbackLog("Zoho credit budget")
        super().__init__(daily_limit, clock=clock, sleep=sleep)

    def close(self) -> None:
        """Close the Redis client's connections."""
        self.client.close()

    def _record(self, now: float, cost: int, reported_remaining: int | None) -> None:
        # The local count is kept too, so a Redis outage falls back to a recent count.
        super()._record(now, cost, reported_remaining)
        member = f"{uuid.uuid4().hex}:{cost}"
        report = "" if reported_remaining is None else str(reported_remaining)
        try:
            self._spend_script(keys=self.keys, args=[repr(now), CREDIT_WINDOW_SECONDS, cost,
                                                     member, report])
        except redis.RedisError as error:
            self._fallback.failed(error)
            return
        self._fallback.answered()

    def _state(self, now: float) -> CreditState:
        try:
            used_text, reported, oldest = self._state_script(
                keys=self.keys, args=[repr(now), CREDIT_WINDOW_SECONDS])
        except redis.RedisError as error:
            self._fallback.failed(error)
            return super()._state(now)
        self._fallback.answered()
        used = int(used_text)
        remaining = max(0, self.daily_limit - used)
        if reported not in (b"", ""):
            remaining = max(0, min(remaining, int(float(reported))))
        return CreditState(used, remaining, float(oldest) if oldest not in (b"", "") else None)


def hubspot_buckets(settings: Any, *, sleep: Callable[[float], None] = time.sleep
                    ) -> tuple[RedisTokenBucket, RedisTokenBucket]:
    """Return the shared buckets of the HubSpot client: the burst limit per 10 s (its
    ``bucket``) and the search limit per second (its ``search_bucket``).
    """
    from .hubspot import RATE_WINDOW_SECONDS, burst_size

    client = redis.Redis.from_url(settings.redis_url)
    prefix = settings.redis_key_prefix
    limit = int(settings.hubspot_rate_limit_per_10s)
    bucket = RedisTokenBucket.for_rolling_window(
        client, f"{prefix}:{HUBSPOT_BUCKET}", limit, RATE_WINDOW_SECONDS, burst_size(limit),
        sleep=sleep)
    search_bucket = RedisTokenBucket(client, f"{prefix}:{HUBSPOT_SEARCH_BUCKET}",
                                     int(settings.hubspot_search_rate_per_second), 1.0,
                                     capacity=1, sleep=sleep)
    return bucket, search_bucket


def zoho_limits(settings: Any, daily_limit: int, concurrency: int, *,
                clock: Callable[[], float] = time.time,
                sleep: Callable[[float], None] = time.sleep
                ) -> tuple[RedisCreditBudget, RedisCallSlots]:
    """Return the Zoho client's credit budget and call slots, shared through Redis."""
    from .standins.zoho_config import HEAVY_CONCURRENCY_LIMIT

    client = redis.Redis.from_url(settings.redis_url)
    prefix = settings.redis_key_prefix
    budget = RedisCreditBudget(client, prefix, daily_limit, clock=clock, sleep=sleep)
    lease = float(settings.zoho_timeout_seconds) + SLOT_LEASE_MARGIN_SECONDS
    slots = RedisCallSlots(client, prefix, concurrency, HEAVY_CONCURRENCY_LIMIT,
                           lease_seconds=lease, sleep=sleep)
    return budget, slots
