"""Consent, behaviour events and the sync success rate in the customer database.

Consent values are written into order bodies at the paths this project's
``integration/consent.yaml`` names, so the tests follow the project's platform. Each
test computes its expected values by hand. Times are relative to now, because the
segment views compare with now().
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from storesync.delivery import Delivery
from sync_support import SPEC_DIR, Line, Order
from test_customdb_fixtures import (  # noqa: F401 (fixtures)
    CustomHarness,
    database_url_fixture,
    engine_fixture,
    make_custom_harness_fixture,
    migrated_fixture,
)

MakeHarness = Callable[..., CustomHarness]
NOW = datetime.now(UTC).replace(microsecond=0)


def customer(number: int) -> dict[str, Any]:
    """Return a made-up customer; phones are in the 050 000 00xx range of the samples."""
    return {"id": 7300000000000 + number, "email": f"consent.{number}@example.com",
            "phone": f"+9665000000{40 + number}", "first_name": "هند", "last_name": "تجربة"}


def rules() -> dict[str, Any]:
    from storesync.customdb.consents import load_rules

    return {rule.channel: rule for rule in load_rules(SPEC_DIR / "consent.yaml")}


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    """Write ``value`` at a consent.yaml path: dotted keys, or ``meta_data[KEY]``."""
    *parents, last = path.split(".")
    node = body
    for segment in parents:
        if not isinstance(node.get(segment), dict):
            node[segment] = {}
        node = node[segment]
    if last.startswith("meta_data["):
        node.setdefault("meta_data", []).append({"key": last[len("meta_data["):-1],
                                                 "value": value})
    else:
        node[last] = value


def with_consent(body: dict[str, Any], channel: str, meaning: str,
                 at: datetime) -> dict[str, Any]:
    """Return ``body`` stating ``meaning`` for ``channel``, changed at ``at``."""
    rule = rules()[channel]
    value = next(value for value, found in rule.states.items() if found == meaning)
    set_path(body, rule.field, value)
    time_path = next(path for path in rule.extra_fields if path.rstrip("]").endswith("_at"))
    set_path(body, time_path, at.isoformat())
    return body


def pending_order(sync: CustomHarness, number: int, updated: datetime) -> dict[str, Any]:
    order = Order(880000 + number, customer(number), status="pending",
                  updated_at=updated.isoformat(), lines=(Line(93000 + number, "OUD-ROYAL-50",
                                                              1, "149.50"),))
    return order.body(sync.source)


def deliver(sync: CustomHarness, body: dict[str, Any]) -> Any:
    topic = Order(1, customer(0)).topic(sync.source)
    return sync.deliver(body, topic)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def test_consent_fills_opt_in_and_new_subscribers(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    if "email" not in rules() or "sms" not in rules():
        pytest.skip("this project's consent.yaml does not manage both email and sms")
    # 1: subscribed 5 days ago. → opted in 5 days ago, a new subscriber.
    deliver(sync, with_consent(pending_order(sync, 1, days_ago(5)), "email", "granted",
                               days_ago(5)))
    # 2: subscribed 10 days ago, unsubscribed 2 days ago. → no opt-in.
    deliver(sync, with_consent(pending_order(sync, 2, days_ago(10)), "email", "granted",
                               days_ago(10)))
    deliver(sync, with_consent(pending_order(sync, 2, days_ago(2)), "email", "withdrawn",
                               days_ago(2)))
    # 3: the unsubscribe of 1 day ago arrives before an older subscribe of 6 days ago,
    # in a stale copy of the order. → the newer unsubscribe wins, no opt-in.
    deliver(sync, with_consent(pending_order(sync, 3, days_ago(1)), "email", "withdrawn",
                               days_ago(1)))
    deliver(sync, with_consent(pending_order(sync, 3, days_ago(6)), "email", "granted",
                               days_ago(6)))
    # 4: email granted 40 days ago, SMS 3 days ago. → the earliest still granted is 40
    # days ago, which is past the 30 days of the segment.
    deliver(sync, with_consent(with_consent(pending_order(sync, 4, days_ago(3)), "email",
                                            "granted", days_ago(40)),
                               "sms", "granted", days_ago(3)))
    # 5: SMS granted 8 days ago, email not granted 7 days ago. → opted in 8 days ago.
    deliver(sync, with_consent(with_consent(pending_order(sync, 5, days_ago(7)), "sms",
                                            "granted", days_ago(8)),
                               "email", "not_granted", days_ago(7)))
    # 6: subscribed 4 days ago with a paid order. → opted in, but not a new subscriber.
    paid = Order(880006, customer(6), updated_at=days_ago(4).isoformat()).body(sync.source)
    deliver(sync, with_consent(paid, "email", "granted", days_ago(4)))
    report = sync.write()
    assert sum(report.dead_lettered.values()) == 0

    opt_in = {row["email"]: row["marketing_opt_in_at"] for row in sync.rows(
        "SELECT email, marketing_opt_in_at FROM contacts")}
    assert opt_in == {
        "consent.1@example.com": days_ago(5), "consent.2@example.com": None,
        "consent.3@example.com": None, "consent.4@example.com": days_ago(40),
        "consent.5@example.com": days_ago(8), "consent.6@example.com": days_ago(4)}
    members = {row["email"] for row in sync.rows("SELECT email FROM segment_new_subscribers")}
    assert members == {"consent.1@example.com", "consent.5@example.com"}
    # Every statement is kept as proof, newest per channel deciding.
    history = sync.rows("SELECT consents.state FROM consents JOIN contacts USING (contact_key) "
                        "WHERE email = 'consent.3@example.com' ORDER BY captured_at")
    assert [row["state"] for row in history] == ["granted", "withdrawn"]


def test_consent_same_delivery_twice_same_rows(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    body = with_consent(pending_order(sync, 7, days_ago(3)), "email", "granted", days_ago(3))
    sync.deliver(body, Order(1, customer(0)).topic(sync.source), delivery_id="consent-7")
    sync.write()
    sync.deliver(body, Order(1, customer(0)).topic(sync.source), delivery_id="consent-7b")
    sync.write()
    rows = sync.rows("SELECT channel, state, captured_at, source_event_id FROM consents")
    assert [(row["channel"], row["state"], row["captured_at"]) for row in rows] == [
        ("email", "granted", days_ago(3))]


def test_opt_out_at_same_moment_wins(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    deliver(sync, with_consent(pending_order(sync, 8, days_ago(2)), "email", "withdrawn",
                               days_ago(2)))
    sync.write()
    deliver(sync, with_consent(pending_order(sync, 8, days_ago(1)), "email", "granted",
                               days_ago(2)))
    sync.write()
    assert [row["state"] for row in sync.rows("SELECT state FROM consents")] == ["withdrawn"]
    assert sync.rows("SELECT marketing_opt_in_at FROM contacts")[0]["marketing_opt_in_at"] \
        is None


def test_completed_old_order_keeps_meta_time(make_custom_harness: MakeHarness) -> None:
    # WooCommerce order meta has no consent time of its own here. Completing an order
    # placed before a withdrawal repeats the checkout's opt-in, which stays older.
    sync = make_custom_harness()
    if sync.source != "woocommerce":
        pytest.skip("consent in order meta is WooCommerce's")
    deliver(sync, with_consent(pending_order(sync, 9, days_ago(2)), "email", "withdrawn",
                               days_ago(2)))
    sync.write()
    completed = pending_order(sync, 9, days_ago(1))
    rule = rules()["email"]
    set_path(completed, rule.field,
             next(value for value, found in rule.states.items() if found == "granted"))
    completed["date_created_gmt"] = days_ago(5).replace(tzinfo=None).isoformat()
    deliver(sync, completed)
    sync.write()
    rows = sync.rows("SELECT state, captured_at FROM consents ORDER BY captured_at")
    assert [(row["state"], row["captured_at"]) for row in rows] == [
        ("granted", days_ago(5)), ("withdrawn", days_ago(2))]
    assert sync.rows("SELECT marketing_opt_in_at FROM contacts")[0]["marketing_opt_in_at"] \
        is None


def test_shopify_consent_topics_stored(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    if sync.source != "shopify" or {"email", "sms"} - set(rules()):
        pytest.skip("this project does not read Shopify email and SMS consent")
    person = customer(13)
    deliver(sync, pending_order(sync, 13, days_ago(3)))
    # Since API 2025-01 a customer body carries no consent. These topics carry it, and
    # each names only the customer and one channel.
    sync.deliver({"id": person["id"], "phone": person["phone"],
                  "sms_marketing_consent": {"state": "subscribed",
                                            "opt_in_level": "single_opt_in",
                                            "consent_updated_at": days_ago(2).isoformat(),
                                            "consent_collected_from": "SHOPIFY"}},
                 "customers_marketing_consent/update")
    sync.deliver({"customer_id": person["id"], "email_address": person["email"],
                  "email_marketing_consent": {"state": "unsubscribed",
                                              "opt_in_level": "single_opt_in",
                                              "consent_updated_at": days_ago(1).isoformat()}},
                 "customers_email_marketing_consent/update")
    report = sync.write()
    assert sum(report.dead_lettered.values()) == 0

    rows = sync.rows("SELECT channel, state, captured_at, source FROM consents "
                     "ORDER BY captured_at")
    assert rows == [
        {"channel": "sms", "state": "granted", "captured_at": days_ago(2),
         "source": "shopify customers_marketing_consent/update (single_opt_in)"},
        {"channel": "email", "state": "withdrawn", "captured_at": days_ago(1),
         "source": "shopify customers_email_marketing_consent/update (single_opt_in)"}]
    # One contact, whose names the consent bodies did not empty; SMS is still granted.
    [contact] = sync.rows("SELECT first_name, last_name, email, phone_e164, "
                          "marketing_opt_in_at FROM contacts")
    assert contact == {"first_name": person["first_name"], "last_name": person["last_name"],
                       "email": person["email"], "phone_e164": person["phone"],
                       "marketing_opt_in_at": days_ago(2)}


def storefront_event(event: str, number: int, email: str) -> dict[str, Any]:
    """Return a storefront contract event body whose customer is ``email``."""
    return {"event": event, "event_id": f"evt_consent_{number}",
            "occurred_at": days_ago(1).isoformat(), "customer": {"email": email},
            "cart": {"token": f"cart-{number}", "value": "120.00", "url": None},
            "product": {"sku": "OUD-ROYAL-50"}}


def pixel_event(name: str, number: int, data: dict[str, Any]) -> dict[str, Any]:
    """Return a Shopify Web Pixels standard event body: name, id, timestamp and data."""
    return {"name": name, "id": f"evt_consent_{number}", "type": "standard",
            "timestamp": days_ago(1).isoformat(), "data": data}


def pixel_checkout(number: int, email: str) -> dict[str, Any]:
    return {"checkout": {"email": email, "token": f"cart-{number}",
                         "totalPrice": {"amount": 120.0, "currencyCode": "SAR"}}}


class EventCase(NamedTuple):
    """A behaviour event to deliver and the values its ``events`` row must have."""

    topic: str
    body: dict[str, Any]
    linked: bool
    value: Decimal | None
    sku: str | None


def storefront_cases() -> list[EventCase]:
    """Return events of the storefront contract, which names the customer on every event."""
    known, other = "consent.9@example.com", "someone.else@example.com"
    value, sku = Decimal("120.00"), "OUD-ROYAL-50"
    return [EventCase("page_view", storefront_event("page_view", 1, known), True, value, sku),
            EventCase("add_to_cart", storefront_event("add_to_cart", 2, known), True, value,
                      sku),
            EventCase("checkout_started", storefront_event("checkout_started", 3, known), True,
                      value, sku),
            EventCase("page_view", storefront_event("page_view", 4, other), False, value, sku)]


def pixel_cases() -> list[EventCase]:
    """Return Web Pixels events. The field map reads an email and a value only from checkouts."""
    known, other = "consent.9@example.com", "someone.else@example.com"
    cart_line = {"cartLine": {"quantity": 1, "merchandise": {
        "id": "gid://shopify/ProductVariant/4100", "sku": "OUD-ROYAL-50",
        "price": {"amount": 149.5, "currencyCode": "SAR"}}}}
    return [EventCase("page_viewed", pixel_event("page_viewed", 1, {}), False, None, None),
            EventCase("product_added_to_cart",
                      pixel_event("product_added_to_cart", 2, cart_line), False, None,
                      "OUD-ROYAL-50"),
            EventCase("checkout_started",
                      pixel_event("checkout_started", 3, pixel_checkout(3, known)), True,
                      Decimal("120.00"), None),
            EventCase("checkout_completed",
                      pixel_event("checkout_completed", 4, pixel_checkout(4, other)), False,
                      Decimal("120.00"), None)]


def test_behaviour_events_stored(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    deliver(sync, pending_order(sync, 9, days_ago(2)))
    # On a Shopify project, behaviour events are Web Pixels standard events, mapped with
    # the event name as the topic. Other projects receive the storefront contract's events.
    # NOTE: the intake maps pixel events only on /webhooks/shopify, whose HMAC a browser
    # pixel cannot compute without the app secret. /webhooks/storefront reads the topic
    # from an ``event`` field that pixel events lack, so it quarantines them.
    if sync.source == "shopify":
        cases = pixel_cases()
    elif "storefront" in sync.context.settings.accepted_platforms:
        sync.source = "storefront"
        cases = storefront_cases()
    else:
        pytest.skip("this project receives no behaviour events")
    for case in cases:
        sync.deliver(case.body, case.topic)
    report = sync.write()
    assert report.written.get("events") == 4
    assert sum(report.dead_lettered.values()) == 0

    contact = sync.rows("SELECT contact_key FROM contacts")[0]["contact_key"]
    rows = sync.rows("SELECT event_id, event_key, contact_key, contact_email, cart_token, "
                     "value_sar, sku, occurred_at FROM events ORDER BY event_id")
    assert [row["event_id"] for row in rows] == [f"evt_consent_{n}" for n in range(1, 5)]
    assert [row["event_key"] for row in rows][:3] == ["page_view", "add_to_cart",
                                                      "checkout_started"]
    assert [row["contact_key"] for row in rows] == [
        contact if case.linked else None for case in cases]
    assert rows[3]["contact_email"] == "someone.else@example.com"
    assert [row["value_sar"] for row in rows] == [case.value for case in cases]
    assert [row["sku"] for row in rows] == [case.sku for case in cases]
    assert rows[2]["cart_token"] == "cart-3"
    assert {row["occurred_at"] for row in rows} == {days_ago(1)}
    # Their deliveries were kept in the database, so they count as synced.
    event_topics = {case.topic for case in cases}
    outcomes = {row["outcome"] for row in sync.rows(
        "SELECT topic, outcome FROM source_payloads WHERE source = :source", source=sync.source)
        if row["topic"] in event_topics}
    assert outcomes == {"synced_later"}


def test_success_rate_stale_and_quarantine(make_custom_harness: MakeHarness) -> None:
    from storesync.customdb.deliveries import handle_delivery

    sync = make_custom_harness()
    for number in (10, 11, 12):
        deliver(sync, pending_order(sync, number, days_ago(1)))
    # An older copy of order 12: the worker skips it as stale, which is not a failure.
    deliver(sync, pending_order(sync, 12, days_ago(2)))
    # The worker quarantines a body that is not JSON; it also keeps its payload row.
    broken = Delivery(delivery_id="broken-json", source=sync.source,
                      topic=Order(1, customer(0)).topic(sync.source), shop="test-store",
                      received_at="2026-03-03T18:10:00Z", triggered_at=None, body="{not json")
    handle_delivery(broken, sync.context)
    # A job that failed after its retries: the queue task puts it in the quarantine, and
    # the worker step never stored it.
    failed = Delivery(delivery_id="failed-after-retries", source=sync.source,
                      topic=broken.topic, shop="test-store",
                      received_at="2026-03-03T18:20:00Z", triggered_at=None, body="{}")
    sync.context.quarantine.add(failed, "worker failed after 4 attempts: OperationalError")
    sync.write()
    sync.write()

    # 6 deliveries on 3 March (Asia/Riyadh): 3 written, 1 stale, 2 quarantined. The stale
    # one is left out of the rate → 3 / (3 + 2).
    rows = sync.rows("SELECT * FROM kpi_sync_success_rate")
    assert rows == [{"day": datetime(2026, 3, 3).date(), "received": 6, "written": 3,
                     "stale": 1, "failed": 2, "no_records": 0,
                     "success_rate_percent": Decimal("60.00")}]
    outcomes = {row["event_id"]: row["outcome"] for row in sync.rows(
        "SELECT event_id, outcome FROM source_payloads")}
    assert outcomes["failed-after-retries"] == "quarantined"
    assert outcomes["broken-json"] == "quarantined"


def test_missing_consent_file_gives_no_rules(tmp_path: Path) -> None:
    from storesync.customdb.consents import consent_changes, load_rules

    assert load_rules(tmp_path / "consent.yaml") == []
    assert consent_changes([], {"customer": {}}) == []


def test_unreadable_consent_file_skips_consent(tmp_path: Path) -> None:
    from storesync.customdb.deliveries import consent_rules

    (tmp_path / "consent.yaml").write_text("channels: [unclosed\n", encoding="utf-8")
    assert consent_rules(tmp_path) == []
