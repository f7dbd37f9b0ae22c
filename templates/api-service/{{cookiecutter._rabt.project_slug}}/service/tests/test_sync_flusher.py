"""The flusher against the HubSpot stand-in: batch sizes, 429, 5xx, dead letters and replay."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storesync.db import Database
from storesync.flusher import MAX_CALLS_IN_FLIGHT, SetupError, client_for
from storesync.hubspot import BATCH_LIMIT, BatchResult
from storesync.settings import load_settings
from storesync.standins.hubspot import HubSpotStandinConfig
from storesync.sync_store import OutboxItem, SyncStore
from storesync.worker import start_background
from sync_support import SARA, FakeClock, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]


def customer(number: int) -> dict[str, object]:
    return {"id": 7300000000000 + number, "email": f"bulk{number}@example.com",
            "phone": f"+9665000{number:05d}", "first_name": "عميل", "last_name": f"{number}"}


def test_batches_never_exceed_limit(make_harness: MakeHarness) -> None:
    sync = make_harness()
    for number in range(1, 251):
        sync.deliver_order(Order(820000 + number, customer(number),
                                 lines=(Line(93000 + number, f"SKU-{number % 7}", 1, "10.00"),)))
    report = sync.flush()
    assert sum(report.dead_lettered.values()) == 0
    assert len(sync.standin.records("contacts")) == 250
    assert len(sync.standin.records("deals")) == 250
    assert len(sync.standin.records("line_items")) == 250
    # 3 full-or-partial batches per object: 100 + 100 + 50, and none rejected for size,
    # plus one batch of the 7 products made from the lines' SKUs.
    assert len(sync.standin.records("products")) == 7
    assert sync.standin.call_count("/batch/upsert", 200) == 10
    assert sync.standin.call_count("/batch/create", 201) == 6
    assert sync.standin.call_count("/batch/upsert", 400) == 0
    assert BATCH_LIMIT == 100


def test_partial_batch_waits_for_window(make_harness: MakeHarness) -> None:
    sync = make_harness(SYNC_BATCH_WINDOW_MS="5000")
    sync.deliver_order(Order(820500, SARA))
    now = sync.context.store.clock()
    early = sync.flusher.flush_once(now=now + 1)
    late = sync.flusher.flush_once(now=now + 6)
    assert early.calls == 0
    assert early.waiting == 4
    # Four upserts (the product made from the line among them), then the two links
    # whose ends now have HubSpot ids.
    assert late.calls == 6


def test_429_retry_after_honoured(make_harness: MakeHarness) -> None:
    clock = FakeClock()
    config = HubSpotStandinConfig(rate_limit_per_10s=2, retry_after_seconds=5, clock=clock)
    sync = make_harness(config, client_clock=clock)
    sync.deliver_order(Order(820600, SARA))
    report = sync.flush(now=clock.now)
    assert report.synced["deals"] == 1
    assert sum(report.dead_lettered.values()) == 0
    assert sync.client.rate_limited_calls >= 1
    # The bucket waits out Retry-After, then the time of one token.
    assert any(5.0 <= seconds < 6.0 for seconds in clock.sleeps)
    assert sync.standin.call_count("", 429) == sync.client.rate_limited_calls
    assert len(sync.standin.records("line_items")) == 1


def test_5xx_retried_then_synced(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(820700, SARA))
    sync.standin.fault(503, 1, "/crm/v3/objects/contacts")
    now = sync.context.store.clock()
    first = sync.flusher.flush_once(now=now, force=True)
    assert first.retried["contacts"] == 1
    assert sync.standin.records("contacts") == []
    second = sync.flush(now=now + 60)
    assert second.synced["contacts"] == 1
    assert len(sync.standin.records("contacts")) == 1
    assert sync.context.store.pending_count() == 0


def test_exhausted_retries_dead_letter_then_replay(make_harness: MakeHarness) -> None:
    sync = make_harness(SYNC_MAX_ATTEMPTS="3")
    sync.deliver_order(Order(820800, SARA))
    sync.standin.fault(503, 3, "/crm/v3/objects/deals")
    now = sync.context.store.clock()
    for step in range(3):
        sync.flusher.flush_once(now=now + 100 * step, force=True)
    letters = sync.context.store.dead_letters()
    assert [letter.item.object for letter in letters] == ["deals"]
    assert letters[0].status == 503
    assert "gave up after 3 attempts" in letters[0].error
    assert sync.standin.records("deals") == []
    assert sync.context.store.replay_all() == 1
    sync.flush(now=now + 1000)
    deal = sync.standin.records("deals")
    assert len(deal) == 1
    assert deal[0]["associations"]["contacts"]  # the waiting link was written too
    assert sync.context.store.dead_letters() == []


def test_bad_record_alone_dead_lettered(make_harness: MakeHarness) -> None:
    sync = make_harness()
    for number in range(1, 6):
        sync.deliver_order(Order(820900 + number, customer(number)))
    with sync.context.store.transaction() as conn:
        sync.context.store.enqueue(conn, OutboxItem(
            object="contacts", key="c-bad", properties={"no_such_property": "x"},
            id_property="email", id_value="bad.record@example.com", event_id="evt-bad",
            resource="contacts:c-bad"))
    report = sync.flush()
    letters = sync.context.store.dead_letters()
    assert report.synced["contacts"] == 5
    assert [letter.item.key for letter in letters] == ["c-bad"]
    assert letters[0].status in (207, 400)
    assert "no_such_property" in letters[0].error
    assert len(sync.standin.records("contacts")) == 5


def test_daily_limit_pauses(make_harness: MakeHarness) -> None:
    config = HubSpotStandinConfig(daily_limit=2)
    sync = make_harness(config)  # resolving the stages took one call
    sync.deliver_order(Order(821000, SARA))
    now = sync.context.store.clock()
    first = sync.flusher.flush_once(now=now, force=True)
    calls_after_pause = sync.client.calls
    second = sync.flusher.flush_once(now=now + 60, force=True)
    assert first.paused
    assert second.paused
    assert sync.client.calls == calls_after_pause
    assert sync.context.store.dead_letters() == []
    assert sync.context.store.pending_count() > 0


def test_update_by_id_after_first_sync(make_harness: MakeHarness) -> None:
    sync = make_harness()
    sync.deliver_order(Order(821100, SARA, updated_at="2026-03-04T10:00:00+00:00",
                             lines=(Line(94001, "A-1", 1, "149.50"),)))
    sync.flush()
    sync.deliver_order(Order(821101, SARA, updated_at="2026-03-04T11:00:00+00:00",
                             lines=(Line(94002, "A-2", 1, "149.50"),)))
    sync.flush()
    # The contact is known by then, so it is updated by id; the new order, its line and
    # the product made from the line's new SKU are upserted.
    assert sync.standin.call_count("/batch/update", 200) == 1
    assert sync.standin.call_count("/batch/upsert", 200) == 7
    assert len(sync.standin.records("contacts")) == 1


def test_zoho_target_on_hubspot_field_map_exits(capsys: pytest.CaptureFixture[str],
                                                make_harness: MakeHarness) -> None:
    sync = make_harness()
    values = {"DATA_DIR": str(sync.settings.data_dir), "SPEC_DIR": str(sync.settings.spec_dir),
              "CRM_TARGET": "zoho"}
    settings = load_settings(values)
    with pytest.raises(SystemExit) as exit_info:
        start_background(settings)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "is for the CRM 'hubspot', and CRM_TARGET is zoho" in message
    assert "set CRM_TARGET=hubspot" in message


def test_sandbox_refuses_real_hubspot(make_harness: MakeHarness) -> None:
    sync = make_harness()
    settings = load_settings({"DATA_DIR": str(sync.settings.data_dir),
                              "SPEC_DIR": str(sync.settings.spec_dir)})
    with pytest.raises(SetupError, match="HUBSPOT_ACCESS_TOKEN is not set"):
        client_for(settings)


def contact_item(key: str) -> OutboxItem:
    return OutboxItem("contacts", key, {"email": f"{key}@example.com"}, "email",
                      f"{key}@example.com")


def test_two_batches_in_flight(make_harness: MakeHarness) -> None:
    sync = make_harness()
    for number in range(1, 301):
        sync.deliver_order(Order(822000 + number, customer(number)))
    upsert = sync.client.batch_upsert
    lock = threading.Lock()
    in_flight = 0
    max_in_flight = 0

    def slow_upsert(obj: str, inputs: Sequence[Mapping[str, object]]) -> BatchResult:
        nonlocal in_flight, max_in_flight
        with lock:
            in_flight += 1
            max_in_flight = max(max_in_flight, in_flight)
        try:
            # Long enough for the next batch of the same object to start meanwhile.
            time.sleep(0.2)
            return upsert(obj, inputs)
        finally:
            with lock:
                in_flight -= 1

    sync.client.batch_upsert = slow_upsert  # type: ignore[method-assign]
    report = sync.flush()
    assert MAX_CALLS_IN_FLIGHT == 2
    assert max_in_flight == MAX_CALLS_IN_FLIGHT
    assert sum(report.dead_lettered.values()) == 0
    assert len(sync.standin.records("contacts")) == 300
    assert len(sync.standin.records("deals")) == 300
    assert sync.context.store.pending_count() == 0


def test_read_connection_rejects_writes(tmp_path: Path) -> None:
    store = SyncStore(Database(tmp_path / "state.sqlite3"))
    with store.db.reading() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM sync_outbox")
    store.db.close()


def test_flusher_reads_skip_open_write(tmp_path: Path) -> None:
    store = SyncStore(Database(tmp_path / "state.sqlite3"))
    with store.transaction() as conn:
        store.enqueue(conn, contact_item("committed"))
    writing = threading.Event()
    release = threading.Event()

    def hold_write_transaction() -> None:
        with store.transaction() as conn:
            store.enqueue(conn, contact_item("uncommitted"))
            writing.set()
            release.wait(10)

    with ThreadPoolExecutor(max_workers=2) as pool:
        writer = pool.submit(hold_write_transaction)
        assert writing.wait(5)
        # The write transaction holds the write connection's lock until ``release``,
        # so a read through that connection would wait for it.
        read = pool.submit(store.due, "contacts", store.clock() + 1, 10)
        try:
            rows = read.result(timeout=2)
        finally:
            release.set()
        writer.result(timeout=5)
    assert [row.item.key for row in rows] == ["committed"]
    keys = [row.item.key for row in store.due("contacts", store.clock() + 1, 10)]
    assert sorted(keys) == ["committed", "uncommitted"]
    store.db.close()
