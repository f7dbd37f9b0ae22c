"""n8n on HubSpot links each deal to its contact by whichever identity key the order has."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_ipaas_n8n_run import node_code, run_chain, workflow

CONTACT_MAP = "Map the customer to the contact"
CONTACT_HTTP = "Create or update the contact: request"
DEAL_MAP = "Map the order to the deal, with its stage"
DEAL_BATCH = "Create or update the deal: batch"
DEAL_HTTP = "Create or update the deal: request"
LINK = "Link the order to its contact: batch"


def order(customer_id: str, phone: str, email: str) -> dict[str, Any]:
    return {"id": 5001, "name": "#1001", "total_price": "10.00", "email": email,
            "created_at": "2026-01-05T10:00:00+03:00", "financial_status": "paid",
            "customer": {"id": customer_id, "phone": phone, "email": email,
                         "first_name": "test", "last_name": "customer"},
            "line_items": []}


def answer(properties: dict[str, str], record_id: str) -> str:
    return "() => (" + json.dumps({"results": [{"id": record_id, "properties": properties}]}) + ")"


def link_inputs(payload: dict[str, Any], contact: dict[str, str]) -> list[dict[str, Any]]:
    # One store: the multi-store mapping reads the shop from nodes this chain does not run.
    data = workflow("shopify-growth", "order-sync", stores=1)
    steps = [
        (CONTACT_MAP, node_code(data, CONTACT_MAP), None),
        (CONTACT_HTTP, None, answer(contact, "c-1")),
        ("order payload", None, "() => (" + json.dumps(payload) + ")"),
        (DEAL_MAP, node_code(data, DEAL_MAP), None),
        # The deal batch stops without pipeline ids; the deal request's response is stubbed.
        (DEAL_BATCH, None, "(item) => item"),
        (DEAL_HTTP, None, answer({"shopify_order_id": "5001"}, "d-1")),
        (LINK, node_code(data, LINK), None),
    ]
    sent = run_chain(steps, [payload])
    return [item for batch in sent for item in batch["body"]["inputs"]]


@pytest.mark.parametrize(("customer_id", "phone", "email", "contact"), [
    ("77", "0501234567", "a@example.sa",
     {"ecom_customer_id": "77", "ecom_phone_e164": "+966501234567", "email": "a@example.sa"}),
    ("", "0501234567", "", {"ecom_phone_e164": "+966501234567"}),
    ("", "", "A@Example.sa", {"email": "a@example.sa"}),
])
def test_deal_linked_to_its_contact(customer_id: str, phone: str, email: str,
                                    contact: dict[str, str]) -> None:
    inputs = link_inputs(order(customer_id, phone, email), contact)
    assert inputs == [{"from": {"id": "d-1"}, "to": {"id": "c-1"}, "types": [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]


def test_other_contact_not_linked() -> None:
    inputs = link_inputs(order("78", "0509999999", ""), {"ecom_customer_id": "77"})
    assert inputs == []
