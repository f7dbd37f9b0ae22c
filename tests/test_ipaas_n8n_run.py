"""n8n Code nodes run in order with ``node`` on made-up items, with stub HTTP responses.

A chain of a workflow's nodes runs in one Node.js process: each Code node's code is
the body of an async function with ``$input``, ``$()``, ``$env`` and ``$workflow``
set as n8n sets them, and each HTTP Request node is replaced by a stub response.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from typing import Any

import pytest

from generator.ipaas import n8n
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case

RUNNER = """
const STEPS = %s;
const outputs = {};
let items = %s;
(async () => {
  for (const step of STEPS) {
    if (step.stub !== undefined) {
      items = items.map((item) => ({ json: step.stub(item.json) }));
    } else {
      const $input = { all: () => items, first: () => items[0] };
      const $ = (name) => {
        const all = () => {
          if (!(name in outputs)) throw new Error(name);
          return outputs[name];
        };
        return { all, first: () => all()[0] };
      };
      const $env = { RABT_WHATSAPP_LANGUAGE: 'ar' };
      const $workflow = { id: 'wf-test' };
      const $execution = { id: 'exec-test' };
      const run = new Function('$input', '$', '$env', '$workflow', '$execution',
        `return (async () => {\\n${step.code}\\n})();`);
      items = await run($input, $, $env, $workflow, $execution);
    }
    outputs[step.name] = items;
  }
  process.stdout.write(JSON.stringify(items.map((item) => item.json)));
})().catch((error) => { console.error(error); process.exit(1); });
"""


@cache
def workflow(preset: str, flow: str, stores: int | None = None) -> dict[str, Any]:
    """Return one generated n8n workflow; ``stores`` overrides the preset's store count."""
    answers, plan, spec = load_case(preset, {} if stores is None else {"store_count": stores})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files[f"workflows/n8n/{flow}.json"])
    return data


def node_code(data: dict[str, Any], name: str) -> str:
    node = next(item for item in data["nodes"] if item["name"] == name)
    code: str = node["parameters"]["jsCode"]
    return code


def run_chain(steps: list[tuple[str, str | None, str | None]], items: list[Any]) -> Any:
    """Run ``(name, code, stub)`` steps on ``items``; a stub is a JavaScript function."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node (Node.js) was not found, and CI is set")
        pytest.skip("node (Node.js) not found: the Code nodes cannot run")
    parts = []
    for name, code, stub in steps:
        if stub is not None:
            parts.append(f"{{ name: {json.dumps(name)}, stub: {stub} }}")
        else:
            parts.append(f"{{ name: {json.dumps(name)}, code: {json.dumps(code)} }}")
    script = RUNNER % ("[" + ",\n".join(parts) + "]",
                       json.dumps([{"json": item} for item in items], ensure_ascii=False))
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=False,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def linked(data: dict[str, Any], source: str, target: str) -> bool:
    outputs = data["connections"].get(source, {}).get("main", [])
    return any(link["node"] == target for output in outputs for link in output)


SEARCH = "Find the customers whose latest order is 52 days old"
GATE = "Check whatsapp consent"
SEND = "Send step 2 by whatsapp"


def whatsapp_chain(data: dict[str, Any], subscribed: str) -> list[tuple[str, str | None,
                                                                       str | None]]:
    stub = ("() => ({ results: [{ channel: 'WHATSAPP', statusState: "
            f"{json.dumps(subscribed)} }}] }})")
    return [
        (f"{SEARCH}: results", node_code(data, f"{SEARCH}: results"), None),
        (f"{GATE}: request", node_code(data, f"{GATE}: request"), None),
        (f"{GATE}: read", None, stub),
        (GATE, node_code(data, GATE), None),
        (f"{SEND}: message", node_code(data, f"{SEND}: message"), None),
    ]


def search_answer() -> dict[str, Any]:
    return {"results": [{"id": "501", "properties": {
        "email": "noura@example.sa", "firstname": "نورة", "lastname": "عبد الله",
        "ecom_phone_e164": "+966501234567", "phone": "+966501234567",
        "ecom_customer_id": "77", "ecom_last_order_at": "2026-11-25T10:00:00+03:00"}}]}


def test_win_back_search_asks_properties() -> None:
    data = workflow("shopify-growth", "win-back")
    code = node_code(data, f"{SEARCH}: request")
    assert '"properties": [' in code
    for name in ("email", "firstname", "ecom_phone_e164", "ecom_customer_id"):
        assert f'"{name}"' in code, name


def test_win_back_nodes_linked() -> None:
    data = workflow("shopify-growth", "win-back")
    assert linked(data, SEARCH, f"{SEARCH}: results")
    assert linked(data, f"{SEARCH}: results", "Wait for the end of quiet hours: resume time (2)")
    assert linked(data, "Wait for the end of quiet hours (2)", f"{GATE}: request")
    assert linked(data, f"{GATE}: read", GATE)
    assert linked(data, f"{SEND}: message", SEND)


def test_win_back_consenting_contact_sent() -> None:
    data = workflow("shopify-growth", "win-back")
    sent = run_chain(whatsapp_chain(data, "SUBSCRIBED"), [search_answer()])
    assert len(sent) == 1
    body = sent[0]["body"]
    assert body["to"] == "966501234567"
    assert body["template"]["components"][0]["parameters"][0]["text"] == "نورة"


def test_win_back_without_consent_dropped() -> None:
    data = workflow("shopify-growth", "win-back")
    sent = run_chain(whatsapp_chain(data, "NOT_SUBSCRIBED"), [search_answer()])
    assert sent == []


def test_zoho_win_back_consenting_sent() -> None:
    data = workflow("jeddah-fashion-zoho", "win-back")
    record = {"id": "9001", "Email": "noura@example.sa", "First_Name": "نورة",
              "Last_Name": "عبد الله", "Mobile": "+966501234567", "Ecom_Customer_ID": "77",
              "Ecom_WhatsApp_Opt_In": True}
    stub = "() => ({ data: [{ Ecom_WhatsApp_Opt_In: true }] })"
    steps = whatsapp_chain(data, "SUBSCRIBED")
    steps[2] = (f"{GATE}: read", None, stub)
    sent = run_chain(steps, [{"data": [record]}])
    assert len(sent) == 1
    assert sent[0]["body"]["to"] == "966501234567"


def test_hubspot_status_skips_channel_without_state() -> None:
    data = workflow("shopify-growth", "consent-sync")
    writes = {str(json.loads(re.search(r"const SPEC = (.*);", node["parameters"]["jsCode"])
                             .group(1))["channel"]): node["name"]
              for node in data["nodes"]
              if "const requested = outputOf(SPEC.status_request)"
              in node["parameters"].get("jsCode", "")}
    assert set(writes) == {"EMAIL", "SMS", "WHATSAPP"}
    mapping = "Map each channel's consent state"
    read = "Write the consent record to the CRM: read the {} status"
    no_choice = "() => ({ results: [{ status: 'NOT_SPECIFIED' }] })"

    def run_channel(channel: str, item: dict[str, Any]) -> Any:
        return run_chain([(mapping, None, "(json) => json"),
                          (f"{read.format(channel)}: request",
                           node_code(data, f"{read.format(channel)}: request"), None),
                          (read.format(channel), None, no_choice),
                          (writes[channel], node_code(data, writes[channel]), None)], [item])

    # A customers/update body with email consent only: no SMS state, no WhatsApp metafield.
    item = {"record": {"email": "a@b.sa", "ecom_phone_e164": "+966501234567",
                       "phone": "+966501234567"},
            "payload": {"email": "a@b.sa", "phone": "+966501234567",
                        "email_marketing_consent": {"state": "subscribed"}}}
    sent = {channel: run_channel(channel, item) for channel in writes}
    assert [body["body"]["statusState"] for body in sent["EMAIL"]] == ["SUBSCRIBED"]
    assert sent["SMS"] == []
    assert sent["WHATSAPP"] == []
    unsubscribed = {**item, "payload": {**item["payload"],
                                        "sms_marketing_consent": {"state": "unsubscribed"}}}
    sms = run_channel("SMS", unsubscribed)
    assert [body["body"]["statusState"] for body in sms] == ["NOT_SUBSCRIBED"]


ZOHO_PRODUCTS = "Create or update the products"
ZOHO_ORDER = "Create the sales order with its lines"
ZOHO_KNOWN = "Sales order written before? (rabt_zoho_sales_orders)"


def zoho_sales_order_steps(body: dict[str, Any], known: str) -> list[Any]:
    """Return the order-sync chain from the deal to the sales order batch, with stubs."""
    data = workflow("jeddah-fashion-zoho", "order-sync")

    def code(name: str) -> tuple[str, str | None, str | None]:
        return (name, node_code(data, name), None)

    return [("Skip an event already processed", None, "(json) => json"),
            code("Map the order to the deal, with its stage"),
            code("Create or update the deal: batch"),
            ("Create or update the deal: request", None,
             "(json) => ({ data: json.body.data.map(() => ({ details: { id: 'D-1' } })) })"),
            # The line branch starts again from the payload, as its own branch in n8n.
            ("Back to the payload", None, f"() => ({json.dumps(body)})"),
            code("Map each line item, linked by SKU"),
            code(f"{ZOHO_PRODUCTS}: batch"),
            (f"{ZOHO_PRODUCTS}: request", None,
             "(json) => ({ data: json.body.data.map((row) => "
             "({ details: { id: `P-${row.Ecom_Product_ID}` } })) })"),
            code(f"{ZOHO_KNOWN}: keys"),
            (ZOHO_KNOWN, None, known),
            code(f"{ZOHO_ORDER}: batch")]


ZOHO_ORDER_BODY = {"id": 5900000000001, "name": "#1001", "email": "a@b.sa",
                   "financial_status": "paid", "total_price": "300.00", "currency": "SAR",
                   "created_at": "2026-03-01T14:04:51+03:00",
                   "line_items": [{"sku": "OUD-50", "variant_id": 11, "quantity": 2,
                                   "price": "100.00"},
                                  {"sku": "MUSK-10", "variant_id": 12, "quantity": 1,
                                   "price": "100.00"}]}


def test_n8n_zoho_sales_order_real_subform() -> None:
    data = workflow("jeddah-fashion-zoho", "order-sync")
    names = [node["name"] for node in data["nodes"]]
    assert "Create or update the line items: batch" not in names
    request = next(node for node in data["nodes"] if node["name"] == f"{ZOHO_ORDER}: request")
    assert request["parameters"]["url"].endswith("/crm/v8/Sales_Orders")
    products = next(node for node in data["nodes"]
                    if node["name"] == f"{ZOHO_PRODUCTS}: request")
    assert products["parameters"]["url"].endswith("/crm/v8/Products/upsert")
    steps = zoho_sales_order_steps(ZOHO_ORDER_BODY, "(json) => ({})")
    product_bodies = run_chain(steps[:7], [ZOHO_ORDER_BODY])
    assert product_bodies == [{"body": {
        "data": [{"Unit_Price": 100, "Product_Name": "OUD-50", "Product_Code": "OUD-50",
                  "Ecom_Product_ID": "11"},
                 {"Unit_Price": 100, "Product_Name": "MUSK-10", "Product_Code": "MUSK-10",
                  "Ecom_Product_ID": "12"}],
        "duplicate_check_fields": ["Ecom_Product_ID"], "trigger": []},
        "keys": ["11", "12"]}]
    sent = run_chain(steps, [ZOHO_ORDER_BODY])
    rows = [{"product": {"id": "P-11"}, "quantity": 2, "list_price": 100},
            {"product": {"id": "P-12"}, "quantity": 1, "list_price": 100}]
    assert sent == [{"key": "sales-order:5900000000001", "body": {"trigger": ["workflow"], "data": [
        {"Product_Details": rows, "Subject": "Order #1001", "Deal_Name": {"id": "D-1"}}]}}]
    # An order whose sales order is in the data table gets no second one.
    again = zoho_sales_order_steps(ZOHO_ORDER_BODY,
                                   "(json) => ({ key: json.key, value: 'SO-1' })")
    assert run_chain(again, [ZOHO_ORDER_BODY]) == []


def test_woocommerce_consent_meta_read_by_key() -> None:
    answers, plan, spec = load_case("woo-startup", {"path": "ipaas"})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data = json.loads(files["workflows/n8n/consent-sync.json"])
    name = "Map each channel's consent state"
    body = {"id": 42, "email": "a@b.sa", "billing": {"phone": "0501234567"},
            "meta_data": [{"key": "_other", "value": "no"},
                          {"key": "_rabt_email_opt_in", "value": "yes"},
                          {"key": "_rabt_email_opt_in_at", "value": "2026-03-01T10:00:00"}]}
    record = run_chain([(name, node_code(data, name), None)], [body])[0]["record"]
    assert record["Email_Opt_Out"] is False
    assert record["Ecom_Email_Consent_At"] == "2026-03-01T10:00:00"
    body["meta_data"][1]["value"] = "no"
    record = run_chain([(name, node_code(data, name), None)], [body])[0]["record"]
    assert record["Email_Opt_Out"] is True


def test_zoho_money_fields_sent_as_numbers() -> None:
    data = workflow("jeddah-fashion-zoho", "order-sync")
    body = {**ZOHO_ORDER_BODY, "refunds": [{"transactions": [{"amount": "50.00"}]}]}
    steps = [(name, node_code(data, name), None) for name in (
        "Map the order to the deal, with its stage", "Create or update the deal: batch")]
    deal = run_chain(steps, [body])[0]["body"]["data"][0]
    assert deal["Amount"] == 300
    assert isinstance(deal["Amount"], int | float)
    assert deal["Ecom_Refunded_SAR"] == 50
    assert deal["Shopify_Order_ID"] == "5900000000001"
    assert deal["Closing_Date"] == "2026-03-01"


def test_zoho_product_price_sent_as_number() -> None:
    data = workflow("jeddah-fashion-zoho", "product-sync")
    body = {"id": 8, "title": "عطر عود", "product_type": "perfume",
            "variants": [{"id": 11, "sku": "OUD-50", "price": "149.50"}]}
    steps = [(name, node_code(data, name), None) for name in (
        "Map the product", "Create or update the product: batch")]
    product = run_chain(steps, [body])[0]["body"]["data"][0]
    assert product["Unit_Price"] == 149.5
    assert product["Product_Code"] == "OUD-50"


CONTACT_MAP = "Map the customer to the contact"
PAID_ORDER = {"id": 5001, "rabt_shop": "store-1.myshopify.com", "email": "noura@example.sa",
              "processed_at": "2026-03-01T10:00:00+03:00", "financial_status": "paid",
              "fulfillment_status": None, "customer": {"id": 77, "email": "noura@example.sa"}}


@pytest.mark.parametrize(("preset", "target"), [("shopify-growth", "ecom_last_order_at"),
                                                ("jeddah-fashion-zoho", "Ecom_Last_Order_At")])
def test_last_order_time_from_won_order_only(preset: str, target: str) -> None:
    data = workflow(preset, "order-sync")
    code = node_code(data, CONTACT_MAP)
    bodies = [PAID_ORDER,
              {**PAID_ORDER, "financial_status": "pending"},
              {**PAID_ORDER, "financial_status": "voided"},
              {**PAID_ORDER, "cancelled_at": "2026-03-02T10:00:00+03:00"},
              {**PAID_ORDER, "fulfillment_status": "fulfilled"}]
    records = [item["record"] for item in run_chain([(CONTACT_MAP, code, None)], bodies)]
    assert records[0][target] == "2026-03-01T10:00:00+03:00"
    assert target not in records[1]
    assert target not in records[2]
    assert target not in records[3]
    assert records[4][target] == "2026-03-01T10:00:00+03:00"
    assert all(record.get("email") or record.get("Email") for record in records)


ENROL = "Send step 1 by email"
GUEST_RECORD = {"email": "guest@example.sa", "ecom_phone_e164": "+966501234568",
                "phone": "+966501234568"}
CUSTOMER_RECORD = {"email": "noura@example.sa", "ecom_phone_e164": "+966501234567",
                   "ecom_customer_id": "77"}


def enrol_inputs(flow: str, items: list[Any]) -> list[Any]:
    """Run a flow's email-step mark and batch nodes on ``items``; return the upsert inputs."""
    data = workflow("shopify-growth", flow)
    out = run_chain([(f"{ENROL}: {part}", node_code(data, f"{ENROL}: {part}"), None)
                     for part in ("enrol", "batch")], items)
    return [entry for body in out for entry in body["body"]["inputs"]]


@pytest.mark.parametrize(("flow", "playbook"), [("abandoned-checkout", "abandoned_cart"),
                                                ("post-purchase", "post_purchase"),
                                                ("win-back", "win_back")])
def test_guest_enrolled_by_email(flow: str, playbook: str) -> None:
    inputs = enrol_inputs(flow, [{"record": GUEST_RECORD, "key": None},
                                 {"record": CUSTOMER_RECORD, "key": "77"}])
    keys = sorted((entry["idProperty"], entry["id"]) for entry in inputs)
    assert keys == [("ecom_customer_id", "77"), ("email", "guest@example.sa")]
    guest = next(entry for entry in inputs if entry["idProperty"] == "email")
    assert guest["properties"]["ecom_playbook_step"].startswith(f"{playbook}:")
    assert "ecom_customer_id" not in guest["properties"]


def test_phone_only_guest_enrolled_by_phone() -> None:
    record = {"ecom_phone_e164": "+966501234568"}
    inputs = enrol_inputs("abandoned-checkout", [{"record": record, "key": None}])
    assert [(entry["idProperty"], entry["id"]) for entry in inputs] == [
        ("ecom_phone_e164", "+966501234568")]


def test_mark_without_identity_fails_clearly() -> None:
    data = workflow("shopify-growth", "abandoned-checkout")
    steps = [(f"{ENROL}: {part}", node_code(data, f"{ENROL}: {part}"), None)
             for part in ("enrol", "batch")]
    with pytest.raises(AssertionError, match=r"1 contact record\(s\) not sent, because none has"):
        run_chain(steps, [{"record": {"firstname": "Noura"}, "key": None}])
