"""Prometheus metrics of the intake and the worker side, and how the web process shows both.

The intake's metrics live in the default registry of the web process, which serves
them on ``GET /metrics``. The worker side's metrics (jobs, CRM calls, 429s, records
written or dead-lettered) are counted in the worker process, in ``SYNC_REGISTRY``.
To show them on the web's ``/metrics`` too, across processes and machines, each
worker process writes a snapshot of ``SYNC_REGISTRY`` to the shared backend every
``SNAPSHOT_INTERVAL_SECONDS`` and when it stops: a row per process in the state
file, or a field per process in a Redis hash when ``REDIS_URL`` is set. At each
scrape, :class:`SharedSyncCollector` reads every snapshot and adds them up:

* counters and histogram buckets are summed over all snapshots, including those of
  processes that have stopped, so a restarted worker never makes a counter go down;
* gauges take the value of the newest snapshot, except those of :data:`CREDIT_GAUGES`
  and ``storesync_crm_paused_until_timestamp_seconds``. ``storesync_dead_letters`` is
  counted from the state file just before each snapshot, by every process that
  publishes one, so the newest snapshot contains the newest count. A snapshot without
  that count (a publisher that has no state file, or a count that failed) leaves the
  gauge out rather than publishing 0 over the real count.
  Every process that builds a Zoho client keeps a credit budget, but only the one that
  spends (the flusher) updates it, so a newer snapshot of an idle process would hide the
  count. Among snapshots written in the last ``CREDIT_SNAPSHOT_MAX_AGE_SECONDS`` that
  have a budget (a limit above 0), used and limit take the highest value and remaining
  the lowest; the pause time and the reconciliation's last success take the latest
  over all snapshots;
* ``storesync_sync_success_ratio`` is computed from the summed
  ``storesync_sync_records_total``: records written to the CRM divided by records
  written plus records dead-lettered, over the service's lifetime. It is left out
  while no record has finished either way.

A snapshot replaces the same process's previous one, so a snapshot written twice
counts once. A one-off command (``reconcile``, ``subscriptions``) writes one snapshot
of its store job metrics when it ends (:func:`publish_once`), so a manual run counts
as the worker's scheduled run does. Values reach ``/metrics`` up to
``SNAPSHOT_INTERVAL_SECONDS`` late.
Label values come from short fixed lists, so a sender cannot create unbounded
series: a topic the project does not map is counted as ``other``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import redis
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Metric

from .db import Database
from .sync_store import SyncStore

log = logging.getLogger(__name__)

# Outcomes of storesync_deliveries_total. Every POST to a webhook endpoint of an
# accepted platform counts as "received", then as "too_large", "ping", "rejected" or
# "verified". A verified delivery also counts as "duplicate", "quarantined" or
# "privacy_pending" (a Shopify privacy request queued for the worker) when it is one, and a
# failed queue write counts in ENQUEUE_FAILURES instead. Events of POST /pixel/shopify
# count under the source "shopify_pixel": "received", then "too_large", "rejected" (an
# Origin not allowed), "invalid" (a 400), "ignored" (an event name not mapped) or
# "accepted", and an accepted event also counts as "duplicate" when it is one.
DELIVERY_OUTCOMES = ("received", "verified", "rejected", "duplicate", "quarantined", "too_large",
                     "ping", "privacy_pending", "invalid", "ignored", "accepted")
JOB_OUTCOMES = ("synced_later", "skipped_stale", "skipped_redacted", "quarantined",
                "nothing_to_do", "privacy_stored", "failed")
OTHER_TOPIC = "other"
SNAPSHOT_INTERVAL_SECONDS = 1.0
SUCCESS_RATIO = "storesync_sync_success_ratio"
SNAPSHOT_COMPONENT = "sync_metrics"
SNAPSHOT_SCHEMA = (
    "CREATE TABLE sync_metric_snapshots ("
    " process TEXT PRIMARY KEY, updated_at REAL NOT NULL, samples TEXT NOT NULL)",
)

# The worker side's metrics; see the module docstring for how the web process shows them.
SYNC_REGISTRY = CollectorRegistry()

DELIVERIES = Counter(
    "storesync_deliveries",
    "Webhook deliveries by source, topic and outcome.",
    ["source", "topic", "outcome"],
)
ENQUEUE_FAILURES = Counter(
    "storesync_enqueue_failures",
    "Verified deliveries answered with 503 because the queue or state store could not be written.",
    ["source"],
)
QUEUE_DEPTH = Gauge(
    "storesync_queue_depth",
    "Jobs waiting in the queue, read from the queue when scraped.",
)
FLUSHER_HEARTBEAT_AGE = Gauge(
    "storesync_flusher_heartbeat_age_seconds",
    "Seconds since the HubSpot flusher last wrote its heartbeat, read when scraped; -1 when "
    "no flusher has written one or it cannot be read.",
)
JOBS = Counter(
    "storesync_jobs",
    "Worker jobs by outcome: synced_later (records went to the outbox), skipped_stale (every "
    "record was older than the state already seen), skipped_redacted (the customer or shop "
    "was redacted after the delivery arrived), quarantined, nothing_to_do, privacy_stored (a "
    "Shopify privacy request stored for the privacy thread) or failed.",
    ["outcome"],
    registry=SYNC_REGISTRY,
)
CRM_REQUEST_SECONDS = Histogram(
    "storesync_crm_request_seconds",
    "Duration of CRM API calls in seconds, by operation.",
    ["operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=SYNC_REGISTRY,
)
CRM_RESPONSES = Counter(
    "storesync_crm_responses",
    "CRM API responses by operation and HTTP status.",
    ["operation", "status"],
    registry=SYNC_REGISTRY,
)
CRM_RATE_LIMITED = Counter(
    "storesync_crm_rate_limited",
    "CRM API calls answered with 429, by operation.",
    ["operation"],
    registry=SYNC_REGISTRY,
)
SYNC_RECORDS = Counter(
    "storesync_sync_records",
    "Records by CRM object and outcome: synced (written to the CRM), stale (not written "
    "because the target already holds a newer state of the record) or dead_lettered.",
    ["object", "outcome"],
    registry=SYNC_REGISTRY,
)
UNIQUE_VALUE_CONFLICTS = Counter(
    "storesync_unique_value_conflicts",
    "Records written without a unique property because another record holds its value.",
    ["object", "property"],
    registry=SYNC_REGISTRY,
)
DEAD_LETTERS_NAME = "storesync_dead_letters"
DEAD_LETTERS = Gauge(
    DEAD_LETTERS_NAME,
    "Records waiting in the dead-letter store.",
    registry=SYNC_REGISTRY,
)
# Playbook timers (storesync.playbooks) and the direct WhatsApp sender.
PLAYBOOK_TIMERS = Counter(
    "storesync_playbook_timers",
    "Playbook timers by kind and outcome: scheduled, fired, cancelled, skipped_consent, "
    "deferred (quiet hours), completed (the checkout became an order), disabled, send_failed "
    "or failed (tried again later).",
    ["kind", "outcome"],
    registry=SYNC_REGISTRY,
)
PLAYBOOK_MESSAGES = Counter(
    "storesync_playbook_messages",
    "Messages the service sent itself, by channel and outcome: sent or failed.",
    ["channel", "outcome"],
    registry=SYNC_REGISTRY,
)
# Zoho CRM's API credits per rolling 24 hours, as storesync.zoho_credits counts them.
ZOHO_CREDITS_USED = Gauge(
    "storesync_zoho_credits_used",
    "Zoho API credits this service spent in the last 24 hours.",
    registry=SYNC_REGISTRY,
)
ZOHO_CREDITS_REMAINING = Gauge(
    "storesync_zoho_credits_remaining",
    "Zoho API credits left in the rolling 24 hours (the lower of the own count and Zoho's).",
    registry=SYNC_REGISTRY,
)
ZOHO_CREDITS_LIMIT = Gauge(
    "storesync_zoho_credits_limit",
    "Zoho API credits per rolling 24 hours of the configured edition.",
    registry=SYNC_REGISTRY,
)
CRM_PAUSED_UNTIL = Gauge(
    "storesync_crm_paused_until_timestamp_seconds",
    "Unix time until which the flusher holds CRM calls, by reason: credits (Zoho's API "
    "credits are used up), daily_limit (HubSpot's daily limit) or auth (a rejected token). "
    "The flusher is paused while this time is in the future.",
    ["reason"],
    registry=SYNC_REGISTRY,
)
CRM_PARKED = Gauge(
    "storesync_crm_parked",
    "1 while the flusher holds every CRM call because the CRM rejected the service's "
    "settings (reason settings, such as the wrong ZOHO_DC), until the settings are fixed "
    "and the service restarts; 0 once a flusher has started draining again.",
    ["reason"],
    registry=SYNC_REGISTRY,
)
# The function that combines each credit gauge over processes (see the module notes).
ZOHO_CREDITS_LIMIT_NAME = "storesync_zoho_credits_limit"
CREDIT_GAUGES: dict[str, Callable[[Iterable[float]], float]] = {
    "storesync_zoho_credits_used": max,
    "storesync_zoho_credits_remaining": min,
    ZOHO_CREDITS_LIMIT_NAME: max,
}
# A process writes a snapshot every SNAPSHOT_INTERVAL_SECONDS, so an older one is from a
# process that stopped. Its count of the rolling 24 hours no longer moves.
CREDIT_SNAPSHOT_MAX_AGE_SECONDS = 60.0
CRM_PAUSED_UNTIL_NAME = "storesync_crm_paused_until_timestamp_seconds"
RECONCILE_LAST_SUCCESS_NAME = "storesync_reconcile_last_success_timestamp_seconds"
# Timestamps where the latest over all snapshots counts, because a process that stopped
# or ran a job long ago keeps writing an older value.
LATEST_TIME_GAUGES = frozenset({CRM_PAUSED_UNTIL_NAME, RECONCILE_LAST_SUCCESS_NAME})
ZOHO_CREDIT_PAUSES = Counter(
    "storesync_zoho_credit_pauses",
    "Zoho calls held back to spread the last credits of the 24-hour budget.",
    registry=SYNC_REGISTRY,
)


# Children of DELIVERIES by label values. labels() validates and locks on every call,
# which costs more than the increment, so each child is looked up once. The labels
# are bounded, so the dict is too.
_delivery_children: dict[tuple[str, str, str], Any] = {}


def count_delivery(source: str, topic: str, outcome: str) -> None:
    """Add one to ``storesync_deliveries_total``; ``topic`` must already be a bounded label."""
    labels = (source, topic, outcome)
    child = _delivery_children.get(labels)
    if child is None:
        child = _delivery_children.setdefault(
            labels, DELIVERIES.labels(source=source, topic=topic, outcome=outcome))
    child.inc()


def watch_queue_depth(read_depth: Callable[[], int]) -> None:
    """Make ``storesync_queue_depth`` call ``read_depth`` at each scrape.

    A failing read reports -1, so a broken queue shows on the dashboard instead of
    failing the whole scrape.
    """

    def depth() -> float:
        try:
            return float(read_depth())
        except Exception:  # any storage error; it must not break /metrics
            return -1.0

    QUEUE_DEPTH.set_function(depth)


def watch_flusher_heartbeat(read_age: Callable[[], float | None]) -> None:
    """Make ``storesync_flusher_heartbeat_age_seconds`` call ``read_age`` at each scrape.

    ``read_age`` returns None when no heartbeat exists; that and a failing read report -1.
    """

    def age() -> float:
        try:
            found = read_age()
        except Exception:  # any storage error; it must not break /metrics
            return -1.0
        return -1.0 if found is None else found

    FLUSHER_HEARTBEAT_AGE.set_function(age)


# --- Worker-side metrics shared through the backend ---------------------------------------

# One sample of a snapshot: sample name, labels and value.
SnapshotSample = tuple[str, dict[str, str], float]


class SnapshotStore(Protocol):
    """Storage of the worker processes' metric snapshots: the state file or Redis."""

    def write(self, process: str, updated_at: float, samples: str) -> None:
        """Replace the snapshot of ``process`` with ``samples`` (JSON)."""

    def read(self) -> list[tuple[float, str]]:
        """Return every snapshot as (time written, samples JSON)."""

    def close(self) -> None:
        """Close the store's connections."""


class SqliteSnapshots:
    """Snapshots in the ``sync_metric_snapshots`` table of the state file."""

    def __init__(self, path: Path) -> None:
        # A snapshot lost in a power cut is replaced a second later, so commits skip fsync.
        self.database = Database(path, synchronous="NORMAL")
        self.database.migrate(SNAPSHOT_COMPONENT, SNAPSHOT_SCHEMA)

    def write(self, process: str, updated_at: float, samples: str) -> None:
        """Replace the snapshot of ``process``."""
        with self.database.transaction() as conn:
            conn.execute("INSERT INTO sync_metric_snapshots (process, updated_at, samples) "
                         "VALUES (?, ?, ?) ON CONFLICT (process) DO UPDATE SET "
                         "updated_at = excluded.updated_at, samples = excluded.samples",
                         (process, updated_at, samples))

    def read(self) -> list[tuple[float, str]]:
        """Return every snapshot."""
        with self.database.connection() as conn:
            rows = conn.execute("SELECT updated_at, samples FROM sync_metric_snapshots")
            return [(float(row[0]), str(row[1])) for row in rows]

    def close(self) -> None:
        """Close the connection."""
        self.database.close()


class RedisSnapshots:
    """Snapshots in the Redis hash ``<REDIS_KEY_PREFIX>:sync-metrics``, a field per process."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}:sync-metrics"

    def write(self, process: str, updated_at: float, samples: str) -> None:
        """Replace the snapshot of ``process``."""
        self.client.hset(self.key, process, json.dumps({"updated_at": updated_at,
                                                        "samples": samples}))

    def read(self) -> list[tuple[float, str]]:
        """Return every snapshot."""
        found = []
        for value in self.client.hvals(self.key):
            entry = json.loads(value)
            found.append((float(entry["updated_at"]), str(entry["samples"])))
        return found

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def open_snapshot_store(settings: Any) -> SnapshotStore:
    """Open the snapshot store of the backend ``settings`` names: Redis, else the state file.

    Raises:
        sqlite3.Error or OSError: the state file cannot be opened.
    """
    if settings.redis_url:
        return RedisSnapshots(redis.Redis.from_url(settings.redis_url),
                              settings.redis_key_prefix)
    return SqliteSnapshots(settings.state_path)


def take_snapshot(registry: CollectorRegistry = SYNC_REGISTRY,
                  leave_out: frozenset[str] = frozenset()) -> str:
    """Return the registry's samples as JSON, by metric family, without ``leave_out``.

    ``_created`` samples are left out: they are creation times, which cannot be summed.
    """
    families: dict[str, list[SnapshotSample]] = {}
    for family in registry.collect():
        if family.name in leave_out:
            continue
        families[family.name] = [(sample.name, dict(sample.labels), float(sample.value))
                                 for sample in family.samples
                                 if not sample.name.endswith("_created")]
    return json.dumps(families, separators=(",", ":"), sort_keys=True)


def _combine(snapshots: Iterable[tuple[float, str]], gauges: frozenset[str],
             now: float) -> dict[str, dict[tuple[str, str], SnapshotSample]]:
    """Sum counter and histogram samples over all snapshots; gauges take the newest value.

    The credit gauges and the timestamps of ``LATEST_TIME_GAUGES`` are combined as the
    module's notes describe.
    """
    combined: dict[str, dict[tuple[str, str], SnapshotSample]] = {}
    ordered = sorted(((updated_at, json.loads(text)) for updated_at, text in snapshots),
                     key=lambda item: item[0])
    for _, families in ordered:
        for family, samples in families.items():
            into = combined.setdefault(family, {})
            for name, labels, value in samples:
                key = (name, json.dumps(labels, sort_keys=True))
                if family in LATEST_TIME_GAUGES and key in into:
                    into[key] = (name, labels, max(into[key][2], float(value)))
                elif family in gauges or key not in into:
                    into[key] = (name, labels, float(value))
                else:
                    into[key] = (name, labels, into[key][2] + float(value))
    combined.update(_combine_credits(ordered, now))
    return combined


def _combine_credits(ordered: list[tuple[float, dict[str, list[SnapshotSample]]]],
                     now: float) -> dict[str, dict[tuple[str, str], SnapshotSample]]:
    """Return the credit gauges of the processes that keep a budget (see the module notes).

    Without a recent snapshot that has a budget, the newest one that has a budget counts.
    """
    def value(families: dict[str, list[SnapshotSample]], family: str) -> float:
        return sum(float(sample[2]) for sample in families.get(family, []))

    with_budget = [families for _, families in ordered
                   if value(families, ZOHO_CREDITS_LIMIT_NAME) > 0]
    recent = [families for updated_at, families in ordered
              if value(families, ZOHO_CREDITS_LIMIT_NAME) > 0
              and now - updated_at <= CREDIT_SNAPSHOT_MAX_AGE_SECONDS]
    chosen = recent or with_budget[-1:]
    if not chosen:
        return {}
    found: dict[str, dict[tuple[str, str], SnapshotSample]] = {}
    for family, pick in CREDIT_GAUGES.items():
        number = pick(value(families, family) for families in chosen)
        found[family] = {(family, "{}"): (family, {}, number)}
    return found


class SharedSyncCollector:
    """Serves the worker side's metrics, summed from every process's snapshot, at scrape time.

    It reads nothing until :func:`watch_sync_metrics` gives it a store. A store that
    cannot be read leaves these metrics out of that scrape and logs a WARNING; the
    intake's own metrics are still served.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.read: Callable[[], list[tuple[float, str]]] | None = None
        self.clock = clock

    def describe(self) -> list[Metric]:
        """Return no descriptions, so registering never runs a scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield the summed metric families and the sync success ratio."""
        read = self.read
        if read is None:
            return
        try:
            snapshots = read()
        except Exception as error:  # a broken backend must not fail the whole scrape
            log.warning("worker metrics could not be read", extra={"error": repr(error)})
            return
        definitions = list(SYNC_REGISTRY.collect())
        gauges = frozenset(family.name for family in definitions if family.type == "gauge")
        combined = _combine(snapshots, gauges, self.clock())
        for definition in definitions:
            family = Metric(definition.name, definition.documentation, definition.type)
            for name, labels, value in combined.get(definition.name, {}).values():
                family.add_sample(name, labels, value)
            yield family
        ratio = success_ratio(combined.get("storesync_sync_records", {}).values())
        if ratio is not None:
            family = Metric(SUCCESS_RATIO, "Records written to the CRM divided by records "
                            "written plus records dead-lettered, over all worker processes; "
                            "stale records count in neither.", "gauge")
            family.add_sample(SUCCESS_RATIO, {}, ratio)
            yield family


def success_ratio(samples: Iterable[SnapshotSample]) -> float | None:
    """Return written / (written + dead-lettered) from ``storesync_sync_records_total`` samples.

    Returns:
        None while no record has been written or dead-lettered.
    """
    totals = {"synced": 0.0, "dead_lettered": 0.0}
    for name, labels, value in samples:
        outcome = labels.get("outcome", "")
        if name.endswith("_total") and outcome in totals:
            totals[outcome] += value
    finished = totals["synced"] + totals["dead_lettered"]
    return None if finished == 0 else totals["synced"] / finished


SHARED_SYNC = SharedSyncCollector()
REGISTRY.register(SHARED_SYNC)


def watch_sync_metrics(store: SnapshotStore) -> None:
    """Serve the worker side's metrics from ``store`` in this process's ``/metrics``."""
    SHARED_SYNC.read = store.read


def process_name() -> str:
    """Return a name for this process's snapshot, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class SnapshotPublisher:
    """Writes this process's ``SYNC_REGISTRY`` snapshot to a store, now and then and at stop.

    ``count_dead_letters`` reads the dead letters from the state file. It runs before
    each snapshot and sets ``storesync_dead_letters``. Without it, or when it fails,
    the snapshot leaves the gauge out, so a process that never counted (such as a
    flusher waiting for the lease) cannot publish 0 over the real count.
    """

    def __init__(self, store: SnapshotStore, *, interval: float = SNAPSHOT_INTERVAL_SECONDS,
                 registry: CollectorRegistry = SYNC_REGISTRY,
                 clock: Callable[[], float] = time.time,
                 count_dead_letters: Callable[[], int] | None = None) -> None:
        self.store = store
        self.interval = interval
        self.registry = registry
        self.clock = clock
        self.count_dead_letters = count_dead_letters
        self.process = process_name()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _uncounted(self) -> frozenset[str]:
        """Set the dead-letter gauge from the state file; return the families to leave out."""
        if self.count_dead_letters is None:
            return frozenset({DEAD_LETTERS_NAME})
        try:
            DEAD_LETTERS.set(self.count_dead_letters())
        except Exception as error:  # e.g. a locked state file; the next snapshot counts again
            log.warning("dead letters could not be counted", extra={"error": repr(error)})
            return frozenset({DEAD_LETTERS_NAME})
        return frozenset()

    def publish(self) -> None:
        """Write one snapshot; a failure is logged and the next interval tries again."""
        try:
            leave_out = self._uncounted()
            self.store.write(self.process, self.clock(), take_snapshot(self.registry, leave_out))
        except Exception as error:  # the backend may be down for a while; metrics can wait
            log.warning("worker metrics could not be written", extra={"error": repr(error)})

    def start(self) -> Callable[[], None]:
        """Publish every ``interval`` seconds in a thread; return the function that stops it."""
        def run() -> None:
            while not self._stop.wait(self.interval):
                self.publish()

        self._thread = threading.Thread(target=run, name="metrics-snapshots", daemon=True)
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        """Stop the thread, write a last snapshot and close the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.publish()
        self.store.close()


def start_publisher(settings: Any) -> Callable[[], None]:
    """Publish this worker process's metrics to the shared backend; return the stop function.

    Each snapshot carries the dead letters counted from the state file at that moment.
    The process's own ``/metrics`` (``WORKER_METRICS_PORT``) then serves the summed
    values too, the same as the web's.
    """
    store = open_snapshot_store(settings)
    watch_sync_metrics(store)
    dead_letters = SyncStore(Database(settings.state_path, synchronous="NORMAL"))
    stop_publishing = SnapshotPublisher(
        store, count_dead_letters=dead_letters.dead_letter_count).start()

    def stop() -> None:
        stop_publishing()
        dead_letters.db.close()

    return stop


# --- Store API jobs (storesync.reconcile, storesync.subscriptions) -------------------------

RECONCILE_MISSED_ORDERS = Counter(
    "storesync_reconcile_missed_orders",
    "Orders reconciliation found that no webhook had delivered, by source.",
    ["source"], registry=SYNC_REGISTRY,
)
RECONCILE_LAST_SUCCESS = Gauge(
    RECONCILE_LAST_SUCCESS_NAME,
    "Unix time of the last reconciliation run that read every page, by source.",
    ["source"], registry=SYNC_REGISTRY,
)
RECONCILE_FAILURES = Counter(
    "storesync_store_api_job_failures",
    "Reconciliation or subscription check runs that failed on the store API, by source.",
    ["source"], registry=SYNC_REGISTRY,
)
SUBSCRIPTIONS_REPAIRED = Counter(
    "storesync_webhook_subscriptions_repaired",
    "Webhook subscriptions found missing or inactive and then created or re-activated.",
    ["source", "action"], registry=SYNC_REGISTRY,
)

# The families a one-off store job command publishes; see publish_once.
STORE_JOB_FAMILIES = frozenset({
    "storesync_reconcile_missed_orders", RECONCILE_LAST_SUCCESS_NAME,
    "storesync_store_api_job_failures", "storesync_webhook_subscriptions_repaired",
})


def publish_once(settings: Any, families: Iterable[str] = STORE_JOB_FAMILIES) -> None:
    """Write one snapshot of ``families`` of this process, for a command that then exits.

    Only the named families go in: the command's other metrics are zero and, as newer
    gauges, would hide the worker's values. A failure is logged, because the command's
    own work is done by then.
    """
    names = frozenset(families)
    try:
        store = open_snapshot_store(settings)
    except (OSError, sqlite3.Error, redis.RedisError) as error:
        log.warning("job metrics could not be written", extra={"error": repr(error)})
        return
    samples = {name: values for name, values in json.loads(take_snapshot()).items()
               if name in names}
    try:
        store.write(process_name(), time.time(),
                    json.dumps(samples, separators=(",", ":"), sort_keys=True))
    except Exception as error:  # the backend may be down; the command's work is done
        log.warning("job metrics could not be written", extra={"error": repr(error)})
    finally:
        store.close()
