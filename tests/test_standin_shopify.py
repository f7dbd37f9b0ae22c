"""Tests for the Shopify Admin GraphQL stand-in, served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from generator.standins import shopify
from generator.standins.shopify import ShopifyStandinConfig, create_app
from tests.servers import serve

STANDINS = Path(shopify.__file__).parent
TOKEN = "shpat_test_not_real"
GRAPHQL = "/admin/api/2025-10/graphql.json"
ORDERS = """query Orders($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys) {
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey) {
    pageInfo { hasNextPage endCursor } nodes { id legacyResourceId updatedAt }
  }
}"""
CREATE_HOOK = """mutation Create($topic: WebhookSubscriptionTopic!,
                                 $sub: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {
    webhookSubscription { id topic uri } userErrors { field message }
  }
}"""
CREATE_DISCOUNT = """mutation Create($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode { id } userErrors { field code message }
  }
}"""

EMAIL_CONSENT = """mutation Consent($input: CustomerEmailMarketingConsentUpdateInput!) {
  customerEmailMarketingConsentUpdate(input: $input) {
    customer { id emailMarketingConsent { marketingState } } userErrors { field code message }
  }
}"""


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.value = 1_780_000_000.0

    def __call__(self) -> float:
        return self.value


@contextmanager
def shop(**settings: Any) -> Iterator[tuple[httpx.Client, shopify.ShopifyState]]:
    app = create_app(ShopifyStandinConfig(**settings))
    with serve(app) as base_url, httpx.Client(
            base_url=base_url, timeout=10, headers={"X-Shopify-Access-Token": TOKEN}) as client:
        yield client, app.state.shopify


def order(number: int, updated: str) -> dict[str, Any]:
    return {"legacyResourceId": str(number), "updatedAt": updated, "createdAt": updated}


def query(client: httpx.Client, text: str, **variables: Any) -> httpx.Response:
    return client.post(GRAPHQL, json={"query": text, "variables": variables})


def test_orders_paged_by_cursor() -> None:
    with shop() as (client, state):
        state.seed([order(number, f"2026-05-01T08:{number % 60:02d}:00Z")
                    for number in range(1, 8)])
        first = query(client, ORDERS, first=3, sortKey="UPDATED_AT").json()
        cursor = first["data"]["orders"]["pageInfo"]["endCursor"]
        second = query(client, ORDERS, first=3, after=cursor, sortKey="UPDATED_AT").json()
        third = query(client, ORDERS, first=3, after=second["data"]["orders"]["pageInfo"]
                      ["endCursor"], sortKey="UPDATED_AT").json()

    ids = [node["legacyResourceId"] for page in (first, second, third)
           for node in page["data"]["orders"]["nodes"]]
    assert ids == [str(number) for number in range(1, 8)]
    assert first["data"]["orders"]["pageInfo"]["hasNextPage"] is True
    assert third["data"]["orders"]["pageInfo"]["hasNextPage"] is False
    assert first["data"]["orders"]["nodes"][0]["id"] == "gid://shopify/Order/1"


def test_orders_search_updated_at() -> None:
    with shop() as (client, state):
        state.seed([order(1, "2026-05-01T08:00:00Z"), order(2, "2026-05-01T09:00:00Z")])
        found = query(client, ORDERS, first=10,
                      query="updated_at:>'2026-05-01T08:00:00Z'").json()

    assert [node["legacyResourceId"] for node in found["data"]["orders"]["nodes"]] == ["2"]


def test_cost_extensions_reported() -> None:
    with shop() as (client, _):
        body = query(client, ORDERS, first=10).json()

    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 22
    assert cost["actualQueryCost"] == 2
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0
    assert cost["throttleStatus"]["currentlyAvailable"] == pytest.approx(1998.0, abs=1)


def test_throttled_body_when_bucket_empty() -> None:
    clock = FakeClock()
    # first=14 requests 30 points; an empty page costs 2, so 28 remain after the refund.
    with shop(clock=clock, maximum_available=30.0, restore_rate=1.0) as (client, _):
        allowed = query(client, ORDERS, first=14)
        throttled = query(client, ORDERS, first=14)
        clock.value += 2
        again = query(client, ORDERS, first=14)

    assert allowed.json()["data"]["orders"]["nodes"] == []
    assert throttled.status_code == 200
    body = throttled.json()
    assert "data" not in body
    assert body["errors"][0]["message"] == "Throttled"
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert again.json()["data"]["orders"]["nodes"] == []


def test_wrong_token_401() -> None:
    with shop() as (client, _):
        response = client.post(GRAPHQL, json={"query": ORDERS, "variables": {"first": 1}},
                               headers={"X-Shopify-Access-Token": "shpat_wrong"})
        unknown_version = client.post("/admin/api/2019-01/graphql.json",
                                      json={"query": ORDERS})

    assert response.status_code == 401
    assert "Invalid API key or access token" in response.json()["errors"]
    assert unknown_version.status_code == 404


def test_literal_argument_rejected() -> None:
    with shop() as (client, _):
        body = query(client, "query { orders(first: 5) { nodes { id } } }").json()

    assert "variables only" in body["errors"][0]["message"]


def test_first_over_250_rejected() -> None:
    with shop() as (client, _):
        body = query(client, ORDERS, first=251).json()

    assert "from 1 to 250" in body["errors"][0]["message"]


def test_subscription_create_and_errors() -> None:
    with shop() as (client, state):
        created = query(client, CREATE_HOOK, topic="ORDERS_CREATE",
                        sub={"uri": "https://hooks.example.sa/webhooks/shopify"}).json()
        taken = query(client, CREATE_HOOK, topic="ORDERS_CREATE",
                      sub={"uri": "https://hooks.example.sa/webhooks/shopify"}).json()
        plain = query(client, CREATE_HOOK, topic="ORDERS_UPDATED",
                      sub={"uri": "http://hooks.example.sa/webhooks/shopify"}).json()
        unknown = query(client, CREATE_HOOK, topic="ORDERS_EXPLODED",
                        sub={"uri": "https://hooks.example.sa/webhooks/shopify"}).json()
        count = len(state.subscriptions)

    made = created["data"]["webhookSubscriptionCreate"]
    assert made["userErrors"] == []
    assert made["webhookSubscription"]["topic"] == "ORDERS_CREATE"
    assert taken["data"]["webhookSubscriptionCreate"]["userErrors"][0]["message"] == \
        "Address for this topic has already been taken"
    assert plain["data"]["webhookSubscriptionCreate"]["userErrors"][0]["message"] == \
        "Address is invalid"
    assert unknown["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    assert count == 1


def test_discount_code_taken() -> None:
    discount = {"title": "Cart recovery", "code": "BACK10", "startsAt": "2026-05-01T00:00:00Z",
                "endsAt": "2026-05-03T00:00:00Z", "usageLimit": 1, "context": {"all": "ALL"},
                "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}}}
    with shop() as (client, state):
        created = query(client, CREATE_DISCOUNT, input=discount).json()
        taken = query(client, CREATE_DISCOUNT, input={**discount, "code": "back10"}).json()
        backwards = query(client, CREATE_DISCOUNT, input={
            **discount, "code": "OTHER", "endsAt": "2026-04-01T00:00:00Z"}).json()
        stored = list(state.discounts.values())

    assert created["data"]["discountCodeBasicCreate"]["userErrors"] == []
    assert taken["data"]["discountCodeBasicCreate"]["userErrors"][0]["code"] == "TAKEN"
    assert backwards["data"]["discountCodeBasicCreate"]["userErrors"][0]["code"] == "INVALID"
    assert [item["code"] for item in stored] == ["BACK10"]


def test_email_consent_update() -> None:
    def unsubscribe(customer_id: str, marketing_state: str = "UNSUBSCRIBED") -> dict[str, Any]:
        variables = {"customerId": customer_id,
                     "emailMarketingConsent": {"marketingState": marketing_state}}
        body: dict[str, Any] = query(client, EMAIL_CONSENT, input=variables).json()
        return dict(body["data"]["customerEmailMarketingConsentUpdate"])

    with shop() as (client, state):
        state.put_customer({"legacyResourceId": "501", "email": "huda.consent@example.com"})
        state.put_customer({"legacyResourceId": "502", "email": None})
        done = unsubscribe("gid://shopify/Customer/501")
        no_email = unsubscribe("gid://shopify/Customer/502")
        missing = unsubscribe("gid://shopify/Customer/999")
        read_only = unsubscribe("gid://shopify/Customer/501", "NOT_SUBSCRIBED")
        stored = state.customers[501]["emailMarketingConsent"]

    assert done["userErrors"] == []
    assert done["customer"]["emailMarketingConsent"]["marketingState"] == "UNSUBSCRIBED"
    assert no_email["userErrors"][0]["code"] == "MISSING_ARGUMENT"
    assert missing["userErrors"][0]["code"] == "INVALID"
    assert read_only["userErrors"][0]["field"] == ["input", "emailMarketingConsent",
                                                   "marketingState"]
    assert stored["marketingState"] == "UNSUBSCRIBED"


def test_refuses_remote_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert shopify.main(["--host", "0.0.0.0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err


def test_imports_stay_portable() -> None:
    allowed = {"starlette", "uvicorn", *sys.stdlib_module_names}
    for path in sorted(STANDINS.glob("shopify*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
