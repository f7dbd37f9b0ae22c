"""The quarantine: verified deliveries the service cannot process, kept with the reason.

The intake quarantines bodies that are not UTF-8 or not shaped like a JSON object,
and topics the project does not map. The worker quarantines bodies that are not valid
JSON after all, and payloads its field map cannot read. Each entry
keeps the raw body, so it can be inspected (``python -m storesync quarantine show``)
and queued again after a fix (``quarantine requeue``). Log lines name the entry's id
and reason, never the body, which may hold personal data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .db import Database, check_writable
from .delivery import Delivery

SCHEMA = (
    "CREATE TABLE quarantine ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " quarantined_at TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " topic TEXT NOT NULL,"
    " delivery_id TEXT NOT NULL,"
    " shop TEXT,"
    " received_at TEXT NOT NULL,"
    " triggered_at TEXT,"
    " reason TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " requeued_at TEXT)",
    "CREATE INDEX quarantine_source ON quarantine (source, id)",
)

_COLUMNS = ("id, quarantined_at, source, topic, delivery_id, shop, received_at, triggered_at, "
            "reason, requeued_at")


@dataclass(frozen=True)
class QuarantinedDelivery:
    """One quarantine entry; ``body`` is empty in listings and filled by :meth:`Quarantine.get`."""

    id: int
    quarantined_at: str
    source: str
    topic: str
    delivery_id: str
    shop: str | None
    received_at: str
    triggered_at: str | None
    reason: str
    requeued_at: str | None
    body: bytes = b""

    def to_delivery(self) -> Delivery:
        """Rebuild the delivery, to queue it again.

        Raises:
            UnicodeDecodeError: the body is not UTF-8, so it cannot be queued.
        """
        return Delivery(delivery_id=self.delivery_id, source=self.source, topic=self.topic,
                        shop=self.shop, received_at=self.received_at,
                        triggered_at=self.triggered_at, body=self.body.decode("utf-8"))


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Quarantine:
    """Quarantine entries in the ``quarantine`` table of the state file."""

    def __init__(self, database: Database) -> None:
        self.database = database
        database.migrate("quarantine", SCHEMA)

    def add(self, delivery: Delivery, reason: str, *, raw_body: bytes | None = None,
            now_iso: str | None = None) -> int:
        """Store ``delivery`` with ``reason`` and return the entry's id.

        ``raw_body`` replaces ``delivery.body`` when the bytes were not valid UTF-8.
        """
        body = raw_body if raw_body is not None else delivery.body.encode("utf-8")
        with self.database.connection() as conn:
            cursor = conn.execute(
                "INSERT INTO quarantine (quarantined_at, source, topic, delivery_id, shop, "
                "received_at, triggered_at, reason, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now_iso or _utc_now_iso(), delivery.source, delivery.topic,
                 delivery.delivery_id, delivery.shop, delivery.received_at,
                 delivery.triggered_at, reason, body),
            )
            return int(cursor.lastrowid or 0)

    def entries(self, *, limit: int = 50, source: str | None = None,
             include_requeued: bool = False) -> list[QuarantinedDelivery]:
        """Return the newest entries first, without their bodies."""
        where = ["1 = 1"]
        params: list[object] = []
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if not include_requeued:
            where.append("requeued_at IS NULL")
        params.append(limit)
        with self.database.connection() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM quarantine WHERE {' AND '.join(where)} "
                                "ORDER BY id DESC LIMIT ?", params).fetchall()
        return [QuarantinedDelivery(*row) for row in rows]

    def get(self, entry_id: int) -> QuarantinedDelivery | None:
        """Return one entry with its body, or None when there is no such id."""
        with self.database.connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS}, body FROM quarantine WHERE id = ?",
                               (entry_id,)).fetchone()
        return QuarantinedDelivery(*row) if row else None

    def mark_requeued(self, entry_id: int, now_iso: str | None = None) -> None:
        """Record that the entry was queued again; listings then leave it out."""
        with self.database.connection() as conn:
            conn.execute("UPDATE quarantine SET requeued_at = ? WHERE id = ?",
                         (now_iso or _utc_now_iso(), entry_id))

    def count(self) -> int:
        """Return how many entries have not been queued again."""
        with self.database.connection() as conn:
            row = conn.execute("SELECT COUNT(*) FROM quarantine WHERE requeued_at IS NULL")
            return int(row.fetchone()[0])

    def check(self) -> None:
        """Raise if the state file cannot be written now; used by ``/readyz``."""
        check_writable(self.database.path)
