"""n8n playbooks whose code several sends carry: the code follows consent on any of their channels.

The chains run the workflow's Code nodes with ``node``. A ``return $(...).all()`` glue
step stands for n8n starting the next branch from the same parent node.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_ipaas_n8n_playbooks import position
from tests.test_ipaas_n8n_run import linked, node_code, run_chain, workflow

CODE = "Create the contact's single-use discount code"
PICK = "Contacts with consent for the code"
ADD = f"{CODE}: add to each contact"
STORE = "Store the code on the contact: record"
RESULTS = "Find the customers whose latest order is 45 days old: results"
CREATED = ("() => ({ data: { discountCodeBasicCreate: { codeDiscountNode: { id: 'D1' }, "
           "userErrors: [] } } })")
ANSWER = {"results": [{"id": "501", "properties": {
    "email": "noura@example.sa", "firstname": "نورة", "phone": "+966501234567",
    "ecom_phone_e164": "+966501234567", "ecom_customer_id": "77"}}]}
Chain = list[tuple[str, str | None, str | None]]


def again(name: str) -> tuple[str, str | None, str | None]:
    return (f"again from {name}", f"return $({json.dumps(name)}).all();", None)


def consent_branch(data: dict[str, Any], channel: str, status: str) -> Chain:
    gate = f"Consent on {channel} for the code"
    stub = (f"() => ({{ results: [{{ channel: '{channel.upper()}', "
            f"statusState: '{status}' }}] }})")
    return [again(RESULTS), (f"{gate}: request", node_code(data, f"{gate}: request"), None),
            (f"{gate}: read", None, stub), (gate, node_code(data, gate), None)]


def win_back_step_one(statuses: dict[str, str], until: str = ADD) -> list[dict[str, Any]]:
    """Run win-back step 1's code nodes up to ``until`` for one found contact."""
    data = workflow("shopify-growth", "win-back")
    steps: Chain = [(RESULTS, node_code(data, RESULTS), None)]
    for channel in ("email", "whatsapp", "sms"):
        steps += consent_branch(data, channel, statuses.get(channel, "NOT_SUBSCRIBED"))
    steps += [again(RESULTS), (PICK, node_code(data, PICK), None),
              (f"{CODE}: request", node_code(data, f"{CODE}: request"), None),
              (CODE, None, CREATED),
              (f"{CODE}: keep the code", node_code(data, f"{CODE}: keep the code"), None)]
    if until == STORE:
        steps.append((STORE, node_code(data, STORE), None))
    else:
        steps += [again(RESULTS), (ADD, node_code(data, ADD), None)]
    items: list[dict[str, Any]] = run_chain(steps, [ANSWER])
    return items


def test_win_back_code_without_email_consent() -> None:
    items = win_back_step_one({"whatsapp": "SUBSCRIBED"})
    assert len(items) == 1
    assert items[0]["discount_code"].startswith("RABT-")


def test_win_back_code_with_email_consent() -> None:
    items = win_back_step_one({"email": "SUBSCRIBED"})
    assert items[0]["discount_code"].startswith("RABT-")


def test_win_back_no_code_without_consent() -> None:
    items = win_back_step_one({})
    # The contact goes on to the email gate, without a code.
    assert len(items) == 1
    assert "discount_code" not in items[0]


def test_win_back_code_stored_without_marker() -> None:
    items = win_back_step_one({"sms": "SUBSCRIBED"}, until=STORE)
    record = items[0]["record"]
    assert record["ecom_discount_code"].startswith("RABT-")
    assert record["ecom_discount_expires_at"]
    # Only the code is written: the CRM's win-back email is not started.
    assert "ecom_playbook_step" not in record


@pytest.mark.parametrize("flow", ["win-back", "abandoned-checkout"])
def test_code_branch_runs_before_chain(flow: str) -> None:
    data = workflow("shopify-growth", flow)
    gates = [node["name"] for node in data["nodes"]
             if node["name"].startswith("Consent on ") and node["name"].endswith("for the code")]
    assert len(gates) >= 2
    # n8n's v1 order runs a node's children top to bottom: consent reads, code, chain.
    for gate in gates:
        assert position(data, f"{gate}: request")[1] < position(data, PICK)[1]
    assert position(data, PICK)[1] < position(data, ADD)[1]
    assert linked(data, f"{CODE}: keep the code", STORE) is (flow == "win-back")
    assert linked(data, ADD, "Check email consent: request")
