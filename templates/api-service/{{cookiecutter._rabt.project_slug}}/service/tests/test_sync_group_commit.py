"""Deliveries handled at the same time share one commit, and a failing one is rolled back alone."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from storesync.db import Database
from storesync.sync_store import OutboxItem, SyncStore


def versions(store: SyncStore) -> list[str]:
    with store.db.connection() as conn:
        return [row[0] for row in conn.execute(
            "SELECT resource FROM sync_versions ORDER BY resource")]


def wait_for_waiting(store: SyncStore, count: int) -> None:
    """Block until ``count`` writes wait for the next commit (up to 5 s)."""
    deadline = time.monotonic() + 5
    while len(store.group_commit._waiting) < count:
        assert time.monotonic() < deadline, "the other writes never arrived"
        time.sleep(0.001)


def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    store = SyncStore(Database(tmp_path / "state.sqlite3"))
    results: list[str] = []
    lock = threading.Lock()

    def deliver(number: int) -> None:
        def work(conn: sqlite3.Connection) -> str:
            # Long enough that the other threads queue behind the leader's commit.
            time.sleep(0.02)
            return store.check_version(conn, f"deals:shop:{number}", 1.0, f"evt-{number}")

        outcome = store.write_together(work)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=deliver, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["newer"] * 8
    assert len(versions(store)) == 8
    assert store.group_commit.commits < 8


def test_failing_write_rolled_back_alone(tmp_path: Path) -> None:
    store = SyncStore(Database(tmp_path / "state.sqlite3"))
    outcomes: dict[str, object] = {}

    def leader(conn: sqlite3.Connection) -> str:
        # Hold this commit until both other writes wait, so they share the next one.
        wait_for_waiting(store, 2)
        return store.check_version(conn, "deals:shop:1", 1.0, "evt-1")

    def good(conn: sqlite3.Connection) -> str:
        return store.check_version(conn, "deals:shop:2", 1.0, "evt-2")

    def bad(conn: sqlite3.Connection) -> str:
        store.check_version(conn, "deals:shop:3", 1.0, "evt-3")
        raise ValueError("mapping failed")

    def call(name: str, work: object) -> None:
        try:
            outcomes[name] = store.write_together(work)  # type: ignore[arg-type]
        except ValueError as error:
            outcomes[name] = error

    first = threading.Thread(target=call, args=("leader", leader))
    first.start()
    while not store.group_commit._leading:
        time.sleep(0.001)
    others = [threading.Thread(target=call, args=("good", good)),
              threading.Thread(target=call, args=("bad", bad))]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join()
    assert outcomes["leader"] == "newer"
    assert outcomes["good"] == "newer"
    assert isinstance(outcomes["bad"], ValueError)
    assert versions(store) == ["deals:shop:1", "deals:shop:2"]
    assert store.group_commit.commits == 2


def test_write_error_reaches_caller(tmp_path: Path) -> None:
    store = SyncStore(Database(tmp_path / "state.sqlite3"))

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(sqlite3.OperationalError):
        store.write_together(broken)
    # The store still works after the failed write.
    assert store.write_together(
        lambda conn: store.check_version(conn, "deals:shop:9", 2.0, "evt-9")) == "newer"


def outbox_row(store: SyncStore) -> tuple[Any, ...]:
    with store.db.connection() as conn:
        row = conn.execute("SELECT properties, id_property, id_value, event_id, attempts, "
                           "revision, next_attempt_at FROM sync_outbox").fetchone()
    return tuple(row)


def test_enqueue_inserts_then_merges(tmp_path: Path) -> None:
    store = SyncStore(Database(tmp_path / "state.sqlite3"), clock=lambda: 100.0)
    first = OutboxItem(object="contacts", key="c1", properties={"email": "a@example.com",
                                                                 "city": "Riyadh"},
                       id_property="email", id_value="a@example.com", event_id="e1",
                       resource="contacts:c1")
    with store.transaction() as conn:
        store.enqueue(conn, first)
    assert outbox_row(store) == ('{"city": "Riyadh", "email": "a@example.com"}', "email",
                                 "a@example.com", "e1", 0, 1, 100.0)
    with store.transaction() as conn:
        conn.execute("UPDATE sync_outbox SET attempts = 3")
    later = OutboxItem(object="contacts", key="c1", properties={"city": "Jeddah", "orders": 2},
                       id_property=None, id_value=None, event_id="e2", resource="contacts:c1")
    with store.transaction() as conn:
        store.enqueue(conn, later, not_before=150.0)
    # Newer values win, older ones stay, the upsert key is kept and the retry count restarts.
    assert outbox_row(store) == (
        '{"city": "Jeddah", "email": "a@example.com", "orders": 2}', "email",
        "a@example.com", "e2", 0, 2, 150.0)
    assert store.pending_count("contacts") == 1
