"""Tombstones of redacted customers and shops, so queued jobs cannot bring their data back.

A ``customers/redact`` or ``shop/redact`` deletes the local data, but deliveries of
that customer or shop may still wait in the queue (SQLite or Redis). Searching huey's
queue would mean reading and rewriting its serialized jobs on both backends, so the
redaction leaves a tombstone instead, and the worker skips every delivery that
matches one and was received before the redaction. A delivery received after it (a
new order placed later) is handled as usual.

Reconciliation and backfill read records from the store's API and queue them with the
time of the run as their receive time, so a redacted customer's old order that the
store still returns would count as received after the redaction. For these
deliveries (:attr:`~storesync.delivery.Delivery.read_from_store`) the record's own
creation time decides instead: ``created_at`` of the order or customer (WooCommerce:
``date_created_gmt``, in UTC). A record made before the redaction is skipped; an order
placed after it is handled as usual.

A tombstone contains no address: each one is the SHA-256 digest of one fact, with the
kind in front (``email:`` and the address in lower case, ``phone:`` and its digits,
``customer:`` and the store customer key ``<shop>:<id>``, ``order:`` and the order key,
``shop:`` and the shop part of the keys). NOTE: an unsalted digest of an email
address can still be matched against a list of known addresses, so tombstones are
kept only ``TOMBSTONE_RETENTION_DAYS`` and deleted at the next redaction after that.

A delivery matches when its shop has a tombstone, or when its body names the
customer: any email address or phone number among its values (phones compared by
their digits, so a local ``05...`` form does not match an E.164 ``+9665...`` one), the
``customer.id`` or any ``customer_id``, the ``id`` of a customer topic, or the ``id``
of an order topic.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from .db import Database
from .delivery import Delivery
from .record_keys import record_key, shop_part

log = logging.getLogger("storesync.privacy")

# Jobs wait in the queue while the worker retries them or is stopped, for days at most in
# practice; a month covers that with a wide margin and keeps digests of erased data no
# longer than needed.
TOMBSTONE_RETENTION_DAYS = 30
SECONDS_PER_DAY = 86_400
# Fewer digits than a Saudi mobile number without its country code are never a phone.
MIN_PHONE_DIGITS = 9

SCHEMA = (
    "CREATE TABLE privacy_tombstones (digest TEXT PRIMARY KEY, redacted_at REAL NOT NULL,"
    " request_id INTEGER NOT NULL)",
    "CREATE INDEX privacy_tombstones_age ON privacy_tombstones (redacted_at)",
)


def create_table(database: Database) -> None:
    """Create the tombstone table when this state file has not got it yet."""
    database.migrate("privacy_tombstones", SCHEMA)


def digest(kind: str, value: str) -> str:
    """Return the tombstone of one fact: the SHA-256 hex digest of ``kind:value``."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def customer_digests(emails: Iterable[str], phones: Iterable[str], customer_keys: Iterable[str],
                     order_keys: Iterable[str]) -> set[str]:
    """Return the tombstones of one customer's addresses, store ids and orders."""
    found = {digest("email", email.strip().lower()) for email in emails}
    found |= {digest("phone", _digits(phone)) for phone in phones
              if len(_digits(phone)) >= MIN_PHONE_DIGITS}
    found |= {digest("customer", key) for key in customer_keys}
    found |= {digest("order", key) for key in order_keys}
    return found


def shop_digest(shop: str) -> str:
    """Return the tombstone of a whole shop, from the shop part of its record keys."""
    return digest("shop", shop)


def bury(conn: sqlite3.Connection, digests: Iterable[str], request_id: int,
         now: float) -> int:
    """Store or renew tombstones inside the caller's transaction; return how many.

    Tombstones older than ``TOMBSTONE_RETENTION_DAYS`` are deleted in the same step.
    """
    conn.execute("DELETE FROM privacy_tombstones WHERE redacted_at < ?",
                 (now - TOMBSTONE_RETENTION_DAYS * SECONDS_PER_DAY,))
    added = 0
    for value in sorted(set(digests)):
        added += conn.execute(
            "INSERT INTO privacy_tombstones (digest, redacted_at, request_id) VALUES (?, ?, ?)"
            " ON CONFLICT (digest) DO UPDATE SET redacted_at = excluded.redacted_at,"
            " request_id = excluded.request_id", (value, now, request_id)).rowcount
    return added


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (key, value) of every scalar in a JSON value; list items keep the list's key."""
    # Plain dicts come first, because the exact type check costs far less than the ABC check.
    if type(value) is dict or isinstance(value, Mapping):
        for inner, child in value.items():
            yield from _leaves(child, str(inner))
    elif isinstance(value, list):
        for child in value:
            yield from _leaves(child, key)
    else:
        yield key, value


def delivery_digests(delivery: Delivery, body: Any) -> set[str]:
    """Return the tombstones a delivery would match: its shop and the customer it names."""
    shop = shop_part(delivery.source, delivery.shop)
    found = {shop_digest(shop)}
    if not isinstance(body, Mapping):
        return found
    customer_ids: set[str] = set()
    named = body.get("customer")
    if isinstance(named, Mapping) and named.get("id") is not None:
        customer_ids.add(str(named["id"]))
    topic = delivery.topic.lower()
    if topic.startswith("customer") and body.get("id") is not None:
        customer_ids.add(str(body["id"]))
    if topic.startswith("order") and body.get("id") is not None:
        found.add(digest("order", record_key(shop, str(body["id"]))))
    for key, value in _leaves(body):
        if key == "customer_id" and value not in (None, "", 0):
            customer_ids.add(str(value))
        elif not isinstance(value, str):
            continue
        elif "@" in value:
            found.add(digest("email", value.strip().lower()))
        elif len(digits := _digits(value)) >= MIN_PHONE_DIGITS:
            found.add(digest("phone", digits))
    found |= {digest("customer", record_key(shop, item)) for item in customer_ids}
    return found


def _received_at(delivery: Delivery) -> float | None:
    try:
        return datetime.fromisoformat(delivery.received_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _created_at(body: Any) -> float | None:
    """Return when the store made the order or customer of a store-read body, or None."""
    if not isinstance(body, Mapping):
        return None
    text = body.get("created_at") or body.get("date_created_gmt")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # WooCommerce's *_gmt fields carry no offset but are UTC.
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def redaction_of(conn: sqlite3.Connection, delivery: Delivery, body: Any) -> int | None:
    """Return the privacy request that redacted this delivery's customer or shop, or None.

    Only a redaction made after the delivery's time counts: the receive time of a
    webhook, or the creation time of the order or customer that reconciliation or
    backfill read from the store. A delivery whose time cannot be read is treated
    as older than every redaction.
    """
    received = _created_at(body) if delivery.read_from_store else _received_at(delivery)
    after = float("-inf") if received is None else received
    # Usually no redaction is newer than the delivery. The index on redacted_at finds
    # that in one step, and hashing every value of the body is skipped.
    if conn.execute("SELECT 1 FROM privacy_tombstones WHERE redacted_at > ? LIMIT 1",
                    (after,)).fetchone() is None:
        return None
    digests = sorted(delivery_digests(delivery, body))
    marks = ", ".join("?" * len(digests))
    row = conn.execute(
        f"SELECT request_id FROM privacy_tombstones WHERE digest IN ({marks})"
        " AND redacted_at > ? ORDER BY redacted_at DESC LIMIT 1",
        (*digests, after)).fetchone()
    return int(row[0]) if row else None
