"""Record keys across shops, shared phones, association results and pauses, against the stand-in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from storesync import logs
from storesync.metrics import SYNC_REGISTRY
from storesync.record_keys import record_key, scope_record, shop_part
from storesync.runtime.engine import Record
from storesync.standins.hubspot import HubSpotStandinConfig
from storesync.sync_store import OutboxItem
from sync_support import SARA, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]

SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"
# Two made-up people with their own emails who share one phone number.
HUDA_SHARED_PHONE: dict[str, Any] = {
    "id": 7200000000021, "email": "huda.shared@example.com", "phone": SARA["phone"],
    "first_name": "هدى", "last_name": "القحطاني"}
RAED_PHONE_IN_CRM: dict[str, Any] = {
    "id": 7200000000022, "email": "raed.crm@example.com", "phone": "+966500000031",
    "first_name": "رائد", "last_name": "الشمري"}


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.configure_logging("DEBUG", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def props(record: dict[str, Any]) -> dict[str, str]:
    properties = record["properties"]
    assert isinstance(properties, dict)
    return properties


def conflicts_counted(obj: str, prop: str) -> float:
    value = SYNC_REGISTRY.get_sample_value("storesync_unique_value_conflicts_total",
                                           {"object": obj, "property": prop})
    return float(value or 0.0)


# --- Keys: shop and store id -----------------------------------------------------------------


@pytest.mark.parametrize(("source", "shop", "expected"), [
    ("shopify", "Demo-Store.myshopify.com", "demo-store.myshopify.com"),
    ("woocommerce", "https://demo-store.example.com/", "demo-store.example.com"),
    ("woocommerce", "http://example.com/shop/", "example.com/shop"),
    ("woocommerce", "https://example.com:8443/", "example.com%3A8443"),
    ("storefront", "my-store", "my-store"),
    ("storefront", None, "storefront"),
    ("shopify", "  ", "shopify"),
])
def test_shop_part_normalised(source: str, shop: str | None, expected: str) -> None:
    assert shop_part(source, shop) == expected


def test_record_key_format() -> None:
    assert record_key("demo-store.myshopify.com", "820982911946154508") == \
        "demo-store.myshopify.com:820982911946154508"


def test_scope_record_leaves_contacts() -> None:
    contact = Record("contact", "contacts", {"email": "a@example.com"},
                     [("email", "a@example.com")], {})
    order = Record("order", "deals", {"shopify_order_id": "1001", "amount": "10.00"},
                   [("shopify_order_id", "1001")], {})
    assert scope_record(contact, "shop") is contact
    scoped = scope_record(order, "shop")
    assert scoped.identity == [("shopify_order_id", "shop:1001")]
    assert scoped.properties == {"shopify_order_id": "shop:1001", "amount": "10.00"}


def test_same_order_id_two_shops(make_harness: MakeHarness) -> None:
    sync = make_harness()
    order = Order(830001, SARA, lines=(Line(93101, "OUD-ROYAL-50", 1, "149.50"),))
    sync.deliver_order(order, shop=SHOP_A)
    sync.deliver_order(order, shop=SHOP_B)
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    order_property = sync.context.fields["order"]["external_order_id"]
    line_property = sync.context.fields["line_item"]["store_line_item_id"]
    deals = sync.standin.records("deals")
    lines = sync.standin.records("line_items")
    storefront = sync.source == "storefront"
    order_id = "ord_830001" if storefront else "830001"
    line_id = "li_93101" if storefront else "93101"
    assert sorted(props(deal)[order_property] for deal in deals) == [
        f"{SHOP_A}:{order_id}", f"{SHOP_B}:{order_id}"]
    assert sorted(props(line)[line_property] for line in lines) == [
        f"{SHOP_A}:{line_id}", f"{SHOP_B}:{line_id}"]
    for deal in deals:
        assert len(deal["associations"]["line_items"]) == 1
    # Both orders belong to one customer, so the roll-ups count two orders.
    contact = props(sync.standin.records("contacts")[0])
    assert contact["ecom_orders_count"] == "2"


def test_order_key_in_outbox_and_versions(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(830002, SARA), shop=SHOP_A)
    with sync.context.store.db.connection() as conn:
        deal_keys = [row[0] for row in conn.execute(
            "SELECT key FROM sync_outbox WHERE object = 'deals'")]
        versions = [row[0] for row in conn.execute(
            "SELECT resource FROM sync_versions WHERE resource LIKE 'deals:%'")]
        orders = [row[0] for row in conn.execute("SELECT order_key FROM sync_orders")]
        links = [row[0] for row in conn.execute(
            "SELECT key FROM sync_outbox WHERE object = 'assoc:deals:contacts'")]
    assert len(deal_keys) == 1
    assert deal_keys[0].startswith(f"{SHOP_A}:")
    assert versions == [f"deals:{deal_keys[0]}"]
    assert orders == deal_keys
    assert links[0].startswith(f"{deal_keys[0]}|")


# --- Two contacts sharing one phone ------------------------------------------------------------


def test_shared_phone_two_contacts(make_harness: MakeHarness,
                                   captured_logs: io.StringIO) -> None:
    sync = make_harness()
    phone_property = sync.context.fields["contact"]["phone_e164"]
    counted_before = conflicts_counted("contacts", phone_property)
    sync.deliver_order(Order(830101, SARA))
    sync.deliver_order(Order(830102, HUDA_SHARED_PHONE))
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    contacts = {props(record)["email"]: props(record)
                for record in sync.standin.records("contacts")}
    assert sorted(contacts) == [HUDA_SHARED_PHONE["email"], SARA["email"]]
    assert contacts[SARA["email"]][phone_property] == SARA["phone"]
    assert phone_property not in contacts[HUDA_SHARED_PHONE["email"]]
    assert contacts[HUDA_SHARED_PHONE["email"]]["phone"] == SARA["phone"]
    assert contacts[SARA["email"]]["phone"] == SARA["phone"]
    assert conflicts_counted("contacts", phone_property) - counted_before == 1
    output = captured_logs.getvalue()
    warnings = [json.loads(line) for line in output.splitlines() if "unique phone" in line]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "WARNING"
    assert warnings[0]["phone"] == "+9665*****011"
    assert SARA["phone"] not in output
    assert HUDA_SHARED_PHONE["email"] not in output


def test_phone_held_in_crm_retried(make_harness: MakeHarness,
                                   captured_logs: io.StringIO) -> None:
    sync = make_harness()
    phone_property = sync.context.fields["contact"]["phone_e164"]
    # A contact made in HubSpot by someone else already has the unique phone value.
    created = sync.standin.http.post("/crm/v3/objects/contacts", json={"properties": {
        "email": "someone.else@example.com", phone_property: RAED_PHONE_IN_CRM["phone"]}},
        headers={"Authorization": "Bearer test-token-not-real"})
    assert created.status_code == 201
    counted_before = conflicts_counted("contacts", phone_property)
    sync.deliver_order(Order(830201, RAED_PHONE_IN_CRM))
    report = sync.flush()
    # The deal's link waits a second for the contact that was sent again.
    later = sync.flush(now=sync.context.store.clock() + 5)
    assert sum(report.dead_lettered.values()) + sum(later.dead_lettered.values()) == 0
    assert sync.context.store.dead_letters() == []
    raed = next(props(record) for record in sync.standin.records("contacts")
                if props(record)["email"] == RAED_PHONE_IN_CRM["email"])
    assert phone_property not in raed
    assert raed["phone"] == RAED_PHONE_IN_CRM["phone"]
    assert len(sync.standin.records("deals")[0]["associations"]["contacts"]) == 1
    assert conflicts_counted("contacts", phone_property) - counted_before == 1
    output = captured_logs.getvalue()
    warning = next(json.loads(line) for line in output.splitlines()
                   if "unique value held by another CRM record" in line)
    assert warning["properties"] == [phone_property]
    assert warning["values"] == ["+9665*****031"]
    assert RAED_PHONE_IN_CRM["phone"] not in output


# --- Association results ---------------------------------------------------------------------


def test_link_207_matched_by_pair(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(830301, SARA))
    sync.flush()
    store = sync.context.store
    assert store.pending_count() == 0
    with store.db.connection() as conn:
        deal_key, deal_id = conn.execute(
            "SELECT key, crm_id FROM sync_crm_ids WHERE object = 'deals'").fetchone()
        contact_key = conn.execute(
            "SELECT key FROM sync_crm_ids WHERE object = 'contacts'").fetchone()[0]
        # A contact whose stored HubSpot id no longer exists in HubSpot.
        conn.execute("INSERT INTO sync_crm_ids (object, key, crm_id) "
                     "VALUES ('contacts', 'c-gone', '990099')")
    with store.transaction() as conn:
        for to_key in (contact_key, "c-gone"):
            store.enqueue(conn, OutboxItem(
                object="assoc:deals:contacts", key=f"{deal_key}|{to_key}",
                properties={"from_key": deal_key, "to_key": to_key, "type_id": 3},
                event_id="evt-links", resource=f"deals:{deal_key}"))
    report = sync.flush()
    letters = store.dead_letters()
    # Both links start at the same deal; only the one to the missing contact failed.
    assert report.synced["assoc:deals:contacts"] == 1
    assert [letter.item.key for letter in letters] == [f"{deal_key}|c-gone"]
    assert letters[0].status == 207
    assert "990099" in letters[0].error
    deal = next(record for record in sync.standin.records("deals") if record["id"] == deal_id)
    assert len(deal["associations"]["contacts"]) == 1


# --- Pauses ------------------------------------------------------------------------------------


def test_daily_limit_pause_setting(make_harness: MakeHarness) -> None:
    sync = make_harness(HubSpotStandinConfig(daily_limit=2),
                        HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS="120")
    sync.deliver_order(Order(830401, SARA))
    now = sync.context.store.clock()
    first = sync.flusher.flush_once(now=now, force=True)
    assert first.paused
    assert sync.flusher.paused_until == pytest.approx(now + 120)
    assert sync.flusher.flush_once(now=now + 119, force=True).paused
    calls = sync.client.calls
    sync.flusher.flush_once(now=now + 121, force=True)
    assert sync.client.calls > calls


def test_auth_failure_pause_setting(make_harness: MakeHarness) -> None:
    sync = make_harness(HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS="15")
    sync.deliver_order(Order(830501, SARA))
    sync.standin.fault(401, 1, "/crm/v3/objects/contacts")
    now = sync.context.store.clock()
    assert sync.flusher.flush_once(now=now, force=True).paused
    assert sync.flusher.paused_until == pytest.approx(now + 15)
