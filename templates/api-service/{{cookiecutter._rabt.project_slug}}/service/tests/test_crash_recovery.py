"""Crash recovery end to end: the real intake and worker processes killed with SIGKILL.

The test runs ``python -m storesync intake``, ``worker`` and ``flusher`` as separate
processes on the SQLite queue, and the stand-in of the project's CRM (HubSpot or Zoho)
under uvicorn in this process. A sender posts 600 signed orders the way the store does: a delivery
that gets no 2xx response (or no response at all) is sent again, with the same
headers and body, until it gets one. While jobs are in flight, the worker is killed
with SIGKILL (and, in the second case, the intake with it), then started again with
a short ``INBOX_GRACE_SECONDS``. Every order must then reach the stand-in exactly
once in effect: one deal per order key, with the order's amount, and no dead
letters or quarantined deliveries.

A job counts as in flight when the worker has taken it off huey's queue and not
finished it: its inbox entry is there and its queue row is gone. The worker is
stopped with SIGSTOP while that is counted, so the count cannot change before the
SIGKILL.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake_support import (
    SHOPIFY_SECRET,
    STOREFRONT_SECRET,
    WOOCOMMERCE_SECRET,
    encode_body,
    shopify_headers,
    storefront_headers,
    woocommerce_headers,
)
from storesync.db import Database
from storesync.quarantine import Quarantine
from storesync.settings import SERVICE_DIR
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

ORDERS = 600
CUSTOMERS = 400
SENDERS = 8
# Deliveries per second the sender starts, so the kill falls while traffic flows.
SEND_RATE = 150
KILL_AFTER_ACKNOWLEDGED = 200
DOWN_SECONDS = 0.5
INBOX_GRACE_SECONDS = 2
SETTLE_TIMEOUT_SECONDS = 45
START_TIMEOUT_SECONDS = 30
FIRST_ORDER_ID = 9_100_000_000
# Settings of the machine running the tests must not reach the service processes.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "ZOHO_REFRESH_TOKEN", "ZOHO_CLIENT_ID",
                     "ZOHO_CLIENT_SECRET", "ZOHO_DC", "CRM_TARGET", "REDIS_URL",
                     "REDIS_KEY_PREFIX", "HOST", "PORT", "WORKER_METRICS_PORT", "LOG_LEVEL")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def customer(number: int) -> dict[str, Any]:
    """Return a made-up customer with its own email and a phone in the 050 range."""
    return {"id": 7_300_000_000_000 + number, "email": f"crash.{number}@example.com",
            "phone": f"+96650{number:07d}", "first_name": "ريم", "last_name": "الاختبار"}


def crash_orders() -> list[Order]:
    """Return the orders the sender posts, each with its own id and amount."""
    orders = []
    for index in range(ORDERS):
        total = f"{100 + index % 300}.{index % 100:02d}"
        line = Line(FIRST_ORDER_ID + index, f"CRASH-SKU-{index % 40}", 1, total)
        orders.append(Order(FIRST_ORDER_ID + index, customer(index % CUSTOMERS), total=total,
                            lines=(line,)))
    return orders


def signed_delivery(order: Order, source: str, delivery_id: str) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers the store sends for ``order``; retries reuse both."""
    body = encode_body(order.body(source))
    topic = order.topic(source)
    if source == "shopify":
        return body, shopify_headers(body, topic=topic, event_id=delivery_id)
    if source == "woocommerce":
        return body, woocommerce_headers(body, topic=topic, delivery_id=delivery_id)
    return body, storefront_headers(body, message_id=delivery_id)


# --- the processes ---------------------------------------------------------------------


@dataclass
class Service:
    """The intake, worker and flusher processes of one test, started with the same settings."""

    env: dict[str, str]
    port: int
    log_dir: Path
    standin: CrmStandin
    intake: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    flusher: subprocess.Popen[bytes] | None = None
    starts: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{command[0]}-{next(self.starts)}.log").open("wb")
        try:
            return subprocess.Popen([sys.executable, "-m", "storesync", *command], env=self.env,
                                    cwd=SERVICE_DIR, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def start_worker(self) -> None:
        self.worker = self._spawn(["worker", "--workers", "2"])

    def start_flusher(self) -> None:
        self.flusher = self._spawn(["flusher"])

    def start_intake(self) -> None:
        self.intake = self._spawn(["intake", "--port", str(self.port)])
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.intake.poll() is None, self.logs()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"the intake did not start within {START_TIMEOUT_SECONDS} s\n{self.logs()}")

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [process for process in (self.intake, self.worker, self.flusher)
                if process is not None]

    def stop(self) -> None:
        """Stop every process with SIGTERM, or SIGKILL when they do not stop in time."""
        for process in self.processes():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in self.processes():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        """Return the tail of every process log, for failure messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(f"--- {path.name}\n{text[-3000:]}")
        return "\n".join(parts)


def jobs_in_flight(queue_path: Path, timeout: float = 5) -> int:
    """Return how many jobs the worker took off the queue and has not finished."""
    conn = sqlite3.connect(f"file:{queue_path}?mode=ro", uri=True, timeout=timeout)
    try:
        row = conn.execute("SELECT (SELECT count(*) FROM inbox) - (SELECT count(*) FROM task)"
                           ).fetchone()
    finally:
        conn.close()
    return int(row[0])


def kill_with_jobs_in_flight(service: Service, queue_path: Path, *, with_intake: bool) -> int:
    """SIGKILL the worker (and the intake) at a moment when the worker has unfinished jobs.

    Returns:
        How many unfinished jobs the worker had when it was killed.
    """
    worker = service.worker
    assert worker is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        worker.send_signal(signal.SIGSTOP)
        try:
            in_flight = jobs_in_flight(queue_path, timeout=0.5)
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
    pytest.fail("the worker never had an unfinished job while deliveries arrived")


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
def service(tmp_path: Path, start_crm_standin: Callable[..., CrmStandin]) -> Iterator[Service]:
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
        "INBOX_GRACE_SECONDS": str(INBOX_GRACE_SECONDS),
        "INBOX_SCAN_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    })
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    running = Service(env, free_port(), log_dir, standin)
    try:
        yield running
    finally:
        running.stop()


def settled(standin: CrmStandin, state_path: Path, queue_path: Path) -> bool:
    """Return whether every order is in the stand-in and nothing waits in the service."""
    if len(standin.kind("deals")) < ORDERS:
        return False
    store = SyncStore(Database(state_path))
    try:
        waiting = store.pending_count()
    finally:
        store.db.close()
    conn = sqlite3.connect(f"file:{queue_path}?mode=ro", uri=True, timeout=5)
    try:
        unfinished = int(conn.execute("SELECT count(*) FROM inbox").fetchone()[0])
    finally:
        conn.close()
    return waiting == 0 and unfinished == 0


@pytest.mark.parametrize("killed", ["worker", "worker_and_intake"])
def test_orders_survive_sigkill(service: Service, killed: str) -> None:
    standin = service.standin
    source = family()
    orders = crash_orders()
    deliveries = [signed_delivery(order, source, f"crash-{killed}-{order.id}")
                  for order in orders]
    state_path = Path(service.env["DATA_DIR"]) / "state.sqlite3"
    queue_path = Path(service.env["DATA_DIR"]) / "queue.sqlite3"

    service.start_intake()
    service.start_worker()
    service.start_flusher()
    sender = Sender(service.url, deliveries, f"/webhooks/{source}")
    sender.start()
    while sender.acknowledged < KILL_AFTER_ACKNOWLEDGED:
        time.sleep(0.01)
    in_flight = kill_with_jobs_in_flight(service, queue_path,
                                    with_intake=killed == "worker_and_intake")
    time.sleep(DOWN_SECONDS)
    if killed == "worker_and_intake":
        service.start_intake()
    service.start_worker()

    assert sender.join(timeout=60), f"not every delivery was acknowledged\n{service.logs()}"
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while not settled(standin, state_path, queue_path):
        assert time.monotonic() < deadline, f"the service did not settle\n{service.logs()}"
        time.sleep(0.5)
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
