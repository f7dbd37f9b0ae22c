"""Crash recovery end to end: the real intake and worker processes killed with SIGKILL.

The test runs ``python -m storesync intake``, ``worker`` and ``flusher`` as separate
processes, on the SQLite queue and on the Redis queue, and the stand-in of the project's
CRM (HubSpot or Zoho) under uvicorn in this process. A sender posts 1,000 signed orders
the way the store does: a delivery
that gets no 2xx response (or no response at all) is sent again, with the same
headers and body, until it gets one. While jobs are in flight, the worker is killed
with SIGKILL (and, in the second case, the intake with it), then started again with
a short ``INBOX_GRACE_SECONDS``. Every order must then reach the stand-in exactly
once in effect: one deal per order key, with the order's amount, and no dead
letters or quarantined deliveries.

A job counts as in flight when the worker has taken it off huey's queue and not
finished it: its inbox entry is there and its queue row (or list item) is gone. The
worker is stopped with SIGSTOP while that is counted, so the count cannot change
before the SIGKILL.

``STORESYNC_CRASH_ORDERS=200`` runs it with fewer orders on a developer's machine. With
``CI`` set the variable is refused, so CI always proves the full 1,000. The timeouts are
generous, because a shared 2-core machine can run the processes several times slower
than a quiet one. A failure prints how far the run got and each process's log.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from intake_support import (
    SHOPIFY_SECRET,
    STOREFRONT_SECRET,
    WOOCOMMERCE_SECRET,
)
from process_support import (
    CLEARED_VARIABLES,
    START_TIMEOUT_SECONDS,
    Service,
    customer,
    free_port,
    signed_delivery,
)
from storesync.db import Database
from storesync.quarantine import Quarantine
from storesync.queue import build_huey
from storesync.settings import SERVICE_DIR, load_settings
from storesync.standins.hubspot import HubSpotStandinConfig
from storesync.sync_store import SyncStore
from sync_support import (
    DESIRED_STATE_PATH,
    SPEC_DIR,
    CrmStandin,
    Line,
    Order,
    family,
)

pytestmark = pytest.mark.slow

FULL_ORDERS = 1000
ORDERS_VARIABLE = "STORESYNC_CRASH_ORDERS"


def order_count(environ: Mapping[str, str]) -> int:
    """Return how many orders to send: 1,000, or fewer on a developer's machine.

    Raises:
        ValueError: the variable is set in CI, or is not a number from 50 to 1,000.
    """
    raw = environ.get(ORDERS_VARIABLE)
    if raw is None:
        return FULL_ORDERS
    if environ.get("CI"):
        raise ValueError(
            f"{ORDERS_VARIABLE}={raw} is set while CI is set; CI must send all "
            f"{FULL_ORDERS} orders. Unset {ORDERS_VARIABLE} in CI.")
    if not raw.isdigit() or not 50 <= int(raw) <= FULL_ORDERS:
        raise ValueError(
            f"{ORDERS_VARIABLE}={raw!r} is not a whole number from 50 to {FULL_ORDERS}; "
            f"set, for example, {ORDERS_VARIABLE}=200, or unset it to send {FULL_ORDERS}.")
    return int(raw)


ORDERS = order_count(os.environ)
# Two orders in three come from a customer who orders more than once.
CUSTOMERS = max(1, ORDERS * 2 // 3)
SENDERS = 8
# Deliveries per second the sender starts, so the kill falls while traffic flows.
SEND_RATE = 150
KILL_AFTER_ACKNOWLEDGED = ORDERS // 3
DOWN_SECONDS = 0.5
INBOX_GRACE_SECONDS = 2
# The first worker waits this long before it queues an unfinished job again. Its own
# recovery would otherwise put the job it is running back on a queue whose jobs are all
# older than the short grace, and the job would no longer count as in flight.
FIRST_GRACE_SECONDS = 600
# At SEND_RATE the sender needs about 7 s for 1,000 orders. On a shared 2-core machine
# one case took up to about a minute in all, so these limits leave a wide margin.
SEND_TIMEOUT_SECONDS = 180
SETTLE_TIMEOUT_SECONDS = 240
KILL_WINDOW_SECONDS = 30
FIRST_ORDER_ID = 9_100_000_000


def crash_orders() -> list[Order]:
    """Return the orders the sender posts, each with its own id and amount."""
    orders = []
    for index in range(ORDERS):
        total = f"{100 + index % 300}.{index % 100:02d}"
        line = Line(FIRST_ORDER_ID + index, f"CRASH-SKU-{index % 40}", 1, total)
        orders.append(Order(FIRST_ORDER_ID + index, customer(index % CUSTOMERS), total=total,
                            lines=(line,)))
    return orders


# --- the queue --------------------------------------------------------------------------


@dataclass
class QueueProbe:
    """Reads the inbox and the queue of either backend, as the worker left them.

    The keys are worked out once: the worker stays stopped while a probe reads, so a
    slow probe would leave it almost no time to run.
    """

    env: dict[str, str]
    _keys: tuple[str, str, str] | None = None

    def _redis_keys(self) -> tuple[str, str, str]:
        """Return the Redis URL, the inbox hash key and huey's queue list key."""
        if self._keys is None:
            settings = load_settings(self.env)
            assert settings.redis_url is not None
            self._keys = (settings.redis_url, f"{settings.redis_key_prefix}:inbox",
                          build_huey(settings).storage.queue_key)
        return self._keys

    def _sqlite(self, sql: str, timeout: float) -> int:
        path = Path(self.env["DATA_DIR"]) / "queue.sqlite3"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()

    def _redis(self) -> tuple[int, int]:
        """Return the inbox's size and the queue's length, read in one transaction."""
        url, inbox_key, queue_key = self._redis_keys()
        client = redis.Redis.from_url(url)
        try:
            with client.pipeline(transaction=True) as pipe:
                pipe.hlen(inbox_key)
                pipe.llen(queue_key)
                inbox, waiting = pipe.execute()
        finally:
            client.close()
        return int(inbox), int(waiting)

    def in_flight(self, timeout: float = 5) -> int:
        """Return how many jobs the worker took off the queue and has not finished."""
        if self.env.get("REDIS_URL"):
            inbox, waiting = self._redis()
            return inbox - waiting
        return self._sqlite("SELECT (SELECT count(*) FROM inbox) - (SELECT count(*) FROM task)",
                            timeout)

    def unfinished(self) -> int:
        """Return how many queued jobs have not finished: waiting, running or lost."""
        if self.env.get("REDIS_URL"):
            return self._redis()[0]
        return self._sqlite("SELECT count(*) FROM inbox", 5)


def wait_until_consuming(service: Service, probe: QueueProbe, sender: Sender) -> None:
    """Wait until the worker has finished a job, so it is past its start.

    A busy machine can take many seconds to start the worker, and stopping it again
    and again while it starts would leave it no time to start at all.
    """
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while probe.unfinished() >= sender.acknowledged:
        assert service.worker is not None and service.worker.poll() is None, service.logs()
        assert time.monotonic() < deadline, (
            f"the worker finished no job in {START_TIMEOUT_SECONDS} s\n{service.logs()}")
        time.sleep(0.05)


def kill_with_jobs_in_flight(service: Service, probe: QueueProbe, *, with_intake: bool) -> int:
    """SIGKILL the worker (and the intake) at a moment when the worker has unfinished jobs.

    Returns:
        How many unfinished jobs the worker had when it was killed.
    """
    worker = service.worker
    assert worker is not None
    deadline = time.monotonic() + KILL_WINDOW_SECONDS
    while time.monotonic() < deadline:
        worker.send_signal(signal.SIGSTOP)
        try:
            in_flight = probe.in_flight(timeout=0.5)
        except sqlite3.OperationalError:
            # The worker can be stopped while it holds a lock that a read-only reader
            # waits on (during a checkpoint, for example), so let it run and look again.
            in_flight = 0
        if in_flight > 0:
            killed = [worker, service.intake] if with_intake else [worker]
            for process in killed:
                assert process is not None
                process.kill()
            for process in killed:
                assert process is not None
                process.wait(timeout=10)
            return in_flight
        worker.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    pytest.fail(f"the worker never had an unfinished job in {KILL_WINDOW_SECONDS} s while "
                f"deliveries arrived\n{service.logs()}")


# --- the sender --------------------------------------------------------------------------


@dataclass
class Sender:
    """Posts deliveries at ``SEND_RATE`` from several threads, retrying each until a 2xx."""

    url: str
    deliveries: list[tuple[bytes, dict[str, str]]]
    path: str
    acknowledged: int = 0
    retries: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        work: queue.Queue[int] = queue.Queue()
        for index in range(len(self.deliveries)):
            work.put(index)
        started = time.monotonic()
        for _ in range(SENDERS):
            thread = threading.Thread(target=self._run, args=(work, started), daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _run(self, work: queue.Queue[int], started: float) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while True:
                try:
                    index = work.get_nowait()
                except queue.Empty:
                    return
                time.sleep(max(0.0, started + index / SEND_RATE - time.monotonic()))
                self._deliver(client, *self.deliveries[index])

    def _deliver(self, client: httpx.Client, body: bytes, headers: dict[str, str]) -> None:
        pause = 0.05
        while True:
            try:
                response = client.post(self.path, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    status = str(response.json().get("status"))
                    with self._lock:
                        self.acknowledged += 1
                        self.statuses[status] = self.statuses.get(status, 0) + 1
                    return
            except httpx.TransportError:
                pass
            with self._lock:
                self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


# --- the test ---------------------------------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path, start_crm_standin: Callable[..., CrmStandin],
            backend_env: dict[str, str]) -> Iterator[Service]:
    """Return the intake and worker settings of one test; its processes stop at the end."""
    standin = start_crm_standin(hubspot=HubSpotStandinConfig(rate_limit_per_10s=1000))
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_VARIABLES}
    env.update({
        "PYTHONPATH": str(SERVICE_DIR / "src"),
        "DATA_DIR": str(tmp_path / "var"),
        "SPEC_DIR": str(SPEC_DIR),
        "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH),
        **standin.service_env(),
        "HUBSPOT_RATE_LIMIT_PER_10S": "1000",
        "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
        "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
        "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET,
        "STORE_ID": "test-store",
        "SYNC_BATCH_WINDOW_MS": "100",
        "INBOX_GRACE_SECONDS": str(FIRST_GRACE_SECONDS),
        "INBOX_SCAN_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
        **backend_env,
    })
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    running = Service(env, free_port(), log_dir, standin)
    try:
        yield running
    finally:
        running.stop()


def progress(standin: CrmStandin, state_path: Path, probe: QueueProbe) -> dict[str, int]:
    """Return the orders in the stand-in, the outbox rows and the unfinished jobs."""
    store = SyncStore(Database(state_path))
    try:
        waiting = store.pending_count()
    finally:
        store.db.close()
    return {"orders in the CRM": len(standin.kind("deals")), "outbox rows": waiting,
            "unfinished jobs": probe.unfinished()}


def settled(now: dict[str, int]) -> bool:
    """Return whether every order is in the stand-in and nothing waits in the service."""
    return (now["orders in the CRM"] >= ORDERS and now["outbox rows"] == 0
            and now["unfinished jobs"] == 0)


@pytest.mark.parametrize("killed", ["worker", "worker_and_intake"])
def test_orders_survive_sigkill(service: Service, killed: str) -> None:
    standin = service.standin
    source = family()
    orders = crash_orders()
    deliveries = [signed_delivery(order, source, f"crash-{killed}-{order.id}")
                  for order in orders]
    state_path = Path(service.env["DATA_DIR"]) / "state.sqlite3"
    probe = QueueProbe(service.env)

    service.start_intake()
    service.start_worker()
    service.start_flusher()
    # The restarted worker queues the killed worker's jobs again after the short grace.
    service.env["INBOX_GRACE_SECONDS"] = str(INBOX_GRACE_SECONDS)
    sender = Sender(service.url, deliveries, f"/webhooks/{source}")
    sender.start()
    deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
    while sender.acknowledged < KILL_AFTER_ACKNOWLEDGED:
        assert time.monotonic() < deadline, (
            f"only {sender.acknowledged} of {KILL_AFTER_ACKNOWLEDGED} deliveries were "
            f"acknowledged in {SEND_TIMEOUT_SECONDS} s\n{service.logs()}")
        time.sleep(0.01)
    wait_until_consuming(service, probe, sender)
    in_flight = kill_with_jobs_in_flight(service, probe,
                                         with_intake=killed == "worker_and_intake")
    time.sleep(DOWN_SECONDS)
    if killed == "worker_and_intake":
        service.start_intake()
    service.start_worker()

    assert sender.join(timeout=SEND_TIMEOUT_SECONDS), (
        f"{sender.acknowledged} of {ORDERS} deliveries were acknowledged in "
        f"{SEND_TIMEOUT_SECONDS} s, after {sender.retries} retries\n{service.logs()}")
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    now = progress(standin, state_path, probe)
    while not settled(now):
        assert time.monotonic() < deadline, (
            f"the service did not settle in {SETTLE_TIMEOUT_SECONDS} s: {now}, "
            f"{ORDERS} orders sent\n{service.logs()}")
        time.sleep(0.5)
        now = progress(standin, state_path, probe)
    service.stop()

    assert in_flight > 0
    assert sender.acknowledged == ORDERS
    amounts = standin.order_amounts()
    expected = {str(order.id): Decimal(order.total) for order in orders}
    assert sorted(amounts) == sorted(expected)
    duplicated = {key: found for key, found in amounts.items() if len(found) != 1}
    assert duplicated == {}
    wrong = {key: found[0] for key, found in amounts.items() if found[0] != expected[key]}
    assert wrong == {}

    state = Database(state_path)
    try:
        assert SyncStore(state).dead_letter_count() == 0
        assert Quarantine(state).count() == 0
    finally:
        state.close()


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, FULL_ORDERS),
    ({"CI": "true"}, FULL_ORDERS),
    ({ORDERS_VARIABLE: "200"}, 200),
])
def test_order_count_defaults_to_1000(environ: dict[str, str], expected: int) -> None:
    assert order_count(environ) == expected


@pytest.mark.parametrize(("environ", "message"), [
    ({ORDERS_VARIABLE: "200", "CI": "true"}, "CI must send all 1000 orders"),
    ({ORDERS_VARIABLE: "ten"}, "is not a whole number from 50 to 1000"),
    ({ORDERS_VARIABLE: "5000"}, "is not a whole number from 50 to 1000"),
])
def test_order_count_refuses_bad_values(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        order_count(environ)
