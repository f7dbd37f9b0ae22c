"""Collection queries of the WooCommerce stand-in: parameter checks, filters, order and pages.

The parameters and their defaults follow the REST API v3 controllers of WooCommerce:

* ``/customers`` (a ``WP_User_Query``): ``page``, ``per_page``, ``offset``, ``order``
  (default ``asc``), ``orderby`` (``id``, ``include``, ``name`` (default) or
  ``registered_date``), ``include``, ``exclude``, ``email``, ``search`` and ``role``
  (default ``customer``; ``all`` for every role). It has **no** ``modified_after``:
  a client that wants recent changes reads every page and compares ``date_modified_gmt``.
* ``/orders``: the same paging, ``order`` (default ``desc``), ``orderby`` (``date``
  (default), ``id``, ``include``, ``title``, ``slug`` or ``modified``), ``status``,
  ``customer``, ``include``, ``exclude``, ``after`` and ``before`` (creation time),
  ``modified_after`` and ``modified_before``, and ``dates_are_gmt``. The date bounds
  are exclusive, and without ``dates_are_gmt=true`` they are read in the site's time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .woocommerce_state import parse_wc_date

__all__ = ["MAX_PER_PAGE", "Page", "QueryError", "customer_page", "order_page"]

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10
ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded",
                  "failed", "checkout-draft", "trash")
CUSTOMER_ORDERBY = ("id", "include", "name", "registered_date")
ORDER_ORDERBY = ("date", "id", "include", "title", "slug", "modified")
# Roles a WordPress site has out of the box, plus "all".
ROLES = ("all", "administrator", "editor", "author", "contributor", "subscriber", "customer",
         "shop_manager")


class QueryError(ValueError):
    """Invalid query parameters, as WordPress reports them: one message per parameter."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(f"Invalid parameter(s): {', '.join(self.problems)}")

    def body(self) -> dict[str, Any]:
        """Return WordPress's ``rest_invalid_param`` error body."""
        return {"code": "rest_invalid_param", "message": str(self),
                "data": {"status": 400, "params": self.problems,
                         "details": {name: {"code": "rest_invalid_param", "message": text,
                                            "data": None}
                                     for name, text in self.problems.items()}}}


@dataclass(frozen=True)
class Page:
    """One page of a collection and the totals for the paging headers."""

    items: list[dict[str, Any]]
    total: int
    total_pages: int
    page: int


class _Params:
    """Reads query parameters and collects every problem before raising once."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self.query = query
        self.problems: dict[str, str] = {}

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        text = self.query.get(name)
        if text is None or text == "":
            return default
        if not text.strip().lstrip("-").isdigit():
            self.problems[name] = f"{name} is not of type integer."
            return default
        value = int(text)
        if value < low or (high is not None and value > high):
            upper = f" and {high} (inclusive)" if high is not None else ""
            self.problems[name] = f"{name} must be between {low} (inclusive){upper}"
            return default
        return value

    def choice(self, name: str, default: str, allowed: Sequence[str]) -> str:
        value = self.query.get(name, default)
        if value not in allowed:
            self.problems[name] = f"{name} is not one of {', '.join(allowed)}."
            return default
        return value

    def ids(self, name: str) -> list[int]:
        text = self.query.get(name, "")
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if any(not part.isdigit() for part in parts):
            self.problems[name] = f"{name}[0] is not of type integer."
            return []
        return [int(part) for part in parts]

    def flag(self, name: str) -> bool:
        text = self.query.get(name, "false").lower()
        if text not in ("true", "false", "1", "0"):
            self.problems[name] = f"{name} is not of type boolean."
            return False
        return text in ("true", "1")

    def moment(self, name: str) -> datetime | None:
        text = self.query.get(name)
        if text is None or text == "":
            return None
        value = parse_wc_date(text)
        if value is None:
            self.problems[name] = "Invalid date."
        return value

    def check(self) -> None:
        if self.problems:
            raise QueryError(self.problems)


def _paging(params: _Params) -> tuple[int, int, int | None]:
    per_page = params.integer("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    page = params.integer("page", 1, 1)
    offset = params.integer("offset", 0, 0) if "offset" in params.query else None
    return per_page, page, offset


def _page_of(items: list[dict[str, Any]], per_page: int, page: int, offset: int | None) -> Page:
    start = offset if offset is not None else (page - 1) * per_page
    total = len(items)
    total_pages = (total + per_page - 1) // per_page
    number = start // per_page + 1
    # NOTE: a page past the end returns an empty list here; WooCommerce's order
    # controller may return an error for it instead (not checked).
    return Page(items[start:start + per_page], total, total_pages, number)


def _display_name(customer: Mapping[str, Any]) -> str:
    name = f"{customer.get('first_name', '')} {customer.get('last_name', '')}".strip()
    return name or str(customer.get("username") or customer.get("email") or "")


def _matches_search(customer: Mapping[str, Any], term: str) -> bool:
    wanted = term.casefold()
    fields = (customer.get("email"), customer.get("username"), _display_name(customer))
    return any(wanted in str(value or "").casefold() for value in fields)


def customer_page(customers: list[dict[str, Any]], query: Mapping[str, str]) -> Page:
    """Filter, sort and page ``customers`` as ``GET /wc/v3/customers`` does.

    Raises:
        QueryError: A parameter is invalid; the error lists every one.
    """
    params = _Params(query)
    per_page, page, offset = _paging(params)
    order = params.choice("order", "asc", ("asc", "desc"))
    orderby = params.choice("orderby", "name", CUSTOMER_ORDERBY)
    role = params.choice("role", "customer", ROLES)
    include, exclude = params.ids("include"), params.ids("exclude")
    params.check()
    email, search = query.get("email", "").casefold(), query.get("search", "")
    found = [item for item in customers
             if (role == "all" or item.get("role") == role)
             and (not include or item["id"] in include)
             and item["id"] not in exclude
             and (not email or str(item.get("email", "")).casefold() == email)
             and (not search or _matches_search(item, search))]
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "id": lambda item: item["id"],
        "include": lambda item: include.index(item["id"]) if item["id"] in include else 0,
        "name": lambda item: (_display_name(item).casefold(), item["id"]),
        "registered_date": lambda item: (item.get("date_created_gmt") or "", item["id"]),
    }
    found.sort(key=keys[orderby], reverse=order == "desc")
    return _page_of(found, per_page, page, offset)


def _bound(value: datetime | None, gmt: bool, site_offset_hours: float) -> datetime | None:
    """Turn a date parameter into a naive time in the column it is compared with."""
    if value is None or value.tzinfo is None:
        return value
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc if gmt else utc + timedelta(hours=site_offset_hours)


def _order_time(order: Mapping[str, Any], name: str, gmt: bool) -> datetime | None:
    text = order.get(f"date_{name}_gmt" if gmt else f"date_{name}")
    return parse_wc_date(str(text)) if text else None


def _within(moment: datetime | None, after: datetime | None, before: datetime | None) -> bool:
    if after is None and before is None:
        return True
    if moment is None:
        return False
    return (after is None or moment > after) and (before is None or moment < before)


def order_page(orders: list[dict[str, Any]], query: Mapping[str, str],
               site_offset_hours: float) -> Page:
    """Filter, sort and page ``orders`` as ``GET /wc/v3/orders`` does.

    Raises:
        QueryError: A parameter is invalid; the error lists every one.
    """
    params = _Params(query)
    per_page, page, offset = _paging(params)
    order = params.choice("order", "desc", ("asc", "desc"))
    orderby = params.choice("orderby", "date", ORDER_ORDERBY)
    include, exclude = params.ids("include"), params.ids("exclude")
    gmt = params.flag("dates_are_gmt")
    bounds = {name: _bound(params.moment(name), gmt, site_offset_hours)
              for name in ("after", "before", "modified_after", "modified_before")}
    customer = params.integer("customer", -1, 0)
    statuses = [part for part in query.get("status", "any").split(",") if part]
    unknown = [status for status in statuses if status not in ("any", *ORDER_STATUSES)]
    if unknown:
        params.problems["status"] = f"status[0] is not one of any, {', '.join(ORDER_STATUSES)}."
    params.check()
    found = [item for item in orders
             if (("any" in statuses and item.get("status") != "trash")
                 or item.get("status") in statuses)
             and (not include or item["id"] in include)
             and item["id"] not in exclude
             and (customer < 0 or item.get("customer_id") == customer)
             and _within(_order_time(item, "created", gmt), bounds["after"], bounds["before"])
             and _within(_order_time(item, "modified", gmt), bounds["modified_after"],
                         bounds["modified_before"])]
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "date": lambda item: (item.get("date_created_gmt") or "", item["id"]),
        "modified": lambda item: (item.get("date_modified_gmt") or "", item["id"]),
        "include": lambda item: include.index(item["id"]) if item["id"] in include else 0,
    }
    found.sort(key=keys.get(orderby, lambda item: item["id"]), reverse=order == "desc")
    return _page_of(found, per_page, page, offset)
