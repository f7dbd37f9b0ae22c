"""The worker step for the custom database: handle a delivery, then keep what only it needs.

The HubSpot path needs nothing from a delivery once its records are in the outbox. The
customer database also keeps, for each delivery:

* its raw body (``source_payloads``, for audit and the sync success rate);
* the order each line item belongs to, which the field map gives as a foreign key
  rather than as an association record;
* its behaviour events (page views, add to cart, checkout started), which the
  HubSpot path skips;
* the marketing consent the body states per channel, read by the rules of
  ``integration/consent.yaml`` (see :mod:`storesync.customdb.consents`).

This module adds them to the state file's outbox after
:func:`storesync.worker.handle_delivery` has run, and the writer moves them to
PostgreSQL with the records.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..consent import order_meta_time
from ..db import Database
from ..delivery import Delivery
from ..quarantine import Quarantine
from ..record_keys import scope_record, shop_part
from ..runtime.engine import MappedRecords, Record, map_payload
from ..sync_store import EMAIL_KIND, OutboxItem
from ..worker import JobOutcome, WorkerContext, payload_version
from ..worker import handle_delivery as handle_records
from .consents import ConsentChange, ConsentRule, consent_changes, load_rules

log = logging.getLogger("storesync.customdb.deliveries")

# Outbox object of raw delivery bodies; the writer stores them in ``source_payloads``.
PAYLOAD_OBJECT = "payloads"
# Outbox objects of behaviour events and consent rows; the writer stores them.
EVENT_OBJECT = "events"
CONSENT_OBJECT = "consents"
COMPONENT = "customdb"
SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE customdb_line_orders (line_key TEXT PRIMARY KEY, order_key TEXT NOT NULL)",
    # How far the writer has copied the quarantine into source_payloads.
    "CREATE TABLE customdb_marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


# Weak references, because a Database that was garbage-collected must drop out: a new
# one can get its id() and would otherwise be taken as prepared.
_prepared: weakref.WeakSet[Database] = weakref.WeakSet()


def prepare_state(database: Database) -> None:
    """Create this module's state file tables and the quarantine, once per Database object."""
    if database not in _prepared:
        database.migrate(COMPONENT, SCHEMA_STEPS)
        # The writer copies the quarantine, so it must exist before any job has run.
        Quarantine(database)
        _prepared.add(database)


def handle_delivery(delivery: Delivery, ctx: WorkerContext) -> JobOutcome:
    """Handle ``delivery`` as the worker does, then keep its body, links, events and consent.

    A job that raises keeps nothing here; huey retries it, and after the last retry
    the delivery is in the quarantine, which the writer copies to ``source_payloads``.
    """
    prepare_state(ctx.store.db)
    body, readable = _parsed_body(delivery.body)
    # Mapped once here and handed to the worker, which would otherwise map it again.
    mapped = (map_payload(ctx.mapping, delivery.source, delivery.topic, body)
              if readable else None)
    outcome = handle_records(delivery, ctx, mapped=mapped)
    if outcome == JobOutcome.SKIPPED_REDACTED:
        # Nothing of a redacted customer's delivery is kept, not even the raw body.
        return outcome
    items: list[OutboxItem] = []
    links: list[tuple[str, str]] = []
    if outcome != JobOutcome.QUARANTINED and mapped is not None and isinstance(body, Mapping):
        records = _scoped_records(delivery, ctx, mapped)
        if outcome == JobOutcome.SYNCED_LATER:
            links = _line_orders(records)
        with ctx.store.db.connection() as conn:
            contact_key = _contact_key(conn, ctx, records)
            items.extend(_event_items(conn, delivery, records, contact_key))
        if contact_key is not None:
            version = payload_version(body, delivery)
            when = datetime.fromtimestamp(order_meta_time(body, delivery.source, version), UTC)
            changes = consent_changes(consent_rules(ctx.settings.spec_dir), body)
            items.extend(_consent_item(delivery, contact_key, change, when)
                         for change in changes)
    if outcome == JobOutcome.NOTHING_TO_DO and items:
        # The HubSpot path skips behaviour events and consent, but this database keeps them.
        outcome = JobOutcome.SYNCED_LATER
    items.append(OutboxItem(
        object=PAYLOAD_OBJECT, key=delivery.delivery_id, event_id=delivery.delivery_id,
        resource=f"{PAYLOAD_OBJECT}:{delivery.delivery_id}",
        # The shop as orders.shop has it, e.g. v9.example for https://v9.example/.
        properties={"source": delivery.source, "topic": delivery.topic,
                    "shop": shop_part(delivery.source, delivery.shop),
                    "received_at": delivery.received_at, "outcome": outcome.value,
                    "body": body}))
    with ctx.store.transaction() as conn:
        for line_key, order_key in links:
            conn.execute("INSERT INTO customdb_line_orders (line_key, order_key) VALUES (?, ?) "
                         "ON CONFLICT (line_key) DO UPDATE SET order_key = excluded.order_key",
                         (line_key, order_key))
        for item in items:
            ctx.store.enqueue(conn, item)
    return outcome


def _parsed_body(body: str) -> tuple[Any, bool]:
    """Return the parsed body and whether it was valid JSON."""
    try:
        return json.loads(body), True
    except json.JSONDecodeError:
        # Kept as text, so an unreadable delivery can still be audited.
        return {"unparsed_body": body}, False


def _scoped_records(delivery: Delivery, ctx: WorkerContext,
                    mapped: MappedRecords) -> list[Record]:
    """Return the mapped records with store ids keyed by shop, as the worker keys them."""
    shop = shop_part(delivery.source, delivery.shop)
    customer_id_target = ctx.fields.get("contact", {}).get("store_customer_id")
    return [scope_record(record, shop, customer_id_target) for record in mapped.records]


def _line_orders(records: Sequence[Record]) -> list[tuple[str, str]]:
    """Return (line item key, order key) for each line item of the delivery's order."""
    orders = [str(record.identity[0][1]) for record in records
              if record.entity == "order" and record.identity]
    if len(orders) != 1:
        return []
    return [(str(record.identity[0][1]), orders[0]) for record in records
            if record.entity == "line_item" and record.identity]


def _identity_kinds(mapping: Mapping[str, Any]) -> dict[str, str]:
    """Return contact property → identity kind, from the field map's match order."""
    kinds = {}
    for entry in (mapping.get("identity") or {}).get("match_order") or []:
        if isinstance(entry, Mapping) and entry.get("target"):
            kinds[str(entry["target"])] = str(entry.get("key"))
    return kinds


def _owner(conn: sqlite3.Connection, kind: str, value: str) -> str | None:
    row = conn.execute("SELECT contact_key FROM sync_identity WHERE kind = ? AND value = ?",
                       (kind, value)).fetchone()
    return str(row[0]) if row else None


def _contact_key(conn: sqlite3.Connection, ctx: WorkerContext,
                 records: Sequence[Record]) -> str | None:
    """Return the local contact the worker matched the delivery's contact to, if any.

    The worker has already recorded every identity key of the contact, so the first
    key found in match order names it.
    """
    contact = next((record for record in records if record.entity == "contact"), None)
    if contact is None:
        return None
    kinds = _identity_kinds(ctx.mapping)
    for target, value in contact.identity:
        owner = _owner(conn, kinds.get(target, target), str(value))
        if owner is not None:
            return owner
    return None


def _event_items(conn: sqlite3.Connection, delivery: Delivery, records: Sequence[Record],
                 contact_key: str | None) -> list[OutboxItem]:
    """Return an outbox item per behaviour event record, linked to its contact when known."""
    items = []
    for record in records:
        if record.entity != "event" or not record.identity:
            continue
        key = str(record.identity[0][1])
        properties = dict(record.properties)
        owner = contact_key
        email = properties.get("events.contact_email")
        if owner is None and email:
            owner = _owner(conn, EMAIL_KIND, str(email))
        properties["contact_key"] = owner
        items.append(OutboxItem(object=EVENT_OBJECT, key=key, properties=properties,
                                event_id=delivery.delivery_id,
                                resource=f"{EVENT_OBJECT}:{key}"))
    return items


def _consent_item(delivery: Delivery, contact_key: str, change: ConsentChange,
                  fallback_time: datetime) -> OutboxItem:
    captured = (change.captured_at or fallback_time).astimezone(UTC)
    captured_text = captured.isoformat()
    source = change.source or f"{delivery.source} {delivery.topic}"
    if change.opt_in_level:
        source = f"{source} ({change.opt_in_level})"
    key = f"{contact_key}|{change.channel}|{captured_text}"
    return OutboxItem(
        object=CONSENT_OBJECT, key=key, event_id=delivery.delivery_id,
        resource=f"{CONSENT_OBJECT}:{contact_key}|{change.channel}",
        properties={"contact_key": contact_key, "channel": change.channel,
                    "state": change.state, "captured_at": captured_text, "source": source,
                    "wording_version": change.wording_version})


_rules: dict[Path, list[ConsentRule]] = {}
_rules_lock = threading.Lock()


def consent_rules(spec_dir: Path) -> list[ConsentRule]:
    """Return the consent rules of ``spec_dir/consent.yaml``, read once per process."""
    path = spec_dir / "consent.yaml"
    with _rules_lock:
        if path not in _rules:
            try:
                _rules[path] = load_rules(path)
            except ValueError as error:
                # Records still sync; only consent rows are left out until the file is fixed
                # and the worker restarts.
                log.error("consent rules not loaded, so no consent is stored: %s", error)
                _rules[path] = []
        return _rules[path]
