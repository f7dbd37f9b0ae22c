"""Two workers on two machines, one Redis: one state file serves them, or the second refuses.

The process test plays two machines with two DATA_DIRs against one Redis key prefix:
the intake (web) on a third DATA_DIR, worker A with its flusher thread, and worker B on
a DATA_DIR of its own. Worker B must exit at start and name the state file it would
split from. Every order, delivered twice under two delivery ids, must reach the CRM
stand-in once: one record per order, and one deal write per order in the flushers'
counts that the intake reads from Redis. Without the check, worker B would
take about half the deliveries into an outbox that the flusher holding the Redis lease
never reads.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from conftest import redis_url_or_skip
from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, WOOCOMMERCE_SECRET
from process_support import (
    CLEARED_VARIABLES,
    START_TIMEOUT_SECONDS,
    Service,
    customer,
    free_port,
    signed_delivery,
)
from storesync.db import Database
from storesync.settings import SERVICE_DIR, Settings
from storesync.state_home import ForeignStateFile, claim_state_home, home_key
from storesync.sync_store import SyncStore
from sync_support import DESIRED_STATE_PATH, SPEC_DIR, CrmStandin, Line, Order, family

pytestmark = pytest.mark.redis

ORDERS = 60
FIRST_ORDER_ID = 9_200_000_000
SETTLE_TIMEOUT_SECONDS = 120


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    """Return the Redis URL and a key prefix of this test; its keys go at the end."""
    url = redis_url_or_skip()
    prefix = f"storesync-test-{uuid.uuid4().hex[:12]}"
    yield url, prefix
    client = redis.Redis.from_url(url)
    try:
        plain = prefix.replace("-", "")
        for pattern in (f"{prefix}:*", f"huey.*{plain}*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
    finally:
        client.close()


def test_second_data_dir_is_refused(make_settings: Callable[..., Settings], tmp_path: Path,
                                    redis_prefix: tuple[str, str]) -> None:
    url, prefix = redis_prefix
    first = make_settings(REDIS_URL=url, REDIS_KEY_PREFIX=prefix, DATA_DIR=str(tmp_path / "a"))
    again = make_settings(REDIS_URL=url, REDIS_KEY_PREFIX=prefix, DATA_DIR=str(tmp_path / "a"))
    other = make_settings(REDIS_URL=url, REDIS_KEY_PREFIX=prefix, DATA_DIR=str(tmp_path / "b"))

    own = claim_state_home(first)
    assert own is not None and len(own) == 32
    # A second process on the same DATA_DIR (or volume) shares the file and its id.
    assert claim_state_home(again) == own
    with pytest.raises(ForeignStateFile) as refused:
        claim_state_home(other)
    message = str(refused.value)
    assert f"DATA_DIR {tmp_path / 'b'}" in message
    assert f"names state file {own}" in message
    assert f"redis-cli DEL {home_key(first)}" in message


def test_other_prefix_takes_its_own_state_file(make_settings: Callable[..., Settings],
                                               tmp_path: Path,
                                               redis_prefix: tuple[str, str]) -> None:
    url, prefix = redis_prefix
    first = make_settings(REDIS_URL=url, REDIS_KEY_PREFIX=prefix, DATA_DIR=str(tmp_path / "a"))
    other = make_settings(REDIS_URL=url, REDIS_KEY_PREFIX=f"{prefix}-other",
                          DATA_DIR=str(tmp_path / "b"))
    assert claim_state_home(first) != claim_state_home(other)


def test_sqlite_queue_claims_nothing(make_settings: Callable[..., Settings],
                                     tmp_path: Path) -> None:
    settings = make_settings(DATA_DIR=str(tmp_path / "a"))
    assert claim_state_home(settings) is None
    assert not settings.state_path.exists()


# --- two workers as processes ----------------------------------------------------------------


def twice_sent_orders() -> list[Order]:
    """Return orders with their own ids, customers and amounts."""
    orders = []
    for index in range(ORDERS):
        total = f"{200 + index}.50"
        line = Line(FIRST_ORDER_ID + index, f"HOME-SKU-{index % 5}", 1, total)
        orders.append(Order(FIRST_ORDER_ID + index, customer(500 + index), total=total,
                            lines=(line,)))
    return orders


def deals_written(service: Service) -> float:
    """Return the deals the flushers wrote, from the counts the intake adds up from Redis."""
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if (name.startswith("storesync_sync_records_total{") and 'object="deals"' in name
                and 'outcome="synced"' in name):
            total += float(value)
    return total


@pytest.fixture
def two_hosts(tmp_path: Path, start_crm_standin: Callable[..., CrmStandin],
              redis_prefix: tuple[str, str]) -> Iterator[Service]:
    """Return the common settings of both machines; every process stops at the end."""
    url, prefix = redis_prefix
    standin = start_crm_standin()
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_VARIABLES}
    env.update({
        "PYTHONPATH": str(SERVICE_DIR / "src"),
        "SPEC_DIR": str(SPEC_DIR),
        "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH),
        **standin.service_env(),
        "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
        "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
        "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET,
        "STORE_ID": "test-store",
        "SYNC_BATCH_WINDOW_MS": "100",
        "SYNC_FLUSHER": "thread",
        "LOG_LEVEL": "WARNING",
        "REDIS_URL": url,
        "REDIS_KEY_PREFIX": prefix,
        "DATA_DIR": str(tmp_path / "web"),
    })
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    running = Service(env, free_port(), log_dir, standin)
    try:
        yield running
    finally:
        running.stop()


def start_worker(service: Service, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start a worker on ``data_dir``; return once it serves its metrics or has exited.

    The worker serves its metrics after the state file check and right before it
    starts taking jobs, so a worker that responds there is about to take jobs.
    """
    port = free_port()
    worker = service.spawn(["worker", "--workers", "2"], DATA_DIR=str(data_dir),
                           WORKER_METRICS_PORT=str(port))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while worker.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            return worker
        except httpx.TransportError:
            assert time.monotonic() < deadline, (
                f"the worker on {data_dir} did not start in {START_TIMEOUT_SECONDS} s\n"
                f"{service.logs()}")
            time.sleep(0.1)
    return worker


def send(service: Service, orders: list[Order], copy: str, pause: float) -> None:
    """Post every order once, under delivery ids of ``copy``, ``pause`` seconds apart."""
    source = family()
    with httpx.Client(base_url=service.url, timeout=10) as client:
        for order in orders:
            body, headers = signed_delivery(order, source, f"home-{copy}-{order.id}")
            response = client.post(f"/webhooks/{source}", content=body, headers=headers)
            assert response.status_code == 200, response.text
            time.sleep(pause)


def wait_until_drained(service: Service, *data_dirs: Path) -> None:
    """Wait until no job is unfinished and the outboxes of ``data_dirs`` are empty."""
    client = redis.Redis.from_url(service.env["REDIS_URL"])
    inbox_key = f"{service.env['REDIS_KEY_PREFIX']}:inbox"
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    try:
        while True:
            waiting = {str(path): outbox_rows(path) for path in data_dirs}
            unfinished = int(client.hlen(inbox_key))
            if unfinished == 0 and not any(waiting.values()):
                return
            assert time.monotonic() < deadline, (
                f"after {SETTLE_TIMEOUT_SECONDS} s, {unfinished} jobs are unfinished and "
                f"the outboxes hold {waiting}; {len(service.standin.kind('deals'))} of "
                f"{ORDERS} orders are in the CRM\n{service.logs()}")
            time.sleep(0.5)
    finally:
        client.close()


def outbox_rows(data_dir: Path) -> int:
    """Return the rows waiting in the outbox of ``data_dir``, 0 when it has no state file."""
    path = data_dir / "state.sqlite3"
    if not path.exists():
        return 0
    store = SyncStore(Database(path))
    try:
        return store.pending_count()
    finally:
        store.db.close()


def test_two_data_dirs_write_once(two_hosts: Service, tmp_path: Path) -> None:
    service = two_hosts
    orders = twice_sent_orders()
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    service.start_intake()
    worker_a = start_worker(service, host_a)
    assert worker_a.poll() is None, service.logs()
    worker_b = start_worker(service, host_b)

    send(service, orders, "first", 0)
    wait_until_drained(service, host_a)
    # The same changes again under new delivery ids, slowly enough that a running
    # worker B would take some of them.
    send(service, orders, "second", 0.05)
    wait_until_drained(service, host_a)
    # Stopping worker A frees the flusher lease, so a flusher of worker B would now
    # write what worker B put in its own outbox. A worker publishes its counts to Redis
    # when it stops.
    worker_a.terminate()
    assert worker_a.wait(timeout=START_TIMEOUT_SECONDS) == 0, service.logs()
    if worker_b.poll() is None:
        wait_until_drained(service, host_b)
        worker_b.terminate()
        worker_b.wait(timeout=START_TIMEOUT_SECONDS)

    amounts = service.standin.order_amounts()
    assert amounts == {str(order.id): [Decimal(order.total)] for order in orders}
    assert deals_written(service) == ORDERS, service.logs()
    assert worker_b.returncode == 2, service.logs()
    assert "must share one state file" in service.logs()
