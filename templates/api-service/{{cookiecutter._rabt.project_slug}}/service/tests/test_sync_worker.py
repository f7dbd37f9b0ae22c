"""The worker against the HubSpot stand-in: identity, newest state, roll-ups, quarantine."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator

import pytest

from storesync import logs
from storesync.worker import JobOutcome
from sync_support import (
    GUEST,
    NOURA_PHONE_ONLY,
    PERSONAL_VALUES,
    SARA,
    Line,
    Order,
    SyncHarness,
)

MakeHarness = Callable[..., SyncHarness]


def only(records: list[dict[str, object]]) -> dict[str, object]:
    assert len(records) == 1, records
    return records[0]


def props(record: dict[str, object]) -> dict[str, str]:
    properties = record["properties"]
    assert isinstance(properties, dict)
    return properties


def test_order_syncs_contact_deal_lines(make_harness: MakeHarness) -> None:
    sync = make_harness()
    order = Order(810001, SARA, lines=(Line(92001, "OUD-ROYAL-50", 1, "100.00"),
                                       Line(92002, "BAKHOOR-250", 2, "24.75")))
    assert sync.deliver_order(order) is JobOutcome.SYNCED_LATER
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    contact = only(sync.standin.records("contacts"))
    deal = only(sync.standin.records("deals"))
    lines = sync.standin.records("line_items")
    assert props(contact)["email"] == SARA["email"]
    assert props(contact)["ecom_phone_e164"] == SARA["phone"]
    assert props(deal)["amount"] == "149.50"
    assert len(lines) == 2
    assert deal["associations"]["contacts"][0]["id"] == contact["id"]  # type: ignore[index]
    assert len(deal["associations"]["line_items"]) == 2  # type: ignore[index]


def test_phone_only_contact_upserts(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(810002, NOURA_PHONE_ONLY, status="pending"))
    sync.flush()
    contact = props(only(sync.standin.records("contacts")))
    assert contact["ecom_phone_e164"] == NOURA_PHONE_ONLY["phone"]
    assert "email" not in contact
    # A second order from the same phone lands on the same contact.
    sync.deliver_order(Order(810003, NOURA_PHONE_ONLY))
    sync.flush()
    assert len(sync.standin.records("contacts")) == 1
    assert len(sync.standin.records("deals")) == 2


def test_guest_order_matches_by_email(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(810004, GUEST))
    sync.deliver_order(Order(810005, GUEST, updated_at="2026-03-04T10:00:00+00:00"))
    sync.flush()
    contact = props(only(sync.standin.records("contacts")))
    assert contact["email"] == GUEST["email"]
    assert "ecom_customer_id" not in contact
    assert contact["ecom_orders_count"] == "2"


def test_reordered_updates_keep_newest(make_harness: MakeHarness) -> None:
    sync = make_harness()
    newer = Order(810006, SARA, total="200.00", updated_at="2026-03-05T10:00:00+00:00")
    older = Order(810006, SARA, total="120.00", updated_at="2026-03-04T10:00:00+00:00")
    assert sync.deliver_order(newer) is JobOutcome.SYNCED_LATER
    assert sync.deliver_order(older) is JobOutcome.SKIPPED_STALE
    sync.flush()
    assert props(only(sync.standin.records("deals")))["amount"] == "200.00"


def test_stale_update_after_sync_ignored(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(810007, SARA, total="200.00",
                             updated_at="2026-03-05T10:00:00+00:00"))
    sync.flush()
    outcome = sync.deliver_order(Order(810007, SARA, total="1.00",
                                       updated_at="2026-03-01T10:00:00+00:00"))
    report = sync.flush()
    assert outcome is JobOutcome.SKIPPED_STALE
    assert report.calls == 0
    assert props(only(sync.standin.records("deals")))["amount"] == "200.00"


def test_pending_newer_state_coalesces(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(810008, SARA, total="100.00", updated_at="2026-03-04T10:00:00+00:00"))
    sync.deliver_order(Order(810008, SARA, total="130.00", updated_at="2026-03-04T11:00:00+00:00"))
    assert sync.context.store.pending_count("deals") == 1
    sync.flush()
    # Contacts, deals, line items and the product made from the line.
    assert sync.standin.call_count("/batch/upsert", 200) == 4
    assert props(only(sync.standin.records("deals")))["amount"] == "130.00"


def test_concurrent_duplicates_one_write(make_harness: MakeHarness) -> None:
    sync = make_harness()
    order = Order(810009, SARA)
    outcomes: list[JobOutcome] = []
    lock = threading.Lock()

    def deliver(number: int) -> None:
        outcome = sync.deliver_order(order, delivery_id=f"copy-{number}")
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=deliver, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sync.flush()
    assert sorted(outcomes).count(JobOutcome.SYNCED_LATER) == 1
    assert outcomes.count(JobOutcome.SKIPPED_STALE) == 7
    assert len(sync.standin.records("contacts")) == 1
    assert len(sync.standin.records("deals")) == 1
    # One upsert call each for contacts, deals, line items and the line's product.
    assert sync.standin.call_count("/batch/upsert") == 4


def test_rollups_not_doubled_on_replay(make_harness: MakeHarness) -> None:
    sync = make_harness()
    first = Order(810010, SARA, total="100.00", updated_at="2026-03-04T10:00:00+00:00")
    second = Order(810011, SARA, total="50.00", updated_at="2026-03-04T12:00:00+00:00")
    refunded = Order(810011, SARA, total="50.00", refunded="20.00",
                     updated_at="2026-03-04T13:00:00+00:00")
    for order in (first, second, first, second, refunded, refunded):
        sync.deliver_order(order)
    sync.flush()
    contact = props(only(sync.standin.records("contacts")))
    assert contact["ecom_orders_count"] == "2"
    assert contact["ecom_ltv_sar"] == "130.00"
    # A replay of the whole history changes nothing.
    for order in (first, second, refunded):
        sync.deliver_order(order, delivery_id=f"replay-{order.id}-{order.updated_at}")
    sync.flush()
    contact = props(only(sync.standin.records("contacts")))
    assert contact["ecom_orders_count"] == "2"
    assert contact["ecom_ltv_sar"] == "130.00"


def test_unpaid_order_not_counted(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(810012, SARA, status="pending"))
    sync.flush()
    contact = props(only(sync.standin.records("contacts")))
    assert contact["ecom_orders_count"] == "0"
    assert contact["ecom_ltv_sar"] == "0.00"


def test_invalid_json_quarantined(make_harness: MakeHarness) -> None:
    sync = make_harness()
    outcome = sync.deliver(b"{not json", Order(1, SARA).topic(sync.source))
    entries = sync.context.quarantine.entries()
    assert outcome is JobOutcome.QUARANTINED
    assert len(entries) == 1
    assert "not valid JSON" in entries[0].reason


def test_unmapped_payload_quarantined(make_harness: MakeHarness) -> None:
    sync = make_harness()
    outcome = sync.deliver({"id": 5}, "no_such/topic")
    entries = sync.context.quarantine.entries()
    assert outcome is JobOutcome.QUARANTINED
    assert "no_such/topic" in entries[0].reason
    assert sync.context.store.pending_count() == 0


def test_order_without_id_quarantined(make_harness: MakeHarness) -> None:
    sync = make_harness()
    body = Order(810013, SARA).body(sync.source)
    if sync.source == "storefront":
        body["order"].pop("id")
    else:
        body.pop("id")
    for item in body.get("line_items") or body.get("order", {}).get("line_items", []):
        item.pop("id")
    outcome = sync.deliver(body, Order(1, SARA).topic(sync.source))
    assert outcome is JobOutcome.QUARANTINED
    assert "no identity key" in sync.context.quarantine.entries()[0].reason


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.configure_logging("DEBUG", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_logs_carry_no_personal_data(make_harness: MakeHarness,
                                      captured_logs: io.StringIO) -> None:
    sync = make_harness()
    sync.deliver_order(Order(810014, SARA))
    sync.deliver_order(Order(810015, GUEST))
    sync.standin.fault(400, 1, "/crm/v3/objects/contacts")
    sync.flush()
    sync.deliver_order(Order(810016, NOURA_PHONE_ONLY))
    sync.flush()
    output = captured_logs.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    assert any(line.get("event_id") for line in lines)
    for value in PERSONAL_VALUES:
        assert value not in output, value
    assert "test-token-not-real" not in output
    assert "sandbox-token-not-real" not in output


def test_job_log_line_has_ids(make_harness: MakeHarness, captured_logs: io.StringIO) -> None:
    sync = make_harness()
    sync.deliver_order(Order(810017, SARA), delivery_id="evt-log-1")
    jobs = [json.loads(line) for line in captured_logs.getvalue().splitlines()
            if "job " in line]
    assert len(jobs) == 1
    assert jobs[0]["level"] == "INFO"
    assert jobs[0]["event_id"] == "evt-log-1"
    assert jobs[0]["resource"].startswith("deals:")
    assert "duration_ms" in jobs[0]
