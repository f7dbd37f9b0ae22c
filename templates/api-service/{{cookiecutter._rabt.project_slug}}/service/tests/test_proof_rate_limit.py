"""Proof that the shared rate limit holds with several processes calling HubSpot at once.

Three OS processes call one HubSpot stand-in whose burst limit is ``LIMIT`` calls per
10 s: the flusher (``python -m storesync flusher``) draining an outbox of orders, and
two worker-side processes that write contacts through ``client_for``, the factory the
worker's playbook timers, consent pulls and privacy actions take their client from.
Together they send about three times what the limit allows in the time they would
take alone. With ``REDIS_URL`` set they take their tokens from one bucket in Redis, so
under 1 % of the calls draw a 429 and every record reaches the stand-in.

Each process with its own bucket (no ``REDIS_URL`` for the limits) draws 429s on a
large share of its calls, which this test then reports as a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from conftest import redis_url_or_skip
from storesync.settings import SERVICE_DIR
from storesync.standins.hubspot import HubSpotStandinConfig
from sync_support import SPEC_DIR, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]

pytestmark = [pytest.mark.slow, pytest.mark.redis]

# The stand-in's burst limit per 10 s, low so the test overloads it within seconds.
LIMIT = 50
ORDERS = 200
WORKERS = 2
# Contact writes per worker process, of CONTACTS_PER_CALL contacts each.
CALLS_PER_WORKER = 60
CONTACTS_PER_CALL = 5
MAX_429_SHARE = 0.01
WAIT_SECONDS = 240
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "REDIS_URL", "REDIS_KEY_PREFIX", "HOST", "PORT",
                     "LOG_LEVEL", "WORKER_METRICS_PORT", "SYNC_FLUSHER", "CRM_TARGET")

# One worker-side process: upsert its contacts in small batches through client_for, and
# try a batch again after CrmUnavailable (a run of 429s), as the timers' next pass would.
WORKER_SCRIPT = """
import json, sys
from storesync.flusher import client_for
from storesync.hubspot import CrmUnavailable
from storesync.settings import load_settings
settings = load_settings(json.loads(sys.argv[1]))
number, calls, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
client = client_for(settings)
for call in range(calls):
    inputs = [{"id": f"rate.{number}.{call}.{item}@example.com", "idProperty": "email",
               "properties": {"firstname": "اختبار"}} for item in range(size)]
    while True:
        try:
            client.batch_upsert("contacts", inputs)
            break
        except CrmUnavailable:
            pass
print("done", client.calls, client.rate_limited_calls, flush=True)
client.close()
"""


def customer(number: int) -> dict[str, object]:
    """Return a made-up customer; phones are in the 050 range the samples use."""
    return {"id": 7_500_000_000_000 + number, "email": f"storm.{number}@example.com",
            "phone": f"+96650{number:07d}", "first_name": "ريم", "last_name": "الاختبار"}


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
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes of the test, killed when it ends."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=30)


def child_env(environ: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_VARIABLES}
    env.update({**environ, "PYTHONPATH": str(SERVICE_DIR / "src"), "LOG_LEVEL": "WARNING"})
    return env


def test_429_storm_two_workers(make_harness: MakeHarness, prefix: str,
                               children: list[subprocess.Popen[str]]) -> None:
    sync = make_harness(HubSpotStandinConfig(rate_limit_per_10s=LIMIT),
                        HUBSPOT_RATE_LIMIT_PER_10S=str(LIMIT))
    for number in range(ORDERS):
        sync.deliver_order(Order(9_500_000_000 + number, customer(number),
                                 lines=(Line(96000 + number, f"STORM-SKU-{number % 7}", 1,
                                             "80.00"),)))
    pending = sync.context.store.pending_count()
    assert pending > 0
    environ = {"DATA_DIR": str(sync.settings.data_dir), "SPEC_DIR": str(SPEC_DIR),
               "DESIRED_STATE_PATH": str(sync.settings.desired_state_path),
               "HUBSPOT_BASE_URL": sync.standin.url, "HUBSPOT_RATE_LIMIT_PER_10S": str(LIMIT),
               "SYNC_BATCH_WINDOW_MS": "0", "STORE_ID": "test-store",
               "REDIS_URL": redis_url_or_skip(), "REDIS_KEY_PREFIX": prefix}
    calls_before = sum(int(call["count"]) for call in sync.standin.calls())

    children.append(subprocess.Popen(
        [sys.executable, "-m", "storesync", "flusher"], cwd=SERVICE_DIR, env=child_env(environ),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    workers = [subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WORKER_SCRIPT), json.dumps(environ), str(number),
         str(CALLS_PER_WORKER), str(CONTACTS_PER_CALL)],
        env=child_env(environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for number in range(WORKERS)]
    children.extend(workers)

    for worker in workers:
        output, errors = worker.communicate(timeout=WAIT_SECONDS)
        assert worker.returncode == 0, errors[-3000:]
        assert output.startswith("done"), output
    deadline = time.monotonic() + WAIT_SECONDS
    while sync.context.store.pending_count() > 0:
        assert time.monotonic() < deadline, "the flusher did not drain the outbox"
        time.sleep(0.5)

    # Every order and every worker's contact reached the stand-in.
    deals = sync.standin.records("deals")
    assert len(deals) == ORDERS
    emails = {record["properties"].get("email") for record in sync.standin.records("contacts")}
    for number in range(WORKERS):
        for call in (0, CALLS_PER_WORKER - 1):
            assert f"rate.{number}.{call}.0@example.com" in emails
    assert len(emails) >= ORDERS + WORKERS * CALLS_PER_WORKER * CONTACTS_PER_CALL
    assert sync.context.store.dead_letter_count() == 0

    calls = sum(int(call["count"]) for call in sync.standin.calls()) - calls_before
    rate_limited = sync.standin.call_count("", 429)
    # The load is well over what the limit allows at once.
    assert calls > 2 * LIMIT
    assert rate_limited / calls < MAX_429_SHARE, f"{rate_limited} of {calls} calls drew a 429"
