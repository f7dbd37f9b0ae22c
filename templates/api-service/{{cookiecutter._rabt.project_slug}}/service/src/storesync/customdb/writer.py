"""The writer: drain the outbox into the customer database in batched transactions.

It takes the place of the HubSpot flusher when ``CRM_TARGET=custom`` and reads the
same outbox the worker fills. Each outbox row is one record under the keys of
``storesync.record_keys``: ``<shop>:<store id>`` for orders, line items and products,
and the local contact key for contacts. Raw delivery bodies are written first, then
contacts, products, tickets, behaviour events and consent rows, then orders, then
line items. Each cycle also copies new quarantine entries of the state file into
``source_payloads`` with the outcome ``quarantined``, so deliveries that failed after
their retries count in the sync success rate.

``contacts.marketing_opt_in_at`` is recomputed from ``consents`` whenever a batch
writes contacts or consent rows. Per channel it takes the earliest ``granted`` row that
no newer row of another state follows, then the earliest of those across channels. It
is empty when no channel is granted. A consent row is kept per contact, channel and
capture time, so the newest capture decides, and an opt-out captured at the same moment
as an opt-in wins.

Each batch of up to ``BATCH_ROWS`` rows of one object is one PostgreSQL transaction.
Every row is an ``INSERT ... ON CONFLICT DO UPDATE`` whose update runs only when the
stored ``source_updated_at`` is not newer than the row's, so an older state never
overwrites a newer one, and writing the same row twice leaves the same data. A row
skipped that way is counted and logged as stale, not as written. A product made from
an order line carries no store timestamp, so it gets the earliest time and any
product payload of the store replaces it. A
contact whose email, phone or store customer id another contact already has is stored
without that value. A row the database still rejects, such as one with an invalid
value, is rolled back alone in its savepoint and becomes a dead letter with a
``record_failures`` row, and the rest of the batch commits. When the database cannot
be reached, the batch is retried with backoff until ``SYNC_MAX_ATTEMPTS``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, Numeric, Table, bindparam, func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError

from .. import metrics
from ..record_keys import shop_of_key, sku_key
from ..sync_store import OutboxItem, OutboxRow, SyncStore
from .batches import (
    BatchOutcome,
    RetryPolicy,
    WriteReport,
    record_outcome,
    retry_or_give_up,
)
from .deliveries import CONSENT_OBJECT, PAYLOAD_OBJECT
from .models import OUTBOX_TABLES, consents, record_failures, source_payloads

log = logging.getLogger("storesync.customdb.writer")

WRITE_ORDER = (PAYLOAD_OBJECT, "contacts", "products", "tickets", "events", CONSENT_OBJECT,
               "deals", "line_items")
BATCH_ROWS = 500
# source_updated_at of a product made from an order line: earlier than any store time.
LINE_PRODUCT_TIME = datetime(1970, 1, 1, tzinfo=UTC)
# Columns the writer sets itself; a field map target of the same name is ignored.
AUDIT_COLUMNS = frozenset({"source_updated_at", "source_event_id", "record", "created_at",
                           "updated_at", "line_total_sar"})
# Unique indexes of contacts → the column each one covers.
UNIQUE_CONTACT_INDEXES = {
    "contacts_store_customer_id_key": "store_customer_id",
    "contacts_email_key": "email",
    "contacts_phone_e164_key": "phone_e164",
}

# Per channel, the earliest granted row that no newer row of another state follows;
# then the earliest of those across channels.
OPT_IN_UPDATE = text(
    "UPDATE contacts AS contact SET marketing_opt_in_at = ("
    " SELECT min(granted.captured_at) FROM consents AS granted"
    " WHERE granted.contact_key = contact.contact_key AND granted.state = 'granted'"
    " AND NOT EXISTS (SELECT 1 FROM consents AS later"
    "  WHERE later.contact_key = granted.contact_key AND later.channel = granted.channel"
    "  AND later.state <> 'granted' AND later.captured_at > granted.captured_at))"
    " WHERE contact.contact_key IN :keys").bindparams(bindparam("keys", expanding=True))
_QUARANTINE_MARK = "quarantine_id"
_NEW_QUARANTINE = ("SELECT id, delivery_id, source, topic, shop, received_at, body "
                   "FROM quarantine WHERE id > ? ORDER BY id LIMIT ?")

# The worker's state file tables read here (see storesync.sync_store): the newest
# version per record, each order's contact, and the line item links of deliveries.
_DUE_ROWS = (
    "SELECT o.object, o.key, o.properties, o.id_property, o.id_value, o.event_id, o.resource, "
    "o.attempts, o.next_attempt_at, o.enqueued_at, o.revision, o.last_error, v.updated_at "
    "FROM sync_outbox AS o LEFT JOIN sync_versions AS v ON v.resource = o.object || ':' || o.key "
    "WHERE o.object = ? AND o.next_attempt_at <= ? ORDER BY o.enqueued_at, o.key LIMIT ?")


@dataclass(frozen=True)
class DueRow:
    """An outbox row with the newest version the worker recorded for its record."""

    row: OutboxRow
    version: float | None


class RowRejected(Exception):
    """The database or the value conversion rejected one row."""


def stage_paid_map(mapping: Mapping[str, Any]) -> dict[str, bool]:
    """Return stage key or CRM value → whether the stage counts as a paid order."""
    paid: dict[str, bool] = {}
    for stage in (mapping.get("order_stages") or {}).get("stages") or []:
        paid[str(stage.get("key"))] = bool(stage.get("won"))
        if stage.get("crm_value"):
            paid[str(stage["crm_value"])] = bool(stage.get("won"))
    return paid


def parse_time(value: Any) -> datetime:
    """Read an ISO 8601 time; a time without an offset is taken as UTC.

    Raises:
        ValueError: the value is not an ISO 8601 time.
    """
    when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def convert(column_type: Any, value: Any) -> Any:
    """Convert a mapped property value (usually text) to the column's Python type.

    Raises:
        ValueError: the value does not fit the column.
    """
    if value is None or value == "":
        return None
    if isinstance(column_type, DateTime):
        return parse_time(value)
    if isinstance(column_type, Numeric):
        try:
            return Decimal(str(value))
        except InvalidOperation as error:
            raise ValueError(f"{value!r} is not a decimal number") from error
    if isinstance(column_type, Boolean):
        return bool(value)
    if isinstance(column_type, Integer):
        return int(Decimal(str(value)))
    return str(value)


class CustomDbWriter:
    """Writes the outbox to PostgreSQL; ``write_once`` is one steppable cycle."""

    def __init__(self, store: SyncStore, engine: Engine, mapping: Mapping[str, Any], *,
                 max_attempts: int = 8, backoff_base_seconds: float = 2.0,
                 backoff_max_seconds: float = 600.0, batch_rows: int = BATCH_ROWS,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        """Create a writer for the outbox of ``store`` and the database of ``engine``."""
        self.store = store
        self.engine = engine
        self.paid_stages = stage_paid_map(mapping)
        self.retry_policy = RetryPolicy(max_attempts, backoff_base_seconds, backoff_max_seconds)
        self.batch_rows = batch_rows
        self.clock = clock
        self.rng = rng or random.Random()

    # --- cycle -----------------------------------------------------------------------

    def write_once(self, now: float | None = None) -> WriteReport:
        """Write every due outbox row, one batch transaction per object and chunk."""
        report = WriteReport()
        when = self.clock() if now is None else now
        self.copy_quarantine()
        for obj in WRITE_ORDER:
            while True:
                rows = self._due(obj, when)
                if not rows:
                    break
                self._write_batch(obj, rows, when, report)
                if len(rows) < self.batch_rows:
                    break
        return report

    def run(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        """Write until ``stop`` is set, waiting ``idle_seconds`` whenever nothing was due."""
        while not stop.is_set():
            try:
                report = self.write_once()
            except Exception:  # keep the loop alive; the next cycle retries
                log.exception("custom database write cycle failed")
                stop.wait(idle_seconds)
                continue
            if report.rows == 0:
                stop.wait(idle_seconds)

    def copy_quarantine(self) -> int:
        """Copy quarantine entries not copied yet into ``source_payloads``; return how many.

        A delivery already stored keeps its row: it was quarantined by the worker
        (outcome ``quarantined`` already) or requeued and handled since.
        """
        copied = 0
        while True:
            with self.store.db.connection() as conn:
                mark = conn.execute("SELECT value FROM customdb_marks WHERE name = ?",
                                    (_QUARANTINE_MARK,)).fetchone()
                rows = conn.execute(_NEW_QUARANTINE, (mark[0] if mark else 0,
                                                      self.batch_rows)).fetchall()
            if not rows:
                return copied
            try:
                with self.engine.begin() as conn:
                    for row in rows:
                        self._insert_quarantined(conn, row)
            except (OperationalError, InterfaceError) as error:
                log.warning("customer database unreachable; quarantine entries are copied "
                            "later: %s", type(error).__name__)
                return copied
            with self.store.db.connection() as conn:
                conn.execute("INSERT INTO customdb_marks (name, value) VALUES (?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                             (_QUARANTINE_MARK, rows[-1][0]))
            copied += len(rows)

    def _insert_quarantined(self, conn: Connection, row: Sequence[Any]) -> None:
        entry_id, delivery_id, source, topic, shop, received_at, raw = row
        try:
            body = json.loads(bytes(raw).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = {"unparsed_body": bytes(raw).decode("utf-8", errors="replace")}
        try:
            when = parse_time(received_at)
        except ValueError:
            when = datetime.now(UTC)
        values = {"event_id": delivery_id, "source": source, "topic": topic, "shop": shop,
                  "received_at": when, "outcome": "quarantined"}
        try:
            with conn.begin_nested():
                conn.execute(insert(source_payloads).values(**values, body=body)
                             .on_conflict_do_nothing(index_elements=["event_id"]))
        except DataError:
            # e.g. \u0000 in the body, which jsonb does not accept; the entry keeps it.
            conn.execute(insert(source_payloads).values(
                **values, body={"unparsed_body": f"see quarantine entry {entry_id}"})
                .on_conflict_do_nothing(index_elements=["event_id"]))

    def _due(self, obj: str, now: float) -> list[DueRow]:
        with self.store.db.connection() as conn:
            rows = conn.execute(_DUE_ROWS, (obj, now, self.batch_rows)).fetchall()
        return [DueRow(OutboxRow(OutboxItem(object=row[0], key=row[1],
                                            properties=json.loads(row[2]), id_property=row[3],
                                            id_value=row[4], event_id=row[5], resource=row[6]),
                                 row[7], row[8], row[9], row[10], row[11]), row[12])
                for row in rows]

    # --- one batch ---------------------------------------------------------------------

    def _write_batch(self, obj: str, rows: Sequence[DueRow], now: float,
                     report: WriteReport) -> None:
        outcome = BatchOutcome()
        try:
            with self.engine.begin() as conn:
                for due in rows:
                    try:
                        if self._write_row(conn, obj, due):
                            outcome.written.append(due.row)
                        else:
                            outcome.stale.append(due.row)
                    except RowRejected as error:
                        outcome.dead.append((due.row, None, str(error)))
                        self._record_failure(conn, due.row, str(error))
                self._update_opt_in(conn, obj, outcome.written)
        except (OperationalError, InterfaceError) as error:
            self._retry_batch(obj, rows, now, error, report)
            return
        record_outcome(self.store, obj, outcome, report)
        for row in outcome.stale:
            log.info("record not written: the customer database has a newer state",
                     extra={"event_id": row.item.event_id, "resource": row.item.resource})
        for row, _, error_text in outcome.dead:
            log.warning("record rejected by the customer database: %s", error_text,
                        extra={"event_id": row.item.event_id, "resource": row.item.resource})
        log.info("batch written", extra={"object": obj, "written": len(outcome.written),
                                         "stale": len(outcome.stale),
                                         "dead_lettered": len(outcome.dead)})

    def _retry_batch(self, obj: str, rows: Sequence[DueRow], now: float, error: Exception,
                     report: WriteReport) -> None:
        message = f"customer database unreachable: {type(error).__name__}"
        outcome = retry_or_give_up([due.row for due in rows], now, message, self.retry_policy,
                                   self.rng)
        record_outcome(self.store, obj, outcome, report)
        log.warning("%s; %d rows of %s will be retried", message, len(outcome.retried), obj,
                    extra={"object": obj, "dead_lettered": len(outcome.dead)})

    def _update_opt_in(self, conn: Connection, obj: str, rows: Sequence[OutboxRow]) -> None:
        """Recompute ``marketing_opt_in_at`` of the contacts a batch wrote or gave consent."""
        if obj == "contacts":
            keys = {row.item.key for row in rows}
        elif obj == CONSENT_OBJECT:
            keys = {str(row.item.properties.get("contact_key")) for row in rows}
        else:
            return
        if keys:
            conn.execute(OPT_IN_UPDATE, {"keys": sorted(keys)})

    def _record_failure(self, conn: Connection, row: OutboxRow, error: str) -> None:
        conn.execute(record_failures.insert().values(
            event_id=row.item.event_id, object=row.item.object, record_key=row.item.key,
            error=error))

    # --- one row -----------------------------------------------------------------------

    def _write_row(self, conn: Connection, obj: str, due: DueRow) -> bool:
        """Upsert one row in its own savepoint; return False when a newer state was kept.

        Raises:
            RowRejected: the row cannot be stored.
        """
        if obj in (PAYLOAD_OBJECT, CONSENT_OBJECT):
            upsert = self._upsert_payload if obj == PAYLOAD_OBJECT else _upsert_consent
            try:
                with conn.begin_nested():
                    upsert(conn, due.row.item)
            except (IntegrityError, DataError, ValueError) as error:
                # e.g. a body with \u0000, which jsonb does not accept.
                raise RowRejected(f"{due.row.item.resource}: {_error_text(error)}") from error
            return True
        table, key_column = OUTBOX_TABLES[obj]
        try:
            values = self._values(table, key_column, obj, due)
        except ValueError as error:
            raise RowRejected(f"{due.row.item.resource}: {error}") from error
        dropped: list[str] = []
        while True:
            try:
                with conn.begin_nested():
                    stored = conn.execute(upsert_statement(table, key_column, values)).first()
                # The upsert returns no row when its WHERE kept a newer stored state.
                return stored is not None
            except IntegrityError as error:
                column = _unique_contact_column(error) if obj == "contacts" else None
                if column is None or column in dropped:
                    raise RowRejected(f"{due.row.item.resource}: {_error_text(error)}") from error
                # Another contact already has this email, phone or customer id, which
                # the worker's identity rules allow, so this contact is stored without it.
                dropped.append(column)
                values = {name: value for name, value in values.items() if name != column}
                metrics.UNIQUE_VALUE_CONFLICTS.labels(object="contacts", property=column).inc()
                log.warning("unique value held by another contact; stored without it",
                            extra={"resource": due.row.item.resource, "property": column,
                                   "event_id": due.row.item.event_id})
            except DataError as error:
                raise RowRejected(f"{due.row.item.resource}: {_error_text(error)}") from error

    def _values(self, table: Table, key_column: str, obj: str, due: DueRow) -> dict[str, Any]:
        item = due.row.item
        values: dict[str, Any] = {key_column: item.key}
        prefix = f"{table.name}."
        for name, value in item.properties.items():
            column = name[len(prefix):] if name.startswith(prefix) else name
            if column in table.c and column not in AUDIT_COLUMNS and column != key_column:
                values[column] = convert(table.c[column].type, value)
        values["source_updated_at"] = self._source_time(obj, due)
        values["source_event_id"] = item.event_id
        values["record"] = item.properties
        if obj == "deals":
            self._order_values(item, values)
        elif obj == "line_items":
            self._line_values(item, values)
        return values

    @staticmethod
    def _source_time(obj: str, due: DueRow) -> datetime:
        """Return the record's store time, the version the newest-state guard compares.

        The worker records a version for every record of a store payload. A product
        without one was made from an order line, so it gets the earliest time: it must
        never look newer than the store's own product data.
        """
        if due.version is not None:
            return datetime.fromtimestamp(due.version, UTC)
        if obj == "products":
            return LINE_PRODUCT_TIME
        return datetime.fromtimestamp(due.row.enqueued_at, UTC)

    def _order_values(self, item: OutboxItem, values: dict[str, Any]) -> None:
        shop = shop_of_key(item.key)
        values["shop"] = shop
        values["store_order_id"] = item.key[len(shop) + 1:] or item.key
        if "stage" in values:
            values["paid"] = self.paid_stages.get(str(values["stage"] or ""), False)
        with self.store.db.connection() as conn:
            row = conn.execute("SELECT contact_key FROM sync_orders WHERE order_key = ?",
                               (item.key,)).fetchone()
        if row is not None and row[0]:
            values["contact_key"] = row[0]

    def _line_values(self, item: OutboxItem, values: dict[str, Any]) -> None:
        with self.store.db.connection() as conn:
            row = conn.execute("SELECT order_key FROM customdb_line_orders WHERE line_key = ?",
                               (item.key,)).fetchone()
        if row is not None:
            values["order_key"] = row[0]
        if values.get("sku"):
            product = self.store.product_key_for_sku(sku_key(shop_of_key(item.key),
                                                             str(values["sku"])))
            if product is not None:
                values["product_key"] = product

    def _upsert_payload(self, conn: Connection, item: OutboxItem) -> None:
        properties = item.properties
        try:
            received_at = parse_time(properties.get("received_at"))
        except ValueError:
            received_at = datetime.now(UTC)
        statement = insert(source_payloads).values(
            event_id=item.key, source=str(properties.get("source")),
            topic=properties.get("topic"), shop=properties.get("shop"), received_at=received_at,
            outcome=str(properties.get("outcome")), body=properties.get("body"))
        # A copy of the same delivery keeps the first outcome, except that a delivery
        # requeued from the quarantine records how it went the second time.
        conn.execute(statement.on_conflict_do_update(
            index_elements=["event_id"], set_={"outcome": statement.excluded.outcome},
            where=source_payloads.c.outcome == "quarantined"))


def _upsert_consent(conn: Connection, item: OutboxItem) -> None:
    """Insert one consent row; at the same capture time an opt-out replaces an opt-in."""
    properties = item.properties
    statement = insert(consents).values(
        contact_key=str(properties["contact_key"]), channel=str(properties["channel"]),
        captured_at=parse_time(properties["captured_at"]), state=str(properties["state"]),
        source=properties.get("source"), wording_version=properties.get("wording_version"),
        source_event_id=item.event_id)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["contact_key", "channel", "captured_at"],
        set_={"state": statement.excluded.state, "source": statement.excluded.source,
              "wording_version": statement.excluded.wording_version,
              "source_event_id": statement.excluded.source_event_id},
        where=(consents.c.state != "withdrawn") & (statement.excluded.state != consents.c.state)))


def upsert_statement(table: Table, key_column: str, values: dict[str, Any]) -> Any:
    """Build the newest-state upsert: only the given columns change, older states never win."""
    statement = insert(table).values(**values)
    changes: dict[str, Any] = {name: statement.excluded[name] for name in values
                               if name not in (key_column, "record")}
    changes["record"] = table.c.record.op("||")(statement.excluded.record)
    changes["updated_at"] = func.now()
    return statement.on_conflict_do_update(
        index_elements=[key_column], set_=changes,
        where=table.c.source_updated_at <= statement.excluded.source_updated_at,
    ).returning(table.c[key_column])


def _unique_contact_column(error: IntegrityError) -> str | None:
    diag = getattr(error.orig, "diag", None)
    return UNIQUE_CONTACT_INDEXES.get(str(getattr(diag, "constraint_name", "") or ""))


def _error_text(error: Exception) -> str:
    # The driver's first line names the problem; later lines may repeat the values.
    original = getattr(error, "orig", None) or error
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or str(original).strip().splitlines()[0])


def writer_for(settings: Any, store: SyncStore, engine: Engine,
               mapping: Mapping[str, Any]) -> CustomDbWriter:
    """Build a writer with the retry settings of ``settings``."""
    return CustomDbWriter(store, engine, mapping, max_attempts=settings.sync_max_attempts,
                          backoff_base_seconds=settings.sync_backoff_base_seconds,
                          backoff_max_seconds=settings.sync_backoff_max_seconds)


def start_writer(settings: Any) -> Callable[[], None]:
    """Check the customer database, then start the writer loop in a thread.

    Returns the function that stops it. The database must be reachable and at this
    release's migration revision, so a worker never writes into an old schema.

    Raises:
        SystemExit: with code 2 when ``DATABASE_URL`` is missing, the database is
            unreachable or at another revision, or the field map cannot be read.
    """
    import sys

    from ..db import Database
    from ..worker import load_mapping
    from .connection import DatabaseNotReady, check_revision, create_database_engine
    from .deliveries import prepare_state
    from .schema import load_segment_parameters

    try:
        engine = create_database_engine(require_database_url(settings))
    except ValueError as error:
        sys.stderr.write(f"Error: {error}\n")
        raise SystemExit(2) from error
    try:
        revision = check_revision(engine)
        mapping = load_mapping(settings.mapping_path)
        load_segment_parameters(engine, settings.spec_dir / "segments.yaml")
    except (DatabaseNotReady, ValueError) as error:
        engine.dispose()
        sys.stderr.write(f"Error: {error}\n")
        raise SystemExit(2) from error
    store = SyncStore(Database(settings.state_path))
    prepare_state(store.db)
    writer = writer_for(settings, store, engine, mapping)
    stop = threading.Event()
    idle = max(0.05, settings.sync_batch_window_ms / 2000)
    thread = threading.Thread(target=writer.run, args=(stop, idle),
                              name="storesync-customdb-writer", daemon=True)
    thread.start()
    log.info("custom database writer started", extra={"revision": revision})

    def stop_writer() -> None:
        stop.set()
        thread.join(timeout=30)
        engine.dispose()

    return stop_writer


MISSING_URL = ("DATABASE_URL is not set, and the customer database commands need it. Set "
               "DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DATABASE, create the "
               "database, then run: python -m storesync db upgrade")


def require_database_url(settings: Any) -> str:
    """Return ``settings.database_url``, or in sandbox mode the local sandbox database's URL.

    Raises:
        ValueError: it is not set outside sandbox mode. The message names the setting
            and the command to run.
    """
    url: str | None = settings.database_url
    if url:
        return url
    if settings.sandbox and settings.crm_target == "custom":
        from .connection import sandbox_database_url

        return sandbox_database_url()
    raise ValueError(MISSING_URL)
