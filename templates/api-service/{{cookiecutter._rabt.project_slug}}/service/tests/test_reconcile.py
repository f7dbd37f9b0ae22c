"""Reconciliation against the Shopify and WooCommerce stand-ins: missed orders are queued
once, the high-water mark survives a restart, pages and throttling are handled, and the
worker drops a webhook that arrives after reconciliation delivered the same change.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake_support import sample_value
from store_support import (
    RECON_EMAIL,
    SHOP_DOMAIN,
    FakeSleep,
    RecordingQueue,
    Stores,
    redact_recon_customer,
    shopify_order,
    woocommerce_order,
)
from storesync import metrics
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.reconcile import Marks, RunResult, reconcile_all
from storesync.settings import Settings
from storesync.store_payloads import shopify_order as shopify_webhook_body
from storesync.worker import JobOutcome, build_context, handle_delivery
from sync_support import family

PLATFORMS = ("shopify", "woocommerce")
# Seeded orders changed two days ago, so the tests raise the first run's look-back to 72 hours.
CHANGED = datetime.fromtimestamp(int(time.time()) - 2 * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def seed(stores: Stores, platform: str, numbers: range, when: str) -> None:
    """Seed orders that changed at ``when`` (UTC, no offset)."""
    if platform == "shopify":
        stores.shopify.seed([shopify_order(number, f"{when}Z") for number in numbers])
    else:
        stores.woocommerce.seed(orders=[woocommerce_order(number, when) for number in numbers])


def run(settings: Settings, queue: RecordingQueue,
        sleep: FakeSleep | None = None) -> list[RunResult]:
    """Run reconciliation once, as the worker's store jobs do."""
    db = Database(settings.state_path)
    try:
        return reconcile_all(settings, queue.enqueue_once, db, sleep=sleep or FakeSleep())
    finally:
        db.close()


def missed(platform: str) -> float:
    return sample_value(metrics.SYNC_REGISTRY, "storesync_reconcile_missed_orders_total",
                        {"source": platform})


@pytest.mark.parametrize("platform", PLATFORMS)
def test_reconcile_queues_each_change_once(stores: Stores, tmp_path: Path, platform: str,
                                           recording_queue: Callable[..., RecordingQueue]
                                           ) -> None:
    seed(stores, platform, range(1001, 1004), CHANGED)
    settings = stores.settings(tmp_path, platform,
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    queue = recording_queue(settings)
    before = missed(platform)

    first = run(settings, queue)
    second = run(settings, queue)

    assert [result.read for result in first] == [3]
    assert [result.queued for result in first] == [3]
    assert [result.missed_orders for result in first] == [3]
    assert missed(platform) - before == 3
    ids = sorted(delivery.delivery_id for delivery in queue.take())
    assert ids[0] == f"reconcile:order:1001:{CHANGED}" + ("Z" if platform == "shopify" else "")
    # The second run reads from the mark (no overlap here) and queues nothing again.
    assert [result.queued for result in second] == [0]
    assert missed(platform) - before == 3


@pytest.mark.parametrize("platform", PLATFORMS)
def test_replay_is_duplicate(stores: Stores, tmp_path: Path, platform: str,
                             recording_queue: Callable[..., RecordingQueue]) -> None:
    seed(stores, platform, range(1001, 1003), CHANGED)
    # A long overlap makes the second run read the same changes again.
    settings = stores.settings(tmp_path, platform, RECONCILE_OVERLAP_SECONDS="86400",
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    queue = recording_queue(settings)

    run(settings, queue)
    again = run(settings, queue)

    assert [result.read for result in again] == [2]
    assert [result.queued for result in again] == [0]
    assert len(queue.take()) == 2


@pytest.mark.parametrize("platform", PLATFORMS)
def test_mark_survives_restart(stores: Stores, tmp_path: Path, platform: str,
                               recording_queue: Callable[..., RecordingQueue]) -> None:
    seed(stores, platform, range(1001, 1003), CHANGED)
    settings = stores.settings(tmp_path, platform,
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    run(settings, recording_queue(settings))
    shop = SHOP_DOMAIN if platform == "shopify" else f"{stores.woocommerce_url}/"
    db = Database(settings.state_path)
    try:
        mark = Marks(db).get(platform, shop, "changes")
    finally:
        db.close()
    assert mark == f"{CHANGED}Z"

    # A new process (new queue, new database connection) starts from the stored mark.
    if platform == "shopify":
        stores.shopify.put_order({"legacyResourceId": "1002", "note": "gift wrap"})
    else:
        stores.woocommerce.put_order({"id": 1002, "customer_note": "gift wrap"})
    fresh = recording_queue(settings)
    results = run(settings, fresh)

    assert [result.read for result in results] == [1]
    assert [delivery.delivery_id.split(":")[2] for delivery in fresh.take()] == ["1002"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_reconcile_reads_every_page(stores: Stores, tmp_path: Path, platform: str,
                                    recording_queue: Callable[..., RecordingQueue]) -> None:
    seed(stores, platform, range(2001, 2251), CHANGED)
    settings = stores.settings(tmp_path, platform,
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    queue = recording_queue(settings)

    results = run(settings, queue)

    assert [result.read for result in results] == [250]
    assert len({delivery.delivery_id for delivery in queue.take()}) == 250
    if platform == "shopify":
        assert stores.shopify_calls("orders") == 3
    else:
        pages = [count for (method, path, status), count in stores.woocommerce.calls.items()
                 if method == "GET" and path.endswith("/orders") and status == 200]
        assert pages == [3]


def test_shopify_throttled_then_retried(stores: Stores, tmp_path: Path,
                                        recording_queue: Callable[..., RecordingQueue]) -> None:
    seed(stores, "shopify", range(1001, 1003), CHANGED)
    settings = stores.settings(tmp_path, "shopify",
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    stores.http.post(f"{stores.shopify_url}/_standin/throttle", json={"count": 2})
    sleep = FakeSleep()

    results = run(settings, recording_queue(settings), sleep)

    assert [result.read for result in results] == [2]
    assert stores.shopify_calls("throttled") == 2
    assert len(sleep.waits) == 2
    assert all(wait >= 1.0 for wait in sleep.waits)


def test_shopify_bucket_waits_before_query(stores: Stores, tmp_path: Path,
                                           recording_queue: Callable[..., RecordingQueue]
                                           ) -> None:
    seed(stores, "shopify", range(1001, 1003), CHANGED)
    with stores.shopify.lock:
        stores.shopify.bucket.available = 0.0
        stores.shopify.bucket.updated = time.time() + 3600  # no refill during the test
    settings = stores.settings(tmp_path, "shopify",
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    sleep = FakeSleep()

    results = run(settings, recording_queue(settings), sleep)

    # The empty bucket throttles the first query. The client then waits for the requested
    # cost at the restore rate the THROTTLED response reports, and gives up after its attempts.
    assert results == []
    assert len(sleep.waits) >= 2
    assert sleep.waits[0] == pytest.approx(202 / 100, rel=0.01)


def test_store_down_keeps_mark(stores: Stores, tmp_path: Path,
                               recording_queue: Callable[..., RecordingQueue],
                               caplog: pytest.LogCaptureFixture) -> None:
    seed(stores, "woocommerce", range(1001, 1003), CHANGED)
    settings = stores.settings(tmp_path, "woocommerce",
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    stores.http.post(f"{stores.woocommerce_url}/_standin/faults",
                     json={"status": 503, "count": 10})
    caplog.set_level(logging.ERROR, logger="storesync.reconcile")

    results = run(settings, recording_queue(settings))

    assert results == []
    assert any("reconciliation failed" in record.getMessage() for record in caplog.records)
    db = Database(settings.state_path)
    try:
        assert Marks(db).get("woocommerce", f"{stores.woocommerce_url}/", "changes") is None
    finally:
        db.close()


def test_missed_order_alert_logged(stores: Stores, tmp_path: Path,
                                   recording_queue: Callable[..., RecordingQueue],
                                   caplog: pytest.LogCaptureFixture) -> None:
    seed(stores, "shopify", range(1001, 1002), CHANGED)
    settings = stores.settings(tmp_path, "shopify",
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    caplog.set_level(logging.ERROR, logger="storesync.reconcile")

    run(settings, recording_queue(settings))

    alerts = [record for record in caplog.records
              if record.getMessage() == "reconciliation found an order the webhooks missed"]
    assert len(alerts) == 1
    assert alerts[0].levelno == logging.ERROR
    assert alerts[0].__dict__["order_id"] == "1001"
    assert "reem.recon@example.com" not in caplog.text


# --- through the worker of this project ------------------------------------------------------


def _webhook(platform: str, stores: Stores, number: int, delivery_id: str) -> Delivery:
    """The webhook the store would have sent for the order's current state."""
    if platform == "shopify":
        node = next(item for item in stores.shopify.all_orders()
                    if item["legacyResourceId"] == str(number))
        body, topic, shop = shopify_webhook_body(node), "orders/updated", SHOP_DOMAIN
    else:
        body = stores.woocommerce.order(number) or {}
        topic, shop = "order.updated", f"{stores.woocommerce_url}/"
    return Delivery(delivery_id=delivery_id, source=platform, topic=topic, shop=shop,
                    received_at=datetime.now(UTC).isoformat(), triggered_at=None,
                    body=json.dumps(body, ensure_ascii=False))


def test_worker_recovers_missed_orders(stores: Stores, tmp_path: Path,
                                       recording_queue: Callable[..., RecordingQueue]) -> None:
    platform = family()
    if platform not in PLATFORMS:
        pytest.skip(f"this project receives {platform} deliveries, which have no store API")
    seed(stores, platform, range(1001, 1004), CHANGED)
    settings = stores.settings(tmp_path, platform, project_spec=True,
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    context = build_context(settings, Database(settings.state_path))
    # The webhook of order 1001 arrived; those of 1002 and 1003 never did.
    assert handle_delivery(_webhook(platform, stores, 1001, "event-1001"),
                           context) == JobOutcome.SYNCED_LATER
    queue = recording_queue(settings)

    results = run(settings, queue)
    outcomes = [handle_delivery(delivery, context) for delivery in queue.take()]
    late = handle_delivery(_webhook(platform, stores, 1002, "event-1002-late"), context)
    again = run(settings, queue)

    assert [result.missed_orders for result in results] == [2]
    assert sorted(outcomes) == sorted([JobOutcome.SKIPPED_STALE, JobOutcome.SYNCED_LATER,
                                       JobOutcome.SYNCED_LATER])
    # The webhook that arrives after reconciliation carries the same version: stale.
    assert late == JobOutcome.SKIPPED_STALE
    assert [result.queued for result in again] == [0]
    deals = context.store.pending_count("deals")
    assert deals == 3


def test_reconciled_customer_consent_recorded(
        stores: Stores, tmp_path: Path, recording_queue: Callable[..., RecordingQueue]) -> None:
    """From API 2025-01 customer webhooks carry no consent; reconciliation reads it."""
    if family() != "shopify":
        pytest.skip("the consent of reconciled customers is read from Shopify's GraphQL")
    stores.shopify.seed(customers=[{
        "legacyResourceId": "7300000000501", "email": "consent.recon@example.com",
        "phone": "+966500000031", "firstName": "ريم", "lastName": "المطابقة",
        "createdAt": f"{CHANGED}Z", "updatedAt": f"{CHANGED}Z",
        "emailMarketingConsent": {"marketingState": "UNSUBSCRIBED",
                                  "marketingOptInLevel": "SINGLE_OPT_IN",
                                  "consentUpdatedAt": f"{CHANGED}Z"}}])
    settings = stores.settings(tmp_path, "shopify", project_spec=True,
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    context = build_context(settings, Database(settings.state_path))
    assert context.consent is not None
    if "email" not in {rule.channel for rule in context.consent.rules}:
        pytest.skip("this project keeps no email consent")
    queue = recording_queue(settings)

    run(settings, queue)
    for delivery in queue.take():
        handle_delivery(delivery, context)

    with context.store.db.reading() as reader:
        [(key,)] = reader.execute("SELECT contact_key FROM sync_identity WHERE kind = 'email'"
                                  " AND value = ?", ("consent.recon@example.com",)).fetchall()
    current = context.consent.store.current(key, "email", at=float("inf"))
    assert current is not None
    assert (current.state, current.source) == ("withdrawn", "shopify")



def _utc(moment: float) -> str:
    """Return a time as the seeds write it: ISO 8601 UTC without an offset."""
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_reconcile_skips_records_made_before_a_redaction(
        stores: Stores, tmp_path: Path, recording_queue: Callable[..., RecordingQueue],
        caplog: pytest.LogCaptureFixture) -> None:
    """The store still returns a redacted customer's old order, and reconciliation reads it
    after the redaction. The order was made before the redaction, so nothing of it syncs."""
    platform = family()
    if platform not in PLATFORMS:
        pytest.skip(f"this project receives {platform} deliveries, which have no store API")
    now = time.time()
    redacted_at = now - 86400
    touched = _utc(now - 3600)
    if platform == "shopify":
        shop = SHOP_DOMAIN
        # Order 1001 was made two days ago and changed an hour ago; 1002 is a new order
        # of the same customer, placed an hour ago.
        stores.shopify.seed(
            [shopify_order(1001, f"{touched}Z", created_at=f"{CHANGED}Z", customer_id=1501),
             shopify_order(1002, f"{touched}Z", customer_id=1501)],
            customers=[{"legacyResourceId": "1501", "email": RECON_EMAIL,
                        "createdAt": f"{CHANGED}Z", "updatedAt": f"{touched}Z"}])
    else:
        shop = f"{stores.woocommerce_url}/"
        stores.woocommerce.seed(orders=[
            woocommerce_order(1001, touched, created_gmt=CHANGED, customer_id=1501),
            woocommerce_order(1002, touched, customer_id=1501)])
    settings = stores.settings(tmp_path, platform, project_spec=True,
                               RECONCILE_FIRST_LOOKBACK_HOURS="72")
    context = build_context(settings, Database(settings.state_path))
    redact_recon_customer(settings, platform, shop, 1501, 1001, redacted_at, request_id=41)
    queue = recording_queue(settings)
    caplog.set_level(logging.INFO, logger="storesync")

    run(settings, queue)
    # Delivery ids are reconcile:<kind>:<id>:<updated_at>.
    outcomes = {":".join(delivery.delivery_id.split(":")[1:3]): handle_delivery(delivery, context)
                for delivery in queue.take()}

    assert outcomes == {"order:1001": JobOutcome.SKIPPED_REDACTED,
                        "order:1002": JobOutcome.SYNCED_LATER,
                        **({"customer:1501": JobOutcome.SKIPPED_REDACTED}
                           if platform == "shopify" else {})}
    with context.store.db.reading() as reader:
        deals = [row[0] for row in reader.execute(
            "SELECT key FROM sync_outbox WHERE object = 'deals'").fetchall()]
    assert [key.rsplit(":", 1)[1] for key in deals] == ["1002"]
    skips = [record for record in caplog.records if record.getMessage().startswith(
        "store record skipped: made before the redaction")]
    assert sorted(record.__dict__["event_id"].split(":")[1] for record in skips) == (
        ["customer", "order"] if platform == "shopify" else ["order"])
    for record in skips:
        assert record.__dict__["privacy_request_id"] == 41
        assert not {"source", "topic", "shop", "email"} & set(record.__dict__)
    assert RECON_EMAIL not in caplog.text
