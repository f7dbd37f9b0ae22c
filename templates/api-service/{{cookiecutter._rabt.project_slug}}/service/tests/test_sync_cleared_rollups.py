"""Roll-ups that lose their value are cleared in HubSpot, not left at the old value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from storesync.worker import JobOutcome
from sync_support import SARA, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]


def contact_properties(sync: SyncHarness) -> dict[str, Any]:
    records = sync.standin.records("contacts")
    assert len(records) == 1, records
    properties = records[0]["properties"]
    assert isinstance(properties, dict)
    return properties


def test_refund_clears_last_order_time(make_harness: MakeHarness) -> None:
    sync = make_harness()
    paid = Order(830001, SARA, total="80.00")
    assert sync.deliver_order(paid) is JobOutcome.SYNCED_LATER
    sync.flush()
    before = contact_properties(sync)
    assert before.get("ecom_last_order_at")
    assert before.get("ecom_first_order_at")
    assert before.get("ecom_orders_count") == "1"

    refunded = replace(paid, status="refunded", refunded="80.00",
                       updated_at="2026-03-04T09:00:00+00:00")
    assert sync.deliver_order(refunded) is JobOutcome.SYNCED_LATER
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    after = contact_properties(sync)
    assert "ecom_last_order_at" not in after
    assert "ecom_first_order_at" not in after
    assert after.get("ecom_orders_count") == "0"
    assert after.get("email") == SARA["email"]


def test_cleared_value_sent_as_empty_string(make_harness: MakeHarness) -> None:
    # The stand-in also clears on null, so this checks the value HubSpot documents.
    sync = make_harness()
    sync.deliver_order(Order(830002, SARA, status="pending"))
    rows = sync.context.store.due("contacts", 10.0**12, 10)
    assert len(rows) == 1
    assert rows[0].item.properties["ecom_last_order_at"] is None
    sent = sync.flusher._properties("contacts", rows[0], {})
    assert sent["ecom_last_order_at"] == ""
    assert None not in sent.values()
