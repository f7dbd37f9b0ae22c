"""End to end for Zoho: worker and Zoho flusher against the stand-in seeded from this project.

These tests use the project's own field map and desired state, so they run in
projects whose CRM is Zoho and skip in the others.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, encode_body
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.flusher import FlushReport, SetupError, flusher_for
from storesync.settings import Settings, load_settings
from storesync.standins.zoho import ZohoStandinConfig
from storesync.worker import JobOutcome, WorkerContext, build_context, handle_delivery
from storesync.zoho import ZohoClient
from storesync.zoho_demo import print_records
from storesync.zoho_flusher import SANDBOX_CLIENT, ZohoFlusher, zoho_client_for
from sync_support import (
    DESIRED_STATE_PATH,
    PERSONAL_VALUES,
    SARA,
    SPEC_DIR,
    Line,
    Order,
    family,
    project_mapping,
)
from zoho_support import ZohoClock, ZohoStandin


def require_zoho() -> None:
    """Skip when the project's CRM is not Zoho, because the field map decides the fields."""
    crm = project_mapping().get("crm")
    if crm != "zoho":
        pytest.skip(f"this test needs the Zoho target, and this project's CRM is {crm}")


@dataclass
class ZohoHarness:
    """A worker context and a Zoho flusher against one stand-in."""

    settings: Settings
    context: WorkerContext
    client: ZohoClient
    flusher: ZohoFlusher
    standin: ZohoStandin
    deliveries: int = 0

    def deliver(self, body: dict[str, Any], topic: str) -> JobOutcome:
        self.deliveries += 1
        delivery = Delivery(delivery_id=f"zoho-delivery-{self.deliveries}", source=family(),
                            topic=topic, shop="test-store",
                            received_at="2026-03-03T18:10:00Z", triggered_at=None,
                            body=encode_body(body).decode("utf-8"))
        return handle_delivery(delivery, self.context)

    def deliver_order(self, order: Order) -> JobOutcome:
        return self.deliver(order.body(family()), order.topic(family()))

    def flush(self, now: float | None = None, cycles: int = 10) -> FlushReport:
        total = FlushReport()
        for _ in range(cycles):
            report = self.flusher.flush_once(now=now, force=True)
            total.calls += report.calls
            total.synced.update(report.synced)
            total.dead_lettered.update(report.dead_lettered)
            total.paused = total.paused or report.paused
            if report.calls == 0 and not report.synced:
                break
        return total


@pytest.fixture
def make_zoho_harness(tmp_path: Path, start_zoho: Callable[..., ZohoStandin]
                      ) -> Iterator[Callable[..., ZohoHarness]]:
    clients: list[ZohoClient] = []

    def build(config: ZohoStandinConfig | None = None, *, resolve: bool = True,
              **environ: str) -> ZohoHarness:
        require_zoho()
        desired = yaml.safe_load(DESIRED_STATE_PATH.read_text(encoding="utf-8"))
        standin = start_zoho(config, desired)
        # No ZOHO_REFRESH_TOKEN: sandbox mode, with the stand-in as the accounts server.
        values = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                  "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH), "CRM_TARGET": "zoho",
                  "ZOHO_ACCOUNTS_URL": standin.url, "SYNC_BATCH_WINDOW_MS": "0",
                  "SYNC_MAX_ATTEMPTS": "3", "STORE_ID": "test-store", **environ}
        settings = load_settings(values)
        context = build_context(settings, Database(settings.state_path))
        clock = ZohoClock()
        client = zoho_client_for(settings, clock=clock, sleep=clock.sleep)
        clients.append(client)
        flusher = flusher_for(settings, context.store, context.mapping, client)
        assert isinstance(flusher, ZohoFlusher)
        if resolve:
            flusher.resolve_stages()
        return ZohoHarness(settings, context, client, flusher, standin)

    yield build
    for client in clients:
        client.close()


ORDER = Order(5100001, SARA, lines=(Line(91001, "OUD-ROYAL-50", 1, "149.50"),
                                    Line(91002, "MUSK-WHITE-30", 2, "60.00")))


def test_order_reaches_zoho_records(
        make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness()

    assert harness.deliver_order(ORDER) is JobOutcome.SYNCED_LATER
    report = harness.flush()

    assert sum(report.dead_lettered.values()) == 0
    contacts = harness.standin.records("Contacts")
    deals = harness.standin.records("Deals")
    products = harness.standin.records("Products")
    orders = harness.standin.records("Sales_Orders")
    assert [item["Email"] for item in contacts] == [SARA["email"]]
    assert len(deals) == 1
    assert deals[0]["Amount"] == 149.5
    assert deals[0]["Contact_Name"]["id"] == contacts[0]["id"]
    assert deals[0]["Pipeline"] == "E-commerce"
    assert sorted(item["Product_Code"] for item in products) == ["MUSK-WHITE-30", "OUD-ROYAL-50"]
    # A product made from an order line is named after the line's title.
    assert [item["Product_Name"] for item in products] == [ORDER.lines[0].title] * 2
    assert len(orders) == 1
    assert orders[0]["Deal_Name"]["id"] == deals[0]["id"]
    rows = {row["product"]["id"]: row for row in orders[0]["Product_Details"]}
    musk = next(item["id"] for item in products if item["Product_Code"] == "MUSK-WHITE-30")
    assert rows[musk]["quantity"] == 2
    assert rows[musk]["list_price"] == 60.0
    assert rows[musk]["product_description"] == ORDER.lines[1].title
    assert harness.context.store.pending_objects() == []


def test_untitled_line_product_named_by_sku(
        make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness()
    untitled = Order(5100006, SARA, lines=(Line(91006, "AMBER-10", 1, "149.50", title=""),))

    harness.deliver_order(untitled)
    report = harness.flush()

    assert sum(report.dead_lettered.values()) == 0
    [product] = harness.standin.records("Products")
    assert product["Product_Name"] == "AMBER-10"
    [sales_order] = harness.standin.records("Sales_Orders")
    assert "product_description" not in sales_order["Product_Details"][0]


class CountedStop(threading.Event):
    """A stop event that counts its waits and sets itself after ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        if self.waits >= self.limit:
            self.set()
        return self.is_set()


# The account's client and refresh token are from the .com data centre; ZOHO_DC is sa.
WRONG_DATA_CENTRE = ZohoStandinConfig(data_centre="sa", refresh_tokens={SANDBOX_CLIENT: "com"})


def test_wrong_data_centre_parks_pipeline_lookup(
        make_zoho_harness: Callable[..., ZohoHarness], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from storesync import flusher as flusher_module
    from storesync import metrics

    harness = make_zoho_harness(WRONG_DATA_CENTRE, resolve=False)
    monkeypatch.setattr(harness.flusher, "run", lambda stop: None)
    stop = CountedStop(limit=3)

    with caplog.at_level("WARNING", logger="storesync.flusher"):
        flusher_module._resolve_then_flush(harness.flusher, stop)

    # No wait for a retry: the lookup is not tried again.
    assert stop.waits == 0
    assert harness.flusher.paused_until == math.inf
    parked = [record.getMessage() for record in caplog.records
              if "calls parked" in record.getMessage()]
    assert len(parked) == 1
    assert "Zoho CRM calls parked until the settings are fixed" in parked[0]
    assert "set ZOHO_DC" in parked[0]
    assert "cannot read the deal pipelines" not in caplog.text
    assert metrics.SYNC_REGISTRY.get_sample_value(
        "storesync_crm_parked", {"reason": "settings"}) == 1


def test_wrong_data_centre_keeps_records_waiting(
        make_zoho_harness: Callable[..., ZohoHarness], caplog: pytest.LogCaptureFixture
        ) -> None:
    harness = make_zoho_harness(WRONG_DATA_CENTRE, resolve=False)
    harness.flusher.pipeline_id = "pipeline-not-read"
    harness.deliver_order(ORDER)
    pending = harness.context.store.pending_count()

    with caplog.at_level("ERROR", logger="storesync.flusher"):
        first = harness.flusher.flush_once(now=2_000_000_000.0, force=True)
        # A day later the records still wait, and Zoho Accounts is not asked again.
        calls_before = harness.client.calls
        later = harness.flusher.flush_once(now=2_000_086_400.0, force=True)

    assert first.paused
    assert later.paused
    assert harness.client.calls == calls_before
    assert harness.flusher.paused_until == math.inf
    assert harness.context.store.pending_count() == pending
    assert harness.context.store.dead_letter_count() == 0
    assert sum(first.retried.values()) == 0
    assert caplog.text.count("calls parked") == 1


def test_pause_and_pipeline_logs_name_zoho(
        make_zoho_harness: Callable[..., ZohoHarness], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from storesync import flusher as flusher_module

    harness = make_zoho_harness(ZohoStandinConfig(credits_per_day=3), resolve=False)
    harness.standin.fault(500, 1, "/crm/v8/settings/layouts")
    monkeypatch.setattr(flusher_module, "STAGE_LOOKUP_RETRY_SECONDS", 0.01)
    monkeypatch.setattr(harness.flusher, "run", lambda stop: None)

    flusher_module._resolve_then_flush(harness.flusher, threading.Event())
    harness.deliver_order(ORDER)
    harness.flush(now=2_000_000_000.0)

    assert "cannot read the deal pipelines from Zoho CRM yet" in caplog.text
    assert "Zoho CRM calls paused for" in caplog.text
    assert "HubSpot" not in caplog.text


def test_second_delivery_updates_without_a_second_sales_order(
        make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness()
    harness.deliver_order(ORDER)
    harness.flush()

    later = Order(ORDER.id, SARA, total="209.50", updated_at="2026-03-04T10:00:00+00:00",
                  lines=ORDER.lines)
    harness.deliver_order(later)
    harness.flush()

    deals = harness.standin.records("Deals")
    assert len(deals) == 1
    assert deals[0]["Amount"] == 209.5
    assert len(harness.standin.records("Sales_Orders")) == 1
    assert len(harness.standin.records("Contacts")) == 1


def test_contact_without_paid_order_syncs(
        make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness()

    harness.deliver_order(Order(5100003, SARA, status="pending"))
    report = harness.flush()

    assert sum(report.dead_lettered.values()) == 0
    assert harness.context.store.dead_letters() == []
    contacts = harness.standin.records("Contacts")
    assert [item["Email"] for item in contacts] == [SARA["email"]]
    assert contacts[0].get("Ecom_First_Order_At") is None
    assert contacts[0].get("Ecom_Last_Order_At") is None
    deals = harness.standin.records("Deals")
    assert deals[0]["Contact_Name"]["id"] == contacts[0]["id"]


def test_refund_clears_zoho_roll_ups(make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness()
    paid = Order(5100004, SARA, total="80.00")
    harness.deliver_order(paid)
    harness.flush()
    before = harness.standin.records("Contacts")[0]
    assert before["Ecom_First_Order_At"]
    assert before["Ecom_Last_Order_At"]

    refunded = Order(paid.id, SARA, total="80.00", status="refunded", refunded="80.00",
                     updated_at="2026-03-04T09:00:00+00:00")
    harness.deliver_order(refunded)
    report = harness.flush()

    assert sum(report.dead_lettered.values()) == 0
    after = harness.standin.records("Contacts")[0]
    assert after["Ecom_First_Order_At"] is None
    assert after["Ecom_Last_Order_At"] is None
    assert after["Ecom_Orders_Count"] == 0
    assert after["Email"] == SARA["email"]


def test_cleared_value_sent_as_null(make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness()
    harness.deliver_order(Order(5100005, SARA, status="pending"))
    rows = harness.context.store.due("contacts", 10.0**12, 10)
    assert len(rows) == 1
    cleared = [name for name, value in rows[0].item.properties.items() if value is None]
    assert "Ecom_First_Order_At" in cleared

    sent = harness.flusher._properties("contacts", rows[0], {})

    for name in cleared:
        assert sent[name] is None
    assert "" not in sent.values()


def test_invalid_value_goes_to_dead_letters_masked(
        make_zoho_harness: Callable[..., ZohoHarness], caplog: pytest.LogCaptureFixture) -> None:
    harness = make_zoho_harness()
    # Zoho keeps at most 80 characters in Last_Name.
    long_name = "القحطاني" * 12
    bad = dict(SARA, email="long.name@example.com", id=7200000000099, last_name=long_name)

    harness.deliver_order(Order(5100002, bad))
    harness.flush()

    letters = harness.context.store.dead_letters()
    contact_letters = [letter for letter in letters if letter.item.object == "contacts"]
    assert len(contact_letters) == 1
    error = contact_letters[0].error
    assert error.startswith("INVALID_DATA: invalid data in Last_Name (value ")
    assert f"({len(long_name)} characters)" in error
    assert long_name not in error
    assert len(harness.standin.records("Deals")) == 1
    for value in (*PERSONAL_VALUES, long_name, "long.name@example.com"):
        assert value not in caplog.text


def test_used_up_credits_pause_the_flusher(make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness(ZohoStandinConfig(credits_per_day=3),
                                ZOHO_CREDITS_PAUSE_SECONDS="120")
    harness.deliver_order(ORDER)

    report = harness.flush(now=2_000_000_000.0)

    assert report.paused
    assert harness.flusher.paused_until == 2_000_000_000.0 + 120
    calls_before = harness.client.calls
    again = harness.flusher.flush_once(now=2_000_000_001.0, force=True)
    assert again.paused
    assert harness.client.calls == calls_before


def test_credit_pause_log_states_one_pause(make_zoho_harness: Callable[..., ZohoHarness],
                                          caplog: pytest.LogCaptureFixture) -> None:
    from storesync import metrics

    harness = make_zoho_harness(ZohoStandinConfig(credits_per_day=3),
                                ZOHO_CREDITS_PAUSE_SECONDS="120")
    harness.deliver_order(ORDER)

    with caplog.at_level("ERROR", logger="storesync.flusher"):
        harness.flush(now=2_000_000_000.0)

    lines = [record.getMessage() for record in caplog.records
             if "calls paused" in record.getMessage()]
    # Each batch that meets the empty budget logs the pause once.
    assert lines
    for line in lines:
        assert line.startswith("Zoho CRM calls paused for 120 s: ")
        assert "the first credits return in" in line
        assert "calls stop" not in line
    # Zoho's 429 or the budget's own count, from the remaining credits Zoho reports,
    # stops the calls first, depending on how many calls the batch makes.
    assert all("Zoho's API credits for the last 24 hours are used up" in line
               or " Zoho API credits are left of " in line for line in lines)
    paused = metrics.SYNC_REGISTRY.get_sample_value(
        "storesync_crm_paused_until_timestamp_seconds", {"reason": "credits"})
    assert paused == 2_000_000_000.0 + 120


def test_credit_pause_ends_when_credits_return(
        make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    from storesync import flusher as flusher_module
    from storesync.zoho_credits import CreditsExhausted

    harness = make_zoho_harness(ZOHO_CREDITS_PAUSE_SECONDS="900")
    error = CreditsExhausted("used up; the first credits return in 30 s", 30.0, 429)

    with pytest.raises(flusher_module._Paused):
        harness.flusher._pause(error, 1000.0)

    assert harness.flusher.paused_until == 1030.0


def test_zoho_pauses_come_from_zoho_settings(
        make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness(ZOHO_AUTH_FAILURE_PAUSE_SECONDS="15",
                                HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS="30",
                                HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS="3600")

    assert harness.flusher.auth_failure_pause_seconds == 15
    assert harness.flusher.daily_limit_pause_seconds == 900


def test_missing_pipeline_names_the_fix(make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness(ZohoStandinConfig(pipelines_enabled=False), resolve=False)

    with pytest.raises(SetupError) as raised:
        harness.flusher.resolve_stages()

    assert "Zoho CRM has no deal pipeline" in str(raised.value)
    assert "crm/desired-state.yaml" in str(raised.value)


def test_demo_prints_zoho_records_masked(make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    harness = make_zoho_harness()
    harness.deliver_order(ORDER)
    harness.flush()
    lines: list[str] = []

    counts = print_records(harness.standin.http, lines.append)

    assert counts == {"Contacts": 1, "Deals": 1, "Products": 2, "Sales_Orders": 1}
    text = "\n".join(lines)
    assert "Email=s***@e***.com" in text
    assert "Product_Details=2 rows" in text
    for value in PERSONAL_VALUES:
        assert value not in text


def test_abandoned_cart_note_in_zoho_once(make_zoho_harness: Callable[..., ZohoHarness],
                                         tmp_path: Path) -> None:
    from playbook_support import (
        HOUR,
        SHOP,
        Clock,
        FakeConsent,
        FakeDiscounts,
        riyadh,
        write_playbook_spec,
    )
    from storesync.playbook_config import load_playbook_config
    from storesync.playbook_notes import NOTE_OBJECT, NoteWriter
    from storesync.playbooks import PlaybookRunner
    from storesync.timers import TimerStore

    harness = make_zoho_harness()
    if family() != "shopify":
        pytest.skip(f"this test sends Shopify checkout webhooks; this project reads {family()}")
    store = harness.context.store
    clock = Clock(riyadh("2026-03-01 10:00"))
    config = load_playbook_config(write_playbook_spec(tmp_path / "spec"), project_mapping())
    harness.context.playbooks = PlaybookRunner(
        config=config, store=store, timers=TimerStore(store.db, clock=clock),
        consent=FakeConsent(), discounts=FakeDiscounts(), senders={}, clock=clock,
        notes=True, note_crm="zoho")
    notes = NoteWriter(store, harness.client)
    customer = {key: SARA[key] for key in ("id", "email", "phone", "first_name", "last_name")}
    recovery = f"https://{SHOP}/recover/tok-open"
    harness.deliver({"id": 1, "token": "tok-open", "email": SARA["email"],
                     "customer": customer, "updated_at": "2026-03-01T07:00:00Z",
                     "total_price": "420.00", "currency": "SAR",
                     "abandoned_checkout_url": recovery}, "checkouts/create")
    harness.flush()

    clock.advance(3 * HOUR)
    harness.context.playbooks.run_until_idle()
    harness.flush()
    [queued] = store.due(NOTE_OBJECT, float("inf"), 10)
    assert notes.flush() == 1

    [contact] = harness.standin.records("Contacts")
    assert contact["Ecom_Playbook_Step"] == "abandoned_cart:cart_reminder_1"
    [note] = harness.standin.records("Notes")
    assert note["Parent_Id"]["id"] == contact["id"]
    assert note["Parent_Id"]["module"]["api_name"] == "Contacts"
    assert note["Note_Title"] == "abandoned_cart:cart_reminder_1"
    assert recovery in note["Note_Content"]
    assert "<p>" not in note["Note_Content"]
    assert store.pending_count(NOTE_OBJECT) == 0

    # The same note queued again, as after a replayed timer, is not written twice.
    with store.db.transaction() as conn:
        store.enqueue(conn, queued.item)
    assert notes.flush() == 0
    assert len(harness.standin.records("Notes")) == 1
    assert store.pending_count(NOTE_OBJECT) == 0


def test_zoho_runner_writes_notes(make_zoho_harness: Callable[..., ZohoHarness]) -> None:
    from playbook_support import FakeConsent, FakeDiscounts
    from storesync.playbook_wiring import build_runner

    harness = make_zoho_harness()

    runner = build_runner(harness.settings, harness.context, FakeConsent(), FakeDiscounts())

    assert runner.notes
    assert runner.note_crm == "zoho"


def test_new_sandbox_standin_forgets_old_ids(
        make_zoho_harness: Callable[..., ZohoHarness],
        capsys: pytest.CaptureFixture[str]) -> None:
    from storesync.cli import forget_sandbox_crm_ids

    first = make_zoho_harness()
    first.deliver_order(ORDER)
    first.flush()
    assert len(first.standin.records("Sales_Orders")) == 1
    # A restart of `run` in sandbox mode: a new, empty stand-in on the same state file.
    second = make_zoho_harness()

    forgotten = forget_sandbox_crm_ids(second.settings)

    assert forgotten == 5  # the contact, the deal, two products and the sales order
    assert f"the {forgotten} CRM ids of the previous sandbox run" in capsys.readouterr().out
    # A new order of the same customer, whose record has the time already seen.
    second.deliver_order(Order(5100007, SARA, total="209.50", lines=ORDER.lines))
    report = second.flush()
    assert sum(report.dead_lettered.values()) == 0
    assert second.context.store.dead_letters() == []
    [contact] = second.standin.records("Contacts")
    assert contact["Last_Name"] == SARA["last_name"]
    [deal] = second.standin.records("Deals")
    assert deal["Amount"] == 209.5
    assert deal["Contact_Name"]["id"] == contact["id"]
    [sales_order] = second.standin.records("Sales_Orders")
    assert sales_order["Deal_Name"]["id"] == deal["id"]
    assert len(sales_order["Product_Details"]) == 2
    assert second.context.store.pending_objects() == []


def test_readyz_reports_credit_pause(make_zoho_harness: Callable[..., ZohoHarness],
                                     start_intake: Callable[..., Any]) -> None:
    # The flusher and the intake share nothing but the state file, as two processes do.
    from storesync import flusher as flusher_module
    from storesync import metrics
    from storesync.zoho_credits import CreditsExhausted

    harness = make_zoho_harness(ZOHO_CREDITS_PAUSE_SECONDS="900",
                                SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
                                STOREFRONT_WEBHOOK_SECRETS=STOREFRONT_SECRET)
    paused_at = 1_900_000_000.0
    error = CreditsExhausted("used up; the first credits return in 300 s", 300.0, 429)
    try:
        with pytest.raises(flusher_module._Paused):
            harness.flusher._pause(error, paused_at)
        metrics.SnapshotPublisher(metrics.open_snapshot_store(harness.settings)).stop()
    finally:
        metrics.CRM_PAUSED_UNTIL.labels(reason="credits").set(0)
    clock = ZohoClock(paused_at + 60)
    intake = start_intake(harness.settings, clock=clock)

    ready = intake.client.get("/readyz")
    sync = intake.client.get("/readyz/sync")

    # Intake keeps accepting deliveries, so a pause is reported and never fails readiness.
    assert ready.status_code == 200, ready.text
    assert sync.status_code == 200, sync.text
    for body in (ready.json(), sync.json()):
        pause = body["crm_pause"]
        assert pause["paused"] is True
        assert pause["reason"] == "credits"
        assert pause["until"] == "2030-03-17T17:51:40+00:00"
        assert pause["seconds_left"] == 240
        assert pause["message"].startswith("Zoho CRM's API credits of the rolling 24 hours")
    assert ready.json()["status"] == "ready"
    assert ready.json()["sync"] == {"flusher": "ok"}

    clock.now = paused_at + 301
    assert intake.client.get("/readyz").json()["crm_pause"] == {"paused": False}
