"""The GraphQL operations the Shopify stand-in serves, with their cost and errors.

This is no GraphQL engine. The stand-in finds the operation by its root field (the first
of ``OPERATIONS`` named in the query text), reads the arguments from ``variables``
only, and returns whole nodes whatever the selection set asks for. A client that writes
an argument as a literal gets an error that says so. The shapes of nodes, ``pageInfo``,
``userErrors`` and ``extensions.cost`` follow the Admin GraphQL reference on shopify.dev.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from .shopify_state import ShopifyState, gid, iso_time

__all__ = ["OPERATIONS", "WEBHOOK_TOPICS", "GraphQLError", "price", "run_operation"]

MAX_PAGE_SIZE = 250
# NOTE: Shopify computes the cost per selected field, so these are estimates of the same
# size. A connection costs 2, each node 2 for itself and its nested objects, a mutation 10.
CONNECTION_COST = 2
NODE_COST = 2
MUTATION_COST = 10
# A part of WebhookSubscriptionTopic: the topics a store-to-CRM service subscribes to.
WEBHOOK_TOPICS = frozenset({
    "ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_PAID", "ORDERS_CANCELLED", "ORDERS_FULFILLED",
    "ORDERS_PARTIALLY_FULFILLED", "ORDERS_DELETE", "ORDERS_EDITED", "REFUNDS_CREATE",
    "CUSTOMERS_CREATE", "CUSTOMERS_UPDATE", "CUSTOMERS_DELETE",
    "CUSTOMERS_MARKETING_CONSENT_UPDATE", "CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE",
    "PRODUCTS_CREATE", "PRODUCTS_UPDATE", "PRODUCTS_DELETE", "CHECKOUTS_CREATE",
    "CHECKOUTS_UPDATE", "CHECKOUTS_DELETE",
    "FULFILLMENTS_CREATE", "FULFILLMENTS_UPDATE", "APP_UNINSTALLED", "SHOP_UPDATE",
})
URI_PREFIXES = ("https://", "pubsub://", "arn:aws:events:")
SEARCH_TERM = re.compile(r"(updated_at|created_at):(>=|<=|>|<)'?([^'\s]+)'?")
SORT_FIELDS = {"ID": None, "UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt"}


class GraphQLError(Exception):
    """A top-level GraphQL error: ``{"errors": [{"message", "extensions": {"code"}}]}``."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code


Operation = Callable[[ShopifyState, Mapping[str, Any]], tuple[dict[str, Any], float]]


# -- paging ---------------------------------------------------------------------


def _cursor(sort_value: str, number: int) -> str:
    return base64.b64encode(json.dumps([sort_value, number]).encode()).decode()


def _after(cursor: str) -> tuple[str, int]:
    try:
        value, number = json.loads(base64.b64decode(cursor, validate=True))
        return str(value), int(number)
    except (binascii.Error, ValueError, TypeError, json.JSONDecodeError) as error:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from error


def _parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise GraphQLError(f"Invalid search date: {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _matches(node: Mapping[str, Any], query: str) -> bool:
    """Apply the ``updated_at`` and ``created_at`` terms of a search query.

    NOTE: other terms are ignored, as Shopify ignores terms it cannot use. Shopify also
    reports them under ``extensions.search``, which the stand-in does not send.
    """
    for name, operator, value in SEARCH_TERM.findall(query):
        bound = _parse_time(value)
        found = _parse_time(str(node["updatedAt" if name == "updated_at" else "createdAt"]))
        if not {">": found > bound, ">=": found >= bound, "<": found < bound,
                "<=": found <= bound}[operator]:
            return False
    return True


def _page(nodes: list[dict[str, Any]], args: Mapping[str, Any]) -> dict[str, Any]:
    first = args.get("first")
    if not isinstance(first, int) or isinstance(first, bool) or not 0 < first <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The first argument must be a number from 1 to {MAX_PAGE_SIZE}, "
                           f"got {first!r}.", "BAD_REQUEST")
    sort_key = str(args.get("sortKey") or "ID")
    if sort_key not in SORT_FIELDS:
        raise GraphQLError(f"Variable $sortKey got invalid value {sort_key!r}.", "BAD_REQUEST")
    sort_field = SORT_FIELDS[sort_key]

    def key(node: Mapping[str, Any]) -> tuple[str, int]:
        value = "" if sort_field is None else str(node[sort_field])
        return value, int(node["legacyResourceId"])

    query = str(args.get("query") or "")
    chosen = sorted((node for node in nodes if _matches(node, query)), key=key)
    if args.get("after"):
        start = _after(str(args["after"]))
        chosen = [node for node in chosen if key(node) > start]
    page = chosen[:first]
    end = _cursor(*key(page[-1])) if page else None
    start_cursor = _cursor(*key(page[0])) if page else None
    return {"nodes": page,
            "edges": [{"cursor": _cursor(*key(node)), "node": node} for node in page],
            "pageInfo": {"hasNextPage": len(chosen) > first, "hasPreviousPage":
                         bool(args.get("after")), "endCursor": end, "startCursor": start_cursor}}


def _connection(field: str, source: Callable[[ShopifyState], list[dict[str, Any]]]) -> Operation:
    def run(state: ShopifyState, args: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        page = _page(source(state), args)
        return {field: page}, CONNECTION_COST + NODE_COST * len(page["nodes"])

    return run


# -- mutations ------------------------------------------------------------------


def _user_error(field: list[str], message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"field": field, "message": message}
    if code is not None:
        error["code"] = code
    return error


def _create_subscription(state: ShopifyState,
                         args: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    topic = args.get("topic")
    if topic not in WEBHOOK_TOPICS:
        raise GraphQLError(f"Variable $topic of type WebhookSubscriptionTopic! was provided "
                           f"invalid value {topic!r}.", "INVALID_VARIABLE")
    given = args.get("webhookSubscription")
    uri = str(given.get("uri") or given.get("callbackUrl") or "") if isinstance(given, Mapping) \
        else ""
    result: dict[str, Any] = {"webhookSubscription": None, "userErrors": []}
    if not uri.startswith(URI_PREFIXES):
        result["userErrors"].append(_user_error(["webhookSubscription", "uri"],
                                                "Address is invalid"))
    with state.lock:
        taken = any(item["topic"] == topic and item["uri"] == uri
                    for item in state.subscriptions.values())
        if taken:
            result["userErrors"].append(_user_error(
                ["webhookSubscription", "uri"], "Address for this topic has already been taken"))
        if not result["userErrors"]:
            number = state.take_id()
            now = iso_time(state.now())
            record = {"id": gid("WebhookSubscription", number), "legacyResourceId": str(number),
                      "topic": topic, "uri": uri, "format": "JSON", "createdAt": now,
                      "updatedAt": now, "includeFields": [], "filter": None}
            state.subscriptions[number] = record
            result["webhookSubscription"] = dict(record)
    return {"webhookSubscriptionCreate": result}, MUTATION_COST


def _discount_problems(state: ShopifyState, given: Mapping[str, Any]) -> list[dict[str, Any]]:
    problems = []
    for name in ("title", "code", "startsAt", "customerGets"):
        if not given.get(name):
            problems.append(_user_error(["basicCodeDiscount", name], f"{name} can't be blank",
                                        "BLANK"))
    if given.get("context") is None and given.get("customerSelection") is None:
        problems.append(_user_error(["basicCodeDiscount", "context"],
                                    "Context can't be blank", "BLANK"))
    code = str(given.get("code") or "")
    if code and any(item["code"].lower() == code.lower() for item in state.discounts.values()):
        problems.append(_user_error(["basicCodeDiscount", "code"],
                                    "Code must be unique. Please try a different code.", "TAKEN"))
    limit = given.get("usageLimit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        problems.append(_user_error(["basicCodeDiscount", "usageLimit"],
                                    "Usage limit must be greater than 0", "GREATER_THAN"))
    starts, ends = given.get("startsAt"), given.get("endsAt")
    if starts and ends and _parse_time(str(ends)) <= _parse_time(str(starts)):
        problems.append(_user_error(["basicCodeDiscount", "endsAt"],
                                    "Ends at needs to be after starts_at", "INVALID"))
    return problems


def _create_discount(state: ShopifyState,
                     args: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    given = args.get("basicCodeDiscount")
    if not isinstance(given, Mapping):
        raise GraphQLError("Variable $basicCodeDiscount of type DiscountCodeBasicInput! was "
                           "provided invalid value.", "INVALID_VARIABLE")
    result: dict[str, Any] = {"codeDiscountNode": None, "userErrors": []}
    with state.lock:
        result["userErrors"] = _discount_problems(state, given)
        if not result["userErrors"]:
            number = state.take_id()
            record = {"id": gid("DiscountCodeNode", number), "code": str(given["code"]),
                      "title": given["title"], "startsAt": given["startsAt"],
                      "endsAt": given.get("endsAt"), "usageLimit": given.get("usageLimit"),
                      "appliesOncePerCustomer": bool(given.get("appliesOncePerCustomer")),
                      "customerGets": given["customerGets"],
                      "context": given.get("context") or given.get("customerSelection")}
            state.discounts[number] = record
            result["codeDiscountNode"] = {"id": record["id"], "codeDiscount": {
                "title": record["title"], "startsAt": record["startsAt"],
                "endsAt": record["endsAt"], "usageLimit": record["usageLimit"],
                "appliesOncePerCustomer": record["appliesOncePerCustomer"],
                "codes": {"nodes": [{"code": record["code"]}]}}}
    return {"discountCodeBasicCreate": result}, MUTATION_COST


# The marketing states a consent mutation accepts; NOT_SUBSCRIBED, REDACTED and INVALID
# are read-only (Admin GraphQL CustomerEmailMarketingConsentInput).
SETTABLE_MARKETING_STATES = frozenset({"SUBSCRIBED", "UNSUBSCRIBED", "PENDING"})


def _consent_update(root: str, consent_field: str, address_field: str) -> Operation:
    """Return the operation of ``customerEmailMarketingConsentUpdate`` or its SMS twin.

    NOTE: the SMS mutation is taken to mirror the email one (``smsMarketingConsent``
    in the input, a phone needed); only the email mutation was read in Shopify's reference.
    """

    def run(state: ShopifyState, args: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        given = args.get("input")
        consent = given.get(consent_field) if isinstance(given, Mapping) else None
        if not isinstance(given, Mapping) or not isinstance(consent, Mapping):
            raise GraphQLError(f"Variable $input of {root} was provided invalid value: it "
                               f"needs customerId and {consent_field}.", "INVALID_VARIABLE")
        result: dict[str, Any] = {"customer": None, "userErrors": []}
        marketing_state = str(consent.get("marketingState") or "")
        with state.lock:
            number = _customer_number(str(given.get("customerId") or ""))
            record = state.customers.get(number) if number is not None else None
            if record is None:
                result["userErrors"].append(_user_error(["input", "customerId"],
                                                        "Customer not found", "INVALID"))
            elif not record.get(address_field):
                result["userErrors"].append(_user_error(
                    ["input", "customerId"], f"Customer must have {address_field} to update "
                    "marketing consent", "MISSING_ARGUMENT"))
            elif marketing_state not in SETTABLE_MARKETING_STATES:
                result["userErrors"].append(_user_error(
                    ["input", consent_field, "marketingState"],
                    f"Marketing state {marketing_state!r} cannot be set", "INVALID"))
            else:
                now = iso_time(state.now())
                record[consent_field] = {
                    "marketingState": marketing_state,
                    "marketingOptInLevel": consent.get("marketingOptInLevel")
                    or "SINGLE_OPT_IN",
                    "consentUpdatedAt": consent.get("consentUpdatedAt") or now}
                record["updatedAt"] = now
                result["customer"] = dict(record)
        return {root: result}, MUTATION_COST

    return run


def _customer_number(customer_id: str) -> int | None:
    tail = customer_id.rpartition("/")[2]
    return int(tail) if customer_id.startswith("gid://shopify/Customer/") and tail.isdigit() \
        else None


def _orders_count(state: ShopifyState,
                  args: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    query = str(args.get("query") or "")
    count = sum(1 for node in state.all_orders() if _matches(node, query))
    # NOTE: Shopify caps this count (10,000 by default) and then answers precision
    # AT_LEAST; the stand-in counts exactly.
    return {"ordersCount": {"count": count, "precision": "EXACT"}}, 1


OPERATIONS: dict[str, Operation] = {
    "webhookSubscriptionCreate": _create_subscription,
    "discountCodeBasicCreate": _create_discount,
    "customerEmailMarketingConsentUpdate": _consent_update(
        "customerEmailMarketingConsentUpdate", "emailMarketingConsent", "email"),
    "customerSmsMarketingConsentUpdate": _consent_update(
        "customerSmsMarketingConsentUpdate", "smsMarketingConsent", "phone"),
    "webhookSubscriptions": _connection(
        "webhookSubscriptions",
        lambda state: [dict(item) for _, item in sorted(state.subscriptions.items())]),
    "ordersCount": _orders_count,
    "orders": _connection("orders", lambda state: state.all_orders()),
    "customers": _connection("customers", lambda state: state.all_customers()),
}
MUTATIONS = frozenset({"webhookSubscriptionCreate", "discountCodeBasicCreate",
                       "customerEmailMarketingConsentUpdate",
                       "customerSmsMarketingConsentUpdate"})
_ROOT = re.compile(r"\b(" + "|".join(OPERATIONS) + r")\s*\(")
_LITERAL_ARGUMENT = re.compile(r"[(,]\s*\w+\s*:\s*[^$\s]")


def _root(query: str, variables: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    found = _ROOT.search(query)
    if found is None:
        raise GraphQLError("The stand-in serves only these root fields: "
                           f"{', '.join(sorted(OPERATIONS))}.", "NOT_SUPPORTED")
    arguments = query[found.end() - 1:]
    if _LITERAL_ARGUMENT.search(arguments[:arguments.find(")") + 1]):
        raise GraphQLError("The stand-in reads arguments from variables only; pass every "
                           "argument as $variable.", "NOT_SUPPORTED")
    return found.group(1), _arguments(arguments, variables)


def price(query: str, variables: Mapping[str, Any]) -> float:
    """Return the requested cost of a query: what the bucket must hold before it runs.

    Raises:
        GraphQLError: no known root field, or a literal argument.
    """
    name, arguments = _root(query, variables)
    if name in MUTATIONS:
        return MUTATION_COST
    if name == "ordersCount":
        return 1
    first = arguments.get("first")
    return CONNECTION_COST + NODE_COST * (first if isinstance(first, int) else 0)


def run_operation(state: ShopifyState, query: str,
                  variables: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
    """Run the operation named in ``query``; return its data and actual cost.

    Raises:
        GraphQLError: no known root field, a literal argument, or invalid variables.
    """
    name, arguments = _root(query, variables)
    return OPERATIONS[name](state, arguments)


def _arguments(text: str, variables: Mapping[str, Any]) -> dict[str, Any]:
    """Map each ``name: $variable`` of the root field's argument list to its value."""
    closing = text.find(")")
    pairs = re.findall(r"(\w+)\s*:\s*\$(\w+)", text[:closing])
    return {name: variables.get(variable) for name, variable in pairs}
