"""Prometheus metrics of the intake and the worker, defined once in the default registry.

The web process serves them on ``GET /metrics``; the worker process serves its own
on ``WORKER_METRICS_PORT`` when that is set. Label values come from short fixed
lists, so a sender cannot create unbounded series: a topic the project does not map
is counted as ``other``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Outcomes of storesync_deliveries_total. Every POST to a webhook endpoint of an
# accepted platform counts as "received", then as "too_large", "ping", "rejected" or
# "verified". A verified delivery also counts as "duplicate", "quarantined" or
# "privacy_pending" (a Shopify privacy request kept for later) when it is one, and a
# failed queue write counts in ENQUEUE_FAILURES instead.
DELIVERY_OUTCOMES = ("received", "verified", "rejected", "duplicate", "quarantined", "too_large",
                     "ping", "privacy_pending")
JOB_OUTCOMES = ("synced_later", "skipped_stale", "quarantined", "nothing_to_do", "failed")
OTHER_TOPIC = "other"

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
JOBS = Counter(
    "storesync_jobs",
    "Worker jobs by outcome.",
    ["outcome"],
)
CRM_REQUEST_SECONDS = Histogram(
    "storesync_crm_request_seconds",
    "Duration of CRM API calls in seconds, by operation.",
    ["operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CRM_RESPONSES = Counter(
    "storesync_crm_responses",
    "CRM API responses by operation and HTTP status.",
    ["operation", "status"],
)
CRM_RATE_LIMITED = Counter(
    "storesync_crm_rate_limited",
    "CRM API calls answered with 429, by operation.",
    ["operation"],
)
SYNC_RECORDS = Counter(
    "storesync_sync_records",
    "Records written to the CRM or dead-lettered, by CRM object.",
    ["object", "outcome"],
)
UNIQUE_VALUE_CONFLICTS = Counter(
    "storesync_unique_value_conflicts",
    "Records written without a unique property because another record holds its value.",
    ["object", "property"],
)
DEAD_LETTERS = Gauge(
    "storesync_dead_letters",
    "Records waiting in the dead-letter store.",
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
