"""Playbook timers: abandoned cart, post-purchase, win-back, VIP and the consent gate.

Time moves through the injected clock; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intake_support import sample_value
from playbook_support import (
    CONTACT,
    DAY,
    HOUR,
    SHOP,
    Clock,
    FakeConsent,
    FakeDiscounts,
    Rig,
    clear_outbox,
    contact_marks,
    load_test_config,
    make_rig,
    riyadh,
)
from storesync import metrics
from storesync.playbook_config import PlaybookConfig
from storesync.playbooks import ContactRef
from storesync.sync_store import OrderState
from storesync.timers import CANCELLED, CLAIMED, FIRED, SCHEDULED, SKIPPED

# A Sunday at 10:00 in Riyadh: outside every quiet window, and so is +2 h.
START = riyadh("2026-03-01 10:00")


@pytest.fixture
def config(tmp_path: Path) -> PlaybookConfig:
    return load_test_config(tmp_path / "integration")


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def consent() -> FakeConsent:
    return FakeConsent()


@pytest.fixture
def discounts() -> FakeDiscounts:
    return FakeDiscounts()


@pytest.fixture
def rig(tmp_path: Path, config: PlaybookConfig, clock: Clock, consent: FakeConsent,
        discounts: FakeDiscounts) -> Iterator[Rig]:
    opened = make_rig(tmp_path / "state.sqlite3", config, clock, consent, discounts)
    yield opened
    opened.close()


def checkout(token: str = "tok-1", updated_at: str = "2026-03-01T07:00:00Z") -> dict[str, Any]:
    return {"token": token, "email": CONTACT.id_value, "updated_at": updated_at,
            "total_price": "420.00", "currency": "SAR",
            "abandoned_checkout_url": f"https://{SHOP}/checkouts/{token}/recover"}


def observe(rig: Rig, topic: str, body: dict[str, Any], contact: ContactRef | None = CONTACT,
            order_key: str | None = None, source: str = "shopify") -> None:
    with rig.store.transaction() as conn:
        rig.runner.observe(conn, source, topic, body, contact, order_key)


def timer_count(kind: str, outcome: str) -> float:
    return sample_value(metrics.SYNC_REGISTRY, "storesync_playbook_timers_total",
                        {"kind": kind, "outcome": outcome})


# --- abandoned cart ------------------------------------------------------------------


def test_checkout_completed_before_the_delay_sends_nothing(rig: Rig, clock: Clock,
                                                           discounts: FakeDiscounts) -> None:
    observe(rig, "checkouts/create", checkout())
    clock.advance(HOUR)
    observe(rig, "orders/create", {"id": 9001, "checkout_token": "tok-1"}, order_key="o-9001")
    clock.advance(5 * HOUR)

    assert rig.runner.run_until_idle() == 0
    assert contact_marks(rig) == []
    assert discounts.calls == []
    assert rig.timers.get("abandoned_cart", "tok-1").status == CANCELLED  # type: ignore[union-attr]


def test_update_after_the_order_schedules_nothing(rig: Rig, clock: Clock) -> None:
    observe(rig, "orders/create", {"id": 9002, "checkout_token": "tok-2"}, order_key="o-9002")
    observe(rig, "checkouts/update", checkout("tok-2"))
    clock.advance(5 * HOUR)

    assert rig.runner.run_until_idle() == 0
    assert rig.timers.get("abandoned_cart", "tok-2") is None


def test_open_checkout_is_marked_once_with_code_and_link(rig: Rig, clock: Clock,
                                                         discounts: FakeDiscounts) -> None:
    before = timer_count("abandoned_cart", "fired")
    observe(rig, "checkouts/create", checkout())
    observe(rig, "checkouts/create", checkout())  # a duplicate delivery
    clock.advance(HOUR)
    assert rig.runner.run_until_idle() == 0  # the 2-hour delay has not passed
    clock.advance(1.5 * HOUR)

    rig.runner.run_until_idle()

    marks = contact_marks(rig)
    assert len(marks) == 1
    mark = marks[0]
    assert mark["ecom_playbook_step"] == "abandoned_cart:cart_reminder_1"
    assert mark["ecom_discount_code"] == "BACK-1"
    assert mark["ecom_last_cart_url"] == f"https://{SHOP}/checkouts/tok-1/recover"
    assert mark["ecom_last_cart_value_sar"] == "420.00"
    assert mark["ecom_last_checkout_at"] == "2026-03-01T07:00:00Z"
    # The code lives 68 hours from its issue, the spec's expires_after_hours.
    assert discounts.calls == [("tok-1", "c1", clock.now + 68 * HOUR)]
    assert timer_count("abandoned_cart", "fired") == before + 1

    clear_outbox(rig)
    observe(rig, "checkouts/update", checkout())  # a late duplicate after the mark
    clock.advance(5 * HOUR)
    rig.runner.run_until_idle()
    assert contact_marks(rig) == []
    assert len(discounts.calls) == 1


def test_second_step_follows_at_its_offset_and_order_cancels_it(rig: Rig,
                                                                clock: Clock) -> None:
    observe(rig, "checkouts/create", checkout())
    clock.advance(2 * HOUR)
    rig.runner.run_until_idle()
    clear_outbox(rig)
    step_two = rig.timers.get("playbook_step", "abandoned_cart:tok-1#2")
    assert step_two is not None and step_two.status == SCHEDULED

    observe(rig, "orders/paid", {"id": 9003, "checkout_token": "tok-1"}, order_key="o-9003")
    clock.advance(21 * HOUR)
    rig.runner.run_until_idle()

    assert contact_marks(rig) == []
    assert rig.timers.get("playbook_step", "abandoned_cart:tok-1#2").status == CANCELLED  # type: ignore[union-attr]


def test_checkout_update_moves_the_check(rig: Rig, clock: Clock) -> None:
    observe(rig, "checkouts/create", checkout(updated_at="2026-03-01T07:00:00Z"))
    observe(rig, "checkouts/update", checkout(updated_at="2026-03-01T08:00:00Z"))
    clock.advance(2 * HOUR)
    assert rig.runner.run_until_idle() == 0
    clock.advance(HOUR)
    assert rig.runner.run_until_idle() > 0


def test_storefront_checkout_and_purchase_share_the_cart_token(rig: Rig, clock: Clock) -> None:
    event = {"event": "checkout_started", "occurred_at": "2026-03-01T07:00:00Z",
             "cart": {"token": "cart-5", "url": "https://shop.example/cart/cart-5",
                      "value": "99.00"}}
    observe(rig, "checkout_started", event, source="storefront")
    observe(rig, "purchase_completed", {"event": "purchase_completed", "cart": {"token": "cart-5"}},
            order_key="o-5", source="storefront")
    clock.advance(5 * HOUR)
    assert rig.runner.run_until_idle() == 0


def test_checkout_without_contact_schedules_nothing(rig: Rig) -> None:
    observe(rig, "checkouts/create", checkout(), contact=None)
    assert rig.timers.all() == []


# --- restarts and two workers ------------------------------------------------------------


def test_timers_survive_a_restart(tmp_path: Path, config: PlaybookConfig, clock: Clock,
                                  consent: FakeConsent, discounts: FakeDiscounts) -> None:
    state = tmp_path / "state.sqlite3"
    first = make_rig(state, config, clock, consent, discounts)
    observe(first, "checkouts/create", checkout())
    first.close()

    clock.advance(3 * HOUR)
    second = make_rig(state, config, clock, consent, discounts)
    try:
        second.runner.run_until_idle()
        assert [mark["ecom_playbook_step"] for mark in contact_marks(second)] == [
            "abandoned_cart:cart_reminder_1"]
    finally:
        second.close()


def test_two_workers_never_fire_one_timer_twice(tmp_path: Path, config: PlaybookConfig,
                                                clock: Clock, consent: FakeConsent,
                                                discounts: FakeDiscounts) -> None:
    state = tmp_path / "state.sqlite3"
    one = make_rig(state, config, clock, consent, discounts)
    two = make_rig(state, config, clock, consent, discounts)
    try:
        observe(one, "checkouts/create", checkout())
        clock.advance(3 * HOUR)
        claimed = one.timers.claim_due()
        assert [timer.kind for timer in claimed] == ["abandoned_cart"]
        assert two.timers.claim_due() == []

        # Worker one stops before finishing; after the lease, worker two takes over.
        clock.advance(one.timers.lease_seconds + 1)
        assert two.runner.run_until_idle() > 0
        assert one.timers.complete(claimed[0], FIRED) is False
        assert len(discounts.calls) == 1
        assert [mark["ecom_playbook_step"] for mark in contact_marks(two)] == [
            "abandoned_cart:cart_reminder_1"]
    finally:
        one.close()
        two.close()


def test_claimed_timer_cancelled_by_an_order_does_not_complete(rig: Rig, clock: Clock) -> None:
    observe(rig, "checkouts/create", checkout())
    clock.advance(3 * HOUR)
    [timer] = rig.timers.claim_due()
    assert timer.status == CLAIMED
    observe(rig, "orders/create", {"id": 9004, "checkout_token": "tok-1"}, order_key="o-9004")
    assert rig.timers.complete(timer, FIRED) is False
    assert rig.timers.get("abandoned_cart", "tok-1").status == CANCELLED  # type: ignore[union-attr]


# --- post-purchase, win-back, VIP --------------------------------------------------------


def fulfilled(order_id: int, at: str = "2026-03-01T07:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"id": order_id, "fulfillment_status": "fulfilled", "updated_at": at,
            "fulfillments": [{"created_at": at}], **extra}


def test_post_purchase_marks_seven_days_after_fulfilment(rig: Rig, clock: Clock) -> None:
    observe(rig, "orders/fulfilled", fulfilled(9100), order_key="o-9100")
    clock.advance(7 * DAY - 1)
    assert rig.runner.run_until_idle() == 0
    clock.advance(1)
    rig.runner.run_until_idle()
    assert [mark["ecom_playbook_step"] for mark in contact_marks(rig)] == [
        "post_purchase:review_and_recommendations_1"]


def test_cancelled_order_stops_post_purchase(rig: Rig, clock: Clock) -> None:
    observe(rig, "orders/fulfilled", fulfilled(9101), order_key="o-9101")
    observe(rig, "orders/cancelled",
            fulfilled(9101, cancelled_at="2026-03-02T07:00:00Z"), order_key="o-9101")
    clock.advance(8 * DAY)
    assert rig.runner.run_until_idle() == 0
    assert contact_marks(rig) == []


def paid_order(rig: Rig, contact_key: str, order_key: str, days_ago: float,
               total: str = "100.00", refunded: str | None = None) -> None:
    from storesync.playbook_config import iso

    with rig.store.transaction() as conn:
        rig.store.save_order(conn, OrderState(
            order_key=order_key, contact_key=contact_key, stage="paid", won=True, total=total,
            refunded=refunded, ordered_at=iso(rig.runner.clock() - days_ago * DAY),
            source=None))


@pytest.mark.parametrize(("days", "chosen"), [(44, False), (45, True), (60, True), (61, False)])
def test_win_back_window_edges(rig: Rig, clock: Clock, days: int, chosen: bool) -> None:
    paid_order(rig, "c1", "o-1", days + 0.5)
    assert rig.runner.scan_win_back({"c1": CONTACT}) == int(chosen)
    rig.runner.run_until_idle()
    steps = [mark.get("ecom_playbook_step") for mark in contact_marks(rig)]
    assert steps == (["win_back:win_back_offer_1"] if chosen else [])
    # The next day's scan starts it once at 44 days, never again for the same order.
    clock.advance(DAY)
    assert rig.runner.scan_win_back({"c1": CONTACT}) == int(days == 44)


def test_win_back_uses_the_latest_paid_order(rig: Rig) -> None:
    paid_order(rig, "c1", "o-old", 50)
    paid_order(rig, "c1", "o-new", 10)
    assert rig.runner.scan_win_back({"c1": CONTACT}) == 0


def test_vip_entry_and_exit_cross_the_spec_thresholds(rig: Rig, clock: Clock) -> None:
    paid_order(rig, "c1", "o-1", 3, total="3000.00")
    observe(rig, "orders/paid", {"id": 1}, order_key="o-1")
    assert rig.runner.run_until_idle() == 0  # 3,000 SAR is under the 5,000 bar

    paid_order(rig, "c1", "o-2", 2, total="2500.00")
    observe(rig, "orders/paid", {"id": 2}, order_key="o-2")
    rig.runner.run_until_idle()
    assert contact_marks(rig)[0]["ecom_playbook_step"] == "vip_care:entered"
    clear_outbox(rig)

    # 4,600 SAR is under the bar but above the exit value, so the contact stays VIP.
    paid_order(rig, "c1", "o-2", 2, total="2500.00", refunded="900.00")
    observe(rig, "orders/updated", {"id": 2}, order_key="o-2")
    assert rig.runner.run_until_idle() == 0

    paid_order(rig, "c1", "o-2", 2, total="2500.00", refunded="1200.00")
    observe(rig, "orders/updated", {"id": 2}, order_key="o-2")
    rig.runner.run_until_idle()
    assert contact_marks(rig)[0]["ecom_playbook_step"] == "vip_care:exited"


# --- consent and quiet hours -------------------------------------------------------------


def test_step_without_consent_is_skipped_and_counted(rig: Rig, clock: Clock,
                                                     consent: FakeConsent,
                                                     discounts: FakeDiscounts) -> None:
    consent.denied = {("c1", "email"), ("c1", "whatsapp")}
    before = timer_count("playbook_step", "skipped_consent")
    observe(rig, "checkouts/create", checkout())
    clock.advance(3 * HOUR)
    rig.runner.run_until_idle()
    clock.advance(21 * HOUR)
    rig.runner.run_until_idle()

    assert contact_marks(rig) == []
    assert discounts.calls == []  # no channel may carry the code, so none is made
    assert timer_count("playbook_step", "skipped_consent") == before + 2
    steps = rig.timers.all("playbook_step")
    assert [timer.status for timer in steps] == [SKIPPED, SKIPPED]


def test_only_the_channel_without_consent_is_skipped(rig: Rig, clock: Clock,
                                                     consent: FakeConsent) -> None:
    consent.denied = {("c1", "email")}
    observe(rig, "checkouts/create", checkout())
    clock.advance(3 * HOUR)
    rig.runner.run_until_idle()
    assert contact_marks(rig) == []
    clock.advance(21 * HOUR)
    rig.runner.run_until_idle()
    assert [mark["ecom_playbook_step"] for mark in contact_marks(rig)] == [
        "abandoned_cart:cart_reminder_2"]


def test_marketing_step_in_quiet_hours_waits_for_the_window_end(rig: Rig,
                                                                clock: Clock) -> None:
    clock.now = riyadh("2026-03-01 21:00")
    observe(rig, "checkouts/create", checkout(updated_at="2026-03-01T18:00:00Z"))
    clock.now = riyadh("2026-03-01 23:30")
    rig.runner.run_until_idle()
    assert contact_marks(rig) == []
    [step] = rig.timers.all("playbook_step")[:1]
    assert step.due_at == riyadh("2026-03-02 09:00")

    clock.now = riyadh("2026-03-02 09:00")
    rig.runner.run_until_idle()
    assert [mark["ecom_playbook_step"] for mark in contact_marks(rig)] == [
        "abandoned_cart:cart_reminder_1"]


def test_friday_prayer_window(config: PlaybookConfig) -> None:
    quiet = config.quiet_hours
    assert quiet.release_time(riyadh("2026-03-06 12:00")) == riyadh("2026-03-06 13:30")
    assert quiet.release_time(riyadh("2026-03-05 12:00")) is None  # a Thursday
    assert quiet.release_time(riyadh("2026-03-06 08:59")) == riyadh("2026-03-06 09:00")


# --- through the worker and the flusher ----------------------------------------------------


def test_worker_routes_checkouts_and_orders_to_the_timers(
        make_harness: Any, tmp_path: Path, clock: Clock, consent: FakeConsent,
        discounts: FakeDiscounts) -> None:
    from playbook_support import write_playbook_spec
    from storesync.playbook_config import load_playbook_config
    from storesync.playbook_notes import NoteWriter
    from storesync.playbooks import PlaybookRunner
    from storesync.timers import TimerStore
    from sync_support import SARA, family, project_mapping, require_hubspot

    require_hubspot()
    if family() != "shopify":
        pytest.skip(f"this test sends Shopify checkout webhooks; this project reads {family()}")
    harness = make_harness()
    store = harness.context.store
    config = load_playbook_config(write_playbook_spec(tmp_path / "spec"), project_mapping())
    harness.context.playbooks = PlaybookRunner(
        config=config, store=store, timers=TimerStore(store.db, clock=clock), consent=consent,
        discounts=discounts, senders={}, clock=clock, notes=True)
    notes = NoteWriter(store, harness.client)
    customer = {key: SARA[key] for key in ("id", "email", "phone", "first_name", "last_name")}
    for token in ("tok-open", "tok-paid"):
        harness.deliver({"id": 1, "token": token, "email": SARA["email"], "customer": customer,
                         "updated_at": "2026-03-01T07:00:00Z", "total_price": "420.00",
                         "currency": "SAR",
                         "abandoned_checkout_url": f"https://{SHOP}/recover/{token}"},
                        "checkouts/create")
    harness.deliver({"id": 88001, "email": SARA["email"], "customer": customer,
                     "checkout_token": "tok-paid", "currency": "SAR", "total_price": "420.00",
                     "financial_status": "paid", "created_at": "2026-03-01T07:30:00Z",
                     "updated_at": "2026-03-01T07:30:00Z", "line_items": []}, "orders/paid")
    harness.flush()
    clock.advance(3 * HOUR)
    harness.context.playbooks.run_until_idle()
    harness.flush()
    assert notes.flush() == 1

    assert [call[0] for call in discounts.calls] == ["tok-open"]
    [contact] = [record for record in harness.standin.records("contacts")
                 if record["properties"].get("email") == SARA["email"]]
    assert contact["properties"]["ecom_playbook_step"] == "abandoned_cart:cart_reminder_1"
    assert contact["properties"]["ecom_last_cart_url"] == f"https://{SHOP}/recover/tok-open"
    [note] = harness.standin.records("notes")
    assert f"https://{SHOP}/recover/tok-open" in note["properties"]["hs_note_body"]
    assert "abandoned_cart:cart_reminder_1" in note["properties"]["hs_note_body"]
    assert note["associations"]["contacts"][0]["id"] == contact["id"]
    assert store.pending_count("playbook_notes") == 0


def test_note_waits_for_the_contact_id(tmp_path: Path, config: PlaybookConfig, clock: Clock,
                                       consent: FakeConsent, discounts: FakeDiscounts) -> None:
    from storesync.playbook_notes import NOTE_OBJECT, NoteWriter

    class NoCalls:
        def create_note(self, properties: Any, contact_id: str) -> str:
            raise AssertionError("no note may be created before the contact has an id")

    rig = make_rig(tmp_path / "state.sqlite3", config, clock, consent, discounts)
    rig.runner.notes = True
    try:
        observe(rig, "checkouts/create", checkout())
        clock.advance(3 * HOUR)
        rig.runner.run_until_idle()
        [row] = rig.store.due(NOTE_OBJECT, float("inf"), 10)
        assert "tok-1/recover" in row.item.properties["hs_note_body"]
        writer = NoteWriter(rig.store, NoCalls(), clock=clock)  # type: ignore[arg-type]
        assert writer.flush() == 0
        assert rig.store.due(NOTE_OBJECT, clock.now, 10) == []
        assert rig.store.pending_count(NOTE_OBJECT) == 1
    finally:
        rig.close()


def test_rejected_note_becomes_a_dead_letter(tmp_path: Path, config: PlaybookConfig,
                                             clock: Clock, consent: FakeConsent,
                                             discounts: FakeDiscounts) -> None:
    from storesync.hubspot import BatchRejected, CrmUnavailable
    from storesync.playbook_notes import NOTE_OBJECT, NoteWriter

    class Failing:
        def __init__(self) -> None:
            self.errors: list[Exception] = [CrmUnavailable("HubSpot returned 503", 503),
                                            BatchRejected("Property values were not valid", 400)]

        def create_note(self, properties: Any, contact_id: str) -> str:
            raise self.errors.pop(0)

    rig = make_rig(tmp_path / "state.sqlite3", config, clock, consent, discounts)
    rig.runner.notes = True
    try:
        observe(rig, "checkouts/create", checkout())
        clock.advance(3 * HOUR)
        rig.runner.run_until_idle()
        with rig.db.transaction() as conn:
            conn.execute("INSERT INTO sync_crm_ids (object, key, crm_id) VALUES "
                         "('contacts', 'c1', '501')")
        writer = NoteWriter(rig.store, Failing(), clock=clock)  # type: ignore[arg-type]
        assert writer.flush() == 0
        assert rig.store.pending_count(NOTE_OBJECT) == 1  # a 503 is tried again later
        clock.advance(3600)
        assert writer.flush() == 0
        assert rig.store.pending_count(NOTE_OBJECT) == 0
        [letter] = rig.store.dead_letters()
        assert letter.item.object == NOTE_OBJECT
        assert letter.status == 400
    finally:
        rig.close()


@pytest.mark.parametrize(("source", "done", "stopped"), [
    ("woocommerce", {"status": "completed", "date_completed_gmt": "2026-03-01T07:00:00"},
     {"status": "refunded"}),
    ("storefront", {"event": "order_updated", "occurred_at": "2026-03-01T07:00:00Z",
                    "order": {"status": "fulfilled"}},
     {"event": "order_updated", "order": {"status": "cancelled"}}),
])
def test_post_purchase_for_other_platforms(rig: Rig, clock: Clock, source: str,
                                           done: dict[str, Any],
                                           stopped: dict[str, Any]) -> None:
    observe(rig, "order.updated", done, order_key="o-7", source=source)
    timer = rig.timers.get("post_purchase", "o-7")
    assert timer is not None
    assert timer.due_at == riyadh("2026-03-08 10:00")
    observe(rig, "order.updated", stopped, order_key="o-7", source=source)
    assert rig.timers.get("post_purchase", "o-7").status == CANCELLED  # type: ignore[union-attr]


def test_loop_pass_scans_and_fires(rig: Rig, clock: Clock) -> None:
    import threading

    from storesync.playbooks import contacts_with_orders, run_loop

    class OnePass(threading.Event):
        """Ends the loop after its first pass."""

        def wait(self, timeout: float | None = None) -> bool:
            self.set()
            return True

    with rig.store.transaction() as conn:
        rig.store.match_contact(conn, [("email", "back.again@example.com")])
    paid_order(rig, "c1", "o-1", 50)
    fields = {"email": "email", "phone_e164": "ecom_phone_e164"}
    assert contacts_with_orders(rig.store, fields) == {
        "c1": ContactRef("c1", "email", "back.again@example.com", None)}

    run_loop(rig.runner, fields, OnePass(), interval_seconds=0)

    [mark] = contact_marks(rig)
    assert mark["ecom_playbook_step"] == "win_back:win_back_offer_1"
    assert [row.item.id_value for row in rig.store.due("contacts", float("inf"), 10)] == [
        "back.again@example.com"]


def test_new_order_stops_win_back(rig: Rig, clock: Clock) -> None:
    paid_order(rig, "c1", "o-1", 50)
    assert rig.runner.scan_win_back({"c1": CONTACT}) == 1
    observe(rig, "orders/paid", {"id": 2}, order_key="o-2")
    rig.runner.run_until_idle()
    assert contact_marks(rig) == []
    assert rig.timers.get("win_back", "c1:o-1").status == CANCELLED  # type: ignore[union-attr]


def test_failed_send_is_tried_again(tmp_path: Path, config: PlaybookConfig, clock: Clock,
                                    consent: FakeConsent, discounts: FakeDiscounts) -> None:
    from storesync.playbooks import RETRY_SECONDS, SendOutcome

    class FlakySender:
        channel = "whatsapp"

        def __init__(self) -> None:
            self.calls = 0

        def send_step(self, step: Any, payload: Any, now: float) -> SendOutcome:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("the API could not be reached")
            return SendOutcome("sent")

    sender = FlakySender()
    rig = make_rig(tmp_path / "state.sqlite3", config, clock, consent, discounts,
                   {"whatsapp": sender})
    try:
        observe(rig, "checkouts/create", checkout())
        clock.advance(3 * HOUR)
        rig.runner.run_until_idle()  # step 1 marks; step 2 waits 20 hours
        clock.advance(20 * HOUR)  # 09:00 in Riyadh, as the night window ends
        rig.runner.run_until_idle()
        step = rig.timers.get("playbook_step", "abandoned_cart:tok-1#2")
        assert step is not None and step.status == SCHEDULED
        assert step.attempts == 1
        clock.advance(RETRY_SECONDS)
        rig.runner.run_until_idle()
        assert sender.calls == 2
        assert rig.timers.get("playbook_step", "abandoned_cart:tok-1#2").status == FIRED  # type: ignore[union-attr]
    finally:
        rig.close()
