"""Webhook subscription checks, discount codes, backfill and the store API settings,
against the Shopify and WooCommerce stand-ins.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from intake_support import sample_value
from store_support import (
    SHOP_DOMAIN,
    SHOPIFY_TOKEN,
    WOO_KEY,
    WOO_SECRET,
    FakeSleep,
    RecordingQueue,
    Stores,
    redact_recon_customer,
    shopify_order,
    woocommerce_order,
)
from storesync import metrics
from storesync.backfill import HUBSPOT_CALLS_PER_100_ORDERS, date_range, estimate
from storesync.backfill_run import run_backfill
from storesync.cli import main
from storesync.db import Database
from storesync.settings import SettingsError
from storesync.store_api import ShopifyAdmin, StoreApiError, WooCommerceApi
from storesync.subscriptions import check_all, needed_topics
from storesync.worker import JobOutcome, build_context, handle_delivery, load_mapping
from sync_support import family

PUBLIC_URL = "https://hooks.example.sa"


def repaired(platform: str, action: str) -> float:
    return sample_value(metrics.SYNC_REGISTRY, "storesync_webhook_subscriptions_repaired_total",
                        {"source": platform, "action": action})


def missed_orders(platform: str) -> float:
    return sample_value(metrics.SYNC_REGISTRY, "storesync_reconcile_missed_orders_total",
                        {"source": platform})


# --- webhook subscriptions --------------------------------------------------------------------


def test_needed_topics_follow_mapping() -> None:
    mapping = {"entities": {"contact": {}, "order": {}, "line_item": {},
                            "event": {"enabled": False}}}

    shopify = needed_topics("shopify", mapping)
    woocommerce = needed_topics("woocommerce", mapping)

    assert "orders/create" in shopify
    assert "customers/update" in shopify
    assert "customers_marketing_consent/update" in shopify
    assert "customers_email_marketing_consent/update" in shopify
    # The old SMS consent name is only accepted at intake, never subscribed to.
    assert "customers/marketing_consent" not in shopify
    assert "checkouts/create" not in shopify
    assert "products/update" not in shopify
    assert "page_viewed" not in shopify
    assert woocommerce == ["order.created", "order.updated", "customer.created",
                           "customer.updated"]


def test_shopify_missing_subscriptions_created(stores: Stores, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    settings = stores.settings(tmp_path, "shopify", PUBLIC_BASE_URL=PUBLIC_URL)
    mapping = {"entities": {"contact": {}, "order": {}, "line_item": {}}}
    before = repaired("shopify", "created")
    caplog.set_level(logging.ERROR, logger="storesync.subscriptions")

    first = check_all(settings, mapping)
    second = check_all(settings, mapping)

    listed = stores.http.get(f"{stores.shopify_url}/_standin/subscriptions").json()
    topics = sorted(item["topic"] for item in listed["subscriptions"])
    assert first[0].failed == {}
    assert first[0].created == first[0].expected
    assert "ORDERS_CREATE" in topics
    assert "CUSTOMERS_MARKETING_CONSENT_UPDATE" in topics
    assert "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE" in topics
    assert {item["uri"] for item in listed["subscriptions"]} == \
        {f"{PUBLIC_URL}/webhooks/shopify"}
    assert second[0].created == []
    assert repaired("shopify", "created") - before == len(first[0].expected)
    alerts = [record for record in caplog.records if getattr(record, "topic", None)
              == "orders/create"]
    assert len(alerts) == 1
    assert alerts[0].levelno == logging.ERROR


def test_shopify_deleted_subscriptions_recreated(stores: Stores, tmp_path: Path) -> None:
    settings = stores.settings(tmp_path, "shopify", PUBLIC_BASE_URL=PUBLIC_URL)
    mapping = {"entities": {"contact": {}, "order": {}, "line_item": {}}}
    check_all(settings, mapping)
    # Shopify deletes a subscription after repeated failed deliveries.
    stores.http.delete(f"{stores.shopify_url}/_standin/subscriptions")

    again = check_all(settings, mapping)

    assert again[0].created == again[0].expected
    assert again[0].failed == {}


def test_woocommerce_disabled_webhook_reactivated(stores: Stores, tmp_path: Path) -> None:
    settings = stores.settings(tmp_path, "woocommerce", PUBLIC_BASE_URL=PUBLIC_URL,
                               WOOCOMMERCE_WEBHOOK_SECRETS="woo-hook-secret-for-tests")
    url = f"{PUBLIC_URL}/webhooks/woocommerce"
    with stores.woocommerce.lock:
        stores.woocommerce.webhooks[90] = {
            "id": 90, "name": "old", "status": "disabled", "topic": "order.updated",
            "resource": "order", "event": "updated", "hooks": [], "delivery_url": url}
    mapping = {"entities": {"contact": {}, "order": {}, "line_item": {}}}
    before = repaired("woocommerce", "reactivated")

    results = check_all(settings, mapping)

    assert results[0].reactivated == ["order.updated"]
    assert sorted(results[0].created) == ["customer.created", "customer.updated",
                                          "order.created"]
    hooks = stores.woocommerce.webhooks
    assert hooks[90]["status"] == "active"
    assert {hook["topic"] for hook in hooks.values()} == {
        "order.created", "order.updated", "customer.created", "customer.updated"}
    assert repaired("woocommerce", "reactivated") - before == 1


def test_subscriptions_command_needs_public_url(stores: Stores, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    settings = stores.settings(tmp_path, "shopify")
    for name, value in {"DATA_DIR": str(settings.data_dir), "SPEC_DIR": str(settings.spec_dir),
                        "SHOPIFY_SHOP_DOMAIN": SHOP_DOMAIN,
                        "SHOPIFY_ADMIN_ACCESS_TOKEN": SHOPIFY_TOKEN,
                        "SHOPIFY_ADMIN_URL": stores.shopify_url}.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(main, ["subscriptions"])

    assert result.exit_code == 2
    assert "PUBLIC_BASE_URL is not set" in result.output


# --- discount codes ----------------------------------------------------------------------------


def test_shopify_discount_code_single_use(stores: Stores) -> None:
    client = ShopifyAdmin(SHOP_DOMAIN, SHOPIFY_TOKEN, "2025-10", base_url=stores.shopify_url,
                          sleep=FakeSleep())
    starts = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    try:
        code = client.create_discount_code("BACK10-7H2K", title="Cart recovery",
                                           starts_at=starts, ends_at=starts + timedelta(hours=48),
                                           percentage=0.1)
        with pytest.raises(StoreApiError, match="Code must be unique"):
            client.create_discount_code("BACK10-7H2K", title="Cart recovery", starts_at=starts,
                                        ends_at=starts + timedelta(hours=48), percentage=0.1)
    finally:
        client.close()

    stored = stores.http.get(f"{stores.shopify_url}/_standin/discounts").json()["discounts"]
    assert code.code == "BACK10-7H2K"
    assert code.store_id.startswith("gid://shopify/DiscountCodeNode/")
    assert code.expires_at == "2026-03-03T12:00:00Z"
    assert len(stored) == 1
    assert stored[0]["usageLimit"] == 1
    assert stored[0]["appliesOncePerCustomer"] is True
    assert stored[0]["endsAt"] == "2026-03-03T12:00:00Z"
    assert stored[0]["customerGets"]["value"] == {"percentage": 0.1}


def test_discount_bad_input_rejected(stores: Stores) -> None:
    client = ShopifyAdmin(SHOP_DOMAIN, SHOPIFY_TOKEN, "2025-10", base_url=stores.shopify_url,
                          sleep=FakeSleep())
    starts = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    try:
        with pytest.raises(ValueError, match="exactly one of percentage or amount"):
            client.create_discount_code("X1", title="t", starts_at=starts,
                                        ends_at=starts + timedelta(hours=1))
        with pytest.raises(ValueError, match="must be after starts_at"):
            client.create_discount_code("X1", title="t", starts_at=starts, ends_at=starts,
                                        amount="20.00")
        with pytest.raises(ValueError, match=r"0\.1 is 10 %"):
            client.create_discount_code("X1", title="t", starts_at=starts,
                                        ends_at=starts + timedelta(hours=1), percentage=10)
    finally:
        client.close()
    assert stores.http.get(f"{stores.shopify_url}/_standin/discounts").json()["discounts"] == []


def test_woocommerce_coupon_single_use(stores: Stores) -> None:
    client = WooCommerceApi(stores.woocommerce_url, WOO_KEY, WOO_SECRET, sleep=FakeSleep())
    expires = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    try:
        code = client.create_coupon("back15-9x", expires_at=expires, amount="15.00",
                                    email="reem.recon@example.com")
        with pytest.raises(StoreApiError, match="already exists"):
            client.create_coupon("BACK15-9X", expires_at=expires, amount="15.00")
    finally:
        client.close()

    stored = list(stores.woocommerce.coupons.values())
    assert code.code == "back15-9x"
    assert len(stored) == 1
    assert stored[0]["usage_limit"] == 1
    assert stored[0]["usage_limit_per_user"] == 1
    assert stored[0]["discount_type"] == "fixed_cart"
    assert stored[0]["date_expires_gmt"] == "2026-03-03T12:00:00"
    assert stored[0]["email_restrictions"] == ["reem.recon@example.com"]


def test_wrong_token_is_auth_error(stores: Stores) -> None:
    client = ShopifyAdmin(SHOP_DOMAIN, "shpat_wrong_not_real", "2025-10",
                          base_url=stores.shopify_url, sleep=FakeSleep())
    try:
        with pytest.raises(StoreApiError, match="rejected the credentials"):
            client.webhook_subscriptions()
    finally:
        client.close()


# --- backfill ----------------------------------------------------------------------------------


def test_backfill_estimate_from_rate_limit(stores: Stores, tmp_path: Path) -> None:
    settings = stores.settings(tmp_path, "woocommerce", HUBSPOT_RATE_LIMIT_PER_10S="100")

    result = estimate("woocommerce", 250, settings)

    assert result.orders == 250
    assert result.store_calls == 3
    assert result.crm_calls == 3 * HUBSPOT_CALLS_PER_100_ORDERS
    # 24 HubSpot calls at 10 per second take 2.4 s; three WooCommerce pages take longer.
    assert result.seconds == pytest.approx(6.0)


def test_backfill_estimate_for_zoho_counts_credits_and_days(stores: Stores,
                                                             tmp_path: Path) -> None:
    from storesync.backfill import describe

    settings = stores.settings(tmp_path, "woocommerce", CRM_TARGET="zoho",
                               ZOHO_CREDITS_PER_DAY="200")

    result = estimate("woocommerce", 1000, settings)

    # 1000 contacts, deals, deal contacts and sales orders: 40 calls of 100 records at
    # 10 credits each, twice the 200 credits a day, so the second day waits 24 hours.
    assert (result.crm_calls, result.credits, result.days) == (40, 400, 2)
    assert result.seconds == pytest.approx(40 * 1.5 + 24 * 3600)
    line = describe("woocommerce", result)
    # 24 h 1 min, shown at the day and hour level.
    assert "40 CRM calls, 400 Zoho credits over 2 day(s), about 1 d (" in line
    assert "400 Zoho credits, 200 a rolling 24 hours (" in line


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_backfill_dry_run_and_run(stores: Stores, tmp_path: Path, platform: str,
                                  recording_queue: Callable[..., RecordingQueue],
                                  caplog: pytest.LogCaptureFixture) -> None:
    inside = "2026-03-02T08:00:00"
    outside = "2026-03-05T08:00:00"
    if platform == "shopify":
        stores.shopify.seed([shopify_order(number, f"{inside}Z") for number in range(1, 131)]
                            + [shopify_order(900, f"{outside}Z")])
    else:
        stores.woocommerce.seed(orders=[woocommerce_order(number, inside)
                                        for number in range(1, 131)]
                                + [woocommerce_order(900, outside)])
    settings = stores.settings(tmp_path, platform)
    queue = recording_queue(settings)
    start, end = date_range("2026-03-01", "2026-03-03", date(2026, 3, 20))
    lines: list[str] = []

    dry = run_backfill(settings, start, end, date(2026, 3, 20), dry_run=True, echo=lines.append,
                       clock=lambda: 1_800_000_000.0, sleep=FakeSleep(),
                       enqueue=queue.enqueue_once)
    assert dry == 0
    assert queue.take() == []
    assert any(line.startswith(f"Estimate: {platform}: 130 orders") for line in lines)

    missed_before = missed_orders(platform)
    caplog.set_level(logging.INFO, logger="storesync")
    code = run_backfill(settings, start, end, date(2026, 3, 20), dry_run=False,
                        echo=lines.append, clock=lambda: 1_800_000_000.0, sleep=FakeSleep(),
                        enqueue=queue.enqueue_once)
    queued = queue.take()
    assert code == 0
    assert len(queued) == 130
    # History is imported on purpose: none of it counts or logs as missed by webhooks.
    assert missed_orders(platform) == missed_before
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.WARNING] == []
    assert "900" not in {delivery.delivery_id.split(":")[2] for delivery in queued}


def test_backfill_skips_orders_made_before_a_redaction(
        stores: Stores, tmp_path: Path, recording_queue: Callable[..., RecordingQueue]) -> None:
    """A backfill after a redaction reads the customer's old order again: it is not synced,
    while the same customer's order placed after the redaction is."""
    platform = family()
    if platform not in ("shopify", "woocommerce"):
        pytest.skip(f"this project receives {platform} deliveries, which have no store API")
    redacted_at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
    before, after = "2026-03-02T08:00:00", "2026-03-03T08:00:00"
    if platform == "shopify":
        shop = SHOP_DOMAIN
        stores.shopify.seed([shopify_order(1001, f"{before}Z", customer_id=1501),
                             shopify_order(1002, f"{after}Z", customer_id=1501)])
    else:
        shop = f"{stores.woocommerce_url}/"
        stores.woocommerce.seed(orders=[woocommerce_order(1001, before, customer_id=1501),
                                        woocommerce_order(1002, after, customer_id=1501)])
    settings = stores.settings(tmp_path, platform, project_spec=True)
    context = build_context(settings, Database(settings.state_path))
    redact_recon_customer(settings, platform, shop, 1501, 1001, redacted_at, request_id=42)
    queue = recording_queue(settings)
    start, end = date_range("2026-03-01", "2026-03-03", date(2026, 3, 20))

    code = run_backfill(settings, start, end, date(2026, 3, 20), dry_run=False,
                        echo=lambda line: None, clock=lambda: 1_800_000_000.0,
                        sleep=FakeSleep(), enqueue=queue.enqueue_once)
    # Delivery ids are reconcile:order:<id>:<updated_at>.
    outcomes = {delivery.delivery_id.split(":")[2]: handle_delivery(delivery, context)
                for delivery in queue.take()}

    assert code == 0
    assert outcomes == {"1001": JobOutcome.SKIPPED_REDACTED, "1002": JobOutcome.SYNCED_LATER}
    with context.store.db.reading() as reader:
        deals = [row[0] for row in reader.execute(
            "SELECT key FROM sync_outbox WHERE object = 'deals'").fetchall()]
    assert [key.rsplit(":", 1)[1] for key in deals] == ["1002"]


@pytest.mark.parametrize(("first", "last", "message"), [
    ("2026-13-01", "2026-03-31", "--from '2026-13-01' is not a date in the form YYYY-MM-DD"),
    ("2026-03-01", "31/03/2026", "--to '31/03/2026' is not a date in the form YYYY-MM-DD"),
    ("2026-03-31", "2026-03-01", "--to 2026-03-01 is before --from 2026-03-31"),
    ("2999-01-01", "2999-01-02", "--from 2999-01-01 is in the future"),
])
def test_backfill_bad_dates_exit_2(first: str, last: str, message: str) -> None:
    result = CliRunner().invoke(main, ["backfill", "--from", first, "--to", last, "--dry-run"])

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


# --- settings and readiness --------------------------------------------------------------------


@pytest.mark.parametrize(("environ", "variable", "text"), [
    ({"SHOPIFY_SHOP_DOMAIN": "shop.example.sa", "SHOPIFY_ADMIN_ACCESS_TOKEN": "shpat_x"},
     "SHOPIFY_SHOP_DOMAIN", "is not a *.myshopify.com domain"),
    ({"SHOPIFY_SHOP_DOMAIN": SHOP_DOMAIN}, "SHOPIFY_ADMIN_ACCESS_TOKEN", "is not set"),
    ({"SHOPIFY_API_VERSION": "2025-13"}, "SHOPIFY_API_VERSION", "is not an Admin API version"),
    ({"WOOCOMMERCE_SITE_URL": "http://shop.example.sa", "WOOCOMMERCE_CONSUMER_KEY": "ck_x",
      "WOOCOMMERCE_CONSUMER_SECRET": "cs_x"}, "WOOCOMMERCE_SITE_URL", "is not an https:// URL"),
    ({"WOOCOMMERCE_SITE_URL": "https://shop.example.sa"}, "WOOCOMMERCE_CONSUMER_KEY",
     "is not set"),
    ({"PUBLIC_BASE_URL": "hooks.example.sa"}, "PUBLIC_BASE_URL", "is not an https:// URL"),
    ({"RECONCILE_INTERVAL_SECONDS": "5"}, "RECONCILE_INTERVAL_SECONDS", "outside the allowed"),
    ({"SHOPIFY_ADMIN_ACCESS_TOKEN": "replace-with-an-admin-api-token",
      "SHOPIFY_SHOP_DOMAIN": SHOP_DOMAIN}, "SHOPIFY_ADMIN_ACCESS_TOKEN", "placeholder"),
])
def test_store_settings_rejected(make_settings: Callable[..., Any], environ: dict[str, str],
                                 variable: str, text: str) -> None:
    with pytest.raises(SettingsError) as caught:
        make_settings("shopify", **environ)

    problems = [problem for problem in caught.value.problems if problem.variable == variable]
    assert len(problems) == 1
    assert text in problems[0].problem
    assert problems[0].fix


def test_readyz_says_jobs_off(make_settings: Callable[..., Any], start_intake: Any) -> None:
    intake = start_intake(make_settings("shopify"))

    body = httpx.get(f"{intake.base_url}/readyz").json()

    assert body["status"] == "ready"
    assert body["store_jobs"] == {"shopify": "off: store API credentials not set"}


def test_readyz_says_jobs_on(stores: Stores, tmp_path: Path, start_intake: Any) -> None:
    intake = start_intake(stores.settings(tmp_path, "shopify", PUBLIC_BASE_URL=PUBLIC_URL))

    body = httpx.get(f"{intake.base_url}/readyz").json()

    assert body["store_jobs"] == {"shopify": "on"}


def test_reconcile_command_without_credentials(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from intake_support import write_spec

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SPEC_DIR", str(write_spec(tmp_path / "spec", "shopify")))
    for name in ("SHOPIFY_SHOP_DOMAIN", "SHOPIFY_ADMIN_ACCESS_TOKEN", "WOOCOMMERCE_SITE_URL"):
        monkeypatch.delenv(name, raising=False)

    result = CliRunner().invoke(main, ["reconcile"])

    assert result.exit_code == 2
    assert "no store API credentials are set" in result.output
    assert "SHOPIFY_SHOP_DOMAIN" in result.output


def test_project_mapping_topics_subscribable() -> None:
    from sync_support import SPEC_DIR, family

    mapping = load_mapping(SPEC_DIR / "mapping.yaml")
    topics = needed_topics(family(), mapping)

    if family() in ("shopify", "woocommerce"):
        assert topics
    assert all(topic not in ("customers/redact", "shop/redact") for topic in topics)


def test_open_client_without_credentials(make_settings: Callable[..., Any]) -> None:
    from storesync.store_api import open_client

    with pytest.raises(ValueError, match="SHOPIFY_SHOP_DOMAIN and SHOPIFY_ADMIN_ACCESS_TOKEN"):
        open_client(make_settings("shopify"), "shopify")


def test_store_jobs_run_when_due(stores: Stores, tmp_path: Path,
                                 recording_queue: Callable[..., RecordingQueue]) -> None:
    from storesync.db import Database
    from storesync.store_jobs import StoreJobs

    settings = stores.settings(tmp_path, "shopify", PUBLIC_BASE_URL=PUBLIC_URL,
                               RECONCILE_INTERVAL_SECONDS="900",
                               SUBSCRIPTION_CHECK_INTERVAL_SECONDS="3600")
    now = [1_800_000_000.0]
    db = Database(settings.state_path)
    jobs = StoreJobs(settings, recording_queue(settings).enqueue_once, db,
                     {"entities": {"contact": {}, "order": {}, "line_item": {}}},
                     clock=lambda: now[0])
    try:
        jobs.run_due()
        first = (stores.shopify_calls("orders"), stores.shopify_calls("webhookSubscriptions"))
        now[0] += 60
        jobs.run_due()
        early = (stores.shopify_calls("orders"), stores.shopify_calls("webhookSubscriptions"))
        now[0] += 900
        jobs.run_due()
        later = (stores.shopify_calls("orders"), stores.shopify_calls("webhookSubscriptions"))
    finally:
        db.close()

    assert first == (1, 1)
    assert early == (1, 1)
    assert later == (2, 1)


def _store_env(stores: Stores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from intake_support import write_spec

    values = {"DATA_DIR": str(tmp_path / "var"),
              "SPEC_DIR": str(write_spec(tmp_path / "spec", "woocommerce")),
              "WOOCOMMERCE_SITE_URL": stores.woocommerce_url, "WOOCOMMERCE_CONSUMER_KEY": WOO_KEY,
              "WOOCOMMERCE_CONSUMER_SECRET": WOO_SECRET, "RECONCILE_FIRST_LOOKBACK_HOURS": "72"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_reconcile_command_prints_results(stores: Stores, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    changed = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    stores.woocommerce.seed(orders=[woocommerce_order(1001, changed),
                                    woocommerce_order(1002, changed)])
    _store_env(stores, tmp_path, monkeypatch)

    result = CliRunner().invoke(main, ["reconcile", "--json"])
    again = CliRunner().invoke(main, ["reconcile"])

    assert result.exit_code == 0, result.output
    runs = json.loads(result.output.strip().splitlines()[-1])
    assert [(run["platform"], run["read"], run["queued"]) for run in runs] == \
        [("woocommerce", 2, 2)]
    assert again.exit_code == 0
    assert "queued 0" in again.output


def test_reconcile_command_publishes_metrics(stores: Stores, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from storesync.settings import load_settings

    changed = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    stores.woocommerce.seed(orders=[woocommerce_order(1001, changed)])
    _store_env(stores, tmp_path, monkeypatch)

    result = CliRunner().invoke(main, ["reconcile"])

    assert result.exit_code == 0, result.output
    # What the service's /metrics reads: the snapshots in the state file.
    store = metrics.open_snapshot_store(load_settings(dict(os.environ),
                                                      webhook_secrets_required=False))
    collector = metrics.SharedSyncCollector()
    collector.read = store.read
    try:
        samples = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                   for family in collector.collect() for sample in family.samples}
    finally:
        store.close()
    source = (("source", "woocommerce"),)
    # The test process counts every test's runs, and the command published its own count.
    assert samples[("storesync_reconcile_missed_orders_total", source)] == sample_value(
        metrics.SYNC_REGISTRY, "storesync_reconcile_missed_orders_total",
        {"source": "woocommerce"})
    assert samples[("storesync_reconcile_missed_orders_total", source)] >= 1
    assert samples[("storesync_reconcile_last_success_timestamp_seconds", source)] > \
        time.time() - 60
    # Only the store job metrics: a zero gauge would hide the worker's value.
    assert ("storesync_dead_letters", ()) not in samples


@pytest.mark.parametrize(("seconds", "english", "arabic"), [
    (20, "under a minute", "أقل من دقيقة"),
    (45, "about 1 min", "نحو دقيقة واحدة"),
    (14 * 60, "about 14 min", "نحو 14 دقيقة"),
    (3 * 3600 + 20 * 60, "about 3 h 20 min", "نحو 3 ساعات و20 دقيقة"),
    (2 * 3600, "about 2 h", "نحو ساعتين"),
    (11 * 3600 + 60, "about 11 h 1 min", "نحو 11 ساعة ودقيقة واحدة"),
    (2 * 86400 + 5 * 3600 + 59, "about 2 d 5 h", "نحو يومين و5 ساعات"),
    (12 * 86400, "about 12 d", "نحو 12 يومًا"),
])
def test_backfill_duration_text(seconds: float, english: str, arabic: str) -> None:
    from storesync.backfill import duration_text

    assert duration_text(seconds) == english
    assert duration_text(seconds, "ar") == arabic


def test_backfill_estimate_line_in_arabic(stores: Stores, tmp_path: Path) -> None:
    from storesync.backfill import describe

    settings = stores.settings(tmp_path, "woocommerce", HUBSPOT_RATE_LIMIT_PER_10S="10")

    result = estimate("woocommerce", 100_000, settings, language="ar")

    line = describe("woocommerce", result, "ar")
    assert line.startswith("woocommerce: عدد الطلبات 100000، ")
    # 8,000 HubSpot calls at one a second: 2 h 13 min 20 s.
    assert "والمدة نحو ساعتين و13 دقيقة (استدعاءات HubSpot نحو " in line
    assert describe("woocommerce", estimate("woocommerce", 100_000, settings)).count(
        "about 2 h 13 min (about ") == 1


def test_backfill_command_rejects_unknown_language() -> None:
    result = CliRunner().invoke(main, ["backfill", "--from", "2026-03-01", "--to", "2026-03-03",
                                       "--lang", "fr"])

    assert result.exit_code == 2
    assert "'fr' is not one of 'en', 'ar'" in result.output


def test_backfill_command_dry_run(stores: Stores, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stores.woocommerce.seed(orders=[woocommerce_order(1001, "2026-03-02T08:00:00")])
    _store_env(stores, tmp_path, monkeypatch)

    result = CliRunner().invoke(main, ["backfill", "--from", "2026-03-01", "--to", "2026-03-03",
                                       "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "Estimate: woocommerce: 1 orders" in result.output
