"""Shopify's privacy (compliance) webhooks, queued by the intake for the worker to handle.

Shopify sends ``customers/data_request``, ``customers/redact`` and ``shop/redact`` to
every app distributed through its App Store, and each must get a 200 response once
its signature is valid. The intake puts each one on the durable queue as a job whose
body holds only the ids (:func:`privacy_delivery`): shop id, customer id, order ids and
data request id. The webhook's own body is never stored or logged, because a redact or
data request carries the customer's email and phone. The job, run by any worker,
stores the request in the ``privacy_requests`` table of the worker's state file
(:func:`keep_privacy_job`), so the request reaches the worker even when the intake
runs on another machine or volume. The worker's privacy thread claims pending rows,
acts on them (see :mod:`storesync.privacy_actions`), retries failures with a backoff
and sets ``status`` and ``handled_at``; ``python -m storesync privacy`` lists, shows
and reruns them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .db import Database, check_writable
from .delivery import Delivery

PRIVACY_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
STATUSES = (PENDING, RUNNING, DONE, FAILED)
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
    # The worker's handling: attempts, the next try, the claim of the process that
    # runs it, and the outcome (counts only, never data).
    "ALTER TABLE privacy_requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE privacy_requests ADD COLUMN next_attempt_at REAL NOT NULL DEFAULT 0",
    "ALTER TABLE privacy_requests ADD COLUMN claimed_until REAL",
    "ALTER TABLE privacy_requests ADD COLUMN last_error TEXT",
    "ALTER TABLE privacy_requests ADD COLUMN result TEXT",
)
_COLUMNS = ("id, received_at, delivery_id, topic, shop, shop_id, customer_id, order_ids, "
            "data_request_id, status, handled_at, attempts, last_error, result")


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
    attempts: int = 0
    last_error: str | None = None
    result: dict[str, Any] | None = None


class PrivacyRequests:
    """The ``privacy_requests`` table of the state file."""

    def __init__(self, database: Database) -> None:
        self.database = database
        database.migrate("privacy", SCHEMA)

    def add(self, request: PrivacyRequest, delivery_id: str, received_at: str) -> int:
        """Store one request as pending and return its id."""
        with self.database.connection() as conn:
            return _insert(conn, request, delivery_id, received_at)

    def pending(self, limit: int = 100) -> list[StoredPrivacyRequest]:
        """Return the oldest pending requests first."""
        with self.database.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM privacy_requests "
                "WHERE status = ? ORDER BY id LIMIT ?", (PENDING, limit)).fetchall()
        return [_stored(row) for row in rows]

    def listing(self, status: str | None = None, limit: int = 100) -> list[StoredPrivacyRequest]:
        """Return the newest requests first, of one status or of all."""
        with self.database.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM privacy_requests WHERE ? IS NULL OR status = ? "
                "ORDER BY id DESC LIMIT ?", (status, status, limit)).fetchall()
        return [_stored(row) for row in rows]

    def get(self, request_id: int) -> StoredPrivacyRequest | None:
        """Return one request, or None when there is no such id."""
        with self.database.connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM privacy_requests WHERE id = ?",
                               (request_id,)).fetchone()
        return _stored(row) if row else None

    def claim(self, now: float, lease_seconds: float,
              request_id: int | None = None) -> StoredPrivacyRequest | None:
        """Claim the oldest due request (or ``request_id``) for this process; None when none.

        A claim whose process stopped before finishing expires after ``lease_seconds``,
        and another process then takes the request again.
        """
        with self.database.transaction() as conn:
            row = conn.execute(
                "SELECT id FROM privacy_requests WHERE (? IS NULL OR id = ?) AND "
                "((status = ? AND next_attempt_at <= ?) OR (status = ? AND claimed_until < ?)) "
                "ORDER BY id LIMIT 1",
                (request_id, request_id, PENDING, now, RUNNING, now)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE privacy_requests SET status = ?, claimed_until = ? WHERE id = ?",
                         (RUNNING, now + lease_seconds, row[0]))
        return self.get(int(row[0]))

    def finish(self, request_id: int, result: Mapping[str, Any], handled_at: str) -> None:
        """Mark a request done with its counts."""
        with self.database.transaction() as conn:
            conn.execute("UPDATE privacy_requests SET status = ?, handled_at = ?, result = ?, "
                         "attempts = attempts + 1, last_error = NULL, claimed_until = NULL "
                         "WHERE id = ?", (DONE, handled_at, json.dumps(dict(result)), request_id))

    def fail(self, request_id: int, error: str, next_attempt_at: float | None) -> None:
        """Record a failed attempt: pending again from ``next_attempt_at``, or failed for good."""
        status = PENDING if next_attempt_at is not None else FAILED
        with self.database.transaction() as conn:
            conn.execute("UPDATE privacy_requests SET status = ?, last_error = ?, "
                         "next_attempt_at = ?, attempts = attempts + 1, claimed_until = NULL "
                         "WHERE id = ?", (status, error, next_attempt_at or 0, request_id))

    def reopen(self, request_id: int) -> bool:
        """Make a request pending and due now, e.g. to run it again; False when unknown."""
        with self.database.transaction() as conn:
            cursor = conn.execute("UPDATE privacy_requests SET status = ?, next_attempt_at = 0, "
                                  "claimed_until = NULL WHERE id = ?", (PENDING, request_id))
        return cursor.rowcount == 1

    def check(self) -> None:
        """Raise if the state file cannot be written now."""
        check_writable(self.database.path)


def privacy_delivery(request: PrivacyRequest, identifier: str, received_at: str) -> Delivery:
    """Return the queue job of a privacy request: a delivery whose body holds only its ids."""
    body = {"shop_id": request.shop_id, "customer_id": request.customer_id,
            "order_ids": list(request.order_ids), "data_request_id": request.data_request_id}
    return Delivery(delivery_id=identifier, source="shopify", topic=request.topic,
                    shop=request.shop, received_at=received_at, triggered_at=None,
                    body=json.dumps(body, separators=(",", ":")))


def is_privacy_delivery(delivery: Delivery) -> bool:
    """Return whether a queued delivery is a privacy request made by :func:`privacy_delivery`."""
    return delivery.source == "shopify" and delivery.topic in PRIVACY_TOPICS


def request_of(delivery: Delivery) -> PrivacyRequest:
    """Read the privacy request back from its queue job; ids that are not ids stay empty."""
    try:
        data = json.loads(delivery.body)
    except ValueError:
        data = None
    if not isinstance(data, Mapping):
        return PrivacyRequest(topic=delivery.topic, shop=delivery.shop)
    return PrivacyRequest(topic=delivery.topic, shop=delivery.shop,
                          shop_id=_id_text(data.get("shop_id")),
                          customer_id=_id_text(data.get("customer_id")),
                          order_ids=_id_list(data.get("order_ids")),
                          data_request_id=_id_text(data.get("data_request_id")))


def keep_privacy_job(requests: PrivacyRequests, delivery: Delivery) -> tuple[int, bool]:
    """Store the privacy request of a queue job as pending, once per delivery id and topic.

    A job runs again when its worker stopped before finishing it, so a request that is
    already stored is not stored twice.

    Returns:
        The request's id, and whether this call stored it.
    """
    request = request_of(delivery)
    with requests.database.transaction() as conn:
        row = conn.execute("SELECT id FROM privacy_requests WHERE delivery_id = ? AND topic = ?",
                           (delivery.delivery_id, request.topic)).fetchone()
        if row is not None:
            return int(row[0]), False
        return _insert(conn, request, delivery.delivery_id, delivery.received_at), True


def hand_over(requests: PrivacyRequests, enqueue: Callable[[Delivery], None],
              handed_at: str) -> int:
    """Queue each pending or failed request of this state file, then mark it done here.

    For an intake that kept privacy requests in a state file of its own (releases before
    the queue carried them): the worker that runs each job stores the request again in
    the workers' state file. The caller must make sure this state file is not the
    workers' one, because there the job would find the request already stored.

    Returns:
        How many requests were queued.
    """
    moved = 0
    for status in (PENDING, FAILED):
        for stored in requests.listing(status, limit=100_000):
            enqueue(privacy_delivery(stored.request, stored.delivery_id, stored.received_at))
            requests.finish(stored.id, {"handed_over_to_queue": 1}, handed_at)
            moved += 1
    return moved


def _insert(conn: Any, request: PrivacyRequest, delivery_id: str, received_at: str) -> int:
    cursor = conn.execute(
        "INSERT INTO privacy_requests (received_at, delivery_id, topic, shop, shop_id, "
        "customer_id, order_ids, data_request_id, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (received_at, delivery_id, request.topic, request.shop, request.shop_id,
         request.customer_id, json.dumps(list(request.order_ids)), request.data_request_id,
         PENDING))
    return int(cursor.lastrowid or 0)


def _stored(row: Sequence[Any]) -> StoredPrivacyRequest:
    request = PrivacyRequest(topic=row[3], shop=row[4], shop_id=row[5], customer_id=row[6],
                             order_ids=tuple(json.loads(row[7])), data_request_id=row[8])
    return StoredPrivacyRequest(id=row[0], received_at=row[1], delivery_id=row[2],
                                request=request, status=row[9], handled_at=row[10],
                                attempts=row[11], last_error=row[12],
                                result=json.loads(row[13]) if row[13] else None)

