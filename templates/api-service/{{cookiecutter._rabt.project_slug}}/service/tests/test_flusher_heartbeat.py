"""The flusher's heartbeat: written while the flusher runs, read by /readyz/sync and /metrics.

The end-to-end test serves the intake under uvicorn, runs ``python -m storesync worker``
without a flusher until records wait in the outbox, then starts ``python -m storesync
flusher`` and watches /readyz/sync recover while /readyz stays ready.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, WOOCOMMERCE_SECRET, serve
from storesync.db import Database
from storesync.heartbeat import (
    FlusherCheck,
    FlusherNotRunning,
    HeartbeatWriter,
    SqliteHeartbeat,
)
from storesync.intake import create_app
from storesync.settings import SERVICE_DIR, Settings, load_settings
from storesync.sync_store import OutboxItem, SyncStore
from sync_support import DESIRED_STATE_PATH, SARA, SPEC_DIR, FakeClock, Order, Standin, family
from test_metrics_sync import signed

NOW = 1_800_000_000.0
WAIT_SECONDS = 60
HEARTBEAT_AGE = "storesync_flusher_heartbeat_age_seconds"
# Settings of the machine running the tests must not leak into the worker processes.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "REDIS_URL", "REDIS_KEY_PREFIX",
                     "WORKER_METRICS_PORT", "HOST", "PORT", "SYNC_FLUSHER")


class MemoryHeartbeat:
    """A heartbeat store in memory that can be made to fail."""

    def __init__(self) -> None:
        self.beats: list[float] = []
        self.failing = False

    def write(self, beat_at: float) -> None:
        if self.failing:
            raise sqlite3.OperationalError("database is locked")
        self.beats.append(beat_at)

    def read(self) -> float | None:
        return self.beats[-1] if self.beats else None

    def close(self) -> None:
        pass


def settings_for(tmp_path: Path, **environ: str) -> Settings:
    return load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                          **environ})


# --- writing ---------------------------------------------------------------------------------


def test_writer_spaces_beats() -> None:
    store = MemoryHeartbeat()
    clock = FakeClock(NOW)
    writer = HeartbeatWriter(store, interval=5.0, clock=clock)
    writer()
    clock.now = NOW + 4.9
    writer()
    clock.now = NOW + 5.0
    writer()
    assert store.beats == [NOW, NOW + 5.0]


def test_writer_logs_failure_once(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryHeartbeat()
    clock = FakeClock(NOW)
    writer = HeartbeatWriter(store, interval=1.0, clock=clock)
    store.failing = True
    with caplog.at_level(logging.WARNING, logger="storesync.heartbeat"):
        writer()
        clock.now += 1
        writer()
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "heartbeat could not be written" in warnings[0].getMessage()
    store.failing = False
    clock.now += 1
    writer()
    assert store.beats == [NOW + 2]


# --- the readiness check -------------------------------------------------------------------


@pytest.fixture
def check_parts(tmp_path: Path) -> Iterator[tuple[Settings, SyncStore, SqliteHeartbeat]]:
    settings = settings_for(tmp_path)
    store = SyncStore(Database(settings.state_path))
    beats = SqliteHeartbeat(settings.state_path)
    yield settings, store, beats
    beats.close()
    store.db.close()


def add_waiting_record(store: SyncStore) -> None:
    with store.transaction() as conn:
        store.enqueue(conn, OutboxItem("contacts", "c1", {"email": "beat@example.com"},
                                       "email", "beat@example.com"))


def make_check(settings: Settings, store: SyncStore, beats: SqliteHeartbeat) -> FlusherCheck:
    return FlusherCheck(settings, beats, store.db, clock=lambda: NOW)


def test_check_passes_when_outbox_empty(
        check_parts: tuple[Settings, SyncStore, SqliteHeartbeat]) -> None:
    settings, store, beats = check_parts
    check = make_check(settings, store, beats)
    assert check.age() is None
    check.check()


def test_check_fails_without_heartbeat(
        check_parts: tuple[Settings, SyncStore, SqliteHeartbeat]) -> None:
    settings, store, beats = check_parts
    add_waiting_record(store)
    with pytest.raises(FlusherNotRunning) as raised:
        make_check(settings, store, beats).check()
    message = str(raised.value)
    assert message.startswith("1 record waits in the outbox")
    assert "has never written a heartbeat" in message
    assert "FLUSHER_HEARTBEAT_MAX_AGE_SECONDS=120" in message
    assert "`python -m storesync flusher`" in message


@pytest.mark.parametrize(("age", "ready"), [(119.0, True), (120.0, True), (121.0, False)])
def test_check_heartbeat_age_limit(check_parts: tuple[Settings, SyncStore, SqliteHeartbeat],
                                   age: float, ready: bool) -> None:
    settings, store, beats = check_parts
    add_waiting_record(store)
    beats.write(NOW - age)
    check = make_check(settings, store, beats)
    assert check.age() == age
    if ready:
        check.check()
        return
    with pytest.raises(FlusherNotRunning, match="last wrote a heartbeat 121 s ago"):
        check.check()


def test_check_names_worker_in_thread_mode(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, SYNC_FLUSHER="thread")
    store = SyncStore(Database(settings.state_path))
    beats = SqliteHeartbeat(settings.state_path)
    try:
        add_waiting_record(store)
        with pytest.raises(FlusherNotRunning, match="start or restart `python -m storesync "
                                                    "worker`"):
            make_check(settings, store, beats).check()
    finally:
        beats.close()
        store.db.close()


# --- web, worker and flusher processes -------------------------------------------------------


@pytest.fixture
def start_command(tmp_path: Path) -> Iterator[Callable[[list[str], dict[str, str]], None]]:
    """Return a function that starts ``python -m storesync COMMAND`` until the test ends."""
    processes: list[subprocess.Popen[str]] = []
    log = (tmp_path / "processes.log").open("w")

    def start(command: list[str], environ: dict[str, str]) -> None:
        env = {key: found for key, found in os.environ.items() if key not in CLEARED_VARIABLES}
        env.update({**environ, "PYTHONPATH": str(SERVICE_DIR / "src"), "LOG_LEVEL": "WARNING"})
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "storesync", *command], cwd=SERVICE_DIR,
            env=env, stdout=log, stderr=log, text=True))

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


def heartbeat_age(url: str) -> float:
    response = httpx.get(f"{url}/metrics", timeout=10)
    response.raise_for_status()
    for metric in text_string_to_metric_families(response.text):
        for sample in metric.samples:
            if sample.name == HEARTBEAT_AGE:
                return float(sample.value)
    raise AssertionError(f"{HEARTBEAT_AGE} is missing from /metrics")


def wait_for_sync_readyz(url: str, status: int) -> httpx.Response:
    deadline = time.monotonic() + WAIT_SECONDS
    response = httpx.get(f"{url}/readyz/sync", timeout=10)
    while response.status_code != status and time.monotonic() < deadline:
        time.sleep(0.3)
        response = httpx.get(f"{url}/readyz/sync", timeout=10)
    return response


def test_sync_readyz_reports_missing_flusher(
        tmp_path: Path, backend_env: dict[str, str], start_standin: Callable[..., Standin],
        start_command: Callable[[list[str], dict[str, str]], None]) -> None:
    standin = start_standin()
    source = family()
    environ = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
               "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH), "HUBSPOT_BASE_URL": standin.url,
               "SYNC_BATCH_WINDOW_MS": "0", "STORE_ID": "test-store",
               "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
               "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
               "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET, **backend_env}
    order = Order(851001, SARA)
    app = create_app(load_settings(environ))
    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/readyz").status_code == 200
        raw, headers = signed(source, order.topic(source), order.body(source), 1)
        response = client.post(f"/webhooks/{source}", content=raw, headers=headers)
        assert response.json()["status"] == "queued"

        # The worker fills the outbox, and no flusher takes it.
        start_command(["worker", "--workers", "1"], environ)
        stopped = wait_for_sync_readyz(url, 503)
        assert stopped.status_code == 503, stopped.text
        # The intake stays ready: it still queues webhooks durably without a flusher.
        intake = client.get("/readyz")
        assert intake.status_code == 200, intake.text
        assert intake.json()["sync"]["flusher"].startswith("FlusherNotRunning: ")
        flusher_check = stopped.json()["checks"]["flusher"]
        assert flusher_check.startswith("FlusherNotRunning: ")
        assert "in the outbox, but the flusher has never written a heartbeat" \
            in flusher_check
        assert "`python -m storesync flusher`" in flusher_check
        assert heartbeat_age(url) == -1

        start_command(["flusher"], environ)
        ready = wait_for_sync_readyz(url, 200)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["flusher"] == "ok"
        assert 0 <= heartbeat_age(url) <= 120
    deadline = time.monotonic() + WAIT_SECONDS
    while not standin.records("deals") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(standin.records("deals")) == 1
