"""Store API clients: Shopify Admin GraphQL and WooCommerce REST v3.

Reconciliation, the webhook subscription check, backfill and the playbooks' discount
codes call the stores through these two classes:

* :class:`ShopifyAdmin` posts to ``/admin/api/<version>/graphql.json`` with the
  ``X-Shopify-Access-Token`` header. Shopify limits calls by query cost: every response
  carries ``extensions.cost.throttleStatus`` (``currentlyAvailable`` points and
  ``restoreRate`` per second), so the client waits before a query the bucket cannot
  pay for, and waits and retries when the response is a ``THROTTLED`` error.
* :class:`WooCommerceApi` calls ``/wp-json/wc/v3`` with the consumer key and secret as
  HTTP Basic credentials, which WooCommerce accepts over HTTPS only. Lists are read
  100 per page up to ``X-WP-TotalPages``.

Both raise :class:`StoreAuthError` for rejected credentials, :class:`StoreUnavailable`
when retries for 429, 5xx and network errors are used up, and :class:`StoreApiError`
for other errors, each naming the store and what to do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger("storesync.store_api")

SHOPIFY_PAGE_SIZE = 100
WOOCOMMERCE_PAGE_SIZE = 100
MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# Used until the first response reports the bucket's real restore rate.
DEFAULT_RESTORE_RATE = 50.0
# NOTE: an estimate of what one page of ORDERS_QUERY costs, used to wait before a query
# when the bucket is low; the real cost arrives with each response.
ESTIMATED_PAGE_COST = 2 + 2 * SHOPIFY_PAGE_SIZE

_MONEY = "shopMoney { amount currencyCode }"
ORDERS_QUERY = f"""
query Orders($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys) {{
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id legacyResourceId name email phone createdAt updatedAt processedAt cancelledAt
      closedAt currencyCode displayFinancialStatus displayFulfillmentStatus tags note
      sourceName
      totalPriceSet {{ {_MONEY} }} subtotalPriceSet {{ {_MONEY} }}
      totalTaxSet {{ {_MONEY} }} totalDiscountsSet {{ {_MONEY} }}
      customer {{ id legacyResourceId email phone firstName lastName }}
      lineItems(first: 100) {{ nodes {{
        id title variantTitle sku quantity
        variant {{ legacyResourceId }} product {{ legacyResourceId }}
        originalUnitPriceSet {{ {_MONEY} }}
      }} }}
    }}
  }}
}}"""
CUSTOMERS_QUERY = """
query Customers($first: Int!, $after: String, $query: String, $sortKey: CustomerSortKeys) {
  customers(first: $first, after: $after, query: $query, sortKey: $sortKey) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId email phone firstName lastName createdAt updatedAt tags
      emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
      smsMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
    }
  }
}"""
ORDERS_COUNT_QUERY = """
query OrdersCount($query: String) {
  ordersCount(query: $query) { count precision }
}"""
SUBSCRIPTIONS_QUERY = """
query Subscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}"""
CREATE_SUBSCRIPTION = """
mutation CreateSubscription($topic: WebhookSubscriptionTopic!,
                            $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}"""
CREATE_DISCOUNT = """
mutation CreateDiscount($basicCodeDiscount: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {
    codeDiscountNode { id }
    userErrors { field code message }
  }
}"""

# The consent mutation and its input field per channel. Shopify keeps no WhatsApp consent.
# NOTE: the SMS mutation is taken to mirror the email one; only the email one was read in
# Shopify's Admin GraphQL reference. Both need the write_customers access scope.
CONSENT_MUTATIONS = {"email": ("customerEmailMarketingConsentUpdate",
                               "CustomerEmailMarketingConsentUpdateInput",
                               "emailMarketingConsent"),
                     "sms": ("customerSmsMarketingConsentUpdate",
                             "CustomerSmsMarketingConsentUpdateInput",
                             "smsMarketingConsent")}


def _consent_mutation(channel: str) -> str:
    root, input_type, field = CONSENT_MUTATIONS[channel]
    return (f"mutation UpdateConsent($input: {input_type}!) {{\n"
            f"  {root}(input: $input) {{\n"
            f"    customer {{ id {field} {{ marketingState consentUpdatedAt }} }}\n"
            "    userErrors { field message }\n"
            "  }\n"
            "}")


class StoreApiError(Exception):
    """A store API call failed; ``status`` is the HTTP status when one arrived."""

    def __init__(self, message: str, status: int | None = None,
                 error_codes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        # The store's own error codes, e.g. Shopify's userErrors code TAKEN.
        self.error_codes = error_codes


class StoreAuthError(StoreApiError):
    """The store rejected the credentials (401 or 403)."""


class StoreUnavailable(StoreApiError):
    """Retries for throttling, 5xx or network errors were used up; try the job later."""


@dataclass(frozen=True)
class DiscountCode:
    """A single-use discount code created in the store.

    Attributes:
        code: The code the customer types at checkout.
        store_id: Shopify's ``DiscountCodeNode`` global id, or WooCommerce's coupon id.
        expires_at: When the code stops working (ISO 8601).
    """

    code: str
    store_id: str
    expires_at: str


def _backoff(attempt: int) -> float:
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def iso_z(moment: datetime) -> str:
    """Write an aware datetime as ISO 8601 UTC with ``Z``, the form Shopify's search reads.

    Raises:
        ValueError: ``moment`` has no time zone.
    """
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Http:
    """One ``httpx.Client`` with the retry rules both stores share."""

    def __init__(self, store: str, base_url: str, timeout: float, headers: Mapping[str, str],
                 auth: httpx.Auth | None, transport: httpx.BaseTransport | None,
                 sleep: Callable[[float], None]) -> None:
        self.store = store
        self.sleep = sleep
        self.client = httpx.Client(base_url=base_url, timeout=timeout, headers=dict(headers),
                                   auth=auth, transport=transport)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries for 429, 5xx and network errors; raise for 401 and 403.

        Raises:
            StoreAuthError: the store rejected the credentials.
            StoreUnavailable: every attempt failed with 429, 5xx or a network error.
        """
        problem = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            wait = _backoff(attempt)
            try:
                response = self.client.request(method, path, **kwargs)
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code in (401, 403):
                    raise StoreAuthError(
                        f"{self.store} rejected the credentials ({response.status_code}) on "
                        f"{method} {path}: {response.text[:200]}. Check the token or key and "
                        "its access scopes.", response.status_code)
                if response.status_code != 429 and response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    wait = _retry_after(response) or wait
            if attempt < MAX_ATTEMPTS:
                log.warning("store API call failed, will retry", extra={
                    "store": self.store, "path": path, "error": problem, "attempt": attempt})
                self.sleep(wait)
        raise StoreUnavailable(f"{self.store} did not respond to {method} {path} after "
                               f"{MAX_ATTEMPTS} attempts ({problem}); the job runs again at "
                               "its next interval.")

    def close(self) -> None:
        self.client.close()


class ShopifyAdmin:
    """Client of the Shopify Admin GraphQL API for one shop.

    Args:
        shop_domain: The ``*.myshopify.com`` domain.
        access_token: The Admin API access token (sent as ``X-Shopify-Access-Token``).
        api_version: The pinned API version, e.g. ``2025-10``.
        base_url: Another address than ``https://<shop_domain>``, e.g. a stand-in.
        timeout: Seconds per HTTP request.
        transport: An httpx transport for tests.
        sleep: Waits the given seconds; tests pass a fake.
    """

    def __init__(self, shop_domain: str, access_token: str, api_version: str, *,
                 base_url: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.shop_domain = shop_domain
        self.path = f"/admin/api/{api_version}/graphql.json"
        self.http = _Http("Shopify", base_url or f"https://{shop_domain}", timeout,
                          {"X-Shopify-Access-Token": access_token}, None, transport, sleep)
        self.available: float | None = None
        self.restore_rate = DEFAULT_RESTORE_RATE
        self.throttled = 0

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def _note_cost(self, body: Mapping[str, Any]) -> None:
        status = ((body.get("extensions") or {}).get("cost") or {}).get("throttleStatus") or {}
        if "currentlyAvailable" in status:
            self.available = float(status["currentlyAvailable"])
        if status.get("restoreRate"):
            self.restore_rate = float(status["restoreRate"])

    def _wait_for(self, cost: float) -> None:
        """Wait until the bucket has refilled enough for a query of ``cost`` points."""
        if self.available is not None and self.available < cost:
            self.http.sleep((cost - self.available) / self.restore_rate)
            self.available = cost

    def execute(self, query: str, variables: Mapping[str, Any],
                estimated_cost: float = 10.0) -> dict[str, Any]:
        """Run one query or mutation and return its ``data``.

        A ``THROTTLED`` answer (with status 200 or 429) waits for the bucket to refill by
        the requested cost and tries again, up to ``MAX_ATTEMPTS`` times.

        Raises:
            StoreApiError: GraphQL errors other than throttling.
            StoreAuthError, StoreUnavailable: see :class:`_Http`.
        """
        for _ in range(MAX_ATTEMPTS):
            self._wait_for(estimated_cost)
            response = self.http.request("POST", self.path,
                                         json={"query": query, "variables": dict(variables)})
            try:
                body = response.json()
            except ValueError as error:
                raise StoreApiError(f"Shopify returned {response.status_code} with a body that "
                                    f"is not JSON: {response.text[:200]}",
                                    response.status_code) from error
            self._note_cost(body)
            errors = body.get("errors") if isinstance(body, dict) else None
            if errors and _is_throttled(errors):
                self.throttled += 1
                requested = float(((body.get("extensions") or {}).get("cost") or {})
                                  .get("requestedQueryCost") or estimated_cost)
                log.warning("Shopify throttled the query; waiting for the cost bucket",
                            extra={"shop": self.shop_domain, "requested_cost": requested,
                                   "available": self.available})
                self.http.sleep(max(1.0, (requested - (self.available or 0)) / self.restore_rate))
                continue
            if errors or response.status_code >= 400:
                raise StoreApiError(f"Shopify rejected the query ({response.status_code}): "
                                    f"{str(errors)[:300]}. Check SHOPIFY_API_VERSION and the "
                                    "app's access scopes.", response.status_code)
            data: dict[str, Any] = body.get("data") or {}
            return data
        raise StoreUnavailable(f"Shopify throttled the query {MAX_ATTEMPTS} times in a row; "
                               "the job runs again at its next interval.")

    def _pages(self, query: str, field: str, variables: Mapping[str, Any],
               cost: float) -> Iterator[list[dict[str, Any]]]:
        after: str | None = None
        while True:
            data = self.execute(query, {**variables, "first": SHOPIFY_PAGE_SIZE,
                                        "after": after}, cost)
            connection = data.get(field) or {}
            yield list(connection.get("nodes") or [])
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                return
            after = str(info["endCursor"])

    def orders(self, search: str) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of order nodes matching a search query, oldest update first.

        Example of ``search``: ``updated_at:>'2026-03-01T00:00:00Z'``.
        """
        return self._pages(ORDERS_QUERY, "orders", {"query": search, "sortKey": "UPDATED_AT"},
                           ESTIMATED_PAGE_COST)

    def orders_count(self, search: str) -> int:
        """Return how many orders match a search query.

        NOTE: Shopify caps the count (``precision: AT_LEAST``) for very large results,
        so a backfill estimate may then be low.
        """
        data = self.execute(ORDERS_COUNT_QUERY, {"query": search}, 1.0)
        return int((data.get("ordersCount") or {}).get("count") or 0)

    def customers(self, search: str) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of customer nodes matching a search query, oldest update first."""
        return self._pages(CUSTOMERS_QUERY, "customers",
                           {"query": search, "sortKey": "UPDATED_AT"}, ESTIMATED_PAGE_COST)

    def webhook_subscriptions(self) -> list[dict[str, Any]]:
        """Return every webhook subscription of the app on this shop: ``id``, ``topic``, ``uri``."""
        found: list[dict[str, Any]] = []
        for page in self._pages(SUBSCRIPTIONS_QUERY, "webhookSubscriptions", {},
                                ESTIMATED_PAGE_COST):
            found.extend(page)
        return found

    def create_webhook_subscription(self, topic: str, uri: str) -> dict[str, Any]:
        """Subscribe ``uri`` to ``topic`` (the enum form, e.g. ``ORDERS_CREATE``).

        Raises:
            StoreApiError: Shopify returned ``userErrors``, which the message lists.
        """
        data = self.execute(CREATE_SUBSCRIPTION, {"topic": topic,
                                                  "webhookSubscription": {"uri": uri}})
        result = data.get("webhookSubscriptionCreate") or {}
        _raise_user_errors("webhookSubscriptionCreate", result)
        created: dict[str, Any] = result.get("webhookSubscription") or {}
        return created

    def create_discount_code(self, code: str, *, title: str, starts_at: datetime,
                             ends_at: datetime, percentage: float | None = None,
                             amount: str | None = None,
                             customer_gid: str | None = None) -> DiscountCode:
        """Create a single-use, expiring code with ``discountCodeBasicCreate``.

        Give exactly one of ``percentage`` (0 to 1, e.g. 0.1 for 10 %) or ``amount`` (a
        decimal string in the shop's currency, taken off the order). The code works once in
        total (``usageLimit: 1``), once per customer, from ``starts_at`` to ``ends_at``, for
        every buyer or only ``customer_gid`` (``gid://shopify/Customer/<id>``).

        Raises:
            ValueError: both or neither of ``percentage`` and ``amount``, or an
                ``ends_at`` not after ``starts_at``.
            StoreApiError: Shopify returned ``userErrors`` (e.g. the code is taken).
        """
        value = _discount_value(percentage, amount)
        if ends_at <= starts_at:
            raise ValueError(f"ends_at {ends_at.isoformat()} must be after starts_at "
                             f"{starts_at.isoformat()}")
        context: dict[str, Any] = {"customers": {"add": [customer_gid]}} if customer_gid \
            else {"all": "ALL"}
        discount = {"title": title, "code": code, "startsAt": iso_z(starts_at),
                    "endsAt": iso_z(ends_at), "usageLimit": 1, "appliesOncePerCustomer": True,
                    "context": context,
                    "customerGets": {"value": value, "items": {"all": True}}}
        data = self.execute(CREATE_DISCOUNT, {"basicCodeDiscount": discount})
        result = data.get("discountCodeBasicCreate") or {}
        _raise_user_errors("discountCodeBasicCreate", result)
        node = result.get("codeDiscountNode") or {}
        return DiscountCode(code=code, store_id=str(node.get("id") or ""),
                            expires_at=iso_z(ends_at))

    def unsubscribe_marketing(self, customer_id: str, channel: str,
                              withdrawn_at: datetime) -> None:
        """Set a customer's email or SMS marketing state to ``UNSUBSCRIBED``.

        Args:
            customer_id: The customer's numeric id (``legacyResourceId``).
            channel: ``email`` or ``sms``.
            withdrawn_at: When the customer withdrew (``consentUpdatedAt``).

        Raises:
            ValueError: Shopify keeps no consent for ``channel``.
            StoreApiError: Shopify returned ``userErrors``, e.g. the customer has no
                email address or phone.
        """
        if channel not in CONSENT_MUTATIONS:
            raise ValueError(f"Shopify keeps no {channel} marketing consent")
        root, _, field = CONSENT_MUTATIONS[channel]
        variables = {"input": {"customerId": f"gid://shopify/Customer/{customer_id}",
                               field: {"marketingState": "UNSUBSCRIBED",
                                       "consentUpdatedAt": iso_z(withdrawn_at)}}}
        data = self.execute(_consent_mutation(channel), variables)
        _raise_user_errors(root, data.get(root) or {})


def _discount_value(percentage: float | None, amount: str | None) -> dict[str, Any]:
    if (percentage is None) == (amount is None):
        raise ValueError("give exactly one of percentage or amount")
    if percentage is not None:
        if not 0 < percentage <= 1:
            raise ValueError(f"percentage {percentage} must be above 0 and at most 1 "
                             "(0.1 is 10 %)")
        return {"percentage": percentage}
    return {"discountAmount": {"amount": amount, "appliesOnEachItem": False}}


def _is_throttled(errors: Any) -> bool:
    if not isinstance(errors, list):
        return False
    return any(isinstance(item, Mapping) and
               ((item.get("extensions") or {}).get("code") == "THROTTLED"
                or item.get("message") == "Throttled") for item in errors)


def _raise_user_errors(operation: str, result: Mapping[str, Any]) -> None:
    errors = result.get("userErrors") or []
    if errors:
        text = "; ".join(f"{'.'.join(error.get('field') or [])}: {error.get('message')}"
                         for error in errors if isinstance(error, Mapping))
        codes = tuple(str(error.get("code")) for error in errors
                      if isinstance(error, Mapping) and error.get("code"))
        raise StoreApiError(f"Shopify rejected {operation}: {text}", error_codes=codes)


class WooCommerceApi:
    """Client of the WooCommerce REST API v3 of one site.

    Args:
        site_url: The site's address, e.g. ``https://shop.example.sa``.
        consumer_key, consumer_secret: A REST API key with read/write access.
        timeout: Seconds per HTTP request.
        transport: An httpx transport for tests.
        sleep: Waits the given seconds; tests pass a fake.
    """

    def __init__(self, site_url: str, consumer_key: str, consumer_secret: str, *,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.site_url = site_url.rstrip("/")
        self.http = _Http("WooCommerce", f"{self.site_url}/wp-json/wc/v3", timeout, {},
                          httpx.BasicAuth(consumer_key, consumer_secret), transport, sleep)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            codes: tuple[str, ...] = ()
            try:
                body = response.json()
                detail = f"{body.get('code')}: {body.get('message')}"
                codes = (str(body["code"]),) if body.get("code") else ()
            except (ValueError, AttributeError):
                detail = response.text[:200]
            raise StoreApiError(f"WooCommerce rejected {method} {path} "
                                f"({response.status_code}): {detail}", response.status_code,
                                codes)
        return response.json()

    def orders(self, *, modified_after: datetime | None = None,
               created_after: datetime | None = None,
               created_before: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield pages of orders, 100 per page, up to ``X-WP-TotalPages``.

        Bounds are exclusive and sent as UTC (``dates_are_gmt=true``). With
        ``modified_after`` the pages run from the oldest change to the newest.
        """
        params: dict[str, Any] = {"per_page": WOOCOMMERCE_PAGE_SIZE, "dates_are_gmt": "true",
                                  "order": "asc",
                                  "orderby": "modified" if modified_after else "date"}
        for name, moment in (("modified_after", modified_after), ("after", created_after),
                             ("before", created_before)):
            if moment is not None:
                params[name] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        page = 1
        while True:
            response = self.http.request("GET", "/orders", params={**params, "page": page})
            if response.status_code >= 400:
                raise StoreApiError(f"WooCommerce rejected GET /orders ({response.status_code}): "
                                    f"{response.text[:200]}", response.status_code)
            yield list(response.json())
            try:
                total_pages = int(response.headers.get("x-wp-totalpages", "1"))
            except ValueError:
                total_pages = 1
            if page >= total_pages:
                return
            page += 1

    def orders_total(self, created_after: datetime, created_before: datetime) -> int:
        """Return how many orders were created in a range, from the ``X-WP-Total`` header."""
        response = self.http.request("GET", "/orders", params={
            "per_page": 1, "dates_are_gmt": "true",
            "after": created_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "before": created_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")})
        if response.status_code >= 400:
            raise StoreApiError(f"WooCommerce rejected GET /orders ({response.status_code}): "
                                f"{response.text[:200]}", response.status_code)
        try:
            return int(response.headers.get("x-wp-total", "0"))
        except ValueError:
            return 0

    def webhooks(self) -> list[dict[str, Any]]:
        """Return every webhook of the site, whatever its status."""
        found: list[dict[str, Any]] = list(self._json("GET", "/webhooks",
                                                      params={"per_page": 100, "status": "all"}))
        return found

    def create_webhook(self, topic: str, delivery_url: str, secret: str | None,
                       name: str) -> dict[str, Any]:
        """Create an active webhook; ``secret`` signs its deliveries when given."""
        body: dict[str, Any] = {"name": name, "topic": topic, "delivery_url": delivery_url,
                                "status": "active"}
        if secret:
            body["secret"] = secret
        created: dict[str, Any] = self._json("POST", "/webhooks", json=body)
        return created

    def activate_webhook(self, webhook_id: int) -> dict[str, Any]:
        """Set a paused or disabled webhook back to ``active``."""
        changed: dict[str, Any] = self._json("PUT", f"/webhooks/{webhook_id}",
                                             json={"status": "active"})
        return changed

    def create_coupon(self, code: str, *, expires_at: datetime, percentage: float | None = None,
                      amount: str | None = None, email: str | None = None) -> DiscountCode:
        """Create a single-use coupon (``usage_limit`` 1) that expires at ``expires_at``.

        Give exactly one of ``percentage`` (0 to 1) or ``amount`` (a decimal string, off the
        cart). ``email`` restricts the coupon to that customer's billing email.

        Raises:
            ValueError: both or neither of ``percentage`` and ``amount``.
            StoreApiError: WooCommerce rejected it (e.g. the code already exists).
        """
        value = _discount_value(percentage, amount)
        body: dict[str, Any] = {
            "code": code, "usage_limit": 1, "usage_limit_per_user": 1, "individual_use": True,
            "date_expires_gmt": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "discount_type": "percent" if "percentage" in value else "fixed_cart",
            "amount": (f"{value['percentage'] * 100:g}" if "percentage" in value
                       else str(amount))}
        if email:
            body["email_restrictions"] = [email]
        created = self._json("POST", "/coupons", json=body)
        return DiscountCode(code=str(created.get("code") or code), store_id=str(created["id"]),
                            expires_at=iso_z(expires_at))

    def update_customer_meta(self, customer_id: str, meta: Mapping[str, str]) -> None:
        """Set meta entries of a customer (``PUT /customers/<id>`` with ``meta_data``).

        NOTE: an entry sent without its ``id`` is taken to replace the customer's entry
        with the same key, as ``WC_Data::update_meta_data`` does, not to add a second one.
        """
        self._json("PUT", f"/customers/{customer_id}",
                   json={"meta_data": [{"key": key, "value": value}
                                       for key, value in meta.items()]})


def open_client(settings: Settings, platform: str, *,
                transport: httpx.BaseTransport | None = None,
                sleep: Callable[[float], None] = time.sleep) -> ShopifyAdmin | WooCommerceApi:
    """Open the store API client of ``platform`` from the settings; close it after use.

    The playbooks call this to create discount codes, e.g.
    ``open_client(settings, "shopify").create_discount_code(...)``.

    Raises:
        ValueError: the platform's store API credentials are not set.
    """
    if platform == "shopify" and settings.shopify_shop_domain and \
            settings.shopify_admin_access_token:
        return ShopifyAdmin(settings.shopify_shop_domain, settings.shopify_admin_access_token,
                            settings.shopify_api_version, base_url=settings.shopify_admin_url,
                            timeout=settings.store_api_timeout_seconds, transport=transport,
                            sleep=sleep)
    if platform == "woocommerce" and settings.woocommerce_site_url and \
            settings.woocommerce_consumer_key and settings.woocommerce_consumer_secret:
        return WooCommerceApi(settings.woocommerce_site_url, settings.woocommerce_consumer_key,
                              settings.woocommerce_consumer_secret,
                              timeout=settings.store_api_timeout_seconds, transport=transport,
                              sleep=sleep)
    needed = ("SHOPIFY_SHOP_DOMAIN and SHOPIFY_ADMIN_ACCESS_TOKEN" if platform == "shopify"
              else "WOOCOMMERCE_SITE_URL, WOOCOMMERCE_CONSUMER_KEY and WOOCOMMERCE_CONSUMER_SECRET")
    raise ValueError(f"the {platform} store API credentials are not set; set {needed}.")
