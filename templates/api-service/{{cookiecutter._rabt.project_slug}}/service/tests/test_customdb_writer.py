"""The custom database writer: idempotent upserts, the newest-state rule, failures, export."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, WOOCOMMERCE_SECRET
from storesync.worker import JobOutcome
from sync_support import SARA, SPEC_DIR, Line, Order
from test_customdb_fixtures import (  # noqa: F401 (fixtures)
    CustomHarness,
    database_url_fixture,
    engine_fixture,
    make_custom_harness_fixture,
    migrated_fixture,
)

MakeHarness = Callable[..., CustomHarness]
TWO_LINES = (Line(92001, "OUD-ROYAL-50", 1, "100.00"), Line(92002, "BAKHOOR-250", 2, "24.75"))
SNAPSHOT_TABLES = {
    "contacts": "contact_key", "orders": "order_key", "order_lines": "line_key",
    "products": "product_key", "source_payloads": "event_id"}


def snapshot(sync: CustomHarness) -> dict[str, list[dict[str, Any]]]:
    """Return every synced row, without the columns that record when a write happened."""
    found = {}
    for table, key in SNAPSHOT_TABLES.items():
        rows = sync.rows(f"SELECT * FROM {table} ORDER BY {key}")
        found[table] = [{name: value for name, value in row.items()
                         if name not in ("created_at", "updated_at", "stored_at")}
                        for row in rows]
    return found


def test_order_writes_contact_order_lines(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    assert sync.deliver_order(Order(810001, SARA, lines=TWO_LINES)) is JobOutcome.SYNCED_LATER
    report = sync.write()
    assert sum(report.dead_lettered.values()) == 0

    contact = sync.rows("SELECT * FROM contacts")
    assert len(contact) == 1
    assert contact[0]["email"] == SARA["email"]
    assert contact[0]["phone_e164"] == SARA["phone"]
    assert contact[0]["orders_count"] == 1
    assert contact[0]["ltv_sar"] == Decimal("149.50")
    order = sync.rows("SELECT * FROM orders")[0]
    assert order["order_key"] == "test-store:810001"
    assert (order["shop"], order["store_order_id"]) == ("test-store", "810001")
    assert order["contact_key"] == contact[0]["contact_key"]
    assert order["total_sar"] == Decimal("149.50")
    assert order["paid"] is True
    assert order["ordered_at"] == datetime(2026, 3, 1, 11, 5, tzinfo=UTC)
    lines = sync.rows("SELECT * FROM order_lines ORDER BY line_key")
    assert [line["order_key"] for line in lines] == ["test-store:810001"] * 2
    # 2 x 24.75 = 49.50, computed by the database.
    assert [line["line_total_sar"] for line in lines] == [Decimal("100.00"), Decimal("49.50")]
    payload = sync.rows("SELECT * FROM source_payloads")[0]
    assert payload["outcome"] == "synced_later"
    assert payload["body"]["id"] == 810001


def test_same_delivery_twice_same_rows(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    order = Order(810002, SARA, lines=TWO_LINES)
    sync.deliver_order(order, delivery_id="delivery-a")
    sync.write()
    first = snapshot(sync)
    assert sync.deliver_order(order, delivery_id="delivery-a") is JobOutcome.SKIPPED_STALE
    sync.write()
    assert snapshot(sync) == first


def test_rewrite_after_crash_same_rows(make_custom_harness: MakeHarness,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sync = make_custom_harness()
    sync.deliver_order(Order(810003, SARA, lines=TWO_LINES))
    # The process dies after the commit in PostgreSQL, before the outbox is cleared.
    with monkeypatch.context() as patched:
        patched.setattr(sync.context.store, "finish_batch", lambda *args: [])
        sync.write()
    first = snapshot(sync)
    assert sync.context.store.pending_count() > 0
    sync.write()
    assert sync.context.store.pending_count() == 0
    assert snapshot(sync) == first


def test_older_delivery_never_overwrites(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    newer = Order(810004, SARA, total="200.00", updated_at="2026-03-05T10:00:00+00:00")
    older = Order(810004, SARA, total="100.00", updated_at="2026-03-04T10:00:00+00:00")
    sync.deliver_order(newer)
    sync.write()
    assert sync.deliver_order(older) is JobOutcome.SKIPPED_STALE
    sync.write()
    order = sync.rows("SELECT total_sar, source_updated_at FROM orders")[0]
    assert order["total_sar"] == Decimal("200.00")
    assert order["source_updated_at"] == datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


def test_sql_upsert_keeps_newer_row(make_custom_harness: MakeHarness) -> None:
    from storesync.customdb.models import orders
    from storesync.customdb.writer import upsert_statement

    sync = make_custom_harness()
    sync.deliver_order(Order(810005, SARA, total="200.00",
                             updated_at="2026-03-05T10:00:00+00:00"))
    sync.write()

    def write(total: str, when: datetime) -> None:
        values = {"order_key": "test-store:810005", "shop": "test-store",
                  "store_order_id": "810005", "total_sar": Decimal(total),
                  "source_updated_at": when, "record": {}}
        with sync.engine.begin() as connection:
            connection.execute(upsert_statement(orders, "order_key", values))

    # An older state reaching the database (e.g. from a second service) changes nothing.
    write("100.00", datetime(2026, 3, 4, tzinfo=UTC))
    assert sync.rows("SELECT total_sar FROM orders")[0]["total_sar"] == Decimal("200.00")
    # A newer state wins.
    write("250.00", datetime(2026, 3, 6, tzinfo=UTC))
    assert sync.rows("SELECT total_sar FROM orders")[0]["total_sar"] == Decimal("250.00")


def product_update(source: str, variant_id: int, sku: str, title: str,
                   updated_at: str) -> tuple[str, dict[str, Any]]:
    """Return (topic, body) of a product webhook with one variant, or skip on the storefront."""
    if source == "shopify":
        return "products/update", {
            "id": variant_id - 1, "title": title, "updated_at": updated_at,
            "variants": [{"id": variant_id, "sku": sku, "price": "149.50"}]}
    if source == "woocommerce":
        return "product.updated", {"id": variant_id, "name": title, "sku": sku,
                                   "price": "149.50", "date_modified_gmt": updated_at[:19]}
    pytest.skip("the storefront contract has no product event")


def test_payload_shop_matches_order_shop(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    sync.deliver_order(Order(810032, SARA), shop="https://V9.example/")
    sync.write()
    assert sync.rows("SELECT shop FROM orders") == [{"shop": "v9.example"}]
    assert sync.rows("SELECT shop FROM source_payloads") == [{"shop": "v9.example"}]


def test_product_payload_replaces_line_product(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    sync.deliver_order(Order(810030, SARA, lines=(Line(93001, "OUD-ROYAL-50", 1, "149.50"),)))
    sync.write()
    line_product = sync.rows("SELECT title, source_updated_at FROM products")
    assert line_product == [{"title": "عطر تجريبي",
                     "source_updated_at": datetime(1970, 1, 1, tzinfo=UTC)}]

    # The store's product data is older than the day the writer ran, and still wins.
    topic, body = product_update(sync.source, 93006, "OUD-ROYAL-50", "Royal Oud 50 ml",
                                 "2026-03-01T09:00:00+00:00")
    sync.deliver(body, topic)
    report = sync.write()
    assert report.stale == {}
    assert report.written.get("products") == 1
    product = sync.rows("SELECT title, source_updated_at FROM products")
    assert product == [{"title": "Royal Oud 50 ml",
                        "source_updated_at": datetime(2026, 3, 1, 9, 0, tzinfo=UTC)}]


def test_stale_row_counted_not_written(make_custom_harness: MakeHarness,
                                       caplog: pytest.LogCaptureFixture) -> None:
    sync = make_custom_harness()
    sync.deliver_order(Order(810031, SARA, total="200.00",
                             updated_at="2026-03-05T10:00:00+00:00"))
    sync.write()
    # A newer state written by another writer (e.g. a second service) is already stored.
    with sync.engine.begin() as connection:
        connection.execute(text_sql("UPDATE orders SET source_updated_at = '2026-04-01Z', "
                                    "total_sar = 300 WHERE order_key = 'test-store:810031'"))
    sync.deliver_order(Order(810031, SARA, total="250.00",
                             updated_at="2026-03-06T10:00:00+00:00"))
    with caplog.at_level(logging.INFO, logger="storesync.customdb.writer"):
        report = sync.write()
    assert report.stale == {"deals": 1}
    assert report.written.get("deals", 0) == 0
    assert sync.rows("SELECT total_sar FROM orders")[0]["total_sar"] == Decimal("300.00")
    assert "the customer database has a newer state" in caplog.text


def text_sql(sql: str) -> Any:
    from sqlalchemy import text

    return text(sql)


def test_refund_lowers_lifetime_value(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    sync.deliver_order(Order(810006, SARA, total="300.00", updated_at="2026-03-05T10:00:00+00:00"))
    sync.write()
    sync.deliver_order(Order(810006, SARA, total="300.00", refunded="50.00",
                             updated_at="2026-03-06T10:00:00+00:00"))
    sync.write()
    # A partial refund keeps the order paid: 300.00 - 50.00 = 250.00.
    contact = sync.rows("SELECT ltv_sar, orders_count FROM contacts")[0]
    assert contact["ltv_sar"] == Decimal("250.00")
    assert contact["orders_count"] == 1
    assert sync.rows("SELECT refunded_sar FROM orders")[0]["refunded_sar"] == Decimal("50.00")


def test_full_refund_clears_order_times(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    sync.deliver_order(Order(810016, SARA, total="80.00", updated_at="2026-03-05T10:00:00+00:00"))
    sync.write()
    assert sync.rows("SELECT first_order_at FROM contacts")[0]["first_order_at"] is not None
    sync.deliver_order(Order(810016, SARA, total="80.00", status="refunded", refunded="80.00",
                             updated_at="2026-03-06T10:00:00+00:00"))
    sync.write()
    # The only paid order is now refunded, so no paid order gives the contact its times.
    contact = sync.rows("SELECT orders_count, first_order_at, last_order_at FROM contacts")[0]
    assert contact["orders_count"] == 0
    assert contact["first_order_at"] is None
    assert contact["last_order_at"] is None


def enqueue(sync: CustomHarness, obj: str, key: str, properties: dict[str, Any]) -> None:
    from storesync.sync_store import OutboxItem

    with sync.context.store.transaction() as conn:
        sync.context.store.enqueue(conn, OutboxItem(object=obj, key=key, properties=properties,
                                                    event_id=f"evt-{key}",
                                                    resource=f"{obj}:{key}"))


def test_bad_value_dead_letter_alone(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    enqueue(sync, "deals", "test-store:1", {"orders.total_sar": "not a number"})
    enqueue(sync, "deals", "test-store:2", {"orders.total_sar": "20.00"})
    report = sync.write()
    assert report.dead_lettered["deals"] == 1
    assert report.written["deals"] == 1
    assert [row["order_key"] for row in sync.rows("SELECT order_key FROM orders")] == [
        "test-store:2"]
    failure = sync.rows("SELECT * FROM record_failures")[0]
    assert failure["record_key"] == "test-store:1"
    assert "not a number" in failure["error"]
    letters = sync.context.store.dead_letters()
    assert [letter.item.key for letter in letters] == ["test-store:1"]


def test_update_without_stage_keeps_paid(make_custom_harness: MakeHarness) -> None:
    sync = make_custom_harness()
    sync.deliver_order(Order(810007, SARA))
    sync.write()
    enqueue(sync, "deals", "test-store:810007", {"orders.name": "Order #810007 (edited)"})
    sync.write()
    order = sync.rows("SELECT name, paid, stage FROM orders")[0]
    assert order["name"] == "Order #810007 (edited)"
    assert order["paid"] is True
    assert order["stage"] == "paid_processing"


def test_payload_jsonb_rejects_nul(make_custom_harness: MakeHarness) -> None:
    payload = {"source": "woocommerce", "topic": "order.updated", "shop": "test-store",
               "received_at": "2026-03-03T18:10:00Z", "outcome": "synced_later"}
    sync = make_custom_harness()
    # PostgreSQL's jsonb cannot store the NUL character, which JSON allows.
    enqueue(sync, "payloads", "evt-nul", {**payload, "body": {"note": "a\u0000b"}})
    enqueue(sync, "payloads", "evt-ok", {**payload, "body": {"note": "ab"}})
    report = sync.write()
    assert report.dead_lettered["payloads"] == 1
    assert report.written["payloads"] == 1
    assert [row["event_id"] for row in sync.rows("SELECT event_id FROM source_payloads")] == [
        "evt-ok"]


def test_email_held_by_other_contact(make_custom_harness: MakeHarness,
                                     caplog: pytest.LogCaptureFixture) -> None:
    sync = make_custom_harness()
    enqueue(sync, "contacts", "c100", {"contacts.email": "shared@example.com"})
    sync.write()
    enqueue(sync, "contacts", "c101", {"contacts.email": "shared@example.com",
                                       "contacts.first_name": "Test"})
    with caplog.at_level(logging.WARNING, logger="storesync.customdb.writer"):
        report = sync.write()
    assert report.written["contacts"] == 1
    rows = {row["contact_key"]: row for row in sync.rows("SELECT * FROM contacts")}
    assert rows["c100"]["email"] == "shared@example.com"
    assert rows["c101"]["email"] is None
    assert rows["c101"]["first_name"] == "Test"
    assert "unique value held by another contact" in caplog.text
    assert "shared@example.com" not in caplog.text


def test_unreachable_database_retries(make_custom_harness: MakeHarness) -> None:
    from storesync.customdb.connection import create_database_engine

    sync = make_custom_harness()
    enqueue(sync, "deals", "test-store:3", {"orders.total_sar": "20.00"})
    sync.writer.engine = create_database_engine("postgresql://postgres@127.0.0.1:1/none")
    try:
        report = sync.write()
    finally:
        sync.writer.engine.dispose()
    assert report.retried == {"deals": 1}
    waiting = sync.context.store.due("deals", float("inf"), 10)
    assert [row.attempts for row in waiting] == [1]
    assert sync.context.store.dead_letter_count() == 0


def test_unreachable_database_dead_letters_counted(make_custom_harness: MakeHarness) -> None:
    from storesync import metrics
    from storesync.customdb.connection import create_database_engine

    def dead_lettered() -> float:
        labels = {"object": "deals", "outcome": "dead_lettered"}
        value = metrics.SYNC_REGISTRY.get_sample_value("storesync_sync_records_total", labels)
        return value or 0.0

    sync = make_custom_harness(SYNC_MAX_ATTEMPTS="2")
    enqueue(sync, "deals", "test-store:4", {"orders.total_sar": "20.00"})
    before = dead_lettered()
    sync.writer.engine = create_database_engine("postgresql://postgres@127.0.0.1:1/none")
    try:
        first = sync.write()
        # An hour later, past the backoff of the first retry.
        second = sync.writer.write_once(now=10_000_000_000.0 + 3600)
    finally:
        sync.writer.engine.dispose()
    assert first.retried == {"deals": 1}
    assert second.dead_lettered == {"deals": 1}
    assert sync.context.store.dead_letter_count() == 1
    # The metric behind storesync_sync_success_ratio counts the row as dead-lettered.
    assert dead_lettered() - before == 1


# --- export ----------------------------------------------------------------------------------


def deliver_two_orders(sync: CustomHarness) -> None:
    sync.deliver_order(Order(810010, SARA, lines=TWO_LINES))
    sync.deliver_order(Order(810011, SARA, total="30.00",
                             lines=(Line(92003, "MUSK-10", 3, "10.00"),)))
    sync.write()


def test_export_json_shape(make_custom_harness: MakeHarness) -> None:
    from storesync.customdb.export import DateRange, fetch_orders, to_json

    sync = make_custom_harness()
    deliver_two_orders(sync)
    period = DateRange(date(2026, 3, 1), date(2026, 3, 2))
    document = json.loads(to_json(period, fetch_orders(sync.engine, period)))
    assert document["format"] == "storesync.erp-orders"
    assert document["version"] == 1
    assert [order["order_key"] for order in document["orders"]] == [
        "test-store:810010", "test-store:810011"]
    first = document["orders"][0]
    assert first["total_sar"] == "149.50"
    assert first["net_sar"] == "149.50"
    assert first["ordered_at"] == "2026-03-01T11:05:00+00:00"
    assert first["customer"]["email"] == SARA["email"]
    assert [line["sku"] for line in first["lines"]] == ["OUD-ROYAL-50", "BAKHOOR-250"]
    assert first["lines"][1]["line_total_sar"] == "49.50"
    # The day before has no orders.
    earlier = DateRange(date(2026, 2, 28), date(2026, 3, 1))
    assert fetch_orders(sync.engine, earlier) == []


DOCS = [SPEC_DIR.parent / "docs" / name
        for name in ("customer-database.md", "customer-database.ar.md")]


def export_section(doc: Path) -> str:
    """Return the ERP export section of a customer database guide, up to the next section."""
    text = doc.read_text(encoding="utf-8")
    start = text.rindex("\n## ", 0, text.index("python -m storesync export"))
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def code_blocks(section: str, language: str) -> list[str]:
    """Return the fenced code blocks of ``section`` opened with ```<language>."""
    parts = section.split("```")
    return [part[len(language):].strip() for part in parts[1::2]
            if part.split("\n", 1)[0].strip() == language]


def keys_in(value: Any, path: str = "") -> set[str]:
    """Return the dotted key paths of a JSON document. List items share their list's path."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            found.add(f"{path}{key}")
            found |= keys_in(child, f"{path}{key}.")
    elif isinstance(value, list):
        for item in value:
            found |= keys_in(item, path)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=[doc.name for doc in DOCS])
def test_export_matches_documented_layout(make_custom_harness: MakeHarness, doc: Path) -> None:
    from storesync.customdb.export import DateRange, fetch_orders, to_csv, to_json

    sync = make_custom_harness()
    deliver_two_orders(sync)
    period = DateRange(date(2026, 3, 1), date(2026, 3, 2))
    exported = fetch_orders(sync.engine, period)
    section = export_section(doc)

    # The CSV header is the only line of the guide's unlabelled code block.
    [header] = code_blocks(section, "")
    written_header = to_csv(exported).split("\n", 1)[0]
    assert written_header.split(",") == header.split(",")

    written = json.loads(to_json(period, exported))
    examples = code_blocks(section, "json")
    if examples:
        assert keys_in(written) == keys_in(json.loads(examples[0]))
    else:
        # A guide without the example names the keys in its JSON paragraph.
        start = section.index("**JSON:**")
        paragraph = section[start:section.index("\n\n", start)]
        named = set(re.findall(r"`([a-z_]+)`", paragraph))
        line_keys = set(written["orders"][0]["lines"][0])
        assert set(written) | line_keys | {"customer", "lines"} <= named
        assert named <= {key.rsplit(".", 1)[-1] for key in keys_in(written)}

    # Every export name the ERP notes give in backticks is a CSV column or a JSON key.
    # ``line_*`` names the group of line columns.
    notes = section[section.index("Odoo"):]
    names = set(re.findall(r"`([a-z][a-z0-9_]*\*?)`", notes))
    assert names, "no export names found in the ERP notes"
    columns = set(header.split(",")) | {key.rsplit(".", 1)[-1] for key in keys_in(written)}
    for name in sorted(names):
        if name.endswith("*"):
            assert any(column.startswith(name[:-1]) for column in columns), name
        else:
            assert name in columns, name


def test_export_command_csv(make_custom_harness: MakeHarness, database_url: str,
                            tmp_path: Path) -> None:
    from storesync.cli import main
    from storesync.customdb.export import CSV_COLUMNS

    sync = make_custom_harness()
    deliver_two_orders(sync)
    output = tmp_path / "orders.csv"
    result = CliRunner().invoke(main, [
        "export", "--from", "2026-03-01", "--to", "2026-03-02", "--output", str(output)],
        env={"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
             "DATABASE_URL": database_url, "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
             "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
             "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET})
    assert result.exit_code == 0, result.output
    # A UTF-8 byte order mark comes first, so that Excel shows Arabic text.
    assert output.read_bytes().startswith(b"\xef\xbb\xbforder_key,")
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8-sig"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    # One row per line: two lines of the first order, one of the second.
    assert [row["line_sku"] for row in rows] == ["OUD-ROYAL-50", "BAKHOOR-250", "MUSK-10"]
    assert [row["order_key"] for row in rows] == ["test-store:810010"] * 2 + [
        "test-store:810011"]
    assert rows[2]["line_total_sar"] == "30.00"
    assert {row["paid"] for row in rows} == {"true"}
    assert rows[2]["total_sar"] == "30.00"


def test_export_rejects_empty_range(database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    result = CliRunner().invoke(main, ["export", "--from", "2026-03-02", "--to", "2026-03-01"],
                                env={"DATA_DIR": str(tmp_path / "var"),
                                     "SPEC_DIR": str(SPEC_DIR), "DATABASE_URL": database_url})
    assert result.exit_code == 2
    assert "--to (2026-03-01) must be a later day than --from (2026-03-02)" in result.output
