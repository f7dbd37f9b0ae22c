"""Gather the contacts of one run: changed orders and customers, and the ones to retry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .logs import JsonLog
from .state import Mark
from .store import Collected, Contact, StoreReader, advance


def later(first: Mark | None, second: Mark | None) -> Mark | None:
    """Return the later of two marks; at the same second, one mark with both id lists."""
    if first is None or second is None:
        return first or second
    if first.modified_gmt != second.modified_gmt:
        return first if first.modified_gmt > second.modified_gmt else second
    return Mark(first.modified_gmt, sorted({*first.ids, *second.ids}))


def _add(collected: Collected, contact: Contact | None, source: str, number: int,
         log: JsonLog) -> None:
    if contact is None:
        collected.unmapped += 1
        log.warning("record_unmapped", source=source, id=number,
                    reason="no contact field of the record had a value")
    else:
        collected.contacts.append(contact)


def collect(reader: StoreReader, marks: Mapping[str, Mark], retry: list[dict[str, Any]],
            log: JsonLog) -> Collected:
    """Read every changed order and customer, and the records on the retry list.

    Guest orders give contacts from their billing data. An order of a registered
    customer leads to that customer's own record, read by id when the customer list
    did not show it as changed.
    """
    collected = Collected(marks=dict(marks))
    registered: set[int] = set()
    orders = customers = 0
    for order in reader.changed_orders(marks.get("orders")):
        orders += 1
        _move(collected, "orders", order)
        customer_id = int(order.get("customer_id") or 0)
        if customer_id > 0:
            registered.add(customer_id)
        else:
            _add(collected, reader.contact("order", order), "order", int(order["id"]), log)
    seen: set[int] = set()
    for customer in reader.changed_customers(marks.get("customers")):
        customers += 1
        _move(collected, "customers", customer)
        seen.add(int(customer["id"]))
        _add(collected, reader.contact("customer", customer), "customer", int(customer["id"]),
             log)
    wanted = _retry_ids(retry)
    extra = sorted((registered | wanted["customer"]) - seen)
    for customer in reader.by_ids("customers", extra):
        _add(collected, reader.contact("customer", customer), "customer", int(customer["id"]),
             log)
    for order in reader.by_ids("orders", sorted(wanted["order"])):
        _add(collected, reader.contact("order", order), "order", int(order["id"]), log)
    collected.read = {"orders_changed": orders, "customers_changed": customers,
                      "customers_by_id": len(extra), "retried": len(retry)}
    return collected


def _move(collected: Collected, source: str, item: Mapping[str, Any]) -> None:
    moved = advance(collected.marks.get(source), item)
    if moved is not None:
        collected.marks[source] = moved


def _retry_ids(retry: list[dict[str, Any]]) -> dict[str, set[int]]:
    ids: dict[str, set[int]] = {"customer": set(), "order": set()}
    for item in retry:
        source, number = item.get("source"), item.get("id")
        if source in ids and isinstance(number, int):
            ids[str(source)].add(number)
    return ids


def dedupe(contacts: list[Contact], email_key: str | None,
           phone_key: str | None) -> tuple[list[Contact], int]:
    """Keep one contact per customer and per guest email or phone; return them and the drops.

    A registered customer's own record wins over guest orders with the same email or
    phone, and of two records for the same key the one changed later wins.
    """
    chosen: dict[tuple[str, str], Contact] = {}
    for contact in sorted(contacts, key=lambda item: item.modified_gmt):
        if contact.source == "customer":
            chosen[("customer", str(contact.source_id))] = contact
            continue
        guest_key = _guest_key(contact, email_key, phone_key)
        if guest_key is not None:
            chosen[guest_key] = contact
    registered_keys = {key for contact in chosen.values() if contact.source == "customer"
                       for key in _keys(contact, email_key, phone_key)}
    kept = [contact for key, contact in chosen.items()
            if key[0] == "customer" or key not in registered_keys]
    return kept, len(contacts) - len(kept)


def _keys(contact: Contact, email_key: str | None,
          phone_key: str | None) -> list[tuple[str, str]]:
    keys = []
    for name, key in (("email", email_key), ("phone", phone_key)):
        value = contact.properties.get(key) if key else None
        if value:
            keys.append((name, str(value).casefold()))
    return keys


def _guest_key(contact: Contact, email_key: str | None,
               phone_key: str | None) -> tuple[str, str] | None:
    keys = _keys(contact, email_key, phone_key)
    return keys[0] if keys else ("order", str(contact.source_id))
