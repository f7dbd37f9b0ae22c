"""The worker's state in ``DATA_DIR/state.sqlite3``: outbox, versions, identity, dead letters.

Tables (all prefixed ``sync_``):

* ``outbox``: one row per CRM record waiting to be written, keyed by object and
  business key. A newer state of the same record is merged into the waiting row
  (newer property values win) and bumps its ``revision``, so the flusher can tell
  whether the row changed while a batch was in flight.
* ``versions``: the newest ``updated_at`` seen per resource (object and key), so
  an older payload never overwrites newer state.
* ``contacts`` and ``identity``: each contact gets a local key (``c<number>``);
  identity keys (store customer id, phone in E.164, email) point to it.
* ``crm_ids``: the CRM id of every record once the CRM has returned it.
* ``orders``: the service's own copy of each order's totals and stage, from which
  the contact roll-ups are computed, so replays and duplicates never double-count.
* ``product_skus``: shop-scoped SKU (``<shop>:<sku>``) to product key, so a line item
  can point at its product.
* ``dead_letters``: records the CRM rejected or that ran out of attempts.

NOTE: this file is local to one DATA_DIR, also when ``REDIS_URL`` is set. Redis shares
the queue, the dedupe keys, the CRM rate limits and the flusher lease, but the identity
table, the roll-ups, the newest-state guard and the outbox stay here, so every worker
and flusher process must share one DATA_DIR volume.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .db import Database

COMPONENT = "sync_store"
# Identity kinds, as the field map's identity.match_order names them.
PHONE_KIND = "phone"
EMAIL_KIND = "email"

SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE sync_outbox ("
    " object TEXT NOT NULL, key TEXT NOT NULL, properties TEXT NOT NULL,"
    " id_property TEXT, id_value TEXT, event_id TEXT, resource TEXT,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,"
    " enqueued_at REAL NOT NULL, revision INTEGER NOT NULL DEFAULT 1, last_error TEXT,"
    " PRIMARY KEY (object, key))",
    "CREATE INDEX sync_outbox_due ON sync_outbox (object, next_attempt_at)",
    "CREATE TABLE sync_versions ("
    " resource TEXT PRIMARY KEY, updated_at REAL NOT NULL, event_id TEXT)",
    "CREATE TABLE sync_contacts (number INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL)",
    "CREATE TABLE sync_identity ("
    " kind TEXT NOT NULL, value TEXT NOT NULL, contact_key TEXT NOT NULL,"
    " PRIMARY KEY (kind, value))",
    "CREATE TABLE sync_crm_ids ("
    " object TEXT NOT NULL, key TEXT NOT NULL, crm_id TEXT NOT NULL,"
    " PRIMARY KEY (object, key))",
    "CREATE TABLE sync_orders ("
    " order_key TEXT PRIMARY KEY, contact_key TEXT, stage TEXT, won INTEGER NOT NULL,"
    " total TEXT, refunded TEXT, ordered_at TEXT, source TEXT)",
    "CREATE INDEX sync_orders_contact ON sync_orders (contact_key)",
    "CREATE TABLE sync_product_skus (sku TEXT PRIMARY KEY, product_key TEXT NOT NULL)",
    "CREATE TABLE sync_dead_letters ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, object TEXT NOT NULL, key TEXT NOT NULL,"
    " properties TEXT NOT NULL, id_property TEXT, id_value TEXT, event_id TEXT,"
    " resource TEXT, attempts INTEGER NOT NULL, status INTEGER, error TEXT NOT NULL,"
    " created_at REAL NOT NULL, replayed_at REAL)",
    # _has_other_email reads a contact's emails by contact key. Without this index, each
    # order whose phone was already known scanned every identity row.
    "CREATE INDEX sync_identity_contact ON sync_identity (contact_key, kind)",
)

# Most deliveries whose writes share one commit.
MAX_WRITES_PER_COMMIT = 64
# Keys per ``IN (...)`` query, below SQLite's default limit of 999 parameters before 3.32.
_KEYS_PER_QUERY = 500

_T = TypeVar("_T")

_OUTBOX_COLUMNS = ("object, key, properties, id_property, id_value, event_id, resource, "
                   "attempts, next_attempt_at, enqueued_at, revision, last_error")


@dataclass(frozen=True)
class OutboxItem:
    """One CRM record to write.

    Attributes:
        object: The CRM object (``contacts``, ``deals``, ...) or an association
            object such as ``assoc:deals:contacts``.
        key: The record's business key, unique within ``object``.
        properties: Property values to write; for associations, the link's ends.
        id_property: The unique property an upsert matches on, when there is one.
        id_value: That property's value.
        event_id: The delivery that produced this state, for logs and dead letters.
        resource: ``object:key`` of the record, for logs.
    """

    object: str
    key: str
    properties: dict[str, Any]
    id_property: str | None = None
    id_value: str | None = None
    event_id: str | None = None
    resource: str | None = None


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row as the flusher reads it."""

    item: OutboxItem
    attempts: int
    next_attempt_at: float
    enqueued_at: float
    revision: int
    last_error: str | None


@dataclass(frozen=True)
class OrderState:
    """The service's own copy of one order, used for the contact roll-ups."""

    order_key: str
    contact_key: str | None
    stage: str | None
    won: bool
    total: str | None
    refunded: str | None
    ordered_at: str | None
    source: str | None


@dataclass(frozen=True)
class DeadLetter:
    """A record the CRM rejected or that ran out of attempts."""

    id: int
    item: OutboxItem
    attempts: int
    status: int | None
    error: str
    created_at: float
    replayed_at: float | None


@dataclass
class ContactMatch:
    """The local contact a record's identity keys lead to.

    Attributes:
        contact_key: The local contact key (``c<number>``).
        created: Whether no key was known, so a new contact was made.
        conflicts: Identity kinds whose value already points to another contact;
            they keep pointing there, and the record is written to ``contact_key``.
        shared_phone: Whether the record's phone belongs to another person, because a
            contact with another email already has it. The phone is in ``conflicts`` too.
    """

    contact_key: str
    created: bool
    conflicts: list[str] = field(default_factory=list)
    shared_phone: bool = False


# The identity values of one kind that a contact holds.
CONTACT_IDENTITY_SQL = "SELECT value FROM sync_identity WHERE kind = ? AND contact_key = ?"


def _has_other_email(conn: sqlite3.Connection, contact_key: str, emails: set[str]) -> bool:
    """Return whether the contact has an email and none of them is in ``emails``."""
    held = {row[0] for row in conn.execute(CONTACT_IDENTITY_SQL, (EMAIL_KIND, contact_key))}
    return bool(held) and not held & emails


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _row_item(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(object=row[0], key=row[1], properties=json.loads(row[2]),
                      id_property=row[3], id_value=row[4], event_id=row[5], resource=row[6])


@dataclass
class _Write(Generic[_T]):
    """One caller's work for :class:`GroupCommit`, and its result once committed."""

    work: Callable[[sqlite3.Connection], _T]
    result: _T | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommit:
    """Runs the writes of concurrent callers in one transaction, so they share one fsync.

    Each caller waits until the transaction that contains its write has committed, so a
    job is never reported finished before its state is durable. The first caller to
    find no commit in progress becomes the leader: it takes every write waiting (up
    to ``MAX_WRITES_PER_COMMIT``), runs each inside its own savepoint, commits, and
    wakes the others. A write that raises is rolled back alone and its caller gets
    the error; a failed commit gives every caller of the batch the error.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.commits = 0
        self._waiting: list[_Write[Any]] = []
        self._leading = False
        self._wake = threading.Condition()

    def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` with the connection inside a write transaction; return its result.

        Raises:
            The exception ``work`` raised, or the one that failed the commit.
        """
        item: _Write[_T] = _Write(work)
        with self._wake:
            self._waiting.append(item)
            while not item.done:
                if self._leading:
                    self._wake.wait()
                    continue
                self._leading = True
                batch = self._waiting[:MAX_WRITES_PER_COMMIT]
                del self._waiting[:MAX_WRITES_PER_COMMIT]
                self._wake.release()
                try:
                    self._commit(batch)
                finally:
                    self._wake.acquire()
                    self._leading = False
                    self._wake.notify_all()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def _commit(self, batch: list[_Write[Any]]) -> None:
        try:
            with self.db.transaction() as conn:
                for item in batch:
                    conn.execute("SAVEPOINT delivery")
                    try:
                        item.result = item.work(conn)
                    except Exception as error:
                        conn.execute("ROLLBACK TO delivery")
                        item.error = error
                    conn.execute("RELEASE delivery")
            self.commits += 1
        except BaseException as error:  # nothing of the batch was stored
            for item in batch:
                item.error = error
        for item in batch:
            item.done = True


class SyncStore:
    """Access to the sync tables of the state file; every method is one short transaction."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        """Open the store and create or upgrade its tables."""
        self.db = db
        self.clock = clock
        self.group_commit = GroupCommit(db)
        db.migrate(COMPONENT, SCHEMA_STEPS)

    def write_together(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in a write transaction shared with concurrent callers (one fsync).

        ``work`` gets the connection and must only use it; see :class:`GroupCommit`.
        """
        return self.group_commit.run(work)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one write transaction, so concurrent workers serialise."""
        with self.db.transaction() as conn:
            yield conn

    # --- worker side: called inside ``transaction()`` -------------------------------

    def match_contact(self, conn: sqlite3.Connection,
                      keys: Sequence[tuple[str, str]]) -> ContactMatch:
        """Find the local contact for identity keys in match order, or make a new one.

        The first key already known decides, except a phone that a contact with
        another email holds: two people with their own emails may share one phone
        (a family's number), so that phone does not make them one contact. Every
        other key of the record is then recorded for the contact found, unless it
        already points to another contact: then it stays where it is and is
        reported in ``conflicts``.
        """
        found: str | None = None
        known: dict[tuple[str, str], str] = {}
        emails = {value for kind, value in keys if kind == EMAIL_KIND}
        shared_phone = False
        for kind, value in keys:
            row = conn.execute("SELECT contact_key FROM sync_identity WHERE kind = ? AND value = ?",
                               (kind, value)).fetchone()
            if row is None:
                continue
            known[(kind, value)] = row[0]
            if kind == PHONE_KIND and emails and _has_other_email(conn, row[0], emails):
                shared_phone = True
                continue
            found = found or row[0]
        created = found is None
        if found is None:
            cursor = conn.execute("INSERT INTO sync_contacts (created_at) VALUES (?)",
                                  (self.clock(),))
            found = f"c{cursor.lastrowid}"
        match = ContactMatch(found, created, shared_phone=shared_phone)
        for kind, value in keys:
            owner = known.get((kind, value))
            if owner is None:
                conn.execute("INSERT INTO sync_identity (kind, value, contact_key) "
                             "VALUES (?, ?, ?)", (kind, value, found))
            elif owner != found:
                match.conflicts.append(kind)
        return match

    def check_version(self, conn: sqlite3.Connection, resource: str, updated_at: float,
                      event_id: str | None) -> str:
        """Record ``updated_at`` for ``resource`` when it is the newest seen.

        Returns:
            ``"newer"`` when recorded, ``"same"`` when this exact time was seen
            before (a duplicate), ``"stale"`` when a newer time was seen.
        """
        # One statement in the common case: insert, or move the version forward only
        # when this one is newer. Reading the stored time again is needed only to tell
        # a duplicate from an older payload.
        cursor = conn.execute(
            "INSERT INTO sync_versions (resource, updated_at, event_id) VALUES (?, ?, ?) "
            "ON CONFLICT (resource) DO UPDATE SET updated_at = excluded.updated_at, "
            "event_id = excluded.event_id WHERE excluded.updated_at > sync_versions.updated_at",
            (resource, updated_at, event_id))
        if cursor.rowcount == 1:
            return "newer"
        row = conn.execute("SELECT updated_at FROM sync_versions WHERE resource = ?",
                           (resource,)).fetchone()
        return "same" if row is not None and row[0] == updated_at else "stale"

    def enqueue(self, conn: sqlite3.Connection, item: OutboxItem,
                not_before: float | None = None) -> None:
        """Put ``item`` in the outbox, merging it over a waiting row of the same record.

        Newer property values replace older ones and values only the older state had
        are kept. The merged row is due at once and its attempt count restarts,
        because it is a new state, not a retry of the old one.
        """
        now = self.clock()
        due = now if not_before is None else not_before
        # Most records are new to the outbox, so the insert comes first. That is one
        # statement instead of a read and an insert, and a waiting row makes it do nothing.
        inserted = conn.execute(
            f"INSERT INTO sync_outbox ({_OUTBOX_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 1, NULL) "
            "ON CONFLICT (object, key) DO NOTHING",
            (item.object, item.key, _dumps(item.properties), item.id_property,
             item.id_value, item.event_id, item.resource, due, now)).rowcount
        if inserted:
            return
        row = conn.execute("SELECT properties FROM sync_outbox WHERE object = ? AND key = ?",
                           (item.object, item.key)).fetchone()
        merged = {**json.loads(row[0]), **item.properties}
        conn.execute(
            "UPDATE sync_outbox SET properties = ?, id_property = COALESCE(?, id_property), "
            "id_value = COALESCE(?, id_value), event_id = ?, resource = ?, attempts = 0, "
            "next_attempt_at = ?, revision = revision + 1, last_error = NULL "
            "WHERE object = ? AND key = ?",
            (_dumps(merged), item.id_property, item.id_value, item.event_id, item.resource,
             due, item.object, item.key))

    def has_record(self, conn: sqlite3.Connection, obj: str, key: str) -> bool:
        """Return whether the record has a CRM id or a row waiting in the outbox."""
        row = conn.execute(
            "SELECT 1 FROM sync_crm_ids WHERE object = ? AND key = ? UNION ALL "
            "SELECT 1 FROM sync_outbox WHERE object = ? AND key = ? LIMIT 1",
            (obj, key, obj, key)).fetchone()
        return row is not None

    def save_order(self, conn: sqlite3.Connection, order: OrderState) -> None:
        """Store the newest state of one order (replacing the older one)."""
        conn.execute(
            "INSERT INTO sync_orders (order_key, contact_key, stage, won, total, refunded, "
            "ordered_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (order_key) DO UPDATE SET "
            "contact_key = COALESCE(excluded.contact_key, sync_orders.contact_key), "
            "stage = excluded.stage, won = excluded.won, total = excluded.total, "
            "refunded = COALESCE(excluded.refunded, sync_orders.refunded), "
            "ordered_at = COALESCE(excluded.ordered_at, sync_orders.ordered_at), "
            "source = COALESCE(excluded.source, sync_orders.source)",
            (order.order_key, order.contact_key, order.stage, int(order.won), order.total,
             order.refunded, order.ordered_at, order.source))

    def contact_orders(self, conn: sqlite3.Connection, contact_key: str) -> list[OrderState]:
        """Return every stored order of a contact."""
        rows = conn.execute(
            "SELECT order_key, contact_key, stage, won, total, refunded, ordered_at, source "
            "FROM sync_orders WHERE contact_key = ? ORDER BY order_key", (contact_key,))
        return [OrderState(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6], row[7])
                for row in rows]

    def save_product_sku(self, conn: sqlite3.Connection, sku: str, product_key: str) -> None:
        """Remember which product a shop-scoped SKU (``<shop>:<sku>``) belongs to."""
        conn.execute("INSERT INTO sync_product_skus (sku, product_key) VALUES (?, ?) "
                     "ON CONFLICT (sku) DO UPDATE SET product_key = excluded.product_key",
                     (sku, product_key))

    def product_for_sku(self, conn: sqlite3.Connection, sku: str) -> str | None:
        """Return the product key of a shop-scoped SKU inside a transaction, or None."""
        row = conn.execute("SELECT product_key FROM sync_product_skus WHERE sku = ?",
                           (sku,)).fetchone()
        return None if row is None else str(row[0])

    # --- flusher side ---------------------------------------------------------------

    def due(self, obj: str, now: float, limit: int) -> list[OutboxRow]:
        """Return up to ``limit`` rows of ``obj`` whose next attempt is due, oldest first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM sync_outbox "
                "WHERE object = ? AND next_attempt_at <= ? ORDER BY enqueued_at, key LIMIT ?",
                (obj, now, limit)).fetchall()
        return [OutboxRow(_row_item(row), row[7], row[8], row[9], row[10], row[11])
                for row in rows]

    def pending_objects(self) -> list[str]:
        """Return the objects that have rows in the outbox."""
        with self.db.reading() as conn:
            return [row[0] for row in conn.execute("SELECT DISTINCT object FROM sync_outbox")]

    def pending_count(self, obj: str | None = None) -> int:
        """Count outbox rows, of one object or of all."""
        with self.db.reading() as conn:
            if obj is None:
                row = conn.execute("SELECT COUNT(*) FROM sync_outbox").fetchone()
            else:
                row = conn.execute("SELECT COUNT(*) FROM sync_outbox WHERE object = ?",
                                   (obj,)).fetchone()
        return int(row[0])

    def crm_ids(self, obj: str, keys: Sequence[str]) -> dict[str, str]:
        """Return the known CRM ids of ``keys``; unknown keys are left out."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(keys))
        with self.db.reading() as conn:
            # One query per chunk instead of one per key, because the flusher requests up to
            # 2,000 keys per object and cycle.
            for start in range(0, len(unique), _KEYS_PER_QUERY):
                chunk = unique[start:start + _KEYS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(f"SELECT key, crm_id FROM sync_crm_ids WHERE object = ? "
                                    f"AND key IN ({marks})", (obj, *chunk))
                found.update((str(row[0]), str(row[1])) for row in rows)
        return found

    def product_key_for_sku(self, sku: str) -> str | None:
        """Return the product key of a shop-scoped SKU, when a product with it was seen."""
        with self.db.reading() as conn:
            row = conn.execute("SELECT product_key FROM sync_product_skus WHERE sku = ?",
                               (sku,)).fetchone()
        return None if row is None else str(row[0])

    def product_keys_for_skus(self, skus: Sequence[str]) -> dict[str, str]:
        """Return the product key of each shop-scoped SKU that has a product."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(skus))
        with self.db.reading() as conn:
            for start in range(0, len(unique), _KEYS_PER_QUERY):
                chunk = unique[start:start + _KEYS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(f"SELECT sku, product_key FROM sync_product_skus "
                                    f"WHERE sku IN ({marks})", chunk)
                found.update((str(row[0]), str(row[1])) for row in rows)
        return found

    def drop_properties(self, row: OutboxRow, names: Sequence[str], error: str,
                        now: float) -> bool:
        """Remove ``names`` from a waiting row and make it due at ``now``, not counting an attempt.

        Returns:
            False when the row changed since it was read; the newer state is then
            sent as it is.
        """
        properties = {name: value for name, value in row.item.properties.items()
                      if name not in names}
        with self.db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE sync_outbox SET properties = ?, next_attempt_at = ?, last_error = ? "
                "WHERE object = ? AND key = ? AND revision = ?",
                (_dumps(properties), now, error, row.item.object, row.item.key, row.revision))
        return cursor.rowcount == 1

    def forget_crm_records(self) -> int:
        """Forget what was written to the CRM; return how many CRM ids there were.

        For a CRM that starts empty, such as a new sandbox stand-in: the ids of the
        previous run name records it does not have, so writes would be rejected. The
        SKU → product entries go too, because a product made from an order line is
        written only while its SKU has no product. The versions go as well, so the
        next delivery of a contact sends its whole record, with the mandatory fields
        a new CRM record needs, and not only its changed roll-ups.
        """
        with self.db.transaction() as conn:
            count = conn.execute("DELETE FROM sync_crm_ids").rowcount
            conn.execute("DELETE FROM sync_product_skus")
            conn.execute("DELETE FROM sync_versions")
        return count

    def forget_crm_id(self, obj: str, key: str) -> None:
        """Drop a CRM id that no longer exists in the CRM (the record was deleted or merged)."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM sync_crm_ids WHERE object = ? AND key = ?", (obj, key))

    def finish_batch(self, synced: Sequence[tuple[OutboxRow, str | None]],
                     retried: Sequence[tuple[OutboxRow, float, str, bool]],
                     dead: Sequence[tuple[OutboxRow, int | None, str]]) -> list[int]:
        """Record a batch's outcome in one transaction.

        Args:
            synced: Rows written, with the CRM id the CRM returned (None for links).
            retried: Rows to try again: next attempt time, error, and whether the
                failure counts as an attempt.
            dead: Rows to move to the dead letters, with the HTTP status and error.

        Returns:
            The ids of the new dead letters, in the order of ``dead``.
        """
        now = self.clock()
        letters: list[int] = []
        with self.db.transaction() as conn:
            for row, crm_id in synced:
                item = row.item
                if crm_id is not None:
                    conn.execute(
                        "INSERT INTO sync_crm_ids (object, key, crm_id) VALUES (?, ?, ?) "
                        "ON CONFLICT (object, key) DO UPDATE SET crm_id = excluded.crm_id",
                        (item.object, item.key, crm_id))
                conn.execute("DELETE FROM sync_outbox WHERE object = ? AND key = ? AND "
                             "revision = ?", (item.object, item.key, row.revision))
            for row, next_attempt_at, error, counted in retried:
                conn.execute(
                    "UPDATE sync_outbox SET attempts = attempts + ?, next_attempt_at = ?, "
                    "last_error = ? WHERE object = ? AND key = ? AND revision = ?",
                    (int(counted), next_attempt_at, error, row.item.object, row.item.key,
                     row.revision))
            for row, status, error in dead:
                letters.append(self._insert_dead_letter(conn, row, status, error, now))
        return letters

    def _insert_dead_letter(self, conn: sqlite3.Connection, row: OutboxRow,
                            status: int | None, error: str, now: float) -> int:
        item = row.item
        cursor = conn.execute(
            "INSERT INTO sync_dead_letters (object, key, properties, id_property, id_value, "
            "event_id, resource, attempts, status, error, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item.object, item.key, _dumps(item.properties), item.id_property, item.id_value,
             item.event_id, item.resource, row.attempts + 1, status, error, now))
        conn.execute("DELETE FROM sync_outbox WHERE object = ? AND key = ? AND revision = ?",
                     (item.object, item.key, row.revision))
        return int(cursor.lastrowid or 0)

    # --- dead letters ---------------------------------------------------------------

    def dead_letters(self, include_replayed: bool = False, limit: int = 100) -> list[DeadLetter]:
        """Return dead letters, newest first."""
        where = "" if include_replayed else "WHERE replayed_at IS NULL "
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT id, object, key, properties, id_property, id_value, event_id, resource, "
                f"attempts, status, error, created_at, replayed_at FROM sync_dead_letters {where}"
                "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [self._dead_letter(row) for row in rows]

    def dead_letter_by_id(self, letter_id: int) -> DeadLetter | None:
        """Return one dead letter, or None when there is no such id."""
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT id, object, key, properties, id_property, id_value, event_id, resource, "
                "attempts, status, error, created_at, replayed_at FROM sync_dead_letters "
                "WHERE id = ?", (letter_id,)).fetchone()
        return None if row is None else self._dead_letter(row)

    def dead_letter_count(self) -> int:
        """Count the dead letters not replayed yet."""
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM sync_dead_letters WHERE replayed_at IS NULL").fetchone()
        return int(row[0])

    def replay(self, letter_id: int) -> bool:
        """Put a dead letter back in the outbox, under any newer waiting state of its record.

        Returns:
            False when the id is unknown or was replayed already.
        """
        now = self.clock()
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT object, key, properties, id_property, id_value, event_id, resource "
                "FROM sync_dead_letters WHERE id = ? AND replayed_at IS NULL",
                (letter_id,)).fetchone()
            if row is None:
                return False
            item = _row_item(row)
            waiting = conn.execute("SELECT properties FROM sync_outbox WHERE object = ? AND "
                                   "key = ?", (item.object, item.key)).fetchone()
            if waiting is not None:
                # The waiting state is newer, so its values go on top.
                merged = {**item.properties, **json.loads(waiting[0])}
                item = OutboxItem(item.object, item.key, merged, item.id_property,
                                  item.id_value, item.event_id, item.resource)
            self.enqueue(conn, item)
            conn.execute("UPDATE sync_dead_letters SET replayed_at = ? WHERE id = ?",
                         (now, letter_id))
        return True

    def replay_all(self) -> int:
        """Replay every dead letter not replayed yet; returns how many were replayed."""
        ids = [letter.id for letter in self.dead_letters(limit=1_000_000)]
        return sum(1 for letter_id in sorted(ids) if self.replay(letter_id))

    @staticmethod
    def _dead_letter(row: Sequence[Any]) -> DeadLetter:
        item = OutboxItem(object=row[1], key=row[2], properties=json.loads(row[3]),
                          id_property=row[4], id_value=row[5], event_id=row[6], resource=row[7])
        return DeadLetter(id=row[0], item=item, attempts=row[8], status=row[9], error=row[10],
                          created_at=row[11], replayed_at=row[12])


def properties_of(mapping: Mapping[str, Any], entity: str) -> dict[str, str]:
    """Return ``field name → CRM target`` for one entity of the field map."""
    entities = mapping.get("entities") or {}
    fields = (entities.get(entity) or {}).get("fields") or []
    return {str(spec["name"]): str(spec["target"]) for spec in fields
            if isinstance(spec, Mapping) and spec.get("target")}


def unique_properties_of(mapping: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Return the CRM properties with unique values, by CRM object, from the field map."""
    found: dict[str, frozenset[str]] = {}
    for entity in (mapping.get("entities") or {}).values():
        if not isinstance(entity, Mapping) or not entity.get("object"):
            continue
        names = {str(spec["target"]) for spec in entity.get("fields") or []
                 if isinstance(spec, Mapping) and spec.get("unique") and spec.get("target")}
        found[str(entity["object"])] = frozenset(names)
    return found
