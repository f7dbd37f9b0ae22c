"""What each Shopify privacy request does to the state file (and, as configured, the CRM).

``customers/redact`` finds the customer's local contacts through the store customer
id (``<shop>:<id>``) and the orders it names, then, in one transaction:

* deletes the contacts' identity rows (store customer ids, phones, emails), their
  versions, their CRM ids and the contact rows, and unlinks their orders (the
  order totals stay, with no contact);
* deletes the outbox rows that would still write them to the CRM: the contacts,
  the named orders' deals and every association to either;
* empties the bodies of dead letters (with the email, phone or id they were matched
  by) and of quarantine entries that belong to them (their ids, reasons and times
  stay, so the operator still sees what happened);
* with :func:`bury_customer`, leaves tombstones (:mod:`storesync.tombstones`: digests
  of the addresses, store customer ids and orders, never the values), so a delivery
  of the customer still waiting in the queue is skipped by the worker instead of
  writing the data again;
* deletes their consent events except withdrawals, which stay as the fact that an
  opt-out was honoured. Consent rows never contain an address, and after the identity
  rows are gone no row leads from them to a person. PDPL requires a record of
  consent and no messages after a withdrawal, and keeping the bare fact serves both.
  NOTE: this is our reading of PDPL Art. 25 and the implementing regulations; have
  counsel confirm it for the client.

With ``PRIVACY_CRM_DELETE=true`` the same transaction queues the deletion of each
contact in the CRM (:mod:`storesync.privacy_crm`), which is tried after it and again
later when the CRM fails, so the CRM never holds back the local erasure. With
``CRM_TARGET=custom`` the customer database is redacted first
(``storesync.customdb.privacy``). An error there leaves local data untouched, and the
request is tried again later.

A contact is one person across shops: when the service serves several shops, a
redact from one of them removes the whole local contact.

``shop/redact`` deletes every row keyed by the shop (``<shop>:...``) and every
quarantine entry from it, redacts the contacts that belong to no other shop as
above, and leaves a tombstone of the shop, so none of its queued deliveries is
handled. It never deletes CRM records: the CRM is the merchant's own system.

``customers/data_request`` writes the customer's data as JSON to
``PRIVACY_EXPORT_DIR`` (by default ``DATA_DIR/privacy-exports``), a folder only the
service's user can open (0700), in a file only that user can read (0600). A later
``customers/redact`` deletes the exports of that customer (:func:`delete_exports`),
and ``shop/redact`` those of the shop, because an export is a copy of the data.

Every function logs ids and counts only.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .consent import WITHDRAWN
from .db import Database
from .privacy import StoredPrivacyRequest
from .record_keys import record_key, shop_part
from .tombstones import bury, create_table, customer_digests, shop_digest

log = logging.getLogger("storesync.privacy")

STORE_CUSTOMER_KIND = "store_customer_id"
EMAIL_KIND = "email"
PHONE_KIND = "phone"
REDACTED_ERROR = "[redacted: privacy request {id}]"


@dataclass
class Customer:
    """The local data that belongs to one customer of a privacy request."""

    contact_keys: list[str] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    customer_keys: set[str] = field(default_factory=set)
    order_keys: set[str] = field(default_factory=set)

    @property
    def addresses(self) -> set[str]:
        """Emails and phones, for matching bodies."""
        return self.emails | self.phones


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values)) or "NULL"


def find_customer(conn: sqlite3.Connection, request: StoredPrivacyRequest) -> Customer:
    """Return the contacts, addresses and orders of the request's customer."""
    item = request.request
    shop = shop_part("shopify", item.shop)
    found = Customer(order_keys={record_key(shop, order) for order in item.order_ids})
    keys: set[str] = set()
    if item.customer_id:
        customer_key = record_key(shop, item.customer_id)
        found.customer_keys.add(customer_key)
        keys |= {row[0] for row in conn.execute(
            "SELECT contact_key FROM sync_identity WHERE kind = ? AND value = ?",
            (STORE_CUSTOMER_KIND, customer_key))}
    orders = sorted(found.order_keys)
    keys |= {row[0] for row in conn.execute(
        f"SELECT contact_key FROM sync_orders WHERE order_key IN ({_placeholders(orders)})"
        " AND contact_key IS NOT NULL", orders)}
    found.contact_keys = sorted(keys)
    _add_contact_data(conn, found)
    return found


def _add_contact_data(conn: sqlite3.Connection, found: Customer) -> None:
    contacts = found.contact_keys
    for kind, value in conn.execute(
            f"SELECT kind, value FROM sync_identity WHERE contact_key IN "
            f"({_placeholders(contacts)})", contacts):
        if kind == EMAIL_KIND:
            found.emails.add(value)
        elif kind == PHONE_KIND:
            found.phones.add(value)
        elif kind == STORE_CUSTOMER_KIND:
            found.customer_keys.add(value)
    found.order_keys |= {row[0] for row in conn.execute(
        f"SELECT order_key FROM sync_orders WHERE contact_key IN ({_placeholders(contacts)})",
        contacts)}


# --- matching stored bodies ------------------------------------------------------------------


def _leaves(value: Any) -> Iterable[tuple[str, Any]]:
    """Yield (key, value) of every scalar in a JSON value."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend((str(inner), child) for inner, child in item.items())
        elif isinstance(item, list):
            stack.extend((key, child) for child in item)
        else:
            yield key, item


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def body_belongs(body: bytes, customer: Customer, customer_ids: set[str]) -> bool:
    """Return whether a stored body names one of the customer's addresses or store ids.

    JSON bodies are compared value by value: emails ignoring case, phones by their
    digits, and customer ids under the keys ``customer_id`` and ``customer.id``. Other
    bodies are searched for the addresses as plain text.
    """
    emails = {email.lower() for email in customer.emails}
    phones = {_digits(phone) for phone in customer.phones if _digits(phone)}
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        lowered = text.lower()
        return any(address in lowered for address in emails) or any(
            phone in _digits(text) for phone in phones)
    named = data.get("customer") if isinstance(data, Mapping) else None
    if isinstance(named, Mapping) and str(named.get("id")) in customer_ids:
        return True
    for key, value in _leaves(data):
        if isinstance(value, str) and _names_address(value, emails, phones):
            return True
        if key == "customer_id" and str(value) in customer_ids:
            return True
    return False


def _names_address(value: str, emails: set[str], phones: set[str]) -> bool:
    # Short digit runs (quantities, prices) never count as a phone.
    digits = _digits(value)
    return value.strip().lower() in emails or (len(digits) >= 9 and digits in phones)


# --- redaction -----------------------------------------------------------------------------


def redact_customer(conn: sqlite3.Connection, customer: Customer, request_id: int,
                    shop: str | None = None) -> dict[str, int]:
    """Delete the customer's local personal data inside the caller's transaction.

    Args:
        conn: A connection inside a write transaction.
        customer: What :func:`find_customer` found.
        request_id: The privacy request, named in the redacted rows.
        shop: The shop domain of the request, to match quarantine entries.

    Returns:
        Rows changed per table.
    """
    contacts = customer.contact_keys
    orders = sorted(customer.order_keys)
    ends = [*contacts, *orders]
    counts: dict[str, int] = {}
    counts["outbox"] = conn.execute(
        f"DELETE FROM sync_outbox WHERE (object = 'contacts' AND key IN"
        f" ({_placeholders(contacts)}))"
        f" OR (object = 'deals' AND key IN ({_placeholders(orders)}))"
        f" OR (object LIKE 'assoc:%' AND (json_extract(properties, '$.from_key') IN"
        f" ({_placeholders(ends)}) OR json_extract(properties, '$.to_key') IN"
        f" ({_placeholders(ends)})))", [*contacts, *orders, *ends, *ends]).rowcount
    counts["outbox"] += _redact_other_outbox(conn, customer)
    counts["dead_letters"] = _redact_dead_letters(conn, customer, contacts, orders, request_id)
    counts["quarantine"] = _redact_quarantine(conn, customer, request_id, shop)
    counts["identity"] = conn.execute(
        f"DELETE FROM sync_identity WHERE contact_key IN ({_placeholders(contacts)})",
        contacts).rowcount
    resources = [f"contacts:{key}" for key in contacts]
    conn.execute(f"DELETE FROM sync_versions WHERE resource IN ({_placeholders(resources)})",
                 resources)
    conn.execute(f"DELETE FROM sync_crm_ids WHERE object = 'contacts' AND key IN "
                 f"({_placeholders(contacts)})", contacts)
    counts["orders_unlinked"] = conn.execute(
        f"UPDATE sync_orders SET contact_key = NULL WHERE contact_key IN "
        f"({_placeholders(contacts)})", contacts).rowcount
    numbers = [int(key[1:]) for key in contacts if key[1:].isdigit()]
    counts["contacts"] = conn.execute(
        f"DELETE FROM sync_contacts WHERE number IN ({_placeholders(numbers)})",
        numbers).rowcount
    counts["consent_events"] = conn.execute(
        f"DELETE FROM consent_events WHERE contact_key IN ({_placeholders(contacts)})"
        " AND state != ?", [*contacts, WITHDRAWN]).rowcount
    conn.execute(f"UPDATE consent_events SET wording_version = NULL WHERE contact_key IN "
                 f"({_placeholders(contacts)})", contacts)
    conn.execute(f"DELETE FROM consent_pushes WHERE contact_key IN ({_placeholders(contacts)})"
                 " AND status = 'pending' AND target = 'store'", contacts)
    return counts


def _redact_other_outbox(conn: sqlite3.Connection, customer: Customer) -> int:
    """Delete the customer's raw bodies, events and consent rows waiting in the outbox.

    Only projects on the customer database queue these objects. A waiting withdrawal
    stays, as it does among the consent events.
    """
    contacts = set(customer.contact_keys)
    chosen = []
    for obj, key, properties in conn.execute(
            "SELECT object, key, properties FROM sync_outbox"
            " WHERE object IN ('payloads', 'events', 'consents')"):
        data = json.loads(properties)
        if obj == "consents" and data.get("state") == WITHDRAWN:
            continue
        if data.get("contact_key") in contacts or body_belongs(
                properties.encode("utf-8"), customer, customer.customer_keys | {
                    item.partition(":")[2] for item in customer.customer_keys}):
            chosen.append((obj, key))
    for obj, key in chosen:
        conn.execute("DELETE FROM sync_outbox WHERE object = ? AND key = ?", (obj, key))
    return len(chosen)


def _redact_dead_letters(conn: sqlite3.Connection, customer: Customer, contacts: list[str],
                         orders: list[str], request_id: int) -> int:
    ends = set(contacts) | set(orders)
    chosen = []
    for letter_id, obj, key, properties in conn.execute(
            "SELECT id, object, key, properties FROM sync_dead_letters WHERE properties != '{}'"):
        mine = ((obj == "contacts" and key in contacts) or (obj == "deals" and key in orders)
                or (obj.startswith("assoc:") and bool(set(key.split("|")) & ends)))
        if mine or body_belongs(str(properties).encode("utf-8"), customer,
                                customer.customer_keys):
            chosen.append(letter_id)
    # id_value is the email, phone or store id the record was matched by.
    conn.execute(f"UPDATE sync_dead_letters SET properties = '{{}}', id_value = NULL, error = ?"
                 f" WHERE id IN ({_placeholders(chosen)})",
                 [REDACTED_ERROR.format(id=request_id), *chosen])
    return len(chosen)


def _redact_quarantine(conn: sqlite3.Connection, customer: Customer, request_id: int,
                       shop: str | None) -> int:
    plain_ids = {key.partition(":")[2] for key in customer.customer_keys}
    chosen = []
    for entry_id, entry_shop, body in conn.execute(
            "SELECT id, shop, body FROM quarantine WHERE length(body) > 0"):
        if shop is not None and entry_shop not in (None, shop):
            continue
        if body_belongs(bytes(body), customer, plain_ids):
            chosen.append(entry_id)
    note = f" [body removed by privacy request {request_id}]"
    conn.execute(f"UPDATE quarantine SET body = X'', reason = reason || ? WHERE id IN "
                 f"({_placeholders(chosen)})", [note, *chosen])
    return len(chosen)


def bury_customer(conn: sqlite3.Connection, customer: Customer, request_id: int,
                  now: float | None = None) -> int:
    """Leave the tombstones of a redacted customer; return how many were stored or renewed.

    Call it in the transaction of :func:`redact_customer`. ``now`` is the time of the
    redaction (Unix seconds), now when left out. Queued deliveries that name the
    customer and were received before it are skipped, in every shop, as the local
    contact is one person across shops.
    """
    digests = customer_digests(customer.emails, customer.phones, customer.customer_keys,
                               customer.order_keys)
    return bury(conn, digests, request_id, time.time() if now is None else now)


def shop_contacts(conn: sqlite3.Connection, prefix: str) -> tuple[list[str], list[str]]:
    """Return (contacts found only in this shop, contacts found in other shops too)."""
    size = len(prefix)
    keys = {row[0] for row in conn.execute(
        "SELECT contact_key FROM sync_identity WHERE kind = ? AND substr(value, 1, ?) = ?",
        (STORE_CUSTOMER_KIND, size, prefix))}
    keys |= {row[0] for row in conn.execute(
        "SELECT contact_key FROM sync_orders WHERE substr(order_key, 1, ?) = ?"
        " AND contact_key IS NOT NULL", (size, prefix))}
    shared = {row[0] for row in conn.execute(
        "SELECT contact_key FROM sync_identity WHERE kind = ? AND substr(value, 1, ?) != ?",
        (STORE_CUSTOMER_KIND, size, prefix))}
    shared |= {row[0] for row in conn.execute(
        "SELECT contact_key FROM sync_orders WHERE substr(order_key, 1, ?) != ?"
        " AND contact_key IS NOT NULL", (size, prefix))}
    return sorted(keys - shared), sorted(keys & shared)


def redact_shop(conn: sqlite3.Connection, shop_domain: str | None, request_id: int,
                now: float | None = None) -> dict[str, int]:
    """Delete everything the state file holds for one shop, inside the caller's transaction.

    ``now`` is the time of the redaction (Unix seconds), now when left out. Queued
    deliveries of the shop received before it are skipped.
    """
    when = time.time() if now is None else now
    prefix = shop_part("shopify", shop_domain) + ":"
    size = len(prefix)
    own, _shared = shop_contacts(conn, prefix)
    customer = Customer(contact_keys=own)
    _add_contact_data(conn, customer)
    counts = redact_customer(conn, customer, request_id, shop_domain)
    # One tombstone for the whole shop: its customers' addresses may still appear in
    # other shops' deliveries, which stay welcome.
    counts["tombstones"] = bury(conn, [shop_digest(prefix[:-1])], request_id, when)
    keyed = {
        "sync_outbox": "key", "sync_orders": "order_key", "sync_product_skus": "sku",
        "sync_crm_ids": "key", "sync_dead_letters": "key", "sync_identity": "value",
    }
    for table, column in keyed.items():
        deleted = conn.execute(f"DELETE FROM {table} WHERE substr({column}, 1, ?) = ?",
                               (size, prefix)).rowcount
        counts[table.removeprefix("sync_")] = counts.get(table.removeprefix("sync_"), 0) + deleted
    conn.execute("DELETE FROM sync_versions WHERE instr(resource, ?) > 0", (":" + prefix,))
    conn.execute("DELETE FROM sync_outbox WHERE object LIKE 'assoc:%' AND instr(key, ?) > 0",
                 (prefix,))
    conn.execute("DELETE FROM sync_outbox WHERE object = 'payloads'"
                 " AND json_extract(properties, '$.shop') = ?", (prefix[:-1],))
    counts["quarantine"] += conn.execute("DELETE FROM quarantine WHERE shop = ?",
                                         (shop_domain,)).rowcount
    counts["contacts_kept_for_other_shops"] = len(_shared)
    return counts


# --- data requests ----------------------------------------------------------------------------


def export_customer(conn: sqlite3.Connection, customer: Customer,
                    request: StoredPrivacyRequest) -> dict[str, Any]:
    """Return everything the state file holds for the customer, as JSON-ready data."""
    contacts = customer.contact_keys
    orders = sorted(customer.order_keys)
    identity = [{"contact_key": row[0], "kind": row[1], "value": row[2]} for row in conn.execute(
        f"SELECT contact_key, kind, value FROM sync_identity WHERE contact_key IN "
        f"({_placeholders(contacts)}) ORDER BY contact_key, kind, value", contacts)]
    order_rows = [dict(zip(("order_key", "contact_key", "stage", "won", "total", "refunded",
                            "ordered_at", "source"), row, strict=True)) for row in conn.execute(
        f"SELECT order_key, contact_key, stage, won, total, refunded, ordered_at, source FROM "
        f"sync_orders WHERE order_key IN ({_placeholders(orders)}) ORDER BY order_key", orders)]
    consent = [dict(zip(("contact_key", "channel", "state", "captured_at", "source",
                         "wording_version"), row, strict=True)) for row in conn.execute(
        f"SELECT contact_key, channel, state, captured_at, source, wording_version FROM "
        f"consent_events WHERE contact_key IN ({_placeholders(contacts)}) ORDER BY id",
        contacts)]
    pending = [{"object": row[0], "key": row[1], "properties": json.loads(row[2])}
               for row in conn.execute(
        f"SELECT object, key, properties FROM sync_outbox WHERE (object = 'contacts' AND key IN"
        f" ({_placeholders(contacts)})) OR (object = 'deals' AND key IN ({_placeholders(orders)}))"
        " ORDER BY object, key", [*contacts, *orders])]
    plain_ids = {key.partition(":")[2] for key in customer.customer_keys}
    quarantined = [{"id": row[0], "topic": row[1], "body": bytes(row[2]).decode("utf-8",
                                                                              "replace")}
                   for row in conn.execute("SELECT id, topic, body FROM quarantine")
                   if body_belongs(bytes(row[2]), customer, plain_ids)]
    item = request.request
    return {
        "privacy_request_id": request.id, "data_request_id": item.data_request_id,
        "shop": item.shop, "customer_id": item.customer_id,
        "orders_requested": list(item.order_ids), "contacts": contacts,
        "identity": identity, "orders": order_rows, "consent": consent,
        "waiting_for_crm": pending, "quarantined_deliveries": quarantined,
    }


def write_export(folder: Path, request_id: int, data: Mapping[str, Any]) -> Path:
    """Write ``data`` to ``folder/data-request-<id>.json`` readable by this user only."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / f"data-request-{request_id}.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2, sort_keys=True)
        handle.write("\n")
    # O_CREAT's mode does not apply to a file that existed (a rerun).
    os.chmod(path, 0o600)
    return path


def delete_exports(folder: Path, shop: str | None, *, customer_id: str | None = None,
                   contact_keys: Iterable[str] = (), whole_shop: bool = False) -> int:
    """Delete the data request exports of a redacted customer, or of a whole shop.

    An export goes when it names ``shop`` and the same store customer id or one of
    the local ``contact_keys``, or when ``whole_shop`` is set (``shop/redact``).
    Returns how many files were deleted.

    Raises:
        OSError: a file could not be deleted; the request fails and is tried again.
    """
    if not folder.is_dir():
        return 0
    contacts = set(contact_keys)
    deleted = 0
    for path in sorted(folder.glob("data-request-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("privacy export not readable, so it is kept; check it by hand",
                        extra={"path": str(path)})
            continue
        if not isinstance(data, Mapping) or data.get("shop") != shop:
            continue
        same_customer = customer_id is not None and data.get("customer_id") == customer_id
        if whole_shop or same_customer or contacts & set(data.get("contacts") or ()):
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def open_tables(database: Database) -> None:
    """Create the tables the actions read, when this state file has not got them yet."""
    from .consent import ConsentStore
    from .quarantine import Quarantine
    from .sync_store import SyncStore

    SyncStore(database)
    Quarantine(database)
    ConsentStore(database)
    create_table(database)
