"""The flusher as its own process: one flusher per outbox, and the worker's split queue settings.

The process tests start ``python -m storesync flusher`` against the HubSpot stand-in,
with an outbox that a worker context filled in the same state file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storesync.cli import build_worker_queue
from storesync.flusher_lock import FlusherLock
from storesync.metrics import SharedSyncCollector, SqliteSnapshots
from storesync.queue import build_queue
from storesync.settings import SERVICE_DIR, Settings, load_settings
from storesync.sync_store import OutboxItem, OutboxRow
from storesync.worker import start_background
from sync_support import SPEC_DIR, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]
WAIT_SECONDS = 60
ORDERS = 30
# SQLite's values of PRAGMA synchronous.
SYNCHRONOUS_NORMAL = 1
SYNCHRONOUS_FULL = 2
# Settings of the machine running the tests must not leak into the flusher processes.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "REDIS_URL", "HOST", "PORT", "LOG_LEVEL",
                     "WORKER_METRICS_PORT", "SYNC_FLUSHER", "CRM_TARGET")
HOLD_LOCK_SCRIPT = """
import sys, time
from pathlib import Path
from storesync.flusher_lock import FlusherLock
lock = FlusherLock(Path(sys.argv[1]))
assert lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def customer(number: int) -> dict[str, object]:
    return {"id": 7400000000000 + number, "email": f"lock{number}@example.com",
            "phone": f"+9665100{number:05d}", "first_name": "عميل", "last_name": f"{number}"}


def settings_for(tmp_path: Path, **environ: str) -> Settings:
    return load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                          **environ})


# --- the lock ------------------------------------------------------------------------------


def test_lock_excludes_second_holder(tmp_path: Path) -> None:
    first = FlusherLock(tmp_path)
    second = FlusherLock(tmp_path)
    assert first.acquire()
    assert not second.acquire()
    assert second.holder_pid() == os.getpid()
    first.release()
    assert second.acquire()
    assert not first.acquire()
    second.release()


def test_lock_freed_when_holder_killed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SERVICE_DIR / "src")}
    with subprocess.Popen([sys.executable, "-c", HOLD_LOCK_SCRIPT, str(tmp_path)],
                          env=env, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            lock = FlusherLock(tmp_path)
            assert not lock.acquire()
            assert lock.holder_pid() == holder.pid
        finally:
            holder.kill()
            holder.wait(timeout=10)
    assert lock.acquire()
    lock.release()


# --- the worker ----------------------------------------------------------------------------


def flusher_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "storesync-flusher"]


@pytest.mark.parametrize(("mode", "threads"), [("process", 0), ("thread", 1)])
def test_worker_flusher_thread_by_mode(make_harness: MakeHarness, mode: str,
                                       threads: int) -> None:
    sync = make_harness()
    settings = settings_for(sync.settings.data_dir.parent, SYNC_FLUSHER=mode,
                            HUBSPOT_BASE_URL=sync.standin.url)
    assert settings.sync_flusher == mode
    stop = start_background(settings)
    try:
        assert len(flusher_threads()) == threads
    finally:
        stop()
    assert flusher_threads() == []


def synchronous_of(connection: sqlite3.Connection) -> int:
    return int(connection.execute("PRAGMA synchronous").fetchone()[0])


@pytest.mark.parametrize(("environ", "worker_mode"), [
    ({}, SYNCHRONOUS_NORMAL),
    ({"WORKER_QUEUE_SQLITE_SYNCHRONOUS": "FULL"}, SYNCHRONOUS_FULL),
])
def test_worker_queue_synchronous(tmp_path: Path, environ: dict[str, str],
                                  worker_mode: int) -> None:
    settings = settings_for(tmp_path, **environ)
    worker_queue = build_worker_queue(settings)
    intake_queue = build_queue(settings)
    try:
        assert synchronous_of(worker_queue.huey.storage.conn) == worker_mode
        # The intake's commit is the acknowledgement, so it stays FULL.
        assert synchronous_of(intake_queue.huey.storage.conn) == SYNCHRONOUS_FULL
    finally:
        worker_queue.close()
        intake_queue.close()


# --- two flusher processes -----------------------------------------------------------------


@pytest.fixture
def spawn_flusher(tmp_path: Path) -> Iterator[Callable[[dict[str, str], str],
                                                     subprocess.Popen[bytes]]]:
    """Return a function that starts ``python -m storesync flusher`` logging to a file."""
    processes: list[subprocess.Popen[bytes]] = []

    def spawn(environ: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        env = {key: found for key, found in os.environ.items() if key not in CLEARED_VARIABLES}
        env.update({**environ, "PYTHONPATH": str(SERVICE_DIR / "src"), "LOG_LEVEL": "INFO"})
        with (tmp_path / f"{name}.log").open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "storesync", "flusher"],
                                       cwd=SERVICE_DIR, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_second_flusher_waits_for_first(
        tmp_path: Path, make_harness: MakeHarness,
        spawn_flusher: Callable[[dict[str, str], str], subprocess.Popen[bytes]]) -> None:
    sync = make_harness()
    for number in range(1, ORDERS + 1):
        sync.deliver_order(Order(830000 + number, customer(number),
                                 lines=(Line(95000 + number, "LOCK-SKU", 1, "25.00"),)))
    environ = {"DATA_DIR": str(sync.settings.data_dir), "SPEC_DIR": str(SPEC_DIR),
               "DESIRED_STATE_PATH": str(sync.settings.desired_state_path),
               "HUBSPOT_BASE_URL": sync.standin.url, "SYNC_BATCH_WINDOW_MS": "0",
               "STORE_ID": "test-store"}
    first = spawn_flusher(environ, "first")
    wait_until(lambda: FlusherLock(sync.settings.data_dir).holder_pid() == first.pid,
               "the first flusher to take the lock")
    second = spawn_flusher(environ, "second")
    wait_until(lambda: "another flusher drains the outbox"
               in (tmp_path / "second.log").read_text(encoding="utf-8"),
               "the second flusher to report that it waits")
    wait_until(lambda: len(sync.standin.records("deals")) == ORDERS, "every deal")

    # One flusher sent each record once: the 30 contacts, deals and line items each fit
    # one upsert batch, and the product made from the shared SKU one more.
    wait_until(lambda: sync.context.store.pending_count() == 0, "an empty outbox")
    assert sync.standin.call_count("/batch/upsert", 200) == 4
    assert len(sync.standin.records("contacts")) == ORDERS

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=WAIT_SECONDS) == 0
    wait_until(lambda: "flusher lock taken" in (tmp_path / "second.log").read_text(
        encoding="utf-8"), "the second flusher to take the lock")
    assert FlusherLock(sync.settings.data_dir).holder_pid() == second.pid
    second.send_signal(signal.SIGINT)
    assert second.wait(timeout=WAIT_SECONDS) == 0
    assert FlusherLock(sync.settings.data_dir).acquire()


def test_waiting_flusher_keeps_dead_letter_count(
        tmp_path: Path, make_harness: MakeHarness,
        spawn_flusher: Callable[[dict[str, str], str], subprocess.Popen[bytes]]) -> None:
    sync = make_harness()
    store = sync.context.store
    with store.transaction() as conn:
        for number in (1, 2):
            item = OutboxItem("contacts", f"c{number}", {"firstname": "x"}, None, None)
            store._insert_dead_letter(conn, OutboxRow(item, 2, 1.0, 1.0, 1, None), 400,
                                      "INVALID", 1.0)
    # The lock is held here, so the flusher process only waits and publishes snapshots.
    lock = FlusherLock(sync.settings.data_dir)
    assert lock.acquire()
    environ = {"DATA_DIR": str(sync.settings.data_dir), "SPEC_DIR": str(SPEC_DIR),
               "DESIRED_STATE_PATH": str(sync.settings.desired_state_path),
               "HUBSPOT_BASE_URL": sync.standin.url, "STORE_ID": "test-store"}
    spawn_flusher(environ, "waiting")
    snapshots = SqliteSnapshots(sync.settings.state_path)
    collector = SharedSyncCollector()
    collector.read = snapshots.read
    try:
        wait_until(lambda: len(snapshots.read()) >= 1, "the waiting flusher's first snapshot")
        values = [sample.value for family in collector.collect() for sample in family.samples
                  if sample.name == "storesync_dead_letters"]
    finally:
        snapshots.close()
        lock.release()
    # The only snapshot is the waiting flusher's; it must carry the count, not 0.
    assert values == [2.0]


def test_flusher_command_rejects_other_crm(tmp_path: Path) -> None:
    env = {key: found for key, found in os.environ.items() if key not in CLEARED_VARIABLES}
    # The customer database has no flusher; in other projects it also disagrees with the
    # field map. Either way the command stops with the setting named.
    env.update({"PYTHONPATH": str(SERVICE_DIR / "src"), "DATA_DIR": str(tmp_path / "var"),
                "SPEC_DIR": str(SPEC_DIR), "CRM_TARGET": "custom"})
    finished = subprocess.run([sys.executable, "-m", "storesync", "flusher"], cwd=SERVICE_DIR,
                              env=env, capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 2
    assert "CRM_TARGET" in finished.stderr
    assert "custom" in finished.stderr
