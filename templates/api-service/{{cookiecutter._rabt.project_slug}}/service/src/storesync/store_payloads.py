"""Shopify Admin GraphQL nodes rewritten in the webhook (REST resource) form the field map reads.

Shopify's webhook bodies use the REST resource shape (snake_case names, numeric ids,
``total_price`` as a decimal string), while the Admin GraphQL API returns
camelCase nodes, global ids and money objects. Reconciliation reads GraphQL, so each
node is rewritten here into the fields the field map uses, and the worker handles
it like a webhook. Fields GraphQL does not give (``landing_site``, ``refunds``,
``discount_codes``) are left out; the worker treats them as missing, as for a webhook
body without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# displayFulfillmentStatus → the REST fulfillment_status.
FULFILLMENT_STATUS = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial",
                      "RESTOCKED": "restocked"}


def _number(value: Any) -> int | str | None:
    text = str(value or "")
    return int(text) if text.isdigit() else (text or None)


def _amount(node: Mapping[str, Any], name: str) -> str | None:
    money = ((node.get(name) or {}).get("shopMoney") or {})
    amount = money.get("amount")
    return None if amount is None else str(amount)


def _legacy(node: Any) -> int | str | None:
    return _number(node.get("legacyResourceId")) if isinstance(node, Mapping) else None


def _consent(consent: Any) -> dict[str, Any] | None:
    if not isinstance(consent, Mapping):
        return None
    state = consent.get("marketingState")
    level = consent.get("marketingOptInLevel")
    return {"state": str(state).lower() if state else None,
            "opt_in_level": str(level).lower() if level else None,
            "consent_updated_at": consent.get("consentUpdatedAt")}


def shopify_customer(node: Mapping[str, Any]) -> dict[str, Any]:
    """Return a GraphQL ``Customer`` node in the ``customers/update`` webhook form."""
    body: dict[str, Any] = {
        "id": _legacy(node), "admin_graphql_api_id": node.get("id"),
        "email": node.get("email"), "phone": node.get("phone"),
        "first_name": node.get("firstName"), "last_name": node.get("lastName"),
        "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"),
        "tags": ", ".join(node.get("tags") or []),
    }
    for name, target in (("emailMarketingConsent", "email_marketing_consent"),
                         ("smsMarketingConsent", "sms_marketing_consent")):
        consent = _consent(node.get(name))
        if consent is not None:
            body[target] = consent
    return body


def _line_item(node: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": _number(str(node.get("id") or "").rsplit("/", 1)[-1]),
            "title": node.get("title"), "name": node.get("title"),
            "variant_title": node.get("variantTitle"), "sku": node.get("sku"),
            "quantity": node.get("quantity"), "price": _amount(node, "originalUnitPriceSet"),
            "variant_id": _legacy(node.get("variant")),
            "product_id": _legacy(node.get("product"))}


def shopify_order(node: Mapping[str, Any]) -> dict[str, Any]:
    """Return a GraphQL ``Order`` node in the ``orders/updated`` webhook form."""
    name = str(node.get("name") or "")
    fulfillment = str(node.get("displayFulfillmentStatus") or "")
    customer = node.get("customer")
    lines = ((node.get("lineItems") or {}).get("nodes")) or []
    return {
        "id": _legacy(node), "admin_graphql_api_id": node.get("id"), "name": name,
        "order_number": _number(name.lstrip("#")),
        "email": node.get("email"), "phone": node.get("phone"),
        "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"),
        "processed_at": node.get("processedAt"), "cancelled_at": node.get("cancelledAt"),
        "closed_at": node.get("closedAt"), "currency": node.get("currencyCode"),
        "total_price": _amount(node, "totalPriceSet"),
        "subtotal_price": _amount(node, "subtotalPriceSet"),
        "total_tax": _amount(node, "totalTaxSet"),
        "total_discounts": _amount(node, "totalDiscountsSet"),
        "financial_status": str(node.get("displayFinancialStatus") or "").lower() or None,
        "fulfillment_status": FULFILLMENT_STATUS.get(fulfillment),
        "tags": ", ".join(node.get("tags") or []), "note": node.get("note"),
        "source_name": node.get("sourceName"),
        "customer": shopify_customer(customer) if isinstance(customer, Mapping) else None,
        "line_items": [_line_item(line) for line in lines if isinstance(line, Mapping)],
    }
