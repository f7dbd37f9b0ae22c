"""Products made from order lines, SKUs and customer ids per shop, and unusable order bodies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from storesync.record_keys import scope_record
from storesync.runtime.engine import Record
from storesync.worker import JobOutcome
from sync_support import SARA, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]

SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"
# A made-up customer of shop B who has the same store customer id as SARA in shop A.
LAYLA_SAME_ID: dict[str, Any] = {
    "id": SARA["id"], "email": "layla.other@example.com", "phone": "+966500000041",
    "first_name": "ليلى", "last_name": "الحربي"}


def props(record: dict[str, Any]) -> dict[str, str]:
    properties = record["properties"]
    assert isinstance(properties, dict)
    return properties


def product_body(source: str, variant_id: int, sku: str, title: str,
                 updated_at: str) -> tuple[str, dict[str, Any]]:
    """Return (topic, body) of a product webhook with one variant, or skip on the storefront."""
    if source == "shopify":
        return "products/update", {
            "id": variant_id - 1, "title": title, "product_type": "perfume",
            "body_html": "<p>عطر</p>", "updated_at": updated_at,
            "variants": [{"id": variant_id, "sku": sku, "price": "149.50"}]}
    if source == "woocommerce":
        return "product.updated", {
            "id": variant_id, "name": title, "sku": sku, "price": "149.50",
            "date_modified_gmt": updated_at[:19]}
    pytest.skip("the storefront contract has no product event")


# --- Products from order lines -------------------------------------------------------------


def test_line_sku_makes_product(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(840001, SARA, lines=(Line(95001, "OUD-ROYAL-50", 1, "149.50"),)))
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    products = sync.standin.records("products")
    assert len(products) == 1
    product = props(products[0])
    id_property = sync.context.fields["product"]["store_product_id"]
    assert product[id_property] == "test-store:sku:OUD-ROYAL-50"
    assert product["hs_sku"] == "OUD-ROYAL-50"
    assert product["name"] == "عطر تجريبي"
    assert product["price"] == "149.50"
    line = props(sync.standin.records("line_items")[0])
    assert line["hs_product_id"] == products[0]["id"]


def test_known_sku_no_new_product(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(840002, SARA, lines=(Line(95002, "OUD-ROYAL-50", 1, "149.50"),)))
    sync.flush()
    sync.deliver_order(Order(840003, SARA, updated_at="2026-03-04T10:00:00+00:00",
                             lines=(Line(95003, "OUD-ROYAL-50", 2, "149.50"),)))
    second = sync.flush()
    assert second.synced["products"] == 0
    products = sync.standin.records("products")
    assert len(products) == 1
    lines = sync.standin.records("line_items")
    assert [props(line)["hs_product_id"] for line in lines] == [products[0]["id"]] * 2


def test_missing_sku_uses_variant(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(840004, SARA, lines=(Line(95004, None, 1, "149.50"),)))
    sync.flush()
    # The spec's missing-SKU rule: the variant id (Shopify, storefront) or the variation
    # or product id (WooCommerce) is used as the SKU. The test lines use id + 5.
    variant = {"storefront": "var_95004"}.get(sync.source, "95009")
    product = props(sync.standin.records("products")[0])
    assert product["hs_sku"] == variant
    line = props(sync.standin.records("line_items")[0])
    assert line["hs_product_id"] == sync.standin.records("products")[0]["id"]


def test_product_webhook_updates_line_product(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(840005, SARA, lines=(Line(95005, "OUD-ROYAL-50", 1, "149.50"),)))
    sync.flush()
    topic, body = product_body(sync.source, 96001, "OUD-ROYAL-50", "عطر العود الملكي",
                               "2026-03-05T09:00:00+00:00")
    assert sync.deliver(body, topic) is JobOutcome.SYNCED_LATER
    sync.flush()
    products = sync.standin.records("products")
    assert len(products) == 1
    assert props(products[0])["name"] == "عطر العود الملكي"
    id_property = sync.context.fields["product"]["store_product_id"]
    assert props(products[0])[id_property] == "test-store:sku:OUD-ROYAL-50"


def test_product_webhook_first_links_line(make_harness: MakeHarness) -> None:
    sync = make_harness()
    topic, body = product_body(sync.source, 96002, "BAKHOOR-250", "بخور", "2026-03-01T09:00:00Z")
    sync.deliver(body, topic)
    sync.flush()
    sync.deliver_order(Order(840006, SARA, lines=(Line(95006, "BAKHOOR-250", 1, "24.75"),)))
    sync.flush()
    products = sync.standin.records("products")
    assert len(products) == 1
    id_property = sync.context.fields["product"]["store_product_id"]
    assert props(products[0])[id_property] == "test-store:96002"
    line = props(sync.standin.records("line_items")[0])
    assert line["hs_product_id"] == products[0]["id"]


# --- The same ids in two shops --------------------------------------------------------------


def test_same_sku_two_shops(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(840101, SARA, lines=(Line(95101, "OUD-ROYAL-50", 1, "149.50"),)),
                       shop=SHOP_A)
    sync.deliver_order(Order(840102, SARA, lines=(Line(95102, "OUD-ROYAL-50", 1, "149.50"),)),
                       shop=SHOP_B)
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    id_property = sync.context.fields["product"]["store_product_id"]
    products = {props(record)[id_property]: record["id"]
                for record in sync.standin.records("products")}
    assert sorted(products) == [f"{SHOP_A}:sku:OUD-ROYAL-50", f"{SHOP_B}:sku:OUD-ROYAL-50"]
    line_property = sync.context.fields["line_item"]["store_line_item_id"]
    linked = {props(line)[line_property].partition(":")[0]: props(line)["hs_product_id"]
              for line in sync.standin.records("line_items")}
    assert linked[SHOP_A] == products[f"{SHOP_A}:sku:OUD-ROYAL-50"]
    assert linked[SHOP_B] == products[f"{SHOP_B}:sku:OUD-ROYAL-50"]


def test_same_customer_id_two_shops(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(840201, SARA), shop=SHOP_A)
    sync.deliver_order(Order(840202, LAYLA_SAME_ID), shop=SHOP_B)
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    target = sync.context.fields["contact"]["store_customer_id"]
    contacts = {props(record)["email"]: props(record)
                for record in sync.standin.records("contacts")}
    assert sorted(contacts) == [LAYLA_SAME_ID["email"], SARA["email"]]
    customer_id = f"cus_{SARA['id']}" if sync.source == "storefront" else str(SARA["id"])
    assert contacts[SARA["email"]][target] == f"{SHOP_A}:{customer_id}"
    assert contacts[LAYLA_SAME_ID["email"]][target] == f"{SHOP_B}:{customer_id}"
    assert contacts[SARA["email"]]["ecom_orders_count"] == "1"
    assert contacts[LAYLA_SAME_ID["email"]]["ecom_orders_count"] == "1"


def test_customer_id_same_shop_matches(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(840301, SARA), shop=SHOP_A)
    # The same customer with a new email in the same shop is still one contact.
    renamed = {**SARA, "email": "sara.new@example.com"}
    sync.deliver_order(Order(840302, renamed, updated_at="2026-03-04T10:00:00+00:00"),
                       shop=SHOP_A)
    sync.flush()
    contacts = sync.standin.records("contacts")
    assert len(contacts) == 1
    assert props(contacts[0])["ecom_orders_count"] == "2"


def test_scope_record_ticket_and_customer() -> None:
    ticket = Record("ticket", "tickets", {"ecom_ticket_id": "55", "subject": "late"},
                    [("ecom_ticket_id", "55")], {})
    contact = Record("contact", "contacts",
                     {"ecom_customer_id": "100", "email": "a@example.com"},
                     [("ecom_customer_id", "100"), ("email", "a@example.com")], {})
    scoped_ticket = scope_record(ticket, "shop-a")
    scoped_contact = scope_record(contact, "shop-a", "ecom_customer_id")
    assert scoped_ticket.identity == [("ecom_ticket_id", "shop-a:55")]
    assert scoped_ticket.properties["ecom_ticket_id"] == "shop-a:55"
    assert scoped_contact.identity == [("ecom_customer_id", "shop-a:100"),
                                       ("email", "a@example.com")]
    assert scoped_contact.properties["ecom_customer_id"] == "shop-a:100"
    assert scoped_contact.properties["email"] == "a@example.com"


# --- Bodies the field map cannot use ---------------------------------------------------------


def empty_order(source: str) -> tuple[str, dict[str, Any]]:
    """Return (topic, body) of an order body with an id and nothing else."""
    if source == "shopify":
        return "orders/create", {"id": 77}
    if source == "woocommerce":
        return "order.created", {"id": 77}
    return "order_updated", {"event": "order_updated", "order": {"id": "ord_77"}}


def test_empty_order_quarantined(make_harness: MakeHarness) -> None:
    sync = make_harness()
    topic, body = empty_order(sync.source)
    assert sync.deliver(body, topic) is JobOutcome.QUARANTINED
    assert sync.context.store.pending_count() == 0
    report = sync.flush()
    assert report.calls == 0
    assert sync.standin.records("deals") == []
    entries = sync.context.quarantine.entries()
    assert len(entries) == 1
    assert entries[0].topic == topic
    assert "order.amount" in entries[0].reason
    assert "requires" in entries[0].reason


def test_refund_body_not_quarantined(make_harness: MakeHarness) -> None:
    sync = make_harness()
    if sync.source != "shopify":
        pytest.skip("only Shopify sends a refund body that carries no order total")
    body = {"id": 990001, "order_id": 840401, "transactions": [{"amount": "10.00"}]}
    assert sync.deliver(body, "refunds/create") is JobOutcome.NOTHING_TO_DO
    assert sync.context.quarantine.entries() == []
