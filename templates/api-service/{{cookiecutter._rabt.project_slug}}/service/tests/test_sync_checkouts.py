"""Checkout events on the HubSpot path: the contact's last checkout roll-ups, never new contacts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from storesync.checkouts import NO_HUBSPOT_TARGET, UNKNOWN_CONTACT
from storesync.worker import JobOutcome
from sync_support import SARA, Order, SyncHarness, family

MakeHarness = Callable[..., SyncHarness]
EARLIER = "2026-03-05T08:00:00+00:00"
LATER = "2026-03-05T09:30:00+00:00"


def require_checkout_events() -> str:
    source = family()
    if source not in ("shopify", "storefront"):
        pytest.skip(f"{source} projects get checkout events only from a headless storefront")
    return source


def checkout_event(source: str, number: int, email: str | None, when: str,
                   value: str = "120.00") -> dict[str, Any]:
    """Return a checkout_started event as the Shopify pixel or a storefront sends it."""
    if source == "shopify":
        return {"name": "checkout_started", "id": f"evt_checkout_{number}", "type": "standard",
                "timestamp": when,
                "data": {"checkout": {"email": email, "token": f"cart-{number}",
                                      "totalPrice": {"amount": value, "currencyCode": "SAR"}}}}
    customer = {"email": email} if email else {}
    return {"event": "checkout_started", "event_id": f"evt_checkout_{number}",
            "occurred_at": when, "customer": customer,
            "cart": {"token": f"cart-{number}", "value": value, "url": None}}


def sara_contact(sync: SyncHarness) -> dict[str, Any]:
    found = [record for record in sync.standin.records("contacts")
             if record["properties"].get("email") == SARA["email"]]
    assert len(found) == 1, found
    properties = found[0]["properties"]
    assert isinstance(properties, dict)
    return properties


def sync_sara(sync: SyncHarness) -> None:
    assert sync.deliver_order(Order(850001, SARA)) is JobOutcome.SYNCED_LATER
    sync.flush()


def test_checkout_sets_contact_rollups(make_harness: MakeHarness) -> None:
    source = require_checkout_events()
    sync = make_harness()
    sync_sara(sync)
    assert "ecom_last_checkout_at" not in sara_contact(sync)

    event = checkout_event(source, 1, SARA["email"], LATER, "245.50")
    assert sync.deliver(event, "checkout_started") is JobOutcome.SYNCED_LATER
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    contact = sara_contact(sync)
    assert contact["ecom_last_checkout_at"].startswith("2026-03-05T09:30:00")
    assert Decimal(contact["ecom_last_cart_value_sar"]) == Decimal("245.50")
    # The order's roll-ups stay as they were.
    assert contact["ecom_orders_count"] == "1"


def test_older_checkout_kept_out(make_harness: MakeHarness) -> None:
    source = require_checkout_events()
    sync = make_harness()
    sync_sara(sync)
    newer = checkout_event(source, 2, SARA["email"], LATER, "300.00")
    older = checkout_event(source, 3, SARA["email"], EARLIER, "10.00")
    assert sync.deliver(newer, "checkout_started") is JobOutcome.SYNCED_LATER
    assert sync.deliver(older, "checkout_started") is JobOutcome.SKIPPED_STALE
    sync.flush()
    contact = sara_contact(sync)
    assert contact["ecom_last_checkout_at"].startswith("2026-03-05T09:30:00")
    assert Decimal(contact["ecom_last_cart_value_sar"]) == Decimal("300.00")


def test_newer_checkout_replaces_older(make_harness: MakeHarness) -> None:
    # Both events reach the worker with the same receipt time, so only the events' own
    # times can order them.
    source = require_checkout_events()
    sync = make_harness()
    sync_sara(sync)
    older = checkout_event(source, 6, SARA["email"], EARLIER, "10.00")
    newer = checkout_event(source, 7, SARA["email"], LATER, "300.00")
    assert sync.deliver(older, "checkout_started") is JobOutcome.SYNCED_LATER
    assert sync.deliver(newer, "checkout_started") is JobOutcome.SYNCED_LATER
    sync.flush()
    contact = sara_contact(sync)
    assert contact["ecom_last_checkout_at"].startswith("2026-03-05T09:30:00")
    assert Decimal(contact["ecom_last_cart_value_sar"]) == Decimal("300.00")


def test_checkout_time_not_contact_version(make_harness: MakeHarness) -> None:
    # A checkout after the order must not make the next order update look stale.
    source = require_checkout_events()
    sync = make_harness()
    sync_sara(sync)
    event = checkout_event(source, 4, SARA["email"], "2026-03-09T09:00:00+00:00")
    assert sync.deliver(event, "checkout_started") is JobOutcome.SYNCED_LATER
    renamed = {**SARA, "first_name": "سارة المحدثة"}
    update = Order(850001, renamed, total="180.00", updated_at="2026-03-06T10:00:00+00:00")
    assert sync.deliver_order(update) is JobOutcome.SYNCED_LATER
    sync.flush()
    assert sara_contact(sync)["firstname"] == "سارة المحدثة"


def test_unknown_email_creates_no_contact(make_harness: MakeHarness,
                                          caplog: pytest.LogCaptureFixture) -> None:
    source = require_checkout_events()
    sync = make_harness()
    event = checkout_event(source, 5, "stranger.checkout@example.com", LATER)
    with caplog.at_level(logging.DEBUG, logger="storesync.worker"):
        outcome = sync.deliver(event, "checkout_started")
    assert outcome is JobOutcome.NOTHING_TO_DO
    sync.flush()
    assert sync.standin.records("contacts") == []
    assert any(UNKNOWN_CONTACT in record.getMessage() for record in caplog.records)
    assert "stranger.checkout@example.com" not in caplog.text


def test_page_view_logs_reason(make_harness: MakeHarness,
                               caplog: pytest.LogCaptureFixture) -> None:
    if family() != "shopify":
        pytest.skip("the page_viewed event comes from the Shopify pixel")
    sync = make_harness()
    event = {"name": "page_viewed", "id": "evt_page_1", "type": "standard",
             "timestamp": LATER, "data": {}}
    with caplog.at_level(logging.DEBUG, logger="storesync.worker"):
        assert sync.deliver(event, "page_viewed") is JobOutcome.NOTHING_TO_DO
    assert any(NO_HUBSPOT_TARGET in record.getMessage() for record in caplog.records)
    assert sync.standin.records("contacts") == []


def test_checkout_webhook_sets_new_contact(make_harness: MakeHarness) -> None:
    if family() != "shopify":
        pytest.skip("checkouts/create is a Shopify webhook")
    sync = make_harness()
    body = {"id": 33000001, "token": "chk-token-1", "email": SARA["email"],
            "created_at": EARLIER, "updated_at": LATER, "total_price": "99.00",
            "currency": "SAR", "customer": {key: SARA[key] for key in (
                "id", "email", "phone", "first_name", "last_name")}}
    assert sync.deliver(body, "checkouts/create") is JobOutcome.SYNCED_LATER
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    contact = sara_contact(sync)
    assert contact["ecom_last_checkout_at"].startswith("2026-03-05T09:30:00")
    assert Decimal(contact["ecom_last_cart_value_sar"]) == Decimal("99.00")
