"""The SQLite queue's group commit: dedupe claims, task order and multi-row inserts."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storesync import db as db_module
from storesync.db import Database, insert_rows
from storesync.delivery import Delivery
from storesync.queue import DeliveryQueue, _Job, build_queue, sqlite_commit
from storesync.settings import Settings

MakeSettings = Callable[..., Settings]
NOW = 1_772_560_000.0
WINDOW_SECONDS = 72 * 3600


@pytest.fixture
def queue(make_settings: MakeSettings) -> Iterator[DeliveryQueue]:
    built = build_queue(make_settings("shopify"), handler=lambda delivery: None)
    yield built
    built.close()


def delivery(number: int) -> Delivery:
    return Delivery(delivery_id=f"evt-{number}", source="shopify", topic="orders/create",
                    shop="test-store.myshopify.com", received_at="2026-03-03T18:10:00Z",
                    triggered_at=None, body=f'{{"id": {number}}}')


def job(queue: DeliveryQueue, number: int, key: str | None, now: float = NOW) -> _Job:
    return queue._job(delivery(number), key, now)


def commit(queue: DeliveryQueue, jobs: list[_Job]) -> list[bool]:
    return sqlite_commit(queue.huey.storage, queue.dedupe)(jobs)  # type: ignore[arg-type]


def table_count(queue: DeliveryQueue, table: str) -> int:
    conn = sqlite3.connect(queue.settings.queue_path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_batch_duplicate_key_queued_once(queue: DeliveryQueue) -> None:
    results = commit(queue, [job(queue, 1, "shopify:evt-1"), job(queue, 2, "shopify:evt-2"),
                             job(queue, 3, "shopify:evt-1")])
    assert results == [True, True, False]
    assert table_count(queue, "task") == 2
    assert table_count(queue, "inbox") == 2


def test_live_key_is_duplicate(queue: DeliveryQueue) -> None:
    assert commit(queue, [job(queue, 1, "shopify:evt-1")]) == [True]
    assert commit(queue, [job(queue, 2, "shopify:evt-1", NOW + 60)]) == [False]
    assert table_count(queue, "task") == 1


def test_expired_key_taken_over(queue: DeliveryQueue) -> None:
    assert commit(queue, [job(queue, 1, "shopify:evt-1")]) == [True]
    later = NOW + WINDOW_SECONDS + 1
    assert commit(queue, [job(queue, 2, "shopify:evt-1", later)]) == [True]
    conn = sqlite3.connect(queue.settings.queue_path)
    try:
        expires_at = conn.execute("SELECT expires_at FROM dedupe_keys WHERE key = ?",
                                  ("shopify:evt-1",)).fetchone()[0]
    finally:
        conn.close()
    assert expires_at == later + WINDOW_SECONDS


def test_unkeyed_job_always_queued(queue: DeliveryQueue) -> None:
    assert commit(queue, [job(queue, 1, None), job(queue, 1, None)]) == [True, True]
    assert table_count(queue, "task") == 2
    assert table_count(queue, "dedupe_keys") == 0


def test_batch_dequeued_in_order(queue: DeliveryQueue) -> None:
    commit(queue, [job(queue, number, f"shopify:evt-{number}") for number in range(5)])
    dequeued_ids = []
    while (task := queue.huey.dequeue()) is not None:
        dequeued_ids.append(task.args[0]["delivery_id"])
    assert dequeued_ids == [f"evt-{number}" for number in range(5)]


def test_insert_rows_splits_statements(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "MAX_STATEMENT_VARIABLES", 7)
    database = Database(tmp_path / "rows.sqlite3")
    try:
        with database.transaction() as conn:
            conn.execute("CREATE TABLE numbers (a INTEGER, b INTEGER, c INTEGER)")
            insert_rows(conn.cursor(), "INSERT INTO numbers (a, b, c)",
                        [(number, number * 2, number * 3) for number in range(10)])
        with database.connection() as conn:
            rows = conn.execute("SELECT a, b, c FROM numbers ORDER BY rowid").fetchall()
    finally:
        database.close()
    assert rows == [(number, number * 2, number * 3) for number in range(10)]
