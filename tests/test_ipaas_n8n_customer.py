"""The contact-sync Code nodes give the runtime's records for customer webhook bodies.

A customer topic carries the customer itself, not an order, so the generated field
paths must read it the way ``rabt preview`` (the runtime engine) does. The nodes run
with ``node`` on the shipped sample bodies; see ``tests/test_ipaas_n8n_run.py``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from generator.ipaas import make, n8n
from generator.ipaas.flows import build_flows
from generator.runtime.engine import map_payload
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import node_code, run_chain

PAYLOADS = Path(__file__).resolve().parent.parent / "generator" / "payloads"
MAP = "Map the customer to the contact"
FILTER = "Continue only with an email or a phone"
BATCH = "Create or update the contact: batch"
CASES = {
    "shopify-hubspot": ("shopify-growth", {"store_count": 1}),
    "shopify-zoho": ("jeddah-fashion-zoho", {}),
    "woocommerce-zoho": ("woo-startup", {"monthly_orders": 400}),
}
WOOCOMMERCE_CUSTOMER = {
    "id": 42, "email": "sara@example.com", "first_name": "سارة", "last_name": "القحطاني",
    "role": "customer", "username": "sara",
    "billing": {"first_name": "", "last_name": "", "email": "", "phone": "٠٥٠٠٠٠٠٠٠٤",
                "city": "الرياض", "country": "SA"},
    "shipping": {"first_name": "", "last_name": "", "city": "الرياض", "phone": ""},
}


@cache
def case(name: str) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    preset, values = CASES[name]
    answers, plan, spec = load_case(preset, values)
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    workflow = json.loads(files["workflows/n8n/contact-sync.json"])
    return answers, plan, spec, workflow


def sample(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))
    return body


def mapped(workflow: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [(MAP, node_code(workflow, MAP), None), (FILTER, node_code(workflow, FILTER), None)]
    result: list[dict[str, Any]] = run_chain(steps, [body])
    return result


def batches(workflow: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [(name, node_code(workflow, name), None) for name in (MAP, FILTER, BATCH)]
    result: list[dict[str, Any]] = run_chain(steps, [body])
    return result


def runtime_properties(spec: dict[str, Any], platform: str, topic: str,
                       body: dict[str, Any]) -> dict[str, Any]:
    records = map_payload(spec["mapping"], platform, topic, body).records
    assert [record.entity for record in records] == ["contact"]
    return records[0].properties


@pytest.mark.parametrize("name", ["shopify-hubspot", "shopify-zoho"])
def test_shopify_customer_matches_preview(name: str) -> None:
    _, _, spec, workflow = case(name)
    body = sample("shopify/customers-update")
    out = mapped(workflow, body)
    expected = runtime_properties(spec, "shopify", "customers/update", body)
    assert len(out) == 1
    assert out[0]["record"] == expected
    assert out[0]["key"] == "7100000000003"


def test_woocommerce_customer_matches_preview() -> None:
    _, _, spec, workflow = case("woocommerce-zoho")
    out = mapped(workflow, WOOCOMMERCE_CUSTOMER)
    expected = runtime_properties(spec, "woocommerce", "customer.updated", WOOCOMMERCE_CUSTOMER)
    assert len(out) == 1
    assert out[0]["record"] == expected
    assert out[0]["record"]["Email"] == "sara@example.com"
    assert out[0]["record"]["Ecom_Customer_ID"] == "42"


def test_phone_only_customer_upserted_by_phone() -> None:
    _, _, _, workflow = case("shopify-hubspot")
    body = copy.deepcopy(sample("shopify/customers-update"))
    body["email"] = None
    del body["id"]
    sent = batches(workflow, body)
    assert len(sent) == 1
    inputs = sent[0]["body"]["inputs"]
    assert len(inputs) == 1
    assert inputs[0]["idProperty"] == "ecom_phone_e164"
    assert inputs[0]["id"] == "+966500000003"
    assert "email" not in inputs[0]["properties"]


def test_batches_split_by_id_property() -> None:
    _, _, _, workflow = case("shopify-hubspot")
    known = sample("shopify/customers-update")
    phone_only = copy.deepcopy(known)
    phone_only["email"] = None
    del phone_only["id"]
    steps = [(name, node_code(workflow, name), None) for name in (MAP, FILTER, BATCH)]
    sent = run_chain(steps, [known, phone_only])
    properties = sorted(sorted({entry["idProperty"] for entry in batch["body"]["inputs"]})
                        for batch in sent)
    assert properties == [["ecom_customer_id"], ["ecom_phone_e164"]]


@pytest.mark.parametrize("name", list(CASES))
def test_contact_sync_reads_customer_paths(name: str) -> None:
    answers, plan, spec, _ = case(name)
    rows = build_flows(answers, plan, spec).get("contact-sync").field_rows()
    sources = [path for row in rows for path in (row.source, *row.fallback_sources)]
    assert sources
    assert not [path for path in sources if path.startswith("customer.")]
    assert not [path for path in sources if path.startswith(("billing_address.",
                                                                "shipping_address."))]


def test_make_contact_sync_reads_customer() -> None:
    answers, plan, spec, _ = case("shopify-hubspot")
    built = make.files(answers, plan, spec, build_desired_state(spec, plan))
    text = built["workflows/make/contact-sync.blueprint.json"].decode("utf-8")
    assert "toString(1.id)" in text
    assert "1.customer." not in text
    assert "1.billing_address." not in text


def test_email_only_customer_sends_no_phone_key() -> None:
    _, _, _, workflow = case("shopify-hubspot")
    body = copy.deepcopy(sample("shopify/customers-update"))
    body["phone"] = None
    for address in [*body.get("addresses", []), body.get("default_address") or {}]:
        address["phone"] = None
    sent = batches(workflow, body)
    properties = sent[0]["body"]["inputs"][0]["properties"]
    assert properties["email"] == "test.customer@example.com"
    assert "ecom_phone_e164" not in properties
    assert "phone" not in properties
