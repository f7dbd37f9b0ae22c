"""Read the customers and guest orders changed since the high-water marks, as CRM contacts.

WooCommerce's ``/customers`` endpoint has no ``modified_after`` parameter (only
``/orders`` has one), so the customer list is read page by page in id order and
compared with ``date_modified_gmt`` here. Orders are read with
``modified_after``; a guest order (``customer_id`` 0) gives a contact from its
billing data, and a registered customer's order leads to that customer's record.

Each run reads only changes made before it started, by the store's own clock (the
``Date`` header of its first response), so a change made while the run pages
through the store is picked up by the next run instead of being skipped.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from .http import HttpFailure, JsonClient
from .logs import JsonLog
from .runtime.engine import map_payload
from .settings import WooSettings
from .state import Mark

API = "/wp-json/wc/v3"
PER_PAGE = 100
WC_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass
class Contact:
    """One contact to write: where it came from, when it changed, and its CRM properties."""

    source: str
    source_id: int
    modified_gmt: str
    properties: dict[str, Any]
    registered: bool

    def ref(self) -> dict[str, Any]:
        """Return the store reference kept for a retry: no personal data."""
        return {"source": self.source, "id": self.source_id}


@dataclass
class Collected:
    """The contacts one read of the store found, and the marks to store once they are written."""

    contacts: list[Contact] = field(default_factory=list)
    marks: dict[str, Mark] = field(default_factory=dict)
    unmapped: int = 0
    read: dict[str, int] = field(default_factory=dict)


def store_client(settings: WooSettings, log: JsonLog) -> JsonClient:
    """Return a client that sends the key by Basic auth or in the query (``settings.auth``)."""
    if settings.auth == "query":
        params = {"consumer_key": settings.consumer_key,
                  "consumer_secret": settings.consumer_secret}
        return JsonClient("woocommerce", settings.url, log, auth=lambda: ({}, params))
    pair = f"{settings.consumer_key}:{settings.consumer_secret}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return JsonClient("woocommerce", settings.url, log, auth=lambda: (headers, {}))


def _parse_gmt(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


class StoreReader:
    """Pages through the store's REST API and maps what changed."""

    def __init__(self, client: JsonClient, mapping: Mapping[str, Any], role: str,
                 log: JsonLog) -> None:
        self.client = client
        self.mapping = mapping
        self.role = role
        self.log = log
        self.started: datetime | None = None

    def pages(self, resource: str, params: Mapping[str, str]) -> Iterator[list[dict[str, Any]]]:
        """Yield each page of a collection, 100 records a page, until the last page."""
        page = 1
        while True:
            response = self.client.request("GET", f"{API}/{resource}",
                                           params={**params, "per_page": str(PER_PAGE),
                                                   "page": str(page)})
            if self.started is None:
                self.started = _server_time(response.headers.get("Date"))
            body = response.json()
            if not isinstance(body, list):
                raise HttpFailure("woocommerce", "GET", f"{API}/{resource}",
                                  response.status_code, "unexpected_body",
                                  "the store did not return a JSON list; check WOOCOMMERCE_URL")
            yield [item for item in body if isinstance(item, dict)]
            total_pages = int(response.headers.get("X-WP-TotalPages") or 0)
            if not body or page >= total_pages:
                return
            page += 1

    def start(self) -> datetime:
        """Return the store's time at the first call (the local clock when it sent no Date)."""
        if self.started is None:
            # NOTE: without a Date header the local clock bounds the run; a store clock
            # far ahead of it could delay a change by one run, never lose it.
            self.started = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        return self.started

    def changed_orders(self, mark: Mark | None) -> Iterator[dict[str, Any]]:
        """Yield orders changed after ``mark`` and before the run started."""
        params = {"orderby": "id", "order": "asc", "dates_are_gmt": "true", "status": "any"}
        if mark is not None:
            # modified_after is exclusive and counts whole seconds, so ask from one second
            # earlier and drop here what the mark already covers.
            since = _parse_gmt(mark.modified_gmt) or datetime(1970, 1, 1)
            params["modified_after"] = (since - timedelta(seconds=1)).strftime(WC_DATE_FORMAT)
        for page in self.pages("orders", params):
            for order in page:
                if self._is_new(order, mark):
                    yield order

    def changed_customers(self, mark: Mark | None) -> Iterator[dict[str, Any]]:
        """Yield customers changed after ``mark`` and before the run started (a full scan)."""
        params = {"orderby": "id", "order": "asc", "role": self.role}
        for page in self.pages("customers", params):
            for customer in page:
                if self._is_new(customer, mark):
                    yield customer

    def by_ids(self, resource: str, ids: list[int]) -> Iterator[dict[str, Any]]:
        """Yield the customers or orders with these ids, whatever their dates."""
        for start in range(0, len(ids), PER_PAGE):
            chunk = ",".join(str(number) for number in ids[start:start + PER_PAGE])
            params = {"include": chunk, "orderby": "id", "order": "asc"}
            params.update({"role": "all"} if resource == "customers" else {"status": "any"})
            for page in self.pages(resource, params):
                yield from page

    def _is_new(self, item: Mapping[str, Any], mark: Mark | None) -> bool:
        modified = _parse_gmt(str(item.get("date_modified_gmt") or ""))
        if modified is None:
            return mark is None
        if modified >= self.start():
            return False  # the next run reads it, after its changes are complete
        return mark is None or mark.admits(modified, int(item.get("id") or 0))

    def contact(self, source: str, body: Mapping[str, Any]) -> Contact | None:
        """Map a customer or an order body to its contact record, or None when it has none."""
        topic = "customer.updated" if source == "customer" else "order.updated"
        result = map_payload(self.mapping, "woocommerce", topic, body)
        record = next((item for item in result.records if item.entity == "contact"), None)
        if record is None:
            return None
        registered = source == "customer" or bool(body.get("customer_id"))
        return Contact(source, int(body.get("id") or 0), str(body.get("date_modified_gmt") or ""),
                       dict(record.properties), registered)


def _server_time(header: str | None) -> datetime | None:
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def advance(mark: Mark | None, item: Mapping[str, Any]) -> Mark | None:
    """Return the mark moved to ``item`` when ``item`` changed later than it."""
    modified = str(item.get("date_modified_gmt") or "")
    number = int(item.get("id") or 0)
    if not modified:
        return mark
    if mark is None or modified > mark.modified_gmt:
        return Mark(modified, [number])
    if modified == mark.modified_gmt and number not in mark.ids:
        return Mark(modified, [*mark.ids, number])
    return mark
