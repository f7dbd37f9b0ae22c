"""Shopify privacy requests against the customer database (CRM_TARGET=custom)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from storesync.privacy import PrivacyRequest, PrivacyRequests
from storesync.privacy_runner import PrivacyRunner
from storesync.worker import JobOutcome
from sync_support import GUEST, SARA, Order
from test_customdb_fixtures import (  # noqa: F401 (fixtures)
    CustomHarness,
    database_url_fixture,
    engine_fixture,
    make_custom_harness_fixture,
    migrated_fixture,
)
from test_privacy_requests import store_ids

MakeHarness = Callable[..., CustomHarness]
SHOP = "test-store"
T0 = 1_800_000_000.0
SARA_ORDER = Order(8300001, SARA)
GUEST_ORDER = Order(8300002, GUEST)


def seeded(make_custom_harness: MakeHarness, **environ: str) -> CustomHarness:
    sync = make_custom_harness(**environ)
    for order in (SARA_ORDER, GUEST_ORDER):
        sync.deliver_order(order)
    sync.write()
    return sync


def run_request(sync: CustomHarness, topic: str) -> int:
    customer_id, order_id = store_ids(sync.source, SARA["id"], SARA_ORDER.id)
    database = sync.context.store.db
    request = PrivacyRequest(topic, SHOP, "55", None if topic == "shop/redact" else customer_id,
                             () if topic == "shop/redact" else (order_id,), "9002")
    request_id = PrivacyRequests(database).add(request, f"evt-{topic}", "2027-01-15T08:00Z")
    runner = PrivacyRunner(sync.context.settings, database, engine=sync.engine,
                           clock=lambda: T0)
    assert runner.run_due() == 1
    stored = runner.requests.get(request_id)
    assert stored is not None
    assert stored.status == "done", stored.last_error
    return request_id


def test_redact_in_customer_database(make_custom_harness: MakeHarness) -> None:
    sync = seeded(make_custom_harness)
    run_request(sync, "customers/redact")
    emails = [row["email"] for row in sync.rows("SELECT email FROM contacts")]
    assert emails == [GUEST["email"]]
    payloads = json.dumps([row["body"] for row in sync.rows("SELECT body FROM source_payloads")],
                          ensure_ascii=False)
    assert SARA["email"] not in payloads
    assert GUEST["email"] in payloads
    orders = sync.rows("SELECT order_key, contact_key, total_sar FROM orders ORDER BY order_key")
    assert len(orders) == 2
    assert orders[0]["contact_key"] is None
    assert orders[1]["contact_key"] is not None


def test_redact_drops_waiting_rows(make_custom_harness: MakeHarness) -> None:
    sync = seeded(make_custom_harness)
    # Delivered but not yet written when the request is handled.
    sync.deliver_order(Order(8300003, SARA, updated_at="2026-03-04T10:00:00+00:00"))
    run_request(sync, "customers/redact")
    sync.write()
    emails = [row["email"] for row in sync.rows("SELECT email FROM contacts")]
    assert emails == [GUEST["email"]]
    payloads = json.dumps([row["body"] for row in sync.rows("SELECT body FROM source_payloads")],
                          ensure_ascii=False)
    assert SARA["email"] not in payloads


def test_queued_delivery_after_redact_keeps_nothing(make_custom_harness: MakeHarness) -> None:
    sync = seeded(make_custom_harness)
    run_request(sync, "customers/redact")
    # A later version of Sara's order that arrived before the redaction (the harness's
    # receive time is earlier than T0) and was still waiting in the queue.
    updated = Order(SARA_ORDER.id, SARA, updated_at="2027-01-15T07:00:00+00:00")
    assert sync.deliver_order(updated) is JobOutcome.SKIPPED_REDACTED
    sync.write()
    emails = [row["email"] for row in sync.rows("SELECT email FROM contacts")]
    assert emails == [GUEST["email"]]
    payloads = json.dumps([row["body"] for row in sync.rows("SELECT body FROM source_payloads")],
                          ensure_ascii=False)
    assert SARA["email"] not in payloads


def test_export_includes_customer_database(make_custom_harness: MakeHarness,
                                           tmp_path: Path) -> None:
    sync = seeded(make_custom_harness, PRIVACY_EXPORT_DIR=str(tmp_path / "exports"))
    request_id = run_request(sync, "customers/data_request")
    data = json.loads((tmp_path / "exports" / f"data-request-{request_id}.json").read_text(
        encoding="utf-8"))
    tables = data["customer_database"]
    assert [row["email"] for row in tables["contacts"]] == [SARA["email"]]
    assert len(tables["orders"]) == 1
    assert GUEST["email"] not in json.dumps(tables, ensure_ascii=False)


def test_shop_redact_in_customer_database(make_custom_harness: MakeHarness) -> None:
    sync = seeded(make_custom_harness)
    run_request(sync, "shop/redact")
    for table in ("contacts", "orders", "order_lines", "source_payloads"):
        assert sync.rows(f"SELECT count(*) AS n FROM {table}") == [{"n": 0}], table
