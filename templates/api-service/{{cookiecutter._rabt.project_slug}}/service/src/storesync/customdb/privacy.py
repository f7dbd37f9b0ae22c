"""Shopify privacy requests against the customer database (``CRM_TARGET=custom``).

The worker's privacy thread (``storesync.privacy_runner``) calls these functions with
what it found in the state file: the local contact keys, which the customer database
uses as well, the customer's emails and phones, store customer ids and order keys.

* :func:`redact_customer` deletes the contacts, their tickets and behaviour events,
  the raw bodies (``source_payloads``) that name the customer, and their consent rows
  except withdrawals. The withdrawals lose their wording and source event. Orders
  stay, with no contact and no name.
* :func:`redact_shop` deletes the shop's orders, their lines, its raw bodies, and the
  contacts no other shop has.
* :func:`export_customer` returns the customer's rows for a data request export.

Each function runs in the caller's transaction and returns counts, never data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

# The rows of the export, per table.
EXPORT_QUERIES = {
    "contacts": "SELECT * FROM contacts WHERE contact_key = ANY(:contacts)",
    "orders": "SELECT * FROM orders WHERE contact_key = ANY(:contacts) OR order_key = ANY(:orders)",
    "tickets": "SELECT * FROM tickets WHERE contact_key = ANY(:contacts)",
    "events": "SELECT * FROM events WHERE contact_key = ANY(:contacts)",
    "consents": "SELECT * FROM consents WHERE contact_key = ANY(:contacts)",
}


def _payload_ids(connection: Connection, emails: Iterable[str], phones: Iterable[str],
                 customer_ids: Iterable[str], shop: str | None) -> list[str]:
    """Return the ``source_payloads`` whose body names one of the addresses or customer ids."""
    needles = sorted({value.lower() for value in (*emails, *phones) if value})
    ids = sorted({value for value in customer_ids if value})
    if not needles and not ids:
        return []
    rows = connection.execute(text(
        "SELECT event_id FROM source_payloads WHERE (CAST(:shop AS text) IS NULL"
        " OR shop IS NULL OR shop = :shop) AND ("
        " EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) AS needle"
        "  WHERE strpos(lower(CAST(body AS text)), needle) > 0)"
        " OR body->'customer'->>'id' = ANY(:ids) OR body->>'customer_id' = ANY(:ids))"),
        {"shop": shop, "needles": needles, "ids": ids})
    return [str(row[0]) for row in rows]


def redact_customer(connection: Connection, contacts: Sequence[str], emails: Iterable[str],
                    phones: Iterable[str], customer_ids: Iterable[str],
                    order_keys: Sequence[str], shop: str | None = None) -> dict[str, int]:
    """Delete one customer's personal data from the customer database.

    ``shop`` is the shop part of the record keys; raw bodies of other shops are kept.
    """
    keys = {"contacts": list(contacts), "orders": list(order_keys)}
    emails = list(emails)
    payloads = _payload_ids(connection, emails, phones, customer_ids, shop)
    counts = {
        "db_source_payloads": connection.execute(text(
            "DELETE FROM source_payloads WHERE event_id = ANY(:ids)"), {"ids": payloads}).rowcount,
        "db_tickets": connection.execute(text(
            "DELETE FROM tickets WHERE contact_key = ANY(:contacts)"), keys).rowcount,
        "db_events": connection.execute(text(
            "DELETE FROM events WHERE contact_key = ANY(:contacts)"
            " OR lower(contact_email) = ANY(:emails)"),
            {**keys, "emails": [email.lower() for email in emails]}).rowcount,
        "db_consents": connection.execute(text(
            "DELETE FROM consents WHERE contact_key = ANY(:contacts) AND state != 'withdrawn'"),
            keys).rowcount,
        "db_orders_unlinked": connection.execute(text(
            "UPDATE orders SET contact_key = NULL, name = NULL"
            " WHERE contact_key = ANY(:contacts) OR order_key = ANY(:orders)"), keys).rowcount,
        "db_contacts": connection.execute(text(
            "DELETE FROM contacts WHERE contact_key = ANY(:contacts)"), keys).rowcount,
    }
    connection.execute(text("UPDATE consents SET wording_version = NULL, source_event_id = NULL"
                            " WHERE contact_key = ANY(:contacts)"), keys)
    return counts


def redact_shop(connection: Connection, shop_key: str,
                own_contacts: Sequence[str]) -> dict[str, int]:
    """Delete a shop's rows, and the contacts only it has, from the customer database."""
    orders = [str(row[0]) for row in connection.execute(
        text("SELECT order_key FROM orders WHERE shop = :shop"), {"shop": shop_key})]
    counts = redact_customer(connection, own_contacts, (), (), (), orders)
    counts["db_order_lines"] = connection.execute(text(
        "DELETE FROM order_lines WHERE order_key = ANY(:orders)"), {"orders": orders}).rowcount
    counts["db_orders"] = connection.execute(text(
        "DELETE FROM orders WHERE shop = :shop"), {"shop": shop_key}).rowcount
    counts["db_source_payloads"] += connection.execute(text(
        "DELETE FROM source_payloads WHERE shop = :shop"), {"shop": shop_key}).rowcount
    return counts


def export_customer(connection: Connection, contacts: Sequence[str],
                    order_keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Return the customer's rows of each table, JSON-ready (times and amounts as text)."""
    params = {"contacts": list(contacts), "orders": list(order_keys)}
    found: dict[str, list[dict[str, Any]]] = {}
    for table, query in EXPORT_QUERIES.items():
        rows = connection.execute(text(query), params)
        found[table] = [_plain(dict(row._mapping)) for row in rows]
    return found


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value if isinstance(value, str | int | bool | None) else str(value)
            for name, value in row.items()}
