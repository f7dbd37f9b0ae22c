"""Durable playbook timers in the state file, driven by an injectable clock.

A timer is one row of ``playbook_timers``: when it is due, its kind (such as
``abandoned_cart``), the subject it is about (a checkout, an order, a contact) and a
JSON payload. ``kind`` and ``subject_key`` together name the timer, so scheduling the
same pair again moves the waiting timer instead of adding a second one, and a timer
that has fired, been cancelled or been skipped is never scheduled again. That is what
makes a duplicate webhook, or a replay after a restart, harmless.

Workers take due timers with :meth:`TimerStore.claim_due`, which marks them claimed
in one write transaction with a token and a lease. Only the holder of the current
token can finish the timer (:meth:`TimerStore.complete`), and finishing runs the
caller's writes (the CRM marks in the outbox) in the same transaction as the status
change. So two workers never fire one timer twice, and a worker that dies mid-way
leaves a claim whose lease runs out, after which another worker takes the timer.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .db import Database

COMPONENT = "playbook_timers"
SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE playbook_timers ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, subject_key TEXT NOT NULL,"
    " due_at REAL NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,"
    " claim_token TEXT, claimed_until REAL, attempts INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT, created_at REAL NOT NULL, finished_at REAL,"
    " UNIQUE (kind, subject_key))",
    "CREATE INDEX playbook_timers_due ON playbook_timers (status, due_at)",
)

SCHEDULED = "scheduled"
CLAIMED = "claimed"
FIRED = "fired"
CANCELLED = "cancelled"
SKIPPED = "skipped"
FINISHED_STATUSES = frozenset({FIRED, CANCELLED, SKIPPED})
# How long a claim lasts before another worker may take the timer. A fire makes one
# store API call and one local transaction, so five minutes is ample.
DEFAULT_LEASE_SECONDS = 300.0


@dataclass(frozen=True)
class Timer:
    """One timer as a worker sees it.

    Attributes:
        id: The row id.
        kind: What fires (``abandoned_cart``, ``playbook_step``, ...).
        subject_key: What it is about, unique within ``kind``.
        due_at: Seconds since the epoch when it falls due.
        payload: The data the fire needs.
        status: ``scheduled``, ``claimed``, ``fired``, ``cancelled`` or ``skipped``.
        claim_token: The token of the claim this copy belongs to, when claimed.
        attempts: Fires that failed and were put back.
    """

    id: int
    kind: str
    subject_key: str
    due_at: float
    payload: dict[str, Any]
    status: str
    claim_token: str | None = None
    attempts: int = 0


_COLUMNS = "id, kind, subject_key, due_at, payload, status, claim_token, attempts"


def _timer(row: Sequence[Any]) -> Timer:
    return Timer(id=int(row[0]), kind=row[1], subject_key=row[2], due_at=float(row[3]),
                 payload=json.loads(row[4]), status=row[5], claim_token=row[6],
                 attempts=int(row[7]))


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class TimerStore:
    """The timer table of one state file; each method is one short transaction.

    Methods that take ``conn`` run inside a transaction the caller already holds, so a
    timer can be scheduled or cancelled atomically with the delivery that caused it.
    """

    def __init__(self, db: Database, clock: Callable[[], float] = time.time,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        """Open the store and create or upgrade its table."""
        self.db = db
        self.clock = clock
        self.lease_seconds = lease_seconds
        db.migrate(COMPONENT, SCHEMA_STEPS)

    # --- scheduling, inside the caller's transaction ------------------------------------

    def schedule(self, conn: sqlite3.Connection, kind: str, subject_key: str, due_at: float,
                 payload: Mapping[str, Any]) -> bool:
        """Schedule a timer, or move a waiting one with the same kind and subject.

        A timer that is claimed or finished is left as it is, so a late duplicate
        never fires a playbook again.

        Returns:
            Whether a timer now waits with this due time and payload.
        """
        cursor = conn.execute(
            "INSERT INTO playbook_timers (kind, subject_key, due_at, payload, status,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, subject_key) DO UPDATE"
            " SET due_at = excluded.due_at, payload = excluded.payload"
            " WHERE playbook_timers.status = 'scheduled'",
            (kind, subject_key, due_at, _dumps(payload), SCHEDULED, self.clock()))
        return cursor.rowcount == 1

    def cancel(self, conn: sqlite3.Connection, kind: str, subject_key: str) -> int:
        """Cancel the waiting or claimed timers of ``kind`` for the subject.

        ``subject_key`` also matches the subject's step timers, whose keys start with
        ``<subject_key>#``. A claimed timer cancelled here cannot complete afterwards.

        Returns:
            How many timers were cancelled.
        """
        cursor = conn.execute(
            "UPDATE playbook_timers SET status = ?, finished_at = ?, claim_token = NULL"
            " WHERE kind = ? AND (subject_key = ? OR substr(subject_key, 1, ?) = ?)"
            " AND status IN (?, ?)",
            (CANCELLED, self.clock(), kind, subject_key, len(subject_key) + 1,
             f"{subject_key}#", SCHEDULED, CLAIMED))
        return cursor.rowcount

    def cancel_prefix(self, conn: sqlite3.Connection, kind: str, prefix: str) -> int:
        """Cancel the waiting or claimed timers of ``kind`` whose subject starts with ``prefix``.

        Returns:
            How many timers were cancelled.
        """
        cursor = conn.execute(
            "UPDATE playbook_timers SET status = ?, finished_at = ?, claim_token = NULL"
            " WHERE kind = ? AND substr(subject_key, 1, ?) = ? AND status IN (?, ?)",
            (CANCELLED, self.clock(), kind, len(prefix), prefix, SCHEDULED, CLAIMED))
        return cursor.rowcount

    def add(self, kind: str, subject_key: str, due_at: float,
            payload: Mapping[str, Any]) -> bool:
        """Schedule a timer in a transaction of its own; see :meth:`schedule`."""
        with self.db.transaction() as conn:
            return self.schedule(conn, kind, subject_key, due_at, payload)

    # --- firing --------------------------------------------------------------------------

    def claim_due(self, limit: int = 50) -> list[Timer]:
        """Claim up to ``limit`` due timers for this worker and return them.

        A timer is due when it waits and its time has come, or when its claim's lease
        ran out (the worker holding it stopped). Each claim gets a fresh token.
        """
        now = self.clock()
        with self.db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM playbook_timers"
                " WHERE (status = ? AND due_at <= ?) OR (status = ? AND claimed_until < ?)"
                " ORDER BY due_at, id LIMIT ?",
                (SCHEDULED, now, CLAIMED, now, limit)).fetchall()
            claimed = []
            for row in rows:
                token = uuid.uuid4().hex
                conn.execute("UPDATE playbook_timers SET status = ?, claim_token = ?,"
                             " claimed_until = ? WHERE id = ?",
                             (CLAIMED, token, now + self.lease_seconds, row[0]))
                claimed.append(replace(_timer(row), status=CLAIMED, claim_token=token))
        return claimed

    def complete(self, timer: Timer, status: str,
                 work: Callable[[sqlite3.Connection], None] | None = None) -> bool:
        """Finish a claimed timer as ``fired`` or ``skipped``, running ``work`` with it.

        ``work`` (the CRM marks, follow-up timers) runs in the same transaction, so it
        happens exactly when the status changes. Nothing happens when the claim is no
        longer this one: another worker took the timer after the lease, or it was
        cancelled.

        Returns:
            Whether this claim finished the timer.
        """
        if status not in (FIRED, SKIPPED):
            raise ValueError(f"a timer completes as {FIRED} or {SKIPPED}, not {status!r}")
        with self.db.transaction() as conn:
            if not self._holds(conn, timer):
                return False
            if work is not None:
                work(conn)
            conn.execute("UPDATE playbook_timers SET status = ?, finished_at = ?,"
                         " claim_token = NULL WHERE id = ?", (status, self.clock(), timer.id))
        return True

    def put_back(self, timer: Timer, due_at: float, error: str | None = None,
                 payload: Mapping[str, Any] | None = None) -> bool:
        """Return a claimed timer to the waiting state with a new due time.

        Used for a fire that failed (``error`` is recorded and counts as an attempt)
        and for one deferred, such as a message held until quiet hours end.

        Returns:
            Whether this claim still held the timer.
        """
        with self.db.transaction() as conn:
            if not self._holds(conn, timer):
                return False
            conn.execute(
                "UPDATE playbook_timers SET status = ?, due_at = ?, claim_token = NULL,"
                " claimed_until = NULL, attempts = attempts + ?, last_error = ?,"
                " payload = ? WHERE id = ?",
                (SCHEDULED, due_at, 1 if error else 0, error,
                 _dumps(payload if payload is not None else timer.payload), timer.id))
        return True

    @staticmethod
    def _holds(conn: sqlite3.Connection, timer: Timer) -> bool:
        row = conn.execute("SELECT status, claim_token FROM playbook_timers WHERE id = ?",
                           (timer.id,)).fetchone()
        return row is not None and row[0] == CLAIMED and row[1] == timer.claim_token

    # --- reading -------------------------------------------------------------------------

    def get(self, kind: str, subject_key: str) -> Timer | None:
        """Return the timer of ``kind`` for the subject, whatever its status."""
        with self.db.reading() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM playbook_timers"
                               " WHERE kind = ? AND subject_key = ?",
                               (kind, subject_key)).fetchone()
        return _timer(row) if row else None

    def all(self, kind: str | None = None) -> list[Timer]:
        """Return every timer, or those of one kind, oldest first."""
        query = f"SELECT {_COLUMNS} FROM playbook_timers"
        params: tuple[Any, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        with self.db.reading() as conn:
            return [_timer(row) for row in conn.execute(query + " ORDER BY id", params)]

    def counts(self) -> dict[str, int]:
        """Return how many timers are in each status."""
        with self.db.reading() as conn:
            return {row[0]: int(row[1]) for row in conn.execute(
                "SELECT status, COUNT(*) FROM playbook_timers GROUP BY status")}
