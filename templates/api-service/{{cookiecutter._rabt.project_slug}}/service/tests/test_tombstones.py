"""Tombstones of redacted customers: what a delivery matches, the time that counts, expiry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storesync import tombstones
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.tombstones import (
    SECONDS_PER_DAY,
    TOMBSTONE_RETENTION_DAYS,
    bury,
    create_table,
    customer_digests,
    redaction_of,
    shop_digest,
)

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
BEFORE_T0 = "2027-01-15T07:59:00Z"
AFTER_T0 = "2027-01-15T08:01:00Z"


@pytest.fixture
def database(tmp_path: Path) -> Database:
    db = Database(tmp_path / "state.sqlite3")
    create_table(db)
    return db


def delivery(body: str = "{}", *, topic: str = "orders/updated", shop: str = "test-store",
             received_at: str = BEFORE_T0, source: str = "shopify",
             delivery_id: str = "evt-1") -> Delivery:
    return Delivery(delivery_id=delivery_id, source=source, topic=topic, shop=shop,
                    received_at=received_at, triggered_at=None, body=body)


def request_for(database: Database, item: Delivery, body: Any) -> int | None:
    with database.reading() as reader:
        return redaction_of(reader, item, body)


def bury_sara(database: Database, request_id: int = 7, now: float = T0) -> int:
    digests = customer_digests(["Sara@Example.com"], ["+966500000011"],
                               ["test-store:720001"], ["test-store:8200001"])
    with database.transaction() as conn:
        return bury(conn, digests, request_id, now)


@pytest.mark.parametrize(("topic", "body"), [
    ("orders/updated", {"id": 1, "email": "SARA@example.com "}),
    ("orders/updated", {"id": 1, "billing_address": {"phone": "+966 50 000 0011"}}),
    ("orders/updated", {"id": 1, "customer": {"id": 720001}}),
    ("order.updated", {"id": 1, "customer_id": 720001}),
    ("customers/update", {"id": 720001}),
    ("orders/updated", {"id": 8200001}),
    ("orders/updated", {"id": 1, "notes": [{"value": "sara@example.com"}]}),
])
def test_delivery_naming_customer_matches(database: Database, topic: str,
                                          body: dict[str, Any]) -> None:
    assert bury_sara(database) == 4
    assert request_for(database, delivery(topic=topic), body) == 7


@pytest.mark.parametrize(("topic", "body", "shop"), [
    ("orders/updated", {"id": 1, "email": "guest@example.com"}, "test-store"),
    # Store ids are unique only within one shop.
    ("orders/updated", {"id": 1, "customer": {"id": 720001}}, "other-store"),
    ("orders/updated", {"id": 8200001}, "other-store"),
    # A local phone form is not the same digits as the stored E.164 one.
    ("orders/updated", {"id": 1, "phone": "0500000011"}, "test-store"),
    # Quantities and prices are too short to be a phone.
    ("orders/updated", {"id": 1, "quantity": 11, "total_price": "11.00"}, "test-store"),
    ("orders/updated", [1, 2], "test-store"),
])
def test_other_deliveries_do_not_match(database: Database, topic: str, body: Any,
                                       shop: str) -> None:
    bury_sara(database)
    assert request_for(database, delivery(topic=topic, shop=shop), body) is None


def test_only_deliveries_received_before_count(database: Database) -> None:
    bury_sara(database)
    body = {"id": 1, "email": "sara@example.com"}
    assert request_for(database, delivery(received_at=BEFORE_T0), body) == 7
    assert request_for(database, delivery(received_at=AFTER_T0), body) is None
    # An unreadable receive time counts as older than every redaction.
    assert request_for(database, delivery(received_at="yesterday"), body) == 7


def test_no_newer_redaction_skips_digests(database: Database,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bury_sara(database)

    def fail(*_: Any) -> set[str]:
        raise AssertionError("digests computed with no redaction newer than the delivery")

    monkeypatch.setattr(tombstones, "delivery_digests", fail)
    body = {"id": 1, "email": "sara@example.com"}
    assert request_for(database, delivery(received_at=AFTER_T0), body) is None


# Reconciliation and backfill queue what they read with the time of the run as receive time.
READ_LATER = "2027-01-20T10:00:00Z"


@pytest.mark.parametrize(("source", "topic", "body", "expected"), [
    ("shopify", "orders/updated", {"id": 1, "email": "sara@example.com",
                                   "created_at": "2027-01-15T10:59:00+03:00"}, 7),
    ("shopify", "orders/updated", {"id": 1, "email": "sara@example.com",
                                   "created_at": "2027-01-15T11:01:00+03:00"}, None),
    ("shopify", "customers/update", {"id": 720001, "created_at": "2026-06-01T09:00:00Z"}, 7),
    ("shopify", "customers/update", {"id": 720001, "created_at": "2027-01-16T09:00:00Z"}, None),
    # WooCommerce gives UTC without an offset.
    ("woocommerce", "order.updated", {"id": 1, "customer_id": 720001,
                                      "date_created_gmt": "2027-01-15T07:59:00"}, 7),
    ("woocommerce", "order.updated", {"id": 1, "customer_id": 720001,
                                      "date_created_gmt": "2027-01-15T08:01:00"}, None),
    # A record whose creation time is missing or unreadable counts as older.
    ("shopify", "orders/updated", {"id": 1, "email": "sara@example.com"}, 7),
    ("shopify", "orders/updated", {"id": 1, "email": "sara@example.com",
                                   "created_at": "last week"}, 7),
    ("shopify", "orders/updated", {"id": 1, "email": "sara@example.com", "created_at": 5}, 7),
])
def test_store_read_record_decided_by_its_creation(database: Database, source: str, topic: str,
                                                   body: dict[str, Any],
                                                   expected: int | None) -> None:
    bury_sara(database)
    read = delivery(topic=topic, source=source, received_at=READ_LATER,
                    delivery_id="reconcile:order:1:2027-01-20T09:00:00Z")
    assert read.read_from_store
    assert request_for(database, read, body) == expected


def test_webhooks_keep_their_receive_time(database: Database) -> None:
    bury_sara(database)
    body = {"id": 1, "email": "sara@example.com", "created_at": "2026-06-01T09:00:00Z"}
    # An old order whose webhook arrived after the redaction is a change made since: it syncs.
    assert request_for(database, delivery(received_at=AFTER_T0), body) is None
    # Only Shopify and WooCommerce are read by the store jobs; a storefront id is its own.
    storefront = delivery(source="storefront", received_at=AFTER_T0,
                          delivery_id="reconcile:order:1:x")
    assert not storefront.read_from_store
    assert request_for(database, storefront, body) is None


def test_shop_tombstone_matches_every_delivery(database: Database) -> None:
    with database.transaction() as conn:
        bury(conn, [shop_digest("test-store")], 9, T0)
    assert request_for(database, delivery(body="[]"), []) == 9
    assert request_for(database, delivery(shop="https://Test-Store/"), {}) == 9
    assert request_for(database, delivery(shop="other-store"), {}) is None


def test_tombstones_expire_and_renew(database: Database) -> None:
    bury_sara(database, request_id=7, now=T0)
    # A second redaction of the same customer renews them under the newer request.
    assert bury_sara(database, request_id=8, now=T0 + 60) == 4
    body = {"id": 1, "email": "sara@example.com"}
    assert request_for(database, delivery(), body) == 8
    later = T0 + (TOMBSTONE_RETENTION_DAYS + 1) * SECONDS_PER_DAY
    with database.transaction() as conn:
        bury(conn, [shop_digest("another-store")], 10, later)
    with database.reading() as reader:
        left = reader.execute("SELECT request_id FROM privacy_tombstones").fetchall()
    assert [row[0] for row in left] == [10]


def test_tombstones_hold_no_address(database: Database) -> None:
    bury_sara(database)
    with database.reading() as reader:
        digests = [row[0] for row in reader.execute("SELECT digest FROM privacy_tombstones")]
    assert len(digests) == 4
    for value in digests:
        assert len(value) == 64
        assert set(value) <= set("0123456789abcdef")
