"""In-memory store of the WooCommerce stand-in: customers, orders, injected faults, call counts.

Records are kept in the REST API v3 shape. Dates are stored as WooCommerce writes them:
``date_*_gmt`` in UTC and ``date_*`` in the site's time zone, both without an offset
and to the second. Every method takes the lock, because uvicorn serves requests on
its event loop while tests read and change the store from their own thread.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Fault", "WooStandinConfig", "WooState", "format_wc_date", "parse_wc_date"]

WC_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
# The site time zone of a Saudi store (Asia/Riyadh has no daylight saving time).
DEFAULT_SITE_UTC_OFFSET_HOURS = 3.0

_ADDRESS_KEYS = ("first_name", "last_name", "company", "address_1", "address_2", "city",
                 "state", "postcode", "country")


@dataclass
class WooStandinConfig:
    """Settings of the stand-in store.

    Attributes:
        consumer_key: The REST API key the store accepts (a placeholder, never a real key).
        consumer_secret: The secret that goes with ``consumer_key``.
        key_permissions: ``read``, ``write`` or ``read_write``, as the key's settings page offers.
        https: Whether the stand-in plays a site reached over HTTPS. WooCommerce accepts
            the key and secret (Basic auth or query string) only over HTTPS; over plain
            HTTP it requires OAuth 1.0a signatures, which the stand-in does not implement,
            so with False every request counts as unauthenticated.
        site_utc_offset_hours: The site's time zone, for the dates without ``_gmt``.
        clock: Seconds since the epoch; tests pass a clock they move by hand.
    """

    consumer_key: str = "ck_test_not_real"
    consumer_secret: str = "cs_test_not_real"
    key_permissions: str = "read_write"
    https: bool = True
    site_utc_offset_hours: float = DEFAULT_SITE_UTC_OFFSET_HOURS
    clock: Callable[[], float] = field(default=time.time)


@dataclass
class Fault:
    """An injected failure: ``status`` for ``remaining`` calls or until ``until``."""

    status: int
    remaining: int | None
    until: float | None
    path_prefix: str = "/"
    retry_after: int | None = None


def format_wc_date(moment: datetime) -> str:
    """Write a naive or UTC datetime as WooCommerce does: ``2026-03-01T14:05:00``."""
    return moment.strftime(WC_DATE_FORMAT)


def parse_wc_date(text: str) -> datetime | None:
    """Read an ISO 8601 date as a naive datetime; an offset is kept as tzinfo."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.replace(microsecond=0)


def _blank_address(with_email: bool) -> dict[str, str]:
    address = dict.fromkeys(_ADDRESS_KEYS, "")
    if with_email:
        address["email"] = ""
    address["phone"] = ""
    return address


def _merge_address(base: dict[str, str], given: Any) -> dict[str, str]:
    if isinstance(given, Mapping):
        base.update({str(key): "" if value is None else str(value)
                     for key, value in given.items()})
    return base


class WooState:
    """The store the stand-in plays; see the module docstring for the locking rule."""

    def __init__(self, config: WooStandinConfig | None = None) -> None:
        self.config = config or WooStandinConfig()
        self.lock = threading.RLock()
        self._seed_customers: list[dict[str, Any]] = []
        self._seed_orders: list[dict[str, Any]] = []
        self.reset()

    # -- set-up -------------------------------------------------------------

    def reset(self, seed: bool = True) -> int:
        """Forget every change, call count and fault; return how many seeded records remain.

        Args:
            seed: Load the seed again; False leaves an empty store and clears the seed.
        """
        with self.lock:
            self.customers: dict[int, dict[str, Any]] = {}
            self.orders: dict[int, dict[str, Any]] = {}
            self.calls: Counter[tuple[str, str, int]] = Counter()
            self.faults: list[Fault] = []
            # Webhooks and coupons (woocommerce_hooks.py); reset empties them, seed or not.
            self.webhooks: dict[int, dict[str, Any]] = {}
            self.coupons: dict[int, dict[str, Any]] = {}
            self._next_id = 1
            if not seed:
                self._seed_customers, self._seed_orders = [], []
            for body in self._seed_customers:
                self._store_customer(copy.deepcopy(body), touch=False)
            for body in self._seed_orders:
                self._store_order(copy.deepcopy(body), touch=False)
            return len(self.customers) + len(self.orders)

    def seed(self, customers: Iterable[Mapping[str, Any]] = (),
             orders: Iterable[Mapping[str, Any]] = ()) -> tuple[int, int]:
        """Add records that stay in force: ``reset`` returns to them.

        Dates given in a body are kept; missing ones are set to the clock's time.

        Returns:
            How many customers and orders were stored.
        """
        stored_customers = stored_orders = 0
        with self.lock:
            for body in customers:
                stored = self._store_customer(dict(body), touch=False)
                self._seed_customers.append(copy.deepcopy(stored))
                stored_customers += 1
            for body in orders:
                stored = self._store_order(dict(body), touch=False)
                self._seed_orders.append(copy.deepcopy(stored))
                stored_orders += 1
        return stored_customers, stored_orders

    # -- time ---------------------------------------------------------------

    def now(self) -> float:
        """Return the clock's seconds since the epoch."""
        return self.config.clock()

    def now_gmt(self) -> datetime:
        """Return the clock's time as a naive UTC datetime, to the second."""
        return datetime.fromtimestamp(int(self.now()), UTC).replace(tzinfo=None)

    def site_time(self, gmt: datetime) -> datetime:
        """Return the site's local time for a naive UTC datetime."""
        return gmt + timedelta(hours=self.config.site_utc_offset_hours)

    def _stamp(self, body: dict[str, Any], name: str, touch: bool) -> None:
        """Fill ``date_<name>`` and ``date_<name>_gmt``; ``touch`` sets them to now."""
        gmt_key, local_key = f"date_{name}_gmt", f"date_{name}"
        given = parse_wc_date(str(body.get(gmt_key) or "")) if not touch else None
        if given is not None and given.tzinfo is not None:
            given = given.astimezone(UTC).replace(tzinfo=None)
        gmt = given or self.now_gmt()
        body[gmt_key] = format_wc_date(gmt)
        body[local_key] = format_wc_date(self.site_time(gmt))

    def _take_id(self, body: Mapping[str, Any]) -> int:
        given = body.get("id")
        if isinstance(given, int) and not isinstance(given, bool) and given > 0:
            self._next_id = max(self._next_id, given + 1)
            return given
        number = self._next_id
        self._next_id += 1
        return number

    # -- records ------------------------------------------------------------

    def _store_customer(self, body: dict[str, Any], touch: bool) -> dict[str, Any]:
        number = self._take_id(body)
        existing = self.customers.get(number)
        record: dict[str, Any] = existing or {
            "id": number, "email": "", "first_name": "", "last_name": "", "role": "customer",
            "username": "", "billing": _blank_address(True), "shipping": _blank_address(False),
            "is_paying_customer": False, "avatar_url": "", "meta_data": []}
        for key, value in body.items():
            if key in ("billing", "shipping"):
                record[key] = _merge_address(dict(record[key]), value)
            elif key != "id":
                record[key] = value
        record["id"] = number
        if existing is None:
            self._stamp(record, "created", touch=False)
        self._stamp(record, "modified", touch)
        self.customers[number] = record
        return record

    def _store_order(self, body: dict[str, Any], touch: bool) -> dict[str, Any]:
        number = self._take_id(body)
        existing = self.orders.get(number)
        record: dict[str, Any] = existing or {
            "id": number, "parent_id": 0, "number": str(number), "order_key": f"wc_order_{number}",
            "created_via": "checkout", "status": "processing", "currency": "SAR",
            "discount_total": "0.00", "shipping_total": "0.00", "total": "0.00",
            "total_tax": "0.00", "prices_include_tax": True, "customer_id": 0,
            "customer_note": "", "billing": _blank_address(True), "shipping": _blank_address(False),
            "payment_method": "", "payment_method_title": "", "transaction_id": "",
            "date_paid": None, "date_paid_gmt": None, "date_completed": None,
            "date_completed_gmt": None, "line_items": [], "tax_lines": [], "shipping_lines": [],
            "fee_lines": [], "coupon_lines": [], "refunds": [], "meta_data": []}
        for key, value in body.items():
            if key in ("billing", "shipping"):
                record[key] = _merge_address(dict(record[key]), value)
            elif key != "id":
                record[key] = value
        record["id"] = number
        if existing is None:
            self._stamp(record, "created", touch=False)
        self._stamp(record, "modified", touch)
        self.orders[number] = record
        return record

    def put_customer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create or change a customer now, as the store's admin or the customer would.

        ``date_modified`` becomes the clock's time. Returns a copy of the stored record.
        """
        with self.lock:
            return copy.deepcopy(self._store_customer(dict(body), touch=True))

    def put_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create or change an order now; ``date_modified`` becomes the clock's time."""
        with self.lock:
            return copy.deepcopy(self._store_order(dict(body), touch=True))

    def customer(self, number: int) -> dict[str, Any] | None:
        """Return a copy of customer ``number``, or None."""
        with self.lock:
            found = self.customers.get(number)
            return copy.deepcopy(found) if found is not None else None

    def order(self, number: int) -> dict[str, Any] | None:
        """Return a copy of order ``number``, or None."""
        with self.lock:
            found = self.orders.get(number)
            return copy.deepcopy(found) if found is not None else None

    def all_customers(self) -> list[dict[str, Any]]:
        """Return copies of every customer, by id."""
        with self.lock:
            return [copy.deepcopy(self.customers[key]) for key in sorted(self.customers)]

    def all_orders(self) -> list[dict[str, Any]]:
        """Return copies of every order, by id."""
        with self.lock:
            return [copy.deepcopy(self.orders[key]) for key in sorted(self.orders)]

    # -- faults and calls ---------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; the oldest matching fault applies first."""
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str) -> Fault | None:
        """Return the fault that applies to a call to ``path`` now, or None."""
        with self.lock:
            now = self.now()
            self.faults = [fault for fault in self.faults
                           if (fault.remaining is None or fault.remaining > 0)
                           and (fault.until is None or fault.until > now)]
            for fault in self.faults:
                if path.startswith(fault.path_prefix):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
            return None

    def record_call(self, method: str, template: str, status: int) -> None:
        """Count one call by method, route template and status."""
        with self.lock:
            self.calls[(method, template, status)] += 1
