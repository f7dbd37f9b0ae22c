"""The flusher's pipeline: partial batches held while rows arrive, calls of the next object
sent while a call is out, dependencies kept, and each record sent once by the run loop."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from storesync.flusher import BATCH_HOLD_WINDOWS, dependencies_of
from storesync.hubspot import BatchResult
from storesync.sync_store import OutboxItem
from sync_support import SARA, FakeClock, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]
START = 1_800_000_000.0


def contact_item(key: str) -> OutboxItem:
    return OutboxItem("contacts", key, {"email": f"{key}@example.com"}, "email",
                      f"{key}@example.com")


def customer(number: int) -> dict[str, object]:
    return {"id": 7500000000000 + number, "email": f"pipe{number}@example.com",
            "phone": f"+9665200{number:05d}", "first_name": "عميل", "last_name": f"{number}"}


def enqueue_contacts(sync: SyncHarness, clock: FakeClock, at: float, keys: Sequence[str]) -> None:
    """Put contacts in the outbox as the worker would at time ``at``."""
    clock.now = at
    store = sync.context.store
    with store.transaction() as conn:
        for key in keys:
            store.enqueue(conn, contact_item(key))


def harness_with_clock(make_harness: MakeHarness, window_ms: int) -> tuple[SyncHarness, FakeClock]:
    sync = make_harness(SYNC_BATCH_WINDOW_MS=str(window_ms))
    clock = FakeClock(START)
    sync.context.store.clock = clock
    return sync, clock


def test_hold_bounded_by_windows(make_harness: MakeHarness) -> None:
    sync, _ = harness_with_clock(make_harness, 1000)
    assert BATCH_HOLD_WINDOWS == 10
    assert sync.flusher.max_batch_wait_seconds == 10.0


def test_partial_batch_held_while_arriving(make_harness: MakeHarness) -> None:
    sync, clock = harness_with_clock(make_harness, 1000)
    enqueue_contacts(sync, clock, START, [f"held{number}" for number in range(30)])
    enqueue_contacts(sync, clock, START + 1.5, ["held30"])

    # The oldest row waited two windows, but a row arrived half a window ago.
    arriving = sync.flusher.flush_once(now=START + 2)
    assert arriving.calls == 0
    assert arriving.waiting == 31

    enqueue_contacts(sync, clock, START + 9.5, ["held31"])
    still_arriving = sync.flusher.flush_once(now=START + 9.9)
    assert still_arriving.calls == 0
    assert still_arriving.waiting == 32

    # Ten windows after the oldest row, the batch goes although rows still arrive.
    due = sync.flusher.flush_once(now=START + 10)
    assert due.calls == 1
    assert due.synced["contacts"] == 32
    assert sync.context.store.pending_count() == 0


def test_partial_batch_sent_when_quiet(make_harness: MakeHarness) -> None:
    sync, clock = harness_with_clock(make_harness, 1000)
    enqueue_contacts(sync, clock, START, [f"quiet{number}" for number in range(30)])

    early = sync.flusher.flush_once(now=START + 0.9)
    assert early.calls == 0
    assert early.waiting == 30

    quiet = sync.flusher.flush_once(now=START + 1.0)
    assert quiet.calls == 1
    assert quiet.synced["contacts"] == 30


def test_full_batch_not_held(make_harness: MakeHarness) -> None:
    sync, clock = harness_with_clock(make_harness, 1000)
    enqueue_contacts(sync, clock, START, [f"full{number:03d}" for number in range(150)])
    report = sync.flusher.flush_once(now=START)
    assert report.calls == 1
    assert report.synced["contacts"] == 100
    assert report.waiting == 50


def test_dependencies_of_objects() -> None:
    assert dependencies_of("line_items") == ("products",)
    assert dependencies_of("deals") == ()
    assert dependencies_of("contacts") == ()
    assert dependencies_of("assoc:deals:contacts") == ("deals", "contacts")


def test_deals_sent_while_contacts_out(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(823001, SARA))
    upsert = sync.client.batch_upsert
    deals_started = threading.Event()
    overlapped: list[bool] = []

    def upsert_waiting_for_deals(obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        if obj == "deals":
            deals_started.set()
        if obj == "contacts":
            # Without the pipeline the deals batch is read only after this call returns.
            overlapped.append(deals_started.wait(5))
        return upsert(obj, inputs)

    sync.client.batch_upsert = upsert_waiting_for_deals  # type: ignore[method-assign]
    report = sync.flush()
    assert overlapped == [True]
    assert sum(report.dead_lettered.values()) == 0
    assert len(sync.standin.records("deals")) == 1
    deal = sync.standin.records("deals")[0]
    assert len(deal["associations"]["contacts"]) == 1


def test_line_items_wait_for_products(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(823101, SARA, lines=(Line(97001, "OUD-ROYAL-50", 1, "149.50"),)))
    upsert = sync.client.batch_upsert
    order: list[str] = []

    def slow_products(obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        if obj == "products":
            # Long enough for the line item to go first if nothing waited for the product.
            time.sleep(0.3)
        result = upsert(obj, inputs)
        order.append(obj)
        return result

    sync.client.batch_upsert = slow_products  # type: ignore[method-assign]
    sync.flush()
    assert order.index("products") < order.index("line_items")
    product = sync.standin.records("products")[0]
    line = sync.standin.records("line_items")[0]
    assert line["properties"]["hs_product_id"] == product["id"]


def test_run_sends_each_record_once(make_harness: MakeHarness) -> None:
    sync = make_harness()
    for number in range(1, 251):
        sync.deliver_order(Order(823200 + number, customer(number)))
    upsert = sync.client.batch_upsert
    sent: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def counting_upsert(obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        # Slow calls keep batches out while the loop reads the next objects.
        time.sleep(0.05)
        with lock:
            sent.update((obj, str(item["id"])) for item in inputs)
        return upsert(obj, inputs)

    sync.client.batch_upsert = counting_upsert  # type: ignore[method-assign]
    stop = threading.Event()
    loop = threading.Thread(target=sync.flusher.run, args=(stop,))
    loop.start()
    deadline = time.monotonic() + 60
    while sync.context.store.pending_count() and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    loop.join(30)

    assert not loop.is_alive()
    assert sync.context.store.pending_count() == 0
    assert sync.context.store.dead_letter_count() == 0
    assert max(sent.values()) == 1
    assert sum(1 for obj, _ in sent if obj == "contacts") == 250
    assert sum(1 for obj, _ in sent if obj == "deals") == 250
    assert len(sync.standin.records("deals")) == 250
