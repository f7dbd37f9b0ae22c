"""CRM limits shared through Redis: the token bucket, the 429 pause, Zoho's credits and call
slots, and the flusher lease, each checked across real OS processes.

Every test uses the real Redis on 127.0.0.1:6379 under a key prefix of its own. A test
skips when Redis is down, unless CI is set, and then it fails. The credit budget's arithmetic is
checked on both backends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from conftest import redis_url_or_skip
from storesync import metrics
from storesync.flusher import client_for
from storesync.flusher_lock import FlusherLock, RedisFlusherLease, open_flusher_lock
from storesync.settings import SERVICE_DIR, load_settings
from storesync.shared_limits import (
    HUBSPOT_BUCKET,
    RedisCallSlots,
    RedisCreditBudget,
    RedisTokenBucket,
)
from storesync.standins.hubspot import HubSpotStandinConfig
from storesync.standins.zoho_config import CREDIT_WINDOW_SECONDS
from storesync.zoho_credits import CreditBudget
from storesync.zoho_flusher import zoho_client_for
from sync_support import SPEC_DIR, FakeClock, Standin

pytestmark = pytest.mark.redis

# A small bucket, so two processes reach its limit within seconds.
LIMIT = 20
WINDOW_SECONDS = 2.0
BURST = 2
HAMMER_SECONDS = 6.0
LEASE_SECONDS = 1.5
RETRY_AFTER_SECONDS = 3
# Settings of the machine running the tests must not leak into the child processes.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "REDIS_URL", "REDIS_KEY_PREFIX", "CRM_TARGET")

HAMMER_SCRIPT = """
import sys, time
import redis
from storesync.shared_limits import RedisTokenBucket
url, key, limit, window, burst, seconds = sys.argv[1:7]
bucket = RedisTokenBucket.for_rolling_window(redis.Redis.from_url(url), key, int(limit),
                                             float(window), int(burst))
print("ready", flush=True)
sys.stdin.readline()
end = time.time() + float(seconds)
while time.time() < end:
    bucket.acquire()
    print(repr(time.time()), flush=True)
"""

CALL_SCRIPT = """
import sys
from storesync.flusher import client_for
from storesync.settings import load_settings
settings = load_settings({"DATA_DIR": sys.argv[1], "SPEC_DIR": sys.argv[2],
                          "HUBSPOT_BASE_URL": sys.argv[3], "REDIS_URL": sys.argv[4],
                          "REDIS_KEY_PREFIX": sys.argv[5], "STORE_ID": "test-store"})
client = client_for(settings)
client.pipelines("deals")
print("rate limited", client.rate_limited_calls, flush=True)
client.close()
"""

SPEND_SCRIPT = """
import sys
import redis
from storesync.shared_limits import RedisCreditBudget
budget = RedisCreditBudget(redis.Redis.from_url(sys.argv[1]), sys.argv[2], 1000)
for _ in range(3):
    budget.spend(10)
print("spent", budget.used(), flush=True)
"""

HOLD_SLOT_SCRIPT = """
import sys, time
import redis
from storesync.shared_limits import RedisCallSlots
slots = RedisCallSlots(redis.Redis.from_url(sys.argv[1]), sys.argv[2], 1, 1,
                       lease_seconds=float(sys.argv[3]))
with slots.hold(heavy=False):
    print("held", flush=True)
    time.sleep(60)
"""

HOLD_LEASE_SCRIPT = """
import sys, threading, time
import redis
from storesync.flusher_lock import RedisFlusherLease
lease = RedisFlusherLease(redis.Redis.from_url(sys.argv[1]), sys.argv[2],
                          lease_seconds=float(sys.argv[3]))
assert lease.acquire()
lease.guard(threading.Event())
print(lease.value, flush=True)
time.sleep(60)
"""


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of the test's own; its keys are deleted afterwards."""
    url = redis_url_or_skip()
    name = f"storesync-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{name}:*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Return a function that runs a script in a child Python with the service on its path."""
    children: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        env = {key: value for key, value in os.environ.items() if key not in CLEARED_VARIABLES}
        env["PYTHONPATH"] = str(SERVICE_DIR / "src")
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args],
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=30)


def read_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if not line:
        _, errors = child.communicate(timeout=30)
        pytest.fail(f"the child process printed nothing; its errors: {errors[-2000:]}")
    return line


def busiest_window(times: list[float], window: float) -> int:
    """Return the most timestamps that fall in any half-open span of ``window`` seconds."""
    ordered = sorted(times)
    most = 0
    start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


# --- the token bucket -----------------------------------------------------------------------


def test_bucket_limit_holds_across_processes(
        prefix: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    url = redis_url_or_skip()
    key = f"{prefix}:{HUBSPOT_BUCKET}"
    args = (url, key, str(LIMIT), str(WINDOW_SECONDS), str(BURST), str(HAMMER_SECONDS))
    children = [spawn(HAMMER_SCRIPT, *args) for _ in range(2)]
    for child in children:
        assert read_line(child) == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    grants: list[list[float]] = []
    for child in children:
        output, errors = child.communicate(timeout=60)
        assert child.returncode == 0, errors[-2000:]
        grants.append([float(line) for line in output.split()])

    # Both processes got tokens, so they competed for the one bucket.
    assert min(len(times) for times in grants) > 5
    every = grants[0] + grants[1]
    assert busiest_window(every, WINDOW_SECONDS) <= LIMIT
    # The refill of 18 tokens per 2 s bounds the total; one process alone with its own
    # bucket would be allowed as many.
    steady = (LIMIT - BURST) / WINDOW_SECONDS * HAMMER_SECONDS
    assert len(every) <= BURST + steady + 1


def test_bucket_falls_back_when_redis_down(prefix: str) -> None:
    clock = FakeClock()
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    bucket = RedisTokenBucket.for_rolling_window(dead, f"{prefix}:x", LIMIT, WINDOW_SECONDS,
                                                 BURST, clock=clock, sleep=clock.sleep)
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == 0.0
    # The third token waits for the refill of the process's own bucket.
    assert bucket.acquire() > 0.0


# --- the 429 pause --------------------------------------------------------------------------


def test_429_pause_stops_other_process(
        prefix: str, tmp_path: Path, start_standin: Callable[..., Standin],
        spawn: Callable[..., subprocess.Popen[str]]) -> None:
    url = redis_url_or_skip()
    standin = start_standin(HubSpotStandinConfig(retry_after_seconds=RETRY_AFTER_SECONDS))
    standin.fault(429, 1)
    settings = load_settings({"DATA_DIR": str(tmp_path / "second"), "SPEC_DIR": str(SPEC_DIR),
                              "HUBSPOT_BASE_URL": standin.url, "REDIS_URL": url,
                              "REDIS_KEY_PREFIX": prefix, "STORE_ID": "test-store"})
    client = client_for(settings)
    try:
        bucket = client.bucket
        assert isinstance(bucket, RedisTokenBucket)
        first = spawn(CALL_SCRIPT, str(tmp_path / "first"), str(SPEC_DIR), standin.url, url,
                      prefix)
        deadline = time.monotonic() + 30
        while bucket.paused_seconds() == 0.0:
            assert time.monotonic() < deadline, "the first process never set the pause"
            time.sleep(0.02)
        left = bucket.paused_seconds()
        # This process never saw the 429, but its client waits out the rest of the pause.
        started = time.monotonic()
        client.pipelines("deals")
        waited = time.monotonic() - started
    finally:
        client.close()
    assert read_line(first) == "rate limited 1"
    assert first.wait(timeout=30) == 0
    assert left > RETRY_AFTER_SECONDS - 1
    assert waited >= left - 0.1
    assert client.rate_limited_calls == 0
    assert standin.call_count("/pipelines/{object_type}", 429) == 1
    assert standin.call_count("/pipelines/{object_type}", 200) == 2


# --- Zoho's credits and call slots -----------------------------------------------------------


@pytest.fixture(params=["process", "redis"])
def make_budget(request: pytest.FixtureRequest
                ) -> Iterator[Callable[[int, FakeClock], CreditBudget]]:
    """Return a factory of credit budgets of one backend on a fake clock."""
    budgets: list[CreditBudget] = []

    def build(daily_limit: int, clock: FakeClock) -> CreditBudget:
        if request.param == "process":
            budget = CreditBudget(daily_limit, clock=clock, sleep=clock.sleep)
        else:
            budget = RedisCreditBudget(redis.Redis.from_url(redis_url_or_skip()),
                                       request.getfixturevalue("prefix"), daily_limit,
                                       clock=clock, sleep=clock.sleep)
        budgets.append(budget)
        return budget

    yield build
    for budget in budgets:
        if isinstance(budget, RedisCreditBudget):
            budget.close()


def test_budget_counts_window_and_report(
        make_budget: Callable[[int, FakeClock], CreditBudget]) -> None:
    clock = FakeClock()
    budget = make_budget(100, clock)
    budget.spend(10)
    clock.sleep(60)
    budget.spend(5, reported_remaining=70)
    clock.sleep(60)
    budget.spend(3)
    assert budget.used() == 18
    # Zoho reported 70 after the second call, and 3 were spent since.
    assert budget.remaining() == 67
    clock.sleep(CREDIT_WINDOW_SECONDS - 120)
    # The first spend has left the window; the report is still inside it.
    assert budget.used() == 8
    assert budget.remaining() == 67
    clock.sleep(121)
    assert budget.used() == 0
    assert budget.remaining() == 100


def test_budget_exhausted_waits_for_oldest(
        make_budget: Callable[[int, FakeClock], CreditBudget]) -> None:
    clock = FakeClock()
    budget = make_budget(100, clock)
    budget.spend(40)
    clock.sleep(3600)
    error = budget.exhausted(0)
    assert error.wait_seconds == pytest.approx(CREDIT_WINDOW_SECONDS - 3600)
    assert budget.remaining() == 0


def test_credits_shared_between_processes(
        prefix: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    url = redis_url_or_skip()
    child = spawn(SPEND_SCRIPT, url, prefix)
    assert read_line(child) == "spent 30"
    assert child.wait(timeout=30) == 0

    budget = RedisCreditBudget(redis.Redis.from_url(url), prefix, 1000)
    try:
        assert budget.used() == 30
        assert budget.remaining() == 970
        budget.spend(10)
    finally:
        budget.close()
    # /metrics reports the deployment's count, not this process's 10.
    assert metrics.ZOHO_CREDITS_USED._value.get() == 40
    assert metrics.ZOHO_CREDITS_REMAINING._value.get() == 960


def test_call_slot_freed_after_holder_killed(
        prefix: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    url = redis_url_or_skip()
    holder = spawn(HOLD_SLOT_SCRIPT, url, prefix, str(LEASE_SECONDS))
    assert read_line(holder) == "held"
    slots = RedisCallSlots(redis.Redis.from_url(url), prefix, 1, 1, lease_seconds=5.0)
    try:
        assert slots.holders() == 1
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        started = time.monotonic()
        with slots.hold(heavy=True):
            waited = time.monotonic() - started
            assert slots.holders() == 1
        assert slots.holders() == 0
    finally:
        slots.close()
    # The killed holder's slot came free only when its lease ran out.
    assert 0.2 < waited <= LEASE_SECONDS + 1.0


# --- the flusher lease ----------------------------------------------------------------------


def test_lease_passes_after_holder_killed(
        prefix: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    url = redis_url_or_skip()
    first = spawn(HOLD_LEASE_SCRIPT, url, prefix, str(LEASE_SECONDS))
    holder = read_line(first)
    second = RedisFlusherLease(redis.Redis.from_url(url), prefix, lease_seconds=LEASE_SECONDS)
    try:
        # The first holder renews its lease, so it stays past several lease lengths.
        deadline = time.monotonic() + 3 * LEASE_SECONDS
        while time.monotonic() < deadline:
            assert not second.acquire()
            time.sleep(0.2)
        assert second.holder() == holder

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed = time.monotonic()
        while not second.acquire():
            assert time.monotonic() - killed < LEASE_SECONDS + 2.0, "the lease never expired"
            time.sleep(0.05)
        assert second.holder() == second.value
    finally:
        second.release()
        second.client.close()


def test_lease_released_on_stop(prefix: str) -> None:
    url = redis_url_or_skip()
    first = RedisFlusherLease(redis.Redis.from_url(url), prefix)
    second = RedisFlusherLease(redis.Redis.from_url(url), prefix)
    try:
        assert first.acquire()
        assert not second.acquire()
        first.release()
        assert second.acquire()
        # A late release of the old holder leaves the new holder's lease alone.
        first.release()
        assert second.holder() == second.value
    finally:
        second.release()
        first.client.close()
        second.client.close()


def test_lease_lost_stops_draining(prefix: str) -> None:
    url = redis_url_or_skip()
    lease = RedisFlusherLease(redis.Redis.from_url(url), prefix, lease_seconds=0.6)
    try:
        assert lease.acquire()
        drain_stop = lease.guard(threading.Event())
        # Another flusher took the key over, as after a Redis stall longer than the lease.
        lease.client.set(lease.key, "other-host:1:abcd")
        assert drain_stop.wait(timeout=5)
        assert not lease.held
        lease.release()
        # The lost lease is not this flusher's to delete.
        assert lease.client.get(lease.key) == b"other-host:1:abcd"
    finally:
        lease.client.close()


@pytest.mark.parametrize(("redis_on", "kind"), [(False, FlusherLock),
                                                (True, RedisFlusherLease)])
def test_flusher_lock_by_backend(tmp_path: Path, prefix: str, redis_on: bool,
                                 kind: type) -> None:
    environ = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR)}
    if redis_on:
        environ.update({"REDIS_URL": redis_url_or_skip(), "REDIS_KEY_PREFIX": prefix})
    lock = open_flusher_lock(load_settings(environ))
    assert isinstance(lock, kind)
    assert lock.acquire()
    lock.release()


@pytest.mark.parametrize("redis_on", [False, True])
def test_zoho_client_limits_by_backend(tmp_path: Path, prefix: str, redis_on: bool) -> None:
    environ = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
               "CRM_TARGET": "zoho", "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:9"}
    if redis_on:
        environ.update({"REDIS_URL": redis_url_or_skip(), "REDIS_KEY_PREFIX": prefix})
    client = zoho_client_for(load_settings(environ))
    try:
        assert isinstance(client.budget, RedisCreditBudget) is redis_on
        assert isinstance(client.slots, RedisCallSlots) is redis_on
    finally:
        client.close()
