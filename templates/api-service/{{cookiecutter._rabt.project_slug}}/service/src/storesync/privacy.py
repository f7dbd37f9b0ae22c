"""Shopify's privacy (compliance) webhooks, kept for the privacy handler that comes later.

Shopify sends ``customers/data_request``, ``customers/redact`` and ``shop/redact`` to
every app distributed through its App Store, and each must get a 200 response once
its signature is valid. This release does not act on them yet. The intake stores
each one in the ``privacy_requests`` table of the state file with only its topic,
shop and ids (shop id, customer id, order ids, data request id) and logs that it is
pending. The body is never stored or logged, because a redact or data request carries
the customer's email and phone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .db import Database, check_writable

PRIVACY_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
PENDING = "pending"
# Ids longer than this are not Shopify ids; they are dropped rather than stored.
MAX_ID_LENGTH = 40

SCHEMA = (
    "CREATE TABLE privacy_requests ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " received_at TEXT NOT NULL,"
    " delivery_id TEXT NOT NULL,"
    " topic TEXT NOT NULL,"
    " shop TEXT,"
    " shop_id TEXT,"
    " customer_id TEXT,"
    " order_ids TEXT NOT NULL,"
    " data_request_id TEXT,"
    " status TEXT NOT NULL,"
    " handled_at TEXT)",
    "CREATE INDEX privacy_requests_status ON privacy_requests (status, id)",
)


@dataclass(frozen=True)
class PrivacyRequest:
    """The ids of one privacy webhook; no other field of its body is kept.

    Attributes:
        topic: ``customers/data_request``, ``customers/redact`` or ``shop/redact``.
        shop: The ``X-Shopify-Shop-Domain`` of the delivery.
        shop_id: The body's ``shop_id``.
        customer_id: ``customer.id`` (both customer topics).
        order_ids: ``orders_to_redact`` (redact) or ``orders_requested`` (data request).
        data_request_id: ``data_request.id`` (data request only).
    """

    topic: str
    shop: str | None
    shop_id: str | None = None
    customer_id: str | None = None
    order_ids: tuple[str, ...] = ()
    data_request_id: str | None = None


def _id_text(value: Any) -> str | None:
    """Return a Shopify id as text: an integer, or a string of digits; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= MAX_ID_LENGTH:
        return value.strip()
    return None


def _id_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return ()
    return tuple(text for item in value if (text := _id_text(item)) is not None)


def read_privacy_request(topic: str, shop: str | None, body: bytes) -> PrivacyRequest:
    """Read the ids of a privacy webhook body; a body that is not a JSON object gives none.

    NOTE: the body shapes come from community posts that quote Shopify's docs, not
    from Shopify's reference itself. Fields that are absent or not ids stay empty.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, Mapping):
        return PrivacyRequest(topic=topic, shop=shop)
    customer = data.get("customer")
    request = data.get("data_request")
    orders = data.get("orders_to_redact", data.get("orders_requested"))
    return PrivacyRequest(
        topic=topic,
        shop=shop,
        shop_id=_id_text(data.get("shop_id")),
        customer_id=_id_text(customer.get("id")) if isinstance(customer, Mapping) else None,
        order_ids=_id_list(orders),
        data_request_id=_id_text(request.get("id")) if isinstance(request, Mapping) else None,
    )


@dataclass(frozen=True)
class StoredPrivacyRequest:
    """One row of ``privacy_requests``."""

    id: int
    received_at: str
    delivery_id: str
    request: PrivacyRequest
    status: str
    handled_at: str | None


class PrivacyRequests:
    """The ``privacy_requests`` table of the state file."""

    def __init__(self, database: Database) -> None:
        self.database = database
        database.migrate("privacy", SCHEMA)

    def add(self, request: PrivacyRequest, delivery_id: str, received_at: str) -> int:
        """Store one request as pending and return its id."""
        with self.database.connection() as conn:
            cursor = conn.execute(
                "INSERT INTO privacy_requests (received_at, delivery_id, topic, shop, shop_id, "
                "customer_id, order_ids, data_request_id, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (received_at, delivery_id, request.topic, request.shop, request.shop_id,
                 request.customer_id, json.dumps(list(request.order_ids)),
                 request.data_request_id, PENDING))
            return int(cursor.lastrowid or 0)

    def pending(self, limit: int = 100) -> list[StoredPrivacyRequest]:
        """Return the oldest pending requests first."""
        with self.database.connection() as conn:
            rows = conn.execute(
                "SELECT id, received_at, delivery_id, topic, shop, shop_id, customer_id, "
                "order_ids, data_request_id, status, handled_at FROM privacy_requests "
                "WHERE status = ? ORDER BY id LIMIT ?", (PENDING, limit)).fetchall()
        return [_stored(row) for row in rows]

    def check(self) -> None:
        """Raise if the state file cannot be written now."""
        check_writable(self.database.path)


def _stored(row: Sequence[Any]) -> StoredPrivacyRequest:
    request = PrivacyRequest(topic=row[3], shop=row[4], shop_id=row[5], customer_id=row[6],
                             order_ids=tuple(json.loads(row[7])), data_request_id=row[8])
    return StoredPrivacyRequest(id=row[0], received_at=row[1], delivery_id=row[2],
                                request=request, status=row[9], handled_at=row[10])

