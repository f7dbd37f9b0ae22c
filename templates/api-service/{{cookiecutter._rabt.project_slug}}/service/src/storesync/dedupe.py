"""Delivery-id dedupe: the first copy of a delivery is queued, later copies get a 200 response.

With the SQLite queue the dedupe keys live in the queue file itself, and the key of a
delivery is inserted in the same transaction as its job (see ``claim_many_in``), so a
delivery is either queued and remembered, or neither. Two concurrent copies cannot
both win, because SQLite runs one write transaction at a time.

Where the key and the stored delivery cannot share a transaction (Redis, and
deliveries going to the quarantine), a key goes through two steps. ``claim`` inserts
it atomically as pending for ``CLAIM_SECONDS``, and of two concurrent copies only one
claim succeeds. Once the delivery is stored, ``confirm`` keeps the key for the whole
dedupe window. If storing fails, ``release`` removes the key so the platform's retry
is accepted. If the process dies between claim and confirm, the pending key expires
after ``CLAIM_SECONDS`` and a later retry is accepted then.

Redis expires keys by its own clock, so the injectable clock only drives SQLite.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from typing import Protocol

import redis

from .db import MAX_STATEMENT_VARIABLES, Database, insert_rows

# Long enough for one queue write under load, short enough that a crashed request
# does not block the platform's next retry for long.
CLAIM_SECONDS = 120
# Keys longer than this are stored as their SHA-256, so a sender cannot fill the
# store with huge header values.
MAX_KEY_LENGTH = 200
# Expired SQLite rows are deleted once every this many claims.
PURGE_EVERY_CLAIMS = 500

SCHEMA = (
    "CREATE TABLE dedupe_keys (key TEXT PRIMARY KEY, expires_at REAL NOT NULL, "
    "confirmed INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX dedupe_keys_expires_at ON dedupe_keys (expires_at)",
)


def dedupe_key(source: str, delivery_id: str) -> str:
    """Return the store key of a delivery: its source and id, hashed when very long."""
    key = f"{source}:{delivery_id}"
    if len(key) > MAX_KEY_LENGTH:
        key = f"{source}:sha256:{hashlib.sha256(delivery_id.encode()).hexdigest()}"
    return key


class DedupeStore(Protocol):
    """A store of delivery keys for the dedupe window."""

    def claim(self, key: str, now: float) -> bool:
        """Mark ``key`` pending; return False if it is already pending or confirmed."""

    def confirm(self, key: str, now: float) -> None:
        """Keep ``key`` for the whole dedupe window from ``now``."""

    def release(self, key: str) -> None:
        """Forget ``key`` (its delivery could not be stored)."""

    def check(self) -> None:
        """Raise if the store cannot be reached; used by ``/readyz``."""

    def close(self) -> None:
        """Release connections."""


class SqliteDedupe:
    """Dedupe keys in the ``dedupe_keys`` table of the SQLite queue file."""

    def __init__(self, database: Database, window_seconds: float) -> None:
        self.database = database
        self.window_seconds = window_seconds
        self._claims = 0
        self._claims_lock = threading.Lock()
        database.migrate("dedupe", SCHEMA)

    def claim(self, key: str, now: float) -> bool:
        """Insert ``key`` as pending, or take over an expired row; True when this call won."""
        with self.database.connection() as conn:
            won = _insert_key(conn, key, now, now + CLAIM_SECONDS, confirmed=False)
        self._maybe_purge(now)
        return won

    def claim_many_in(self, cursor: sqlite3.Cursor, claims: Sequence[tuple[str, float]]
                      ) -> list[bool]:
        """Insert keys for the whole window inside the caller's write transaction.

        ``claims`` are (key, time of receipt) pairs. The keys are read first and
        written after, so the transaction must hold the write lock from its start
        (``BEGIN IMMEDIATE`` or ``EXCLUSIVE``), and the cursor must belong to a
        connection to this store's file.

        Returns:
            Per claim, True when its key was new or expired, so the delivery must be
            stored; False when the key is live, or an earlier claim of the same
            batch took it.
        """
        expiry = self._expiry_of(cursor, list(dict.fromkeys(key for key, _ in claims)))
        results = []
        rows = []
        for key, now in claims:
            fresh = expiry.get(key, now) <= now
            results.append(fresh)
            if fresh:
                expiry[key] = now + self.window_seconds
                rows.append((key, expiry[key], 1))
        # Every key in rows is absent or expired, so each conflict takes the row over.
        insert_rows(cursor, "INSERT INTO dedupe_keys (key, expires_at, confirmed)", rows,
                    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, "
                    "confirmed = excluded.confirmed")
        return results

    @staticmethod
    def _expiry_of(cursor: sqlite3.Cursor, keys: list[str]) -> dict[str, float]:
        """Return the stored expiry time of each of ``keys`` that has a row."""
        found: dict[str, float] = {}
        for start in range(0, len(keys), MAX_STATEMENT_VARIABLES):
            chunk = keys[start:start + MAX_STATEMENT_VARIABLES]
            marks = ", ".join("?" * len(chunk))
            rows = cursor.execute(f"SELECT key, expires_at FROM dedupe_keys WHERE key IN ({marks})",
                                  chunk).fetchall()
            found.update((str(key), float(expires_at)) for key, expires_at in rows)
        return found

    def purge_in(self, cursor: sqlite3.Cursor, now: float) -> None:
        """Delete expired keys inside the caller's open transaction, now and then."""
        with self._claims_lock:
            self._claims += 1
            due = self._claims % PURGE_EVERY_CLAIMS == 0
        if due:
            cursor.execute("DELETE FROM dedupe_keys WHERE expires_at <= ?", (now,))

    def confirm(self, key: str, now: float) -> None:
        """Keep ``key`` until ``now`` plus the window."""
        with self.database.connection() as conn:
            conn.execute("UPDATE dedupe_keys SET expires_at = ?, confirmed = 1 WHERE key = ?",
                         (now + self.window_seconds, key))

    def release(self, key: str) -> None:
        """Delete ``key``."""
        with self.database.connection() as conn:
            conn.execute("DELETE FROM dedupe_keys WHERE key = ?", (key,))

    def check(self) -> None:
        """Read one row, which fails when the queue file is unreachable."""
        with self.database.connection() as conn:
            conn.execute("SELECT 1 FROM dedupe_keys LIMIT 1").fetchall()

    def close(self) -> None:
        """Close the store's connection."""
        self.database.close()

    def _maybe_purge(self, now: float) -> None:
        with self._claims_lock:
            self._claims += 1
            due = self._claims % PURGE_EVERY_CLAIMS == 0
        if due:
            with self.database.connection() as conn:
                conn.execute("DELETE FROM dedupe_keys WHERE expires_at <= ?", (now,))


def _insert_key(target: sqlite3.Connection | sqlite3.Cursor, key: str, now: float,
                expires_at: float, *, confirmed: bool) -> bool:
    # Take over a row only when it has expired; rowcount is 0 when the row stays.
    cursor = target.execute(
        "INSERT INTO dedupe_keys (key, expires_at, confirmed) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, "
        "confirmed = excluded.confirmed WHERE dedupe_keys.expires_at <= ?",
        (key, expires_at, int(confirmed), now),
    )
    return cursor.rowcount == 1


class RedisDedupe:
    """Dedupe keys in Redis under ``<prefix>:dedupe:``, expired by Redis itself."""

    def __init__(self, client: redis.Redis, prefix: str, window_seconds: float) -> None:
        self.client = client
        self.prefix = f"{prefix}:dedupe:"
        self.window_seconds = max(1, int(window_seconds))

    def claim(self, key: str, now: float) -> bool:
        """``SET key pending NX EX CLAIM_SECONDS``: True when the key was not there."""
        return bool(self.client.set(self.prefix + key, b"pending", nx=True, ex=CLAIM_SECONDS))

    def confirm(self, key: str, now: float) -> None:
        """``SET key done EX window``."""
        self.client.set(self.prefix + key, b"done", ex=self.window_seconds)

    def release(self, key: str) -> None:
        """``DEL key``."""
        self.client.delete(self.prefix + key)

    def check(self) -> None:
        """``PING``."""
        self.client.ping()

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
