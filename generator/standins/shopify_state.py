"""In-memory store of the Shopify Admin GraphQL stand-in: orders, customers, webhook
subscriptions, discount codes and the cost bucket.

Orders and customers are kept as GraphQL nodes (``id`` is a ``gid://shopify/...`` global
id, ``legacyResourceId`` the numeric id as a string, times in ISO 8601 UTC with ``Z``).
Every method takes the lock, because uvicorn serves requests on its event loop while
tests read and change the store from their own thread.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["CostBucket", "ShopifyStandinConfig", "ShopifyState", "gid", "iso_time"]


@dataclass
class ShopifyStandinConfig:
    """Settings of the stand-in shop.

    Attributes:
        shop_domain: The ``*.myshopify.com`` domain the shop plays.
        access_token: The Admin API access token it accepts (a placeholder, never a real one).
        api_versions: API versions it serves under ``/admin/api/<version>/graphql.json``.
        maximum_available: Size of the cost bucket in points.
        restore_rate: Points the bucket refills per second.
        throttled_status: HTTP status of a throttled response. NOTE: Shopify's GraphQL
            docs show the ``THROTTLED`` error body but do not state the status; 200 is
            what GraphQL servers usually send, and some posts report 429, so it is a setting.
        clock: Seconds since the epoch; tests pass a clock they move by hand.
    """

    shop_domain: str = "demo-store.myshopify.com"
    access_token: str = "shpat_test_not_real"
    api_versions: tuple[str, ...] = ("2025-07", "2025-10", "2026-01")
    # Standard plan figures from shopify.dev's GraphQL Admin rate-limit page: 100 points
    # per second. NOTE: the bucket size of 2000 points is an estimate.
    maximum_available: float = 2000.0
    restore_rate: float = 100.0
    throttled_status: int = 200
    clock: Callable[[], float] = field(default=time.time)


def gid(kind: str, number: int | str) -> str:
    """Return the global id of a resource, e.g. ``gid://shopify/Order/1001``."""
    return f"gid://shopify/{kind}/{number}"


def iso_time(seconds: float) -> str:
    """Write seconds since the epoch as Shopify's ISO 8601 UTC form, ``...Z``."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CostBucket:
    """The leaky bucket of query cost points, refilled continuously at ``restore_rate``."""

    def __init__(self, maximum: float, restore_rate: float, now: float) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.available = maximum
        self.updated = now

    def refill(self, now: float) -> None:
        """Add the points restored since the last call."""
        elapsed = max(0.0, now - self.updated)
        self.available = min(self.maximum, self.available + elapsed * self.restore_rate)
        self.updated = now

    def status(self) -> dict[str, float]:
        """Return the ``throttleStatus`` object of ``extensions.cost``."""
        return {"maximumAvailable": self.maximum, "currentlyAvailable": round(self.available, 1),
                "restoreRate": self.restore_rate}


class ShopifyState:
    """The shop the stand-in plays; see the module docstring for the locking rule."""

    def __init__(self, config: ShopifyStandinConfig | None = None) -> None:
        self.config = config or ShopifyStandinConfig()
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every record, subscription, discount, call count and injected throttle."""
        with self.lock:
            self.orders: dict[int, dict[str, Any]] = {}
            self.customers: dict[int, dict[str, Any]] = {}
            self.subscriptions: dict[int, dict[str, Any]] = {}
            self.discounts: dict[int, dict[str, Any]] = {}
            self.calls: Counter[str] = Counter()
            self.forced_throttles = 0
            self._next_id = 1000
            self.bucket = CostBucket(self.config.maximum_available, self.config.restore_rate,
                                     self.now())

    def now(self) -> float:
        """Return the clock's seconds since the epoch."""
        return self.config.clock()

    def take_id(self) -> int:
        """Return a new numeric id."""
        with self.lock:
            self._next_id += 1
            return self._next_id

    # -- records ------------------------------------------------------------

    def put_order(self, body: Mapping[str, Any], touch: bool = True) -> dict[str, Any]:
        """Create or change an order given in GraphQL form; ``touch`` sets ``updatedAt`` to now.

        Missing fields get defaults; ``legacyResourceId`` picks the order to change.
        """
        with self.lock:
            number = int(body.get("legacyResourceId") or self.take_id())
            self._next_id = max(self._next_id, number)
            now = iso_time(self.now())
            record = self.orders.get(number) or _blank_order(number, now)
            record.update({key: copy.deepcopy(value) for key, value in body.items()})
            record["id"], record["legacyResourceId"] = gid("Order", number), str(number)
            if touch or not body.get("updatedAt"):
                record["updatedAt"] = now
            self.orders[number] = record
            return copy.deepcopy(record)

    def put_customer(self, body: Mapping[str, Any], touch: bool = True) -> dict[str, Any]:
        """Create or change a customer given in GraphQL form, like :meth:`put_order`."""
        with self.lock:
            number = int(body.get("legacyResourceId") or self.take_id())
            self._next_id = max(self._next_id, number)
            now = iso_time(self.now())
            record = self.customers.get(number) or {
                "id": gid("Customer", number), "legacyResourceId": str(number),
                "email": None, "phone": None, "firstName": None, "lastName": None,
                "createdAt": now, "updatedAt": now, "tags": [],
                "emailMarketingConsent": None, "smsMarketingConsent": None}
            record.update({key: copy.deepcopy(value) for key, value in body.items()})
            record["id"], record["legacyResourceId"] = gid("Customer", number), str(number)
            if touch or not body.get("updatedAt"):
                record["updatedAt"] = now
            self.customers[number] = record
            return copy.deepcopy(record)

    def seed(self, orders: Iterable[Mapping[str, Any]] = (),
             customers: Iterable[Mapping[str, Any]] = ()) -> tuple[int, int]:
        """Store records keeping the ``updatedAt`` they carry; return how many of each."""
        stored = [0, 0]
        for body in orders:
            self.put_order(body, touch=False)
            stored[0] += 1
        for body in customers:
            self.put_customer(body, touch=False)
            stored[1] += 1
        return stored[0], stored[1]

    def all_orders(self) -> list[dict[str, Any]]:
        """Return copies of every order, by id."""
        with self.lock:
            return [copy.deepcopy(self.orders[key]) for key in sorted(self.orders)]

    def all_customers(self) -> list[dict[str, Any]]:
        """Return copies of every customer, by id."""
        with self.lock:
            return [copy.deepcopy(self.customers[key]) for key in sorted(self.customers)]

    # -- cost ---------------------------------------------------------------

    def charge(self, cost: float) -> tuple[bool, dict[str, float]]:
        """Take ``cost`` points when the bucket contains them; return (allowed, throttle status)."""
        with self.lock:
            self.bucket.refill(self.now())
            if self.forced_throttles > 0:
                self.forced_throttles -= 1
                return False, self.bucket.status()
            if self.bucket.available < cost:
                return False, self.bucket.status()
            self.bucket.available -= cost
            return True, self.bucket.status()

    def refund(self, points: float) -> None:
        """Give back the difference between requested and actual cost."""
        with self.lock:
            self.bucket.available = min(self.bucket.maximum, self.bucket.available + points)

    def record_call(self, name: str) -> None:
        """Count one call by operation name (the root field, or ``throttled``)."""
        with self.lock:
            self.calls[name] += 1


def _blank_order(number: int, now: str) -> dict[str, Any]:
    money = {"shopMoney": {"amount": "0.0", "currencyCode": "SAR"}}
    return {
        "id": gid("Order", number), "legacyResourceId": str(number), "name": f"#{number}",
        "email": None, "phone": None, "createdAt": now, "updatedAt": now, "processedAt": now,
        "cancelledAt": None, "closedAt": None, "currencyCode": "SAR",
        "displayFinancialStatus": "PAID", "displayFulfillmentStatus": "UNFULFILLED",
        "totalPriceSet": copy.deepcopy(money), "subtotalPriceSet": copy.deepcopy(money),
        "totalTaxSet": copy.deepcopy(money), "totalDiscountsSet": copy.deepcopy(money),
        "tags": [], "note": None, "sourceName": "web", "customer": None,
        "lineItems": {"nodes": []},
    }
