"""Opt-outs made in the CRM written back to the store (CONSENT_STORE_WRITEBACK).

The end-to-end tests run the worker's privacy thread as ``build_runner`` sets it up,
against the CRM stand-in of the project and the Shopify or WooCommerce stand-in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from intake_support import SHOPIFY_SECRET, encode_body, write_spec
from store_support import SHOP_DOMAIN, SHOPIFY_TOKEN, WOO_KEY, WOO_SECRET, Stores
from storesync.cli import main
from storesync.consent import ConsentEvent, ConsentStore, send_pushes
from storesync.customdb.consents import load_rules
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.privacy_runner import PrivacyRunner, build_runner
from storesync.record_keys import shop_part
from storesync.store_consent import StoreUnsubscriber
from storesync.sync_store import SyncStore
from storesync.worker import JobOutcome, handle_delivery
from sync_support import SARA, SPEC_DIR, Order, SyncHarness, family, project_crm

# make_zoho_harness is a fixture of the Zoho sync tests, shared with these.
from test_zoho_sync import ORDER, ZohoHarness, make_zoho_harness  # noqa: F401

MakeHarness = Callable[..., SyncHarness]
MakeZohoHarness = Callable[..., ZohoHarness]
T0 = 1_800_000_000.0


def store_settings(stores: Stores, platform: str) -> dict[str, str]:
    """Return the store API settings that point at the stand-in of ``platform``."""
    if platform == "shopify":
        return {"SHOPIFY_SHOP_DOMAIN": SHOP_DOMAIN, "SHOPIFY_ADMIN_ACCESS_TOKEN": SHOPIFY_TOKEN,
                "SHOPIFY_ADMIN_URL": stores.shopify_url}
    return {"WOOCOMMERCE_SITE_URL": stores.woocommerce_url,
            "WOOCOMMERCE_CONSUMER_KEY": WOO_KEY, "WOOCOMMERCE_CONSUMER_SECRET": WOO_SECRET}


def shop_header(stores: Stores, platform: str) -> str:
    """Return the shop a delivery of ``platform`` names, as the intake reads it."""
    return SHOP_DOMAIN if platform == "shopify" else stores.woocommerce_url


def seed_store_customer(stores: Stores, platform: str) -> None:
    """Add Sara to the store stand-in, subscribed to email marketing."""
    if platform == "shopify":
        stores.shopify.put_customer({
            "legacyResourceId": str(SARA["id"]), "email": SARA["email"],
            "phone": SARA["phone"],
            "emailMarketingConsent": {"marketingState": "SUBSCRIBED",
                                      "marketingOptInLevel": "SINGLE_OPT_IN",
                                      "consentUpdatedAt": "2026-01-01T00:00:00Z"}})
    else:
        stores.woocommerce.seed([{"id": SARA["id"], "email": SARA["email"],
                                  "meta_data": [{"key": "_rabt_email_opt_in", "value": "yes"}]}])


def store_email_consent(stores: Stores, platform: str) -> Any:
    """Return Sara's email consent as the store stand-in keeps it."""
    if platform == "shopify":
        [customer] = [item for item in stores.shopify.all_customers()
                      if item["legacyResourceId"] == str(SARA["id"])]
        return (customer["emailMarketingConsent"] or {}).get("marketingState")
    customer = stores.woocommerce.customer(int(SARA["id"]))
    assert customer is not None
    return {entry["key"]: entry["value"] for entry in customer["meta_data"]}.get(
        "_rabt_email_opt_in")


def require_store_api_family() -> str:
    platform = family()
    if platform not in ("shopify", "woocommerce"):
        pytest.skip("a headless storefront has no store API to write consent to")
    if not any(rule.channel == "email" for rule in load_rules(SPEC_DIR / "consent.yaml")):
        pytest.skip("this project does not manage email consent")
    return platform


WITHDRAWN_IN_STORE = {"shopify": "UNSUBSCRIBED", "woocommerce": "withdrawn"}
SUBSCRIBED_IN_STORE = {"shopify": "SUBSCRIBED", "woocommerce": "yes"}


# --- end to end ------------------------------------------------------------------------------


def test_hubspot_opt_out_reaches_store(make_harness: MakeHarness, stores: Stores) -> None:
    if project_crm() != "hubspot":
        pytest.skip("this test drives the HubSpot stand-in")
    platform = require_store_api_family()
    sync = make_harness(CONSENT_STORE_WRITEBACK="true", CONSENT_CRM_PULL_SECONDS="60",
                        **store_settings(stores, platform))
    seed_store_customer(stores, platform)
    order = Order(8300001, SARA)
    sync.deliver(order.body(platform), order.topic(platform),
                 shop=shop_header(stores, platform))
    sync.flush()
    runner = build_runner(sync.settings, sync.context.store.db)
    try:
        before = store_email_consent(stores, platform)
        # The customer unsubscribes in HubSpot; the next pass reads it, the one after
        # that writes it to the store.
        sync.client.unsubscribe_all("EMAIL", SARA["email"])
        pulled = runner.consent_pass()
        written = runner.consent_pass()
    finally:
        close_runner(runner)

    assert before == SUBSCRIBED_IN_STORE[platform]
    assert pulled["pulled_changes"] == 1
    assert written["done"] == 1
    assert store_email_consent(stores, platform) == WITHDRAWN_IN_STORE[platform]
    assert runner.consent.push_statuses() == [("email", "store", "done")]


def test_zoho_opt_out_reaches_store(make_zoho_harness: MakeZohoHarness,  # noqa: F811
                                    stores: Stores) -> None:
    harness = make_zoho_harness(CONSENT_STORE_WRITEBACK="true", CONSENT_CRM_PULL_SECONDS="60",
                                **store_settings(stores, family()))
    platform = require_store_api_family()
    seed_store_customer(stores, platform)
    # The order comes from the shop whose store API the settings name.
    delivery = Delivery(delivery_id="order-1", source=platform, topic=ORDER.topic(platform),
                        shop=shop_header(stores, platform), received_at="2026-03-03T18:10:00Z",
                        triggered_at=None, body=encode_body(ORDER.body(platform)).decode())
    assert handle_delivery(delivery, harness.context) is not JobOutcome.QUARANTINED
    harness.flush()
    runner = build_runner(harness.settings, harness.context.store.db)
    try:
        # Someone ticks Email Opt Out on the contact in Zoho.
        [contact] = [item for item in harness.standin.records("Contacts")
                     if item.get("Email") == SARA["email"]]
        harness.client.batch_update("contacts", [{"id": contact["id"],
                                                  "properties": {"Email_Opt_Out": True}}])
        pulled = runner.consent_pass()
        written = runner.consent_pass()
    finally:
        close_runner(runner)

    assert pulled["pulled_changes"] == 1
    assert written["done"] == 1
    assert store_email_consent(stores, platform) == WITHDRAWN_IN_STORE[platform]
    assert runner.consent.push_statuses() == [("email", "store", "done")]


def close_runner(runner: PrivacyRunner) -> None:
    if runner.client is not None:
        runner.client.close()
    if isinstance(runner.store_unsubscribe, StoreUnsubscriber):
        runner.store_unsubscribe.close()


# --- the writer on its own -----------------------------------------------------------------


def withdrawn_contact(tmp_path: Path, customer_key: str) -> ConsentStore:
    """Return a consent store whose contact c1 (``customer_key``) withdrew email in the CRM."""
    db = Database(tmp_path / "state.sqlite3")
    SyncStore(db)
    with db.transaction() as conn:
        conn.execute("INSERT INTO sync_identity VALUES ('store_customer_id', ?, 'c1')",
                     (customer_key,))
    store = ConsentStore(db, clock=lambda: T0, store_writeback=True)
    store.record("c1", ConsentEvent("email", "withdrawn", T0, "hubspot"))
    return store


def shopify_writer(stores: Stores, tmp_path: Path) -> StoreUnsubscriber:
    settings = stores.settings(tmp_path, "shopify", CONSENT_STORE_WRITEBACK="true")
    writer = StoreUnsubscriber.for_settings(settings, [])
    assert writer is not None
    return writer


def test_shopify_customer_without_email_fails(stores: Stores, tmp_path: Path) -> None:
    stores.shopify.put_customer({"legacyResourceId": "4001", "email": None})
    store = withdrawn_contact(tmp_path, f"{SHOP_DOMAIN}:4001")
    writer = shopify_writer(stores, tmp_path)
    try:
        counts = send_pushes(store, None, T0, store_unsubscribe=writer)
    finally:
        writer.close()
    assert counts == {"failed": 1}
    assert store.push_statuses("c1") == [("email", "store", "failed")]


def test_shopify_keeps_no_whatsapp_consent(stores: Stores, tmp_path: Path) -> None:
    writer = shopify_writer(stores, tmp_path)
    try:
        outcome = writer(SHOP_DOMAIN, "4002", "whatsapp")
    finally:
        writer.close()
    assert outcome == "not_in_store"
    assert stores.shopify_calls("customerSmsMarketingConsentUpdate") == 0


def test_other_shop_gets_no_call(stores: Stores, tmp_path: Path) -> None:
    store = withdrawn_contact(tmp_path, "other-shop.myshopify.com:4003")
    writer = shopify_writer(stores, tmp_path)
    try:
        counts = send_pushes(store, None, T0, store_unsubscribe=writer)
    finally:
        writer.close()
    assert counts == {"no_store_client": 1}


def test_shopify_sms_opt_out(stores: Stores, tmp_path: Path) -> None:
    stores.shopify.put_customer({"legacyResourceId": "4004", "phone": "+966500000031"})
    writer = shopify_writer(stores, tmp_path)
    try:
        outcome = writer(SHOP_DOMAIN, "4004", "sms")
    finally:
        writer.close()
    [customer] = [item for item in stores.shopify.all_customers()
                  if item["legacyResourceId"] == "4004"]
    assert outcome == "done"
    assert customer["smsMarketingConsent"]["marketingState"] == "UNSUBSCRIBED"


def test_woocommerce_meta_follows_rules(stores: Stores, tmp_path: Path) -> None:
    from storesync.customdb.consents import ConsentRule

    stores.woocommerce.seed([{"id": 4005, "email": "noura.meta@example.com"}])
    settings = stores.settings(tmp_path, "woocommerce", CONSENT_STORE_WRITEBACK="true")
    rules = [ConsentRule("email", "meta_data[plugin_newsletter]", (),
                         {"1": "granted", "unsubscribed": "withdrawn"})]
    writer = StoreUnsubscriber(settings, rules, clock=lambda: T0)
    try:
        outcome = writer(shop_part("woocommerce", stores.woocommerce_url), "4005", "email")
    finally:
        writer.close()
    customer = stores.woocommerce.customer(4005)
    assert customer is not None
    meta = {entry["key"]: entry["value"] for entry in customer["meta_data"]}
    assert outcome == "done"
    assert meta["plugin_newsletter"] == "unsubscribed"
    assert meta["plugin_newsletter_at"] == "2027-01-15T08:00:00Z"


# --- wiring and check-config ----------------------------------------------------------------


def test_runner_gets_writer_only_when_set(stores: Stores, tmp_path: Path) -> None:
    on = stores.settings(tmp_path, "shopify", CONSENT_STORE_WRITEBACK="true")
    off = stores.settings(tmp_path, "shopify")
    with_writer = build_runner(on, Database(tmp_path / "on.sqlite3"))
    without = build_runner(off, Database(tmp_path / "off.sqlite3"))
    try:
        assert isinstance(with_writer.store_unsubscribe, StoreUnsubscriber)
        assert without.store_unsubscribe is None
    finally:
        close_runner(with_writer)
        close_runner(without)


def check_config_env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"DATA_DIR": str(tmp_path / "var"),
            "SPEC_DIR": str(write_spec(tmp_path / "spec", "shopify")),
            "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET, **values}


def test_check_config_warns_writeback_without_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=check_config_env(
        tmp_path, CONSENT_STORE_WRITEBACK="true"))
    assert result.exit_code == 0, result.output
    assert "Warning: CONSENT_STORE_WRITEBACK=true, but no store API settings are set" in \
        result.output


def test_check_config_quiet_with_store_api(tmp_path: Path, stores: Stores) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=check_config_env(
        tmp_path, CONSENT_STORE_WRITEBACK="true", **store_settings(stores, "shopify")))
    assert result.exit_code == 0, result.output
    assert "CONSENT_STORE_WRITEBACK" not in result.output
