"""The flusher's heartbeat, so the web process can tell that records wait with no flusher.

Only the flusher writes records to HubSpot, and it runs as a process of its own
(``python -m storesync flusher``) unless ``SYNC_FLUSHER=thread``. When it is not
started, webhooks are still accepted and the outbox grows without any error. So
the running flusher writes the time of its latest loop as a heartbeat: a row in the
state file, or the Redis key ``<REDIS_KEY_PREFIX>:flusher-heartbeat`` when
``REDIS_URL`` is set, the same backend as the worker's metric snapshots. The web's
``/readyz/sync`` fails when records wait in the outbox and the heartbeat is older
than ``FLUSHER_HEARTBEAT_MAX_AGE_SECONDS``. ``/readyz`` only reports that check,
and ``/metrics`` shows the heartbeat's age.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import redis

from .db import Database

log = logging.getLogger(__name__)

COMPONENT = "flusher_heartbeat"
SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE flusher_heartbeat ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), beat_at REAL NOT NULL, pid INTEGER NOT NULL)",
)
# The flusher writes at most one heartbeat per this many seconds.
HEARTBEAT_INTERVAL_SECONDS = 5.0


class FlusherNotRunning(Exception):
    """Records wait in the outbox, but no flusher has written a heartbeat lately."""


class HeartbeatStore(Protocol):
    """Storage of the flusher's heartbeat: the state file or Redis."""

    def write(self, beat_at: float) -> None:
        """Store ``beat_at`` (seconds since the epoch) as the latest heartbeat."""

    def read(self) -> float | None:
        """Return the latest heartbeat, or None when no flusher has written one."""

    def close(self) -> None:
        """Close the store's connections."""


class SqliteHeartbeat:
    """The heartbeat as the single row of the ``flusher_heartbeat`` table of the state file."""

    def __init__(self, path: Path) -> None:
        # A heartbeat lost in a power cut is written again within seconds, so commits
        # skip the fsync.
        self.database = Database(path, synchronous="NORMAL")
        self.database.migrate(COMPONENT, SCHEMA_STEPS)

    def write(self, beat_at: float) -> None:
        """Replace the heartbeat row."""
        with self.database.transaction() as conn:
            conn.execute("INSERT INTO flusher_heartbeat (id, beat_at, pid) VALUES (1, ?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at, "
                         "pid = excluded.pid", (beat_at, os.getpid()))

    def read(self) -> float | None:
        """Return the heartbeat time, or None when the row does not exist."""
        with self.database.reading() as conn:
            row = conn.execute("SELECT beat_at FROM flusher_heartbeat WHERE id = 1").fetchone()
        return None if row is None else float(row[0])

    def close(self) -> None:
        """Close the connections."""
        self.database.close()


class RedisHeartbeat:
    """The heartbeat as the Redis key ``<prefix>:flusher-heartbeat``."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}:flusher-heartbeat"

    def write(self, beat_at: float) -> None:
        """Set the key to the heartbeat time."""
        self.client.set(self.key, repr(beat_at))

    def read(self) -> float | None:
        """Return the heartbeat time, or None when the key does not exist."""
        value = self.client.get(self.key)
        return None if value is None else float(value)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def open_heartbeat(settings: Any) -> HeartbeatStore:
    """Open the heartbeat store of the backend ``settings`` names: Redis, else the state file.

    Raises:
        sqlite3.Error or OSError: the state file cannot be opened.
    """
    if settings.redis_url:
        return RedisHeartbeat(redis.Redis.from_url(settings.redis_url),
                              settings.redis_key_prefix)
    return SqliteHeartbeat(settings.state_path)


class HeartbeatWriter:
    """A callable that writes the heartbeat, at most once per ``interval`` seconds.

    A failed write is logged once per failing spell and tried again at the next call,
    because the flusher must keep sending while Redis or the state file is busy.
    """

    def __init__(self, store: HeartbeatStore, *, interval: float = HEARTBEAT_INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self._last = float("-inf")
        self._failing = False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        """Write the heartbeat unless one was written less than ``interval`` ago."""
        now = self.clock()
        with self._lock:
            if now - self._last < self.interval:
                return
            self._last = now
        try:
            self.store.write(now)
        except (sqlite3.Error, OSError, redis.RedisError) as error:
            if not self._failing:
                log.warning("flusher heartbeat could not be written; /readyz/sync may report the "
                            "flusher as stopped", extra={"error": repr(error)})
            self._failing = True
            return
        if self._failing:
            log.info("flusher heartbeat written again")
        self._failing = False


class FlusherCheck:
    """The ``/readyz/sync`` check and ``/metrics`` gauge of the flusher's heartbeat (web side)."""

    def __init__(self, settings: Any, store: HeartbeatStore, state: Database,
                 clock: Callable[[], float] = time.time) -> None:
        self.max_age = float(settings.flusher_heartbeat_max_age_seconds)
        self.sync_flusher = str(settings.sync_flusher)
        self.store = store
        self.state = state
        self.clock = clock

    def age(self) -> float | None:
        """Return the seconds since the latest heartbeat, or None when there is none."""
        beat_at = self.store.read()
        return None if beat_at is None else max(0.0, self.clock() - beat_at)

    def waiting_records(self) -> int:
        """Count the records in the outbox; 0 before the worker has created it."""
        with self.state.reading() as conn:
            try:
                row = conn.execute("SELECT COUNT(*) FROM sync_outbox").fetchone()
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):
                    return 0
                raise
        return int(row[0])

    def check(self) -> None:
        """Pass unless records wait and the heartbeat is missing or too old.

        Raises:
            FlusherNotRunning: with the heartbeat's age and the command that starts
                the flusher.
            sqlite3.Error or redis.RedisError: the outbox or the heartbeat cannot be read.
        """
        waiting = self.waiting_records()
        if waiting == 0:
            return
        age = self.age()
        if age is not None and age <= self.max_age:
            return
        seen = "has never written a heartbeat" if age is None else \
            f"last wrote a heartbeat {age:.0f} s ago"
        records = "1 record waits" if waiting == 1 else f"{waiting} records wait"
        raise FlusherNotRunning(
            f"{records} in the outbox, but the flusher {seen} (limit "
            f"FLUSHER_HEARTBEAT_MAX_AGE_SECONDS={self.max_age:.0f}). {self._start_hint()}")

    def _start_hint(self) -> str:
        if self.sync_flusher == "thread":
            return ("With SYNC_FLUSHER=thread the worker runs the flusher: start or restart "
                    "`python -m storesync worker`.")
        return ("Start it with `python -m storesync flusher` beside the worker (`python -m "
                "storesync run` starts both).")
