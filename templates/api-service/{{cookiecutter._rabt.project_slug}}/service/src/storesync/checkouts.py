"""Checkout events on HubSpot and Zoho CRM: the contact's last checkout roll-ups.

HubSpot custom behavioural events need an Enterprise subscription, so the worker
sends no event records to HubSpot, nor to Zoho CRM's events module. The field map's
events module names what a checkout writes on the contact instead: the
``last_checkout_at`` and ``last_cart_value_sar`` roll-ups, read from one
``checkout_started`` event. That event comes from the Shopify custom pixel, from a
``checkouts/create`` or ``checkouts/update`` webhook, or from a headless storefront.

A pixel event comes from a public endpoint that any program can post to, so an
event never creates a contact. It updates a contact the same delivery names (a
checkout webhook carries one) or one whose email the service has already recorded. Every other
behaviour event (page views, add to cart, completed checkouts) has no HubSpot target
in the field map, and the worker logs that reason with the job.

The contact found here is also the one the abandoned-cart timer starts for
(``storesync.playbooks``), because a pixel or storefront event carries no contact record.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .delivery import Delivery
from .runtime.engine import HUBSPOT_EVENT_PREFIX, Record
from .sync_store import EMAIL_KIND, OutboxItem, SyncStore, properties_of

log = logging.getLogger("storesync.worker")

# The event key whose event fills the roll-ups. On HubSpot the engine writes it as the
# event definition's name, with the ``ecom_`` prefix.
CHECKOUT_EVENT = "checkout_started"
CHECKOUT_EVENT_NAMES = frozenset({CHECKOUT_EVENT, HUBSPOT_EVENT_PREFIX + CHECKOUT_EVENT})
# Contact roll-up → event field it is read from.
CHECKOUT_ROLLUPS = {"last_checkout_at": "occurred_at", "last_cart_value_sar": "cart_value"}
NO_HUBSPOT_TARGET = ("the field map gives this behaviour event no HubSpot property (custom "
                     "behavioural events need HubSpot Enterprise), so nothing was sent")
NO_EMAIL = ("the checkout has no email yet, so no contact was matched and nothing was sent")
UNKNOWN_CONTACT = ("no contact with this email has synced yet, and a behaviour event never "
                   "creates one (the checkout webhook or the order does), so nothing was sent")


@dataclass(frozen=True)
class Checkout:
    """The contact roll-ups one ``checkout_started`` event sets, the buyer's email and the time."""

    email: str | None
    properties: dict[str, Any]
    occurred_at: str | None = None


def checkout_of(mapping: Mapping[str, Any], rollup_targets: Mapping[str, str],
                records: Sequence[Record]) -> Checkout | None:
    """Return the roll-ups of the delivery's ``checkout_started`` event, if it has one.

    None when the delivery has no such event, or when the field map names neither
    roll-up or the event gives no value for them.
    """
    fields = properties_of(mapping, "event")
    key_target = fields.get("event_key")
    for record in records:
        if record.entity != "event" or key_target is None:
            continue
        if record.properties.get(key_target) not in CHECKOUT_EVENT_NAMES:
            continue
        values: dict[str, Any] = {}
        for rollup, field_name in CHECKOUT_ROLLUPS.items():
            target = rollup_targets.get(rollup)
            source = fields.get(field_name)
            value = record.properties.get(source) if source else None
            if target is not None and value is not None:
                values[target] = value
        if not values:
            return None
        email_target = fields.get("customer_email")
        email = record.properties.get(email_target) if email_target else None
        time_target = fields.get("occurred_at")
        occurred_at = record.properties.get(time_target) if time_target else None
        return Checkout(email=str(email) if email else None, properties=values,
                        occurred_at=str(occurred_at) if occurred_at else None)
    return None


def has_events(records: Sequence[Record]) -> bool:
    """Return whether the delivery mapped to any behaviour event record."""
    return any(record.entity == "event" for record in records)


@dataclass(frozen=True)
class ContactRef:
    """The local contact a checkout updates and the CRM upsert key of that contact."""

    key: str
    id_property: str | None
    id_value: str | None


def contact_for(conn: sqlite3.Connection, checkout: Checkout, named: ContactRef | None,
                email_property: str) -> tuple[ContactRef | None, str | None]:
    """Return the contact to update, or None and the reason nothing is sent.

    ``named`` is the contact the same delivery wrote, if any. Otherwise the email
    must be in the identity table, which contains every contact the worker has written.
    """
    if named is not None:
        return named, None
    if not checkout.email:
        return None, NO_EMAIL
    row = conn.execute("SELECT contact_key FROM sync_identity WHERE kind = ? AND value = ?",
                       (EMAIL_KIND, checkout.email)).fetchone()
    if row is None:
        return None, UNKNOWN_CONTACT
    return ContactRef(str(row[0]), email_property, checkout.email), None


def write_checkout(conn: sqlite3.Connection, store: SyncStore, checkout: Checkout,
                   contact: ContactRef, version: float, event_id: str) -> bool:
    """Put the checkout roll-ups of ``contact`` in the outbox unless a newer checkout set them.

    The roll-ups keep their own version, apart from the contact's, so a checkout time
    never makes a later customer update look stale. Returns whether they were queued.
    """
    state = store.check_version(conn, f"contacts:{contact.key}:checkout", version, event_id)
    if state != "newer":
        return False
    store.enqueue(conn, OutboxItem(
        object="contacts", key=contact.key, properties=dict(checkout.properties),
        id_property=contact.id_property, id_value=contact.id_value, event_id=event_id,
        resource=f"contacts:{contact.key}"))
    return True


_noted: set[tuple[str, str, str]] = set()
_noted_lock = threading.Lock()


def note_unsent(delivery: Delivery, reason: str | None) -> None:
    """Log why a behaviour event sent nothing to HubSpot (``NO_HUBSPOT_TARGET`` for None).

    Page views can arrive many times a second, so each reason is logged at INFO once
    per source and topic in a process, and at DEBUG after that. The email is never logged.
    """
    text = reason or NO_HUBSPOT_TARGET
    noted = (delivery.source, delivery.topic, text)
    with _noted_lock:
        first = noted not in _noted
        _noted.add(noted)
    log.log(logging.INFO if first else logging.DEBUG, "behaviour event not sent: %s", text,
            extra={"event_id": delivery.delivery_id, "source": delivery.source,
                   "topic": delivery.topic})
