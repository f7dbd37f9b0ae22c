"""The worker side's metrics on the web's /metrics: jobs, CRM calls, 429s and the success ratio.

The end-to-end test serves the intake under uvicorn, runs ``python -m storesync worker``
and ``flusher`` as processes of their own against the HubSpot stand-in, and reads the
web's ``/metrics``, so the values cross processes through the shared backend (the state
file, or Redis).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from intake_support import (
    SHOPIFY_SECRET,
    STOREFRONT_SECRET,
    WOOCOMMERCE_SECRET,
    encode_body,
    serve,
    shopify_headers,
    storefront_headers,
    woocommerce_headers,
)
from storesync import metrics
from storesync.intake import create_app
from storesync.settings import SERVICE_DIR, load_settings
from sync_support import DESIRED_STATE_PATH, SARA, SPEC_DIR, Line, Order, Standin, family

# Made-up second customer.
OMAR: dict[str, Any] = {
    "id": 7200000000051, "email": "omar.metrics@example.com", "phone": "+966500000051",
    "first_name": "عمر", "last_name": "الدوسري"}
WAIT_SECONDS = 60
# Settings of the machine running the tests must not leak into the worker process.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "REDIS_URL", "REDIS_KEY_PREFIX",
                     "WORKER_METRICS_PORT", "HOST", "PORT")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --- Summing snapshots -----------------------------------------------------------------------


class MemorySnapshots:
    """A snapshot store in memory, for the unit tests."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[float, str]] = {}

    def write(self, process: str, updated_at: float, samples: str) -> None:
        self.rows[process] = (updated_at, samples)

    def read(self) -> list[tuple[float, str]]:
        return list(self.rows.values())

    def close(self) -> None:
        pass


def test_snapshots_sum_counters() -> None:
    registry = CollectorRegistry()
    records = Counter("storesync_sync_records", "records", ["object", "outcome"],
                      registry=registry)
    waiting = Gauge("storesync_dead_letters", "dead letters", registry=registry)
    records.labels(object="deals", outcome="synced").inc(3)
    records.labels(object="deals", outcome="dead_lettered").inc(1)
    waiting.set(1)
    older = metrics.take_snapshot(registry)
    records.labels(object="deals", outcome="synced").inc(5)
    waiting.set(4)
    newer = metrics.take_snapshot(registry)
    combined = metrics._combine([(20.0, newer), (10.0, older)],
                                frozenset({"storesync_dead_letters"}), now=21.0)
    values = {(name, labels.get("outcome")): value
              for name, labels, value in combined["storesync_sync_records"].values()}
    assert values[("storesync_sync_records_total", "synced")] == 11
    assert values[("storesync_sync_records_total", "dead_lettered")] == 2
    gauge = list(combined["storesync_dead_letters"].values())
    assert gauge == [("storesync_dead_letters", {}, 4.0)]
    assert "_created" not in older


def test_reconcile_last_success_takes_latest() -> None:
    registry = CollectorRegistry()
    last = Gauge(metrics.RECONCILE_LAST_SUCCESS_NAME, "last success", ["source"],
                 registry=registry)
    # A manual run at 500 published once; the worker's snapshot of its run at 100 is newer.
    last.labels(source="shopify").set(500.0)
    manual = metrics.take_snapshot(registry)
    last.labels(source="shopify").set(100.0)
    worker = metrics.take_snapshot(registry)

    combined = metrics._combine([(10.0, manual), (20.0, worker)],
                                frozenset({metrics.RECONCILE_LAST_SUCCESS_NAME}), now=21.0)

    values = list(combined[metrics.RECONCILE_LAST_SUCCESS_NAME].values())
    assert values == [(metrics.RECONCILE_LAST_SUCCESS_NAME, {"source": "shopify"}, 500.0)]


def test_snapshot_replaced_per_process() -> None:
    registry = CollectorRegistry()
    jobs = Counter("storesync_jobs", "jobs", ["outcome"], registry=registry)
    store = MemorySnapshots()
    publisher = metrics.SnapshotPublisher(store, registry=registry, clock=lambda: 5.0)
    jobs.labels(outcome="synced_later").inc(2)
    publisher.publish()
    publisher.publish()
    combined = metrics._combine(store.read(), frozenset(), now=6.0)
    assert [value for _, _, value in combined["storesync_jobs"].values()] == [2.0]


def test_dead_letters_only_from_counting_process() -> None:
    def broken_count() -> int:
        raise sqlite3.OperationalError("database is locked")

    store = MemorySnapshots()
    metrics.SnapshotPublisher(store, clock=lambda: 10.0, count_dead_letters=lambda: 3).publish()
    # Newer snapshots of processes that never counted: one without a state file (the
    # gauge still at 0, as in a flusher waiting for the lease) and one whose count failed.
    metrics.DEAD_LETTERS.set(0)
    metrics.SnapshotPublisher(store, clock=lambda: 11.0).publish()
    metrics.SnapshotPublisher(store, clock=lambda: 12.0, count_dead_letters=broken_count).publish()

    combined = metrics._combine(store.read(), frozenset({metrics.DEAD_LETTERS_NAME}), now=12.5)

    gauge = list(combined[metrics.DEAD_LETTERS_NAME].values())
    assert gauge == [(metrics.DEAD_LETTERS_NAME, {}, 3.0)]


def credit_snapshot(used: float, limit: float = 10_000.0) -> str:
    """Return a snapshot of a process whose credit budget counts ``used`` credits."""
    registry = CollectorRegistry()
    for name, number in (("storesync_zoho_credits_used", used),
                         ("storesync_zoho_credits_remaining", limit - used),
                         ("storesync_zoho_credits_limit", limit)):
        Gauge(name, name, registry=registry).set(number)
    return metrics.take_snapshot(registry)


def credit_values(snapshots: list[tuple[float, str]], now: float) -> dict[str, float]:
    store = MemorySnapshots()
    for number, (updated_at, samples) in enumerate(snapshots):
        store.write(f"process-{number}", updated_at, samples)
    collector = metrics.SharedSyncCollector(clock=lambda: now)
    collector.read = store.read
    return {sample.name: sample.value for family in collector.collect()
            for sample in family.samples if sample.name.startswith("storesync_zoho_credits")}


@pytest.mark.parametrize(("worker_at", "flusher_at"), [(100.5, 100.0), (100.0, 100.5)])
def test_credits_come_from_spender(worker_at: float, flusher_at: float) -> None:
    # The worker's idle budget writes 0 used every second, the flusher's 74.
    found = credit_values([(worker_at, credit_snapshot(0)), (flusher_at, credit_snapshot(74))],
                          now=101.0)
    assert found["storesync_zoho_credits_used"] == 74
    assert found["storesync_zoho_credits_remaining"] == 10_000 - 74
    assert found["storesync_zoho_credits_limit"] == 10_000


def test_credits_skip_stopped_and_budgetless() -> None:
    stopped = (10.0, credit_snapshot(900))
    running = (1000.0, credit_snapshot(12))
    # A process without a Zoho client exports its credit gauges as 0, limit included.
    budgetless = (1000.5, credit_snapshot(0, limit=0))
    found = credit_values([stopped, running, budgetless], now=1001.0)
    assert found["storesync_zoho_credits_used"] == 12
    assert found["storesync_zoho_credits_remaining"] == 10_000 - 12
    # With no recent snapshot, the newest one that has a budget still counts.
    assert credit_values([stopped, budgetless], now=5000.0)[
        "storesync_zoho_credits_used"] == 900


def test_pause_time_takes_latest() -> None:
    def paused(until: float | None) -> str:
        registry = CollectorRegistry()
        gauge = Gauge(metrics.CRM_PAUSED_UNTIL_NAME, "pause", ["reason"], registry=registry)
        if until is not None:
            gauge.labels(reason="credits").set(until)
        return metrics.take_snapshot(registry)

    combined = metrics._combine([(5.0, paused(900.0)), (6.0, paused(None)),
                                 (7.0, paused(300.0))],
                                frozenset({metrics.CRM_PAUSED_UNTIL_NAME}), now=8.0)
    assert [value for _, _, value in combined[metrics.CRM_PAUSED_UNTIL_NAME].values()] == [900.0]


def test_success_ratio_definition() -> None:
    samples = [("storesync_sync_records_total", {"object": "deals", "outcome": "synced"}, 9.0),
               ("storesync_sync_records_total", {"object": "contacts", "outcome": "synced"}, 1.0),
               ("storesync_sync_records_total",
                {"object": "products", "outcome": "dead_lettered"}, 2.0)]
    assert metrics.success_ratio(samples) == pytest.approx(10 / 12)
    assert metrics.success_ratio([]) is None


def help_texts() -> dict[str, str]:
    """Return the HELP text of each worker-side metric family, as /metrics shows it."""
    text = generate_latest(metrics.SYNC_REGISTRY).decode("utf-8")
    return {family.name: family.documentation for family in text_string_to_metric_families(text)}


def test_outcome_help_lists_stale() -> None:
    texts = help_texts()
    for outcome in ("synced", "stale", "dead_lettered"):
        assert outcome in texts["storesync_sync_records"], outcome
    for outcome in metrics.JOB_OUTCOMES:
        assert outcome in texts["storesync_jobs"], outcome


# --- Web and worker processes ----------------------------------------------------------------


def signed(source: str, topic: str, body: dict[str, Any], number: int
           ) -> tuple[bytes, dict[str, str]]:
    """Return the raw body and signed headers of delivery ``number``."""
    raw = encode_body(body)
    if source == "shopify":
        return raw, shopify_headers(raw, topic=topic, event_id=f"evt-metrics-{number}")
    if source == "woocommerce":
        return raw, woocommerce_headers(raw, topic=topic, delivery_id=f"wc-metrics-{number}")
    return raw, storefront_headers(raw, message_id=f"msg_metrics_{number}")


def empty_order(source: str) -> tuple[str, dict[str, Any]]:
    """Return (topic, body) of an order with an id and nothing else, which is quarantined."""
    if source == "shopify":
        return "orders/create", {"id": 77}
    if source == "woocommerce":
        return "order.created", {"id": 77}
    return "order_updated", {"event": "order_updated", "order": {"id": "ord_77"}}


def scrape(url: str) -> Samples:
    """Return every sample of the web's /metrics by name and labels."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    found: Samples = {}
    for metric in text_string_to_metric_families(response.text):
        for sample in metric.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def records_finished(samples: Samples) -> float:
    return sum(found for (name, _), found in samples.items()
               if name == "storesync_sync_records_total")


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], None]]:
    """Return a function that starts ``python -m storesync worker`` and ``flusher`` with an
    environment."""
    processes: list[subprocess.Popen[str]] = []
    log = (tmp_path / "worker.log").open("w")

    def start(environ: dict[str, str]) -> None:
        env = {key: found for key, found in os.environ.items() if key not in CLEARED_VARIABLES}
        env.update({**environ, "PYTHONPATH": str(SERVICE_DIR / "src"), "LOG_LEVEL": "WARNING"})
        for command in (["worker", "--workers", "2"], ["flusher"]):
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "storesync", *command], cwd=SERVICE_DIR,
                env=env, stdout=log, stderr=log, text=True))

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


def test_web_metrics_show_worker(tmp_path: Path, backend_env: dict[str, str],
                                 start_standin: Callable[..., Standin],
                                 worker_process: Callable[[dict[str, str]], None]) -> None:
    standin = start_standin()
    source = family()
    environ = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
               "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH), "HUBSPOT_BASE_URL": standin.url,
               "SYNC_BATCH_WINDOW_MS": "0", "SYNC_MAX_ATTEMPTS": "3", "STORE_ID": "test-store",
               "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
               "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
               "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET, **backend_env}
    # One 429 for the first contacts call, and a 400 that dead-letters the product.
    standin.fault(429, 1, "/crm/v3/objects/contacts")
    standin.fault(400, 1, "/crm/v3/objects/products")
    orders = [Order(850001, SARA, lines=(Line(96101, "OUD-ROYAL-50", 1, "149.50"),)),
              Order(850002, OMAR, lines=(Line(96102, "OUD-ROYAL-50", 1, "149.50"),))]
    deliveries = [(order.topic(source), order.body(source)) for order in orders]
    deliveries.append(empty_order(source))

    app = create_app(load_settings(environ))
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        before = scrape(url)
        for number, (topic, body) in enumerate(deliveries, start=1):
            raw, headers = signed(source, topic, body, number)
            response = client.post(f"/webhooks/{source}", content=raw, headers=headers)
            assert response.json()["status"] == "queued"
        worker_process(environ)
        deadline = time.monotonic() + WAIT_SECONDS
        samples = scrape(url)
        while time.monotonic() < deadline and not (
                records_finished(samples) >= 11 and value(samples, "storesync_jobs_total",
                                                          outcome="quarantined") >= 1):
            time.sleep(0.5)
            samples = scrape(url)
        # One more snapshot interval, so a count that is still moving would show.
        time.sleep(metrics.SNAPSHOT_INTERVAL_SECONDS * 2)
        samples = scrape(url)

    log = (tmp_path / "worker.log").read_text(encoding="utf-8")
    assert value(samples, "storesync_jobs_total", outcome="synced_later") == 2, log
    assert value(samples, "storesync_jobs_total", outcome="quarantined") == 1
    for obj in ("contacts", "deals", "line_items"):
        assert value(samples, "storesync_sync_records_total", object=obj, outcome="synced") == 2
    assert value(samples, "storesync_sync_records_total", object="association",
                 outcome="synced") == 4
    assert value(samples, "storesync_sync_records_total", object="products",
                 outcome="dead_lettered") == 1
    assert records_finished(samples) == 11
    assert value(samples, "storesync_sync_success_ratio") == pytest.approx(10 / 11)
    assert value(samples, "storesync_dead_letters") == 1
    operation = "contacts.batch_upsert"
    assert value(samples, "storesync_crm_rate_limited_total", operation=operation) == 1
    assert value(samples, "storesync_crm_responses_total", operation=operation,
                 status="429") == 1
    assert value(samples, "storesync_crm_responses_total", operation="products.batch_upsert",
                 status="400") == 1
    answered = sum(found for (name, labels), found in samples.items()
                   if name == "storesync_crm_responses_total"
                   and ("operation", operation) in labels)
    assert value(samples, "storesync_crm_request_seconds_count", operation=operation) == answered
    # The intake's own counters are still there, beside the worker's. They live in this
    # test process, which other tests share, so the test counts what it added.
    topic = deliveries[0][0]
    labels = {"source": source, "topic": topic, "outcome": "verified"}
    verified = value(samples, "storesync_deliveries_total", **labels) - value(
        before, "storesync_deliveries_total", **labels)
    assert verified == sum(1 for found, _ in deliveries if found == topic)
