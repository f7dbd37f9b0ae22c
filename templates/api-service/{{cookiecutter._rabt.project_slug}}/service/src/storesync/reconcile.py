"""Reconciliation: pull orders and customers changed since a high-water mark and queue them.

Webhooks are not guaranteed: Shopify gives up after its retries, and WooCommerce core
does not retry a failed delivery at all. So, per store, this job reads what changed
since the last run and feeds it into the same pipeline as webhooks:

* Shopify: Admin GraphQL ``orders`` and ``customers`` with
  ``query: "updated_at:>'<mark>'"``, sorted by ``UPDATED_AT``, paged by cursor. Each
  node is rewritten into the webhook form (``storesync.store_payloads``).
* WooCommerce: ``GET /orders?modified_after=<mark>`` page by page. Its customers
  endpoint has no ``modified_after``, so customers arrive only through their orders'
  billing details.

Each record becomes a :class:`~storesync.delivery.Delivery` with a deterministic id,
``reconcile:<kind>:<id>:<updated_at>``, queued through the dedupe store. A second run
over the same change is therefore a duplicate. When the webhook for the same change
arrives later, the worker's newest-state guard skips it because it has the same version.

The high-water mark (``store_marks`` in the state file) moves to the newest
``updated_at`` read, only after every page of a run was queued; each run reads from
``RECONCILE_OVERLAP_SECONDS`` before the mark, so a change saved while a page was
being read is not lost. An order whose version the worker has not seen yet is counted
as missed by webhooks and logged at ERROR.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from . import metrics
from .db import Database
from .dedupe import dedupe_key
from .delivery import STORE_READ_PREFIX, Delivery
from .record_keys import record_key, shop_part
from .settings import Settings
from .store_api import ShopifyAdmin, WooCommerceApi, iso_z, open_client
from .store_payloads import shopify_customer, shopify_order

log = logging.getLogger("storesync.reconcile")

MARKS_COMPONENT = "store_marks"
MARKS_SCHEMA = (
    "CREATE TABLE store_marks (platform TEXT NOT NULL, shop TEXT NOT NULL, kind TEXT NOT NULL,"
    " mark TEXT NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (platform, shop, kind))",
)
# The topic each reconciled record is queued under, per platform and kind.
TOPICS = {
    ("shopify", "order"): "orders/updated",
    ("shopify", "customer"): "customers/update",
    ("woocommerce", "order"): "order.updated",
}
DELIVERY_PREFIX = STORE_READ_PREFIX


class Enqueue(Protocol):
    """Queues a delivery unless its dedupe key was seen: ``DeliveryQueue.enqueue_once``."""

    def __call__(self, delivery: Delivery, key: str, now: float) -> bool: ...


@dataclass
class StoreRecord:
    """One changed record read from a store, in the webhook form."""

    kind: str
    store_id: str
    updated_at: str
    body: dict[str, Any]


@dataclass
class RunResult:
    """Counts and high-water mark of one reconciliation run of one store.

    Attributes:
        platform: ``shopify`` or ``woocommerce``.
        shop: The shop domain or site URL.
        read: Records read from the store.
        queued: Records queued (not duplicates of an earlier run or delivery).
        missed_orders: Queued orders whose version the worker had not seen.
        mark: The high-water mark after the run (ISO 8601 UTC).
    """

    platform: str
    shop: str
    read: int = 0
    queued: int = 0
    missed_orders: int = 0
    mark: str | None = None


class Marks:
    """The per-store high-water marks in the state file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(MARKS_COMPONENT, MARKS_SCHEMA)

    def get(self, platform: str, shop: str, kind: str) -> str | None:
        """Return the mark of one store and record kind, or None before the first run."""
        with self.db.reading() as conn:
            row = conn.execute("SELECT mark FROM store_marks WHERE platform = ? AND shop = ? "
                               "AND kind = ?", (platform, shop, kind)).fetchone()
        return str(row[0]) if row else None

    def set(self, platform: str, shop: str, kind: str, mark: str, now: float) -> None:
        """Store a mark; a mark older than the stored one is ignored."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO store_marks (platform, shop, kind, mark, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, shop, kind) DO UPDATE SET "
                "mark = excluded.mark, updated_at = excluded.updated_at "
                "WHERE excluded.mark > store_marks.mark", (platform, shop, kind, mark, now))


def parse_utc(text: str) -> datetime:
    """Read an ISO 8601 time; one without an offset is UTC (WooCommerce's ``*_gmt`` fields).

    Raises:
        ValueError: ``text`` is not an ISO 8601 time.
    """
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def delivery_for(platform: str, shop: str, record: StoreRecord, now: float) -> Delivery:
    """Build the delivery the worker handles for one reconciled record.

    The id depends only on the record and its version, so reading the same change
    twice gives the same dedupe key.
    """
    received = datetime.fromtimestamp(now, UTC).isoformat()
    return Delivery(
        delivery_id=f"{DELIVERY_PREFIX}:{record.kind}:{record.store_id}:{record.updated_at}",
        source=platform, topic=TOPICS[(platform, record.kind)], shop=shop,
        received_at=received, triggered_at=record.updated_at,
        body=json.dumps(record.body, ensure_ascii=False))


# --- reading the stores ------------------------------------------------------------------


def shopify_changes(client: ShopifyAdmin, since: datetime, until: datetime | None = None,
                    field: str = "updated_at") -> Iterator[list[StoreRecord]]:
    """Yield pages of orders, then customers, changed after ``since`` (and before ``until``)."""
    search = f"{field}:>'{iso_z(since)}'"
    if until is not None:
        search += f" AND {field}:<'{iso_z(until)}'"
    for page in client.orders(search):
        yield [_record("order", shopify_order(node)) for node in page]
    if field == "updated_at":
        for page in client.customers(search):
            yield [_record("customer", shopify_customer(node)) for node in page]


def woocommerce_changes(client: WooCommerceApi, since: datetime,
                        until: datetime | None = None,
                        field: str = "updated_at") -> Iterator[list[StoreRecord]]:
    """Yield pages of orders modified after ``since`` (or, for ``created_at``, created
    between ``since`` and ``until``)."""
    pages = (client.orders(modified_after=since) if field == "updated_at"
             else client.orders(created_after=since, created_before=until))
    for page in pages:
        yield [StoreRecord("order", str(body.get("id")),
                           str(body.get("date_modified_gmt") or body.get("date_created_gmt")),
                           body) for body in page]


def _record(kind: str, body: dict[str, Any]) -> StoreRecord:
    return StoreRecord(kind, str(body.get("id")), str(body.get("updated_at")), body)


# --- one run -----------------------------------------------------------------------------


def _order_seen(state: sqlite3.Connection, platform: str, shop: str, record: StoreRecord) -> bool:
    """Return whether the worker has already handled this version of the order or a newer one."""
    resource = f"deals:{record_key(shop_part(platform, shop), record.store_id)}"
    try:
        row = state.execute("SELECT updated_at FROM sync_versions WHERE resource = ?",
                            (resource,)).fetchone()
    except sqlite3.OperationalError:  # no worker has run on this state file yet
        return False
    return row is not None and float(row[0]) >= parse_utc(record.updated_at).timestamp()


def queue_pages(platform: str, shop: str, pages: Iterable[list[StoreRecord]], enqueue: Enqueue,
                db: Database, clock: Callable[[], float],
                progress: Callable[[int], None] | None = None,
                count_missed: bool = True) -> RunResult:
    """Queue every record of ``pages``; return the counts and the newest ``updated_at``.

    With ``count_missed`` (reconciliation) each queued order the worker had not seen is
    counted and logged at ERROR as missed by the webhooks. A backfill passes False,
    because it imports history that no webhook was meant to deliver.

    NOTE: an order whose webhook delivery still waits in the queue also counts as
    missed, because the queued jobs are not searched for it. So a long queue can raise
    false alarms.
    """
    result = RunResult(platform, shop)
    newest: datetime | None = None
    for page in pages:
        for record in page:
            result.read += 1
            seen = True
            if count_missed and record.kind == "order":
                with db.reading() as conn:
                    seen = _order_seen(conn, platform, shop, record)
            now = clock()
            delivery = delivery_for(platform, shop, record, now)
            if enqueue(delivery, dedupe_key(platform, delivery.delivery_id), now):
                result.queued += 1
                if not seen:
                    result.missed_orders += 1
                    log.error("reconciliation found an order the webhooks missed", extra={
                        "source": platform, "shop": shop, "order_id": record.store_id,
                        "updated_at": record.updated_at, "delivery_id": delivery.delivery_id})
            moment = parse_utc(record.updated_at)
            newest = moment if newest is None or moment > newest else newest
        if progress is not None:
            progress(len(page))
    result.mark = iso_z(newest) if newest is not None else None
    return result


def reconcile_store(platform: str, shop: str, read: Callable[[datetime], Iterable[list[
        StoreRecord]]], enqueue: Enqueue, db: Database, settings: Settings,
        clock: Callable[[], float] = time.time) -> RunResult:
    """Run reconciliation for one store and move its high-water mark.

    Args:
        platform: ``shopify`` or ``woocommerce``.
        shop: The shop domain or site URL, as webhooks name it.
        read: Returns the pages of records changed after the given time.
        enqueue: ``DeliveryQueue.enqueue_once``.
        db: The state file (marks and the worker's versions).
        settings: For the overlap and the first run's look-back.
        clock: Seconds since the epoch.

    Raises:
        StoreApiError: the store could not be read; the mark stays where it was.
    """
    marks = Marks(db)
    stored = marks.get(platform, shop, "changes")
    if stored is None:
        since = datetime.fromtimestamp(clock(), UTC) - timedelta(
            hours=settings.reconcile_first_lookback_hours)
    else:
        since = parse_utc(stored) - timedelta(seconds=settings.reconcile_overlap_seconds)
    result = queue_pages(platform, shop, read(since), enqueue, db, clock)
    if result.mark is not None:
        marks.set(platform, shop, "changes", result.mark, clock())
    result.mark = marks.get(platform, shop, "changes")
    metrics.RECONCILE_MISSED_ORDERS.labels(source=platform).inc(result.missed_orders)
    metrics.RECONCILE_LAST_SUCCESS.labels(source=platform).set(clock())
    log.info("reconciliation finished", extra={
        "source": platform, "shop": shop, "read": result.read, "queued": result.queued,
        "missed_orders": result.missed_orders, "mark": result.mark})
    return result


def store_readers(settings: Settings, transport: Any = None,
                  sleep: Callable[[float], None] = time.sleep
                  ) -> dict[str, tuple[str, Any, Callable[..., Iterator[list[StoreRecord]]]]]:
    """Return, per platform with credentials, its shop name, open client and change reader."""
    from .store_settings import store_api_platforms

    readers: dict[str, tuple[str, Any, Callable[..., Iterator[list[StoreRecord]]]]] = {}
    for platform in store_api_platforms(settings):
        client = open_client(settings, platform, transport=transport, sleep=sleep)
        if isinstance(client, ShopifyAdmin):
            readers[platform] = (client.shop_domain, client, partial(shopify_changes, client))
        else:
            # WooCommerce names its site with a trailing slash in X-WC-Webhook-Source.
            readers[platform] = (f"{client.site_url}/", client,
                                 partial(woocommerce_changes, client))
    return readers


def reconcile_all(settings: Settings, enqueue: Enqueue, db: Database,
                  clock: Callable[[], float] = time.time, transport: Any = None,
                  sleep: Callable[[float], None] = time.sleep) -> list[RunResult]:
    """Reconcile every store with credentials; a failing store is logged and skipped.

    Returns:
        One result per store that finished.
    """
    from .store_api import StoreApiError

    results = []
    for platform, (shop, client, read) in store_readers(settings, transport, sleep).items():
        try:
            results.append(reconcile_store(platform, shop, read, enqueue, db, settings, clock))
        except StoreApiError as error:
            metrics.RECONCILE_FAILURES.labels(source=platform).inc()
            log.error("reconciliation failed; the mark stays and the next run reads again",
                      extra={"source": platform, "shop": shop, "error": str(error)})
        finally:
            client.close()
    return results


def results_as_dicts(results: Iterable[RunResult]) -> list[Mapping[str, Any]]:
    """Return results as JSON-safe dicts, for the CLI's ``--json``."""
    return [dict(vars(result)) for result in results]
