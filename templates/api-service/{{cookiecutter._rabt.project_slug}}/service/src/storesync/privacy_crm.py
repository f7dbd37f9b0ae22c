"""Deletion of redacted customers in the CRM (``PRIVACY_CRM_DELETE=true``), retried on its own.

A ``customers/redact`` request deletes the local personal data at once and, in the same
transaction, queues one ``privacy_crm_deletes`` row per CRM contact: its CRM id, or,
when the contact has no CRM id yet, its email. So the local erasure never waits for
the CRM, and a CRM that is down or rejects the call only delays the CRM part. Each
row is tried right after the redaction and then by the privacy thread with a growing
pause, up to ``MAX_ATTEMPTS`` times; it then stays ``failed`` until
``python -m storesync privacy run ID`` tries it again.

* HubSpot: GDPR delete by id, or by email (HubSpot also blocks an address no contact has).
* Zoho: ``DELETE /crm/v8/Contacts?ids=...``, after a search by email for a contact whose
  id is not known. NOTE: Zoho documents no erase endpoint for privacy requests in its
  REST API; a deleted record goes to the org's recycle bin, which administrators can
  still restore until Zoho purges it. Empty the bin in Zoho for a complete erasure.

A row keeps the email only until its deletion is done, so that a deletion that failed
for good can still be run again; the value is then blanked. Rows hold no other
personal data, and errors are stored and logged with emails and phones masked.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .db import Database
from .flusher import scrub_personal_data

log = logging.getLogger("storesync.privacy")

MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 60.0
RETRY_MAX_SECONDS = 6 * 3600.0
PENDING = "pending"
DONE = "done"
FAILED = "failed"
BY_ID = "id"
BY_EMAIL = "email"

SCHEMA = (
    "CREATE TABLE privacy_crm_deletes ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, request_id INTEGER NOT NULL, crm TEXT NOT NULL,"
    " kind TEXT NOT NULL, value TEXT NOT NULL, status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, last_error TEXT,"
    " done_at REAL)",
    "CREATE INDEX privacy_crm_deletes_due ON privacy_crm_deletes (status, next_attempt_at)",
)


class CrmDeleteFailed(Exception):
    """The CRM did not confirm the deletion of a contact; the deletion is tried again."""


@dataclass(frozen=True)
class CrmDelete:
    """One contact to delete in the CRM: by its CRM id or by its email."""

    id: int
    request_id: int
    crm: str
    kind: str
    value: str
    attempts: int


def open_table(database: Database) -> None:
    """Create the table when this state file has not got it yet."""
    database.migrate("privacy_crm", SCHEMA)


def queue_deletes(conn: sqlite3.Connection, request_id: int, crm: str, contact_keys: list[str],
                  emails: set[str], now: float) -> int:
    """Queue the CRM deletion of the contacts inside the redaction's transaction.

    Run it before the redaction deletes the CRM ids. A contact without a CRM id is
    queued by each of its emails.

    Returns:
        How many deletions were queued.
    """
    marks = ", ".join("?" * len(contact_keys)) or "NULL"
    ids = sorted({str(row[0]) for row in conn.execute(
        f"SELECT crm_id FROM sync_crm_ids WHERE object = 'contacts' AND key IN ({marks})",
        contact_keys)})
    targets = [(BY_ID, crm_id) for crm_id in ids] or [(BY_EMAIL, email)
                                                        for email in sorted(emails)]
    for kind, value in targets:
        conn.execute("INSERT INTO privacy_crm_deletes (request_id, crm, kind, value, status,"
                     " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                     (request_id, crm, kind, value, PENDING, now))
    return len(targets)


class CrmDeletes:
    """The queue of CRM deletions, and the calls that work through it."""

    def __init__(self, database: Database, client: Any, clock: Callable[[], float]) -> None:
        self.database = database
        self.client = client
        self.clock = clock
        open_table(database)

    def due(self, request_id: int | None = None, limit: int = 100) -> list[CrmDelete]:
        """Return due pending deletions (of one request, or of all), oldest first."""
        with self.database.reading() as reader:
            rows = reader.execute(
                "SELECT id, request_id, crm, kind, value, attempts FROM privacy_crm_deletes"
                " WHERE status = ? AND next_attempt_at <= ? AND (? IS NULL OR request_id = ?)"
                " ORDER BY id LIMIT ?",
                (PENDING, self.clock(), request_id, request_id, limit)).fetchall()
        return [CrmDelete(*row) for row in rows]

    def send_due(self, request_id: int | None = None) -> dict[str, int]:
        """Try every due deletion; return counts by outcome (deleted, not_found, retry, failed)."""
        counts: Counter[str] = Counter()
        for item in self.due(request_id):
            try:
                outcome = self._send(item)
            except Exception as error:  # any failure is retried
                message = scrub_personal_data(f"{type(error).__name__}: {error}")
                counts[self._retry(item, message)] += 1
                continue
            self._finish(item, DONE, None)
            counts[outcome] += 1
            log.info("contact deleted in the CRM", extra={
                "privacy_request_id": item.request_id, "crm": item.crm, "outcome": outcome})
        return dict(counts)

    def statuses(self, request_id: int) -> dict[str, int]:
        """Return how many deletions of a request are pending, done and failed."""
        with self.database.reading() as reader:
            rows = reader.execute("SELECT status, count(*) FROM privacy_crm_deletes"
                                  " WHERE request_id = ? GROUP BY status", (request_id,))
            return {str(row[0]): int(row[1]) for row in rows}

    def reopen(self, request_id: int) -> int:
        """Make the failed deletions of a request pending and due now; return how many."""
        with self.database.transaction() as conn:
            return conn.execute(
                "UPDATE privacy_crm_deletes SET status = ?, next_attempt_at = 0"
                " WHERE request_id = ? AND status = ? AND value != ''",
                (PENDING, request_id, FAILED)).rowcount

    def _send(self, item: CrmDelete) -> str:
        if self.client is None:
            raise CrmDeleteFailed(f"PRIVACY_CRM_DELETE is on, but the service has no {item.crm} "
                                  "client; check the CRM credentials with check-config")
        if item.crm == "zoho":
            ids = [item.value] if item.kind == BY_ID else self.client.search_ids(
                "contacts", item.value)
            if not ids:
                return "not_found"
            outcomes = self.client.delete_records("contacts", ids)
            return "deleted" if "deleted" in outcomes.values() else "not_found"
        by = "email" if item.kind == BY_EMAIL else None
        return "deleted" if self.client.gdpr_delete_contact(item.value, by) else "not_found"

    def _retry(self, item: CrmDelete, error: str) -> str:
        attempt = item.attempts + 1
        if attempt >= MAX_ATTEMPTS:
            self._finish(item, FAILED, error)
            log.error("CRM deletion failed for good; run `python -m storesync privacy run "
                      "%s` to try it again", item.request_id, extra={
                          "privacy_request_id": item.request_id, "crm": item.crm,
                          "attempt": attempt, "error": error})
            return "failed"
        delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
        with self.database.transaction() as conn:
            conn.execute("UPDATE privacy_crm_deletes SET attempts = ?, last_error = ?,"
                         " next_attempt_at = ? WHERE id = ?",
                         (attempt, error, self.clock() + delay, item.id))
        log.warning("CRM deletion failed; it is tried again later", extra={
            "privacy_request_id": item.request_id, "crm": item.crm, "attempt": attempt,
            "error": error})
        return "retry"

    def _finish(self, item: CrmDelete, status: str, error: str | None) -> None:
        # An email is kept only while it is needed for the deletion.
        with self.database.transaction() as conn:
            conn.execute("UPDATE privacy_crm_deletes SET status = ?, last_error = ?,"
                         " done_at = ?, attempts = attempts + 1,"
                         " value = CASE WHEN ? THEN '' ELSE value END WHERE id = ?",
                         (status, error, self.clock(), status == DONE and item.kind == BY_EMAIL,
                          item.id))
