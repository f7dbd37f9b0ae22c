"""Zoho's credit budget in the state file, shared by every process on one machine without Redis.

Each process that talks to Zoho (the worker's flusher thread, a separate ``flusher``,
``backfill``, the privacy runner) builds its own Zoho client. With an in-memory budget
each would count only its own calls, so two processes could together spend twice the
daily credits before Zoho refuses them. :class:`SqliteCreditBudget` keeps the spends
in the state file instead, which every process of a deployment without Redis opens.

Every spend is one write transaction (``BEGIN IMMEDIATE``), so concurrent spends
from several processes all count. As with the budget in Redis, two processes can
still both pass :meth:`CreditBudget.before_call` with the last credit, and Zoho then
refuses one of the calls with a 429 that :meth:`CreditBudget.exhausted` records.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

from .db import Database
from .standins.zoho_config import CREDIT_WINDOW_SECONDS
from .zoho_credits import CreditBudget, CreditState

log = logging.getLogger("storesync.zoho")

COMPONENT = "zoho_credits"
SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE zoho_credit_spends ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, spent_at REAL NOT NULL, cost INTEGER NOT NULL)",
    "CREATE INDEX zoho_credit_spends_time ON zoho_credit_spends (spent_at)",
    # One row: Zoho's latest X-API-CREDITS-REMAINING and when it came.
    "CREATE TABLE zoho_credit_report ("
    " id INTEGER PRIMARY KEY CHECK (id = 1), reported_at REAL NOT NULL,"
    " remaining INTEGER NOT NULL)",
)


class SqliteCreditBudget(CreditBudget):
    """Zoho's rolling 24-hour credit budget counted in the state file for every process.

    The process also keeps its own count, as :class:`CreditBudget` does, and uses it
    while the state file cannot be read or written. It logs a WARNING once per outage.
    """

    def __init__(self, database: Database, daily_limit: int, *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 owned: bool = False) -> None:
        """Create the budget of ``daily_limit`` credits; spends already in the file are kept.

        Args:
            database: The state file.
            daily_limit: Credits per rolling 24 hours.
            clock: Seconds since the epoch (wall clock, because processes compare times).
            sleep: Waits between calls when credits run low.
            owned: Whether :meth:`close` closes ``database``.
        """
        self.database = database
        self._owned = owned
        self._failing = False
        self._failing_lock = threading.Lock()
        database.migrate(COMPONENT, SCHEMA_STEPS)
        super().__init__(daily_limit, clock=clock, sleep=sleep)

    def close(self) -> None:
        """Close the state file's connections when this budget opened them."""
        if self._owned:
            self.database.close()

    def _record(self, now: float, cost: int, reported_remaining: int | None) -> None:
        super()._record(now, cost, reported_remaining)
        try:
            with self.database.transaction() as conn:
                conn.execute("DELETE FROM zoho_credit_spends WHERE spent_at <= ?",
                             (now - CREDIT_WINDOW_SECONDS,))
                if cost > 0:
                    conn.execute("INSERT INTO zoho_credit_spends (spent_at, cost) VALUES (?, ?)",
                                 (now, cost))
                if reported_remaining is not None:
                    conn.execute("INSERT INTO zoho_credit_report (id, reported_at, remaining)"
                                 " VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                                 " reported_at = excluded.reported_at,"
                                 " remaining = excluded.remaining",
                                 (now, reported_remaining))
        except sqlite3.Error as error:
            self._failed(error)
            return
        self._answered()

    def _state(self, now: float) -> CreditState:
        since = now - CREDIT_WINDOW_SECONDS
        try:
            with self.database.reading() as conn:
                used, oldest = conn.execute(
                    "SELECT COALESCE(SUM(cost), 0), MIN(spent_at) FROM zoho_credit_spends"
                    " WHERE spent_at > ?", (since,)).fetchone()
                report = conn.execute(
                    "SELECT r.reported_at, r.remaining, COALESCE(SUM(s.cost), 0)"
                    " FROM zoho_credit_report r LEFT JOIN zoho_credit_spends s"
                    " ON s.spent_at > r.reported_at WHERE r.id = 1 AND r.reported_at > ?"
                    " GROUP BY r.id", (since,)).fetchone()
        except sqlite3.Error as error:
            self._failed(error)
            return super()._state(now)
        self._answered()
        remaining = max(0, self.daily_limit - int(used))
        if report is not None:
            # Credits spent after Zoho's report are not in the report yet.
            remaining = max(0, min(remaining, int(report[1]) - int(report[2])))
        return CreditState(int(used), remaining, None if oldest is None else float(oldest))

    def _failed(self, error: sqlite3.Error) -> None:
        with self._failing_lock:
            first, self._failing = not self._failing, True
        if first:
            log.warning("Zoho credit budget: the state file failed, so this process counts "
                        "only its own credits until it works again", extra={"error": repr(error)})

    def _answered(self) -> None:
        with self._failing_lock:
            recovered, self._failing = self._failing, False
        if recovered:
            log.info("Zoho credit budget: the state file works again")
