"""Shopify privacy requests handled by the worker: redact, shop redact, data request export."""

from __future__ import annotations

import io
import json
import logging
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from storesync import logs
from storesync.cli import main
from storesync.consent import ConsentEvent
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.privacy import PrivacyRequest, PrivacyRequests
from storesync.privacy_crm import MAX_ATTEMPTS as CRM_MAX_ATTEMPTS
from storesync.privacy_runner import PrivacyRunner
from storesync.quarantine import Quarantine
from storesync.queue import build_queue
from storesync.settings import SettingsError, load_settings
from storesync.sync_store import OutboxItem, OutboxRow
from storesync.worker import JobOutcome, build_context, handle_delivery
from sync_support import GUEST, SARA, SPEC_DIR, Order, SyncHarness, family

MakeHarness = Callable[..., SyncHarness]
SHOP = "test-store"
OTHER_SHOP = "other-store"
T0 = 1_800_000_000.0
SARA_ORDER = Order(8200001, SARA)
GUEST_ORDER = Order(8200002, GUEST)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.configure_logging("DEBUG", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def store_ids(source: str, customer_id: int, order_id: int) -> tuple[str, str]:
    """Return the customer and order ids as this platform's bodies give them."""
    if source == "storefront":
        return f"cus_{customer_id}", f"ord_{order_id}"
    return str(customer_id), str(order_id)


def contacts_by_email(sync: SyncHarness) -> dict[str, str]:
    with sync.context.store.db.reading() as reader:
        return dict(reader.execute(
            "SELECT value, contact_key FROM sync_identity WHERE kind = 'email'").fetchall())


def rows(sync: SyncHarness, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with sync.context.store.db.reading() as reader:
        return [tuple(row) for row in reader.execute(query, params).fetchall()]


def seed_two_customers(sync: SyncHarness, shop: str = SHOP) -> dict[str, str]:
    """Deliver an order each for Sara and a guest, with consent, dead letters and quarantine."""
    source = sync.source
    for order in (SARA_ORDER, GUEST_ORDER):
        sync.deliver(order.body(source), order.topic(source), shop=shop)
    keys = contacts_by_email(sync)
    consent = sync.context.consent
    assert consent is not None
    for email in (SARA["email"], GUEST["email"]):
        consent.store.record(keys[email], ConsentEvent("email", "granted", T0, source, "v1"))
        consent.store.record(keys[email], ConsentEvent("sms", "withdrawn", T0, source))
    store = sync.context.store
    with store.transaction() as conn:
        for email in (SARA["email"], GUEST["email"]):
            item = OutboxItem("contacts", keys[email], {"email": email}, "email", email)
            store._insert_dead_letter(conn, OutboxRow(item, 2, T0, T0, 1, None), 400,
                                      "INVALID_EMAIL", T0)
    quarantine = Quarantine(store.db)
    for customer in (SARA, GUEST):
        body = json.dumps({"note": "unmapped", "contact": {"email": customer["email"]}})
        quarantine.add(Delivery(delivery_id=f"q-{customer['phone']}", source=source,
                                topic="orders/unknown", shop=shop, received_at="2027-01-15T08:00Z",
                                triggered_at=None, body=body), "topic not mapped")
    return keys


def add_request(sync: SyncHarness, topic: str, *, customer: dict[str, Any] | None = None,
                order: Order | None = None, shop: str = SHOP) -> int:
    customer_id = order_id = None
    if customer is not None and order is not None:
        customer_id, order_id = store_ids(sync.source, customer["id"], order.id)
    request = PrivacyRequest(topic=topic, shop=shop, shop_id="55",
                             customer_id=customer_id,
                             order_ids=(order_id,) if order_id else (),
                             data_request_id="9001" if topic == "customers/data_request" else None)
    return PrivacyRequests(sync.context.store.db).add(request, f"evt-{topic}", "2027-01-15T08:00Z")


def runner_for(sync: SyncHarness, clock: Callable[[], float] = lambda: T0) -> PrivacyRunner:
    return PrivacyRunner(sync.settings, sync.context.store.db, client=sync.client, clock=clock)


def test_redact_removes_the_customer_and_only_them(make_harness: MakeHarness,
                                                   captured_logs: io.StringIO) -> None:
    sync = make_harness()
    keys = seed_two_customers(sync)
    sara, guest = keys[SARA["email"]], keys[GUEST["email"]]
    request_id = add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    assert runner_for(sync).run_due() == 1

    stored = PrivacyRequests(sync.context.store.db).get(request_id)
    assert stored is not None and stored.status == "done"
    assert stored.handled_at == "2027-01-15T08:00:00Z"
    assert stored.result is not None and stored.result["identity"] >= 2
    assert rows(sync, "SELECT count(*) FROM sync_identity WHERE contact_key = ?", sara) == [(0,)]
    assert rows(sync, "SELECT count(*) FROM sync_identity WHERE contact_key = ?", guest)[0][0] >= 2
    outbox = rows(sync, "SELECT object, key, properties FROM sync_outbox")
    assert not [row for row in outbox if sara in row[1] or SARA["email"] in row[2]]
    assert [row for row in outbox if row[1] == guest]
    letters = dict(rows(sync, "SELECT key, properties FROM sync_dead_letters"))
    assert letters[sara] == "{}"
    assert GUEST["email"] in letters[guest]
    bodies = [bytes(row[0]) for row in rows(sync, "SELECT body FROM quarantine ORDER BY id")]
    assert bodies[0] == b""
    assert GUEST["email"].encode() in bodies[1]
    consent = rows(sync, "SELECT contact_key, channel, state, wording_version FROM "
                         "consent_events ORDER BY contact_key, channel")
    assert [row for row in consent if row[0] == sara] == [(sara, "sms", "withdrawn", None)]
    assert len([row for row in consent if row[0] == guest]) == 2
    # The order stays, without its contact.
    orders = dict(rows(sync, "SELECT order_key, contact_key FROM sync_orders"))
    assert sara not in orders.values()
    assert guest in orders.values()
    text = captured_logs.getvalue()
    for value in (SARA["email"], SARA["phone"], GUEST["email"], "القحطاني"):
        assert value not in text
    assert "privacy request handled" in text


def file_bytes(path: Path) -> bytes:
    """Return the bytes of an SQLite file and of its WAL, as a disk reader would see them."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_redact_leaves_no_copy_in_files(make_harness: MakeHarness) -> None:
    sync = make_harness()
    seed_two_customers(sync)
    sync.flush()
    queue = build_queue(sync.settings, handler=lambda delivery: None)
    try:
        # A job that already ran: huey deleted it, but its body was written to the file.
        body = json.dumps(SARA_ORDER.body(sync.source))
        queue.enqueue(Delivery(delivery_id="evt-done", source=sync.source,
                               topic=SARA_ORDER.topic(sync.source), shop=SHOP,
                               received_at="2027-01-15T08:00Z", triggered_at=None, body=body))
        task = queue.huey.dequeue()
        assert task is not None
        queue.inbox.done(task.id)
        add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
        runner_for(sync).run_due()
        state = file_bytes(sync.settings.state_path)
        queued = file_bytes(sync.settings.queue_path)
    finally:
        queue.close()
    assert SARA["email"].encode() not in state
    assert SARA["email"].encode() not in queued
    # The other customer's rows stay, so the search itself finds what is there.
    assert GUEST["email"].encode() in state


def queued_delivery(sync: SyncHarness, order: Order, received_at: str,
                    delivery_id: str) -> Delivery:
    """Send ``order`` through the real queue and return the delivery the worker takes."""
    queue = build_queue(sync.settings, handler=lambda delivery: None)
    try:
        queue.enqueue(Delivery(delivery_id=delivery_id, source=sync.source,
                               topic=order.topic(sync.source), shop=SHOP,
                               received_at=received_at, triggered_at=None,
                               body=json.dumps(order.body(sync.source))))
        task = queue.huey.dequeue()
        assert task is not None
        queue.inbox.done(task.id)
    finally:
        queue.close()
    return Delivery.from_dict(task.args[0])


def test_queued_delivery_skipped_after_redact(make_harness: MakeHarness,
                                              captured_logs: io.StringIO) -> None:
    sync = make_harness()
    seed_two_customers(sync)
    # Sara's order changes while the redact is on its way; the job waits in the queue.
    updated = Order(8200001, SARA, updated_at="2027-01-15T07:00:00+00:00")
    waiting = queued_delivery(sync, updated, "2027-01-15T07:59:00Z", "evt-waiting")
    request_id = add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    assert runner_for(sync).run_due() == 1
    stored = PrivacyRequests(sync.context.store.db).get(request_id)
    assert stored is not None and stored.result is not None
    assert stored.result["tombstones"] >= 3

    assert handle_delivery(waiting, sync.context) is JobOutcome.SKIPPED_REDACTED
    assert SARA["email"] not in contacts_by_email(sync)
    assert GUEST["email"] in contacts_by_email(sync)
    outbox = rows(sync, "SELECT key, properties FROM sync_outbox")
    assert not [row for row in outbox if SARA["email"] in row[1]]
    assert rows(sync, "SELECT count(*) FROM sync_orders WHERE contact_key IS NOT NULL"
                      " AND order_key LIKE ?", "%8200001") == [(0,)]
    text = captured_logs.getvalue()
    assert "delivery skipped: its customer or shop was redacted" in text
    [line] = [json.loads(item) for item in text.splitlines() if "delivery skipped" in item]
    assert line["privacy_request_id"] == request_id
    assert line["event_id"] == "evt-waiting"
    for value in (SARA["email"], SARA["phone"], "القحطاني"):
        assert value not in text


def test_delivery_after_redact_is_handled(make_harness: MakeHarness) -> None:
    sync = make_harness()
    seed_two_customers(sync)
    add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    assert runner_for(sync).run_due() == 1
    # A new order placed after the redaction is a new relationship, so it syncs.
    later = Order(8200009, SARA, updated_at="2027-01-16T09:00:00+00:00")
    fresh = queued_delivery(sync, later, "2027-01-16T09:00:01Z", "evt-fresh")
    assert handle_delivery(fresh, sync.context) is JobOutcome.SYNCED_LATER
    assert SARA["email"] in contacts_by_email(sync)


def test_guest_delivery_unaffected_by_redact(make_harness: MakeHarness) -> None:
    sync = make_harness()
    seed_two_customers(sync)
    updated = Order(8200002, GUEST, updated_at="2027-01-15T07:00:00+00:00")
    waiting = queued_delivery(sync, updated, "2027-01-15T07:59:00Z", "evt-guest")
    add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    assert runner_for(sync).run_due() == 1
    assert handle_delivery(waiting, sync.context) is JobOutcome.SYNCED_LATER


def test_redact_deletes_in_hubspot_when_configured(make_harness: MakeHarness) -> None:
    sync = make_harness(PRIVACY_CRM_DELETE="true")
    seed_two_customers(sync)
    sync.flush()
    emails = {record["properties"].get("email") for record in sync.standin.records("contacts")}
    assert {SARA["email"], GUEST["email"]} <= emails
    add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    runner_for(sync).run_due()
    emails = {record["properties"].get("email") for record in sync.standin.records("contacts")}
    assert SARA["email"] not in emails
    assert GUEST["email"] in emails
    assert sync.standin.call_count("/gdpr-delete", 204) == 1


def crm_delete_rows(sync: SyncHarness, request_id: int) -> list[tuple[Any, ...]]:
    return rows(sync, "SELECT kind, value, status, attempts FROM privacy_crm_deletes"
                " WHERE request_id = ? ORDER BY id", request_id)


def test_crm_failure_still_redacts_locally(make_harness: MakeHarness) -> None:
    sync = make_harness(PRIVACY_CRM_DELETE="true")
    keys = seed_two_customers(sync)
    sync.flush()
    request_id = add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    sync.standin.fault(503, 20, "/crm/v3/objects/contacts/gdpr-delete")
    now = [T0]
    runner = runner_for(sync, clock=lambda: now[0])
    runner.run_due()
    requests = PrivacyRequests(sync.context.store.db)
    stored = requests.get(request_id)
    assert stored is not None
    assert (stored.status, stored.attempts) == ("done", 1)
    assert stored.result is not None
    assert (stored.result["crm_deletes_queued"], stored.result["crm_deleted"],
            stored.result["crm_deletes_waiting"]) == (1, 0, 1)
    assert rows(sync, "SELECT count(*) FROM sync_identity WHERE contact_key = ?",
                keys[SARA["email"]]) == [(0,)]
    [(kind, _, status, attempts)] = crm_delete_rows(sync, request_id)
    assert (kind, status, attempts) == ("id", "pending", 1)
    # Not due again before the pause.
    assert runner.crm_deletes_pass() == {}
    sync.standin.http.post("/_standin/reset", json={"seed": True})
    now[0] = T0 + 3600
    assert runner.crm_deletes_pass() == {"not_found": 1}
    [(_, _, status, _)] = crm_delete_rows(sync, request_id)
    assert status == "done"


def test_crm_delete_failed_for_good_after_max_attempts(make_harness: MakeHarness) -> None:
    sync = make_harness(PRIVACY_CRM_DELETE="true")
    seed_two_customers(sync)
    request_id = add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    sync.standin.fault(503, 10_000, "/crm/v3/objects/contacts/gdpr-delete")
    now = [T0]
    runner = runner_for(sync, clock=lambda: now[0])
    runner.run_due()
    for _ in range(CRM_MAX_ATTEMPTS):
        now[0] += 7 * 3600
        runner.crm_deletes_pass()
    stored = PrivacyRequests(sync.context.store.db).get(request_id)
    assert stored is not None and stored.status == "done"
    # Never flushed, so the contact has no HubSpot id and is deleted by email, which
    # is kept while the deletion can still be run again.
    assert crm_delete_rows(sync, request_id) == [
        ("email", SARA["email"], "failed", CRM_MAX_ATTEMPTS)]
    assert runner.crm_deletes.reopen(request_id) == 1
    sync.standin.http.post("/_standin/reset", json={"seed": True})
    assert runner.crm_deletes_pass() == {"deleted": 1}
    assert crm_delete_rows(sync, request_id) == [("email", "", "done", CRM_MAX_ATTEMPTS + 1)]


def test_shop_redact_deletes_the_shop_only(make_harness: MakeHarness) -> None:
    sync = make_harness()
    seed_two_customers(sync, shop=SHOP)
    other = Order(8200003, {**GUEST, "id": 7200000000009, "email": "other.shop@example.com",
                            "phone": "+966500000019"})
    sync.deliver(other.body(sync.source), other.topic(sync.source), shop=OTHER_SHOP)
    add_request(sync, "shop/redact")
    runner_for(sync).run_due()
    prefix = SHOP + ":"
    for table, column in (("sync_outbox", "key"), ("sync_orders", "order_key"),
                          ("sync_identity", "value"), ("sync_dead_letters", "key")):
        assert rows(sync, f"SELECT count(*) FROM {table} WHERE substr({column}, 1, ?) = ?",
                    len(prefix), prefix) == [(0,)], table
    assert rows(sync, "SELECT count(*) FROM quarantine WHERE shop = ?", SHOP) == [(0,)]
    assert set(contacts_by_email(sync)) == {"other.shop@example.com"}
    assert rows(sync, "SELECT count(*) FROM sync_orders WHERE substr(order_key, 1, ?) = ?",
                len(OTHER_SHOP) + 1, OTHER_SHOP + ":") == [(1,)]
    assert sync.standin.call_count("/gdpr-delete") == 0
    # A delivery of the redacted shop still in the queue (received before) is skipped.
    late = Order(8200004, GUEST, updated_at="2027-01-15T07:00:00+00:00")
    assert sync.deliver_order(late, shop=SHOP) is JobOutcome.SKIPPED_REDACTED
    assert sync.deliver_order(late, shop=OTHER_SHOP) is JobOutcome.SYNCED_LATER


def test_redact_deletes_the_customers_exports(make_harness: MakeHarness,
                                              tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    sync = make_harness(PRIVACY_EXPORT_DIR=str(folder))
    seed_two_customers(sync)
    sara_export = add_request(sync, "customers/data_request", customer=SARA, order=SARA_ORDER)
    guest_export = add_request(sync, "customers/data_request", customer=GUEST,
                               order=GUEST_ORDER)
    runner = runner_for(sync)
    assert runner.run_due() == 2
    # An export of another shop that names the same store customer id stays.
    other_shop = folder / "data-request-999.json"
    other_shop.write_text(json.dumps({"shop": OTHER_SHOP, "customer_id": "1", "contacts": []}),
                          encoding="utf-8")

    redact = add_request(sync, "customers/redact", customer=SARA, order=SARA_ORDER)
    assert runner.run_due() == 1

    assert not (folder / f"data-request-{sara_export}.json").exists()
    assert (folder / f"data-request-{guest_export}.json").exists()
    assert other_shop.exists()
    stored = PrivacyRequests(sync.context.store.db).get(redact)
    assert stored is not None and stored.result is not None
    assert stored.result["exports_deleted"] == 1


def test_shop_redact_deletes_the_shops_exports(make_harness: MakeHarness,
                                               tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    sync = make_harness(PRIVACY_EXPORT_DIR=str(folder))
    seed_two_customers(sync)
    exported = add_request(sync, "customers/data_request", customer=GUEST, order=GUEST_ORDER)
    runner = runner_for(sync)
    assert runner.run_due() == 1
    other_shop = folder / "data-request-999.json"
    other_shop.write_text(json.dumps({"shop": OTHER_SHOP, "contacts": []}), encoding="utf-8")

    add_request(sync, "shop/redact")
    assert runner.run_due() == 1

    assert not (folder / f"data-request-{exported}.json").exists()
    assert other_shop.exists()


def test_data_request_export(make_harness: MakeHarness, tmp_path: Path,
                             captured_logs: io.StringIO) -> None:
    folder = tmp_path / "exports"
    sync = make_harness(PRIVACY_EXPORT_DIR=str(folder))
    keys = seed_two_customers(sync)
    request_id = add_request(sync, "customers/data_request", customer=SARA, order=SARA_ORDER)
    runner_for(sync).run_due()
    path = folder / f"data-request-{request_id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["contacts"] == [keys[SARA["email"]]]
    assert data["data_request_id"] == "9001"
    values = {(row["kind"], row["value"]) for row in data["identity"]}
    assert ("email", SARA["email"]) in values
    assert all(GUEST["email"] not in json.dumps(part, ensure_ascii=False)
               for part in data.values())
    assert [row["channel"] for row in data["consent"]] == ["email", "sms"]
    assert len(data["orders"]) == 1
    assert len(data["quarantined_deliveries"]) == 1
    # Nothing was deleted.
    assert SARA["email"] in contacts_by_email(sync)
    text = captured_logs.getvalue()
    assert str(path) in text
    assert SARA["email"] not in text
    assert SARA["phone"] not in text
    # A rerun rewrites the file with the same mode.
    runner = runner_for(sync)
    assert runner.requests.reopen(request_id)
    assert runner.run_due(request_id) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_privacy_cli(make_harness: MakeHarness, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    sync = make_harness()
    seed_two_customers(sync)
    request_id = add_request(sync, "customers/redact", customer=GUEST, order=GUEST_ORDER)
    for name, value in {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                        "HUBSPOT_BASE_URL": sync.standin.url}.items():
        monkeypatch.setenv(name, value)
    cli = CliRunner()
    listed = cli.invoke(main, ["privacy", "list"])
    assert listed.exit_code == 0
    assert "customers/redact" in listed.output
    assert "pending" in listed.output
    ran = cli.invoke(main, ["privacy", "run", str(request_id)])
    assert ran.exit_code == 0, ran.output
    assert f"Privacy request {request_id} (customers/redact) is done" in ran.output
    shown = cli.invoke(main, ["privacy", "show", str(request_id)])
    assert "status: done" in shown.output
    assert GUEST["email"] not in shown.output
    missing = cli.invoke(main, ["privacy", "show", "999"])
    assert missing.exit_code == 2
    assert "no privacy request has id 999" in missing.output
    assert cli.invoke(main, ["privacy", "list", "--status", "lost"]).exit_code == 2


def test_family_is_known() -> None:
    assert family() in {"shopify", "woocommerce", "storefront"}


def test_redact_without_a_crm_client(tmp_path: Path) -> None:
    """Every CRM target: the state file is redacted, and a CRM delete without a client waits."""
    environ = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR)}
    settings = load_settings(environ)
    database = Database(settings.state_path)
    context = build_context(settings, database)
    source = family()
    for order in (SARA_ORDER, GUEST_ORDER):
        handle_delivery(Delivery(delivery_id=f"d-{order.id}", source=source,
                                 topic=order.topic(source), shop=SHOP,
                                 received_at="2027-01-15T08:00:00Z", triggered_at=None,
                                 body=json.dumps(order.body(source))), context)
    customer_id, order_id = store_ids(source, SARA["id"], SARA_ORDER.id)
    requests = PrivacyRequests(database)
    request_id = requests.add(PrivacyRequest("customers/redact", SHOP, "55", customer_id,
                                             (order_id,)), "evt-r", "2027-01-15T08:00Z")
    if settings.crm_target == "custom":
        with pytest.raises(SettingsError, match="PRIVACY_CRM_DELETE"):
            load_settings({**environ, "PRIVACY_CRM_DELETE": "true"})
        PrivacyRunner(settings, database, client=None, clock=lambda: T0).run_due()
    else:
        strict = load_settings({**environ, "PRIVACY_CRM_DELETE": "true"})
        PrivacyRunner(strict, database, client=None, clock=lambda: T0).run_due()
        with database.reading() as reader:
            [(status, error)] = reader.execute(
                "SELECT status, last_error FROM privacy_crm_deletes WHERE request_id = ?",
                (request_id,)).fetchall()
        assert status == "pending"
        assert f"no {strict.crm_target} client" in error
    stored = requests.get(request_id)
    assert stored is not None
    assert stored.status == "done"
    with database.reading() as reader:
        emails = {row[0] for row in reader.execute(
            "SELECT value FROM sync_identity WHERE kind = 'email'")}
    assert SARA["email"] not in emails
    assert GUEST["email"] in emails
