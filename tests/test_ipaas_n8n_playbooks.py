"""Playbook workflows in n8n: each consent gate guards only its own send.

A gate comes after the quiet-hours wait, so an unsubscribe during the wait is seen,
and a contact the gate drops still reaches the later steps of the playbook.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_ipaas_n8n_run import linked, node_code, run_chain, workflow

PRESETS = ["shopify-growth", "jeddah-fashion-zoho"]


def descendants(data: dict[str, Any], start: str) -> set[str]:
    found: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        for output in data["connections"].get(name, {}).get("main", []):
            for link in output:
                if link["node"] not in found:
                    found.add(link["node"])
                    todo.append(link["node"])
    return found


def position(data: dict[str, Any], name: str) -> list[int]:
    node = next(item for item in data["nodes"] if item["name"] == name)
    result: list[int] = node["position"]
    return result


@pytest.mark.parametrize("preset", PRESETS)
def test_gate_follows_quiet_hours(preset: str) -> None:
    data = workflow(preset, "abandoned-checkout")
    # Step 1's discount code is added to each contact between its quiet-hours wait
    # and its gate.
    assert linked(data, "Wait for the end of quiet hours", "Contacts with consent for the code")
    assert linked(data, "Wait for the end of quiet hours",
                  "Create the contact's single-use discount code: add to each contact")
    assert linked(data, "Create the contact's single-use discount code: add to each contact",
                  "Check email consent: request")
    assert linked(data, "Wait for the end of quiet hours (2)",
                  "Check whatsapp consent: request")


@pytest.mark.parametrize("preset", PRESETS)
def test_failed_gate_reaches_next_step(preset: str) -> None:
    data = workflow(preset, "abandoned-checkout")
    after_gate = descendants(data, "Check email consent")
    assert "Send step 1 by email: continue" in after_gate
    assert "Wait for the next step: due time" not in after_gate
    assert "Wait for the next step" not in after_gate
    assert "Check whatsapp consent" not in after_gate
    assert linked(data, "Create the contact's single-use discount code: add to each contact",
                  "Wait for the next step: due time")


@pytest.mark.parametrize("preset", PRESETS)
def test_gated_send_runs_first(preset: str) -> None:
    data = workflow(preset, "abandoned-checkout")
    # n8n's v1 order runs the child with the smaller y first; the send must not wait
    # behind the next step's Wait node.
    assert position(data, "Check email consent: request")[1] < \
        position(data, "Wait for the next step: due time")[1]


@pytest.mark.parametrize("flow", ["post-purchase", "win-back"])
def test_scheduled_gate_after_wait(flow: str) -> None:
    data = workflow("shopify-growth", flow)
    gates = [node["name"] for node in data["nodes"]
             if node["name"].startswith("Check ") and node["name"].endswith(": request")]
    assert gates
    for gate in gates:
        sources = [name for name, links in data["connections"].items()
                   if any(link["node"] == gate for output in links["main"] for link in output)]
        assert len(sources) == 1
        # Win-back step 1 adds the code to each contact between the wait and the gate.
        if sources[0] == f"{CODE}: add to each contact":
            sources = [name for name, links in data["connections"].items()
                       if any(link["node"] == sources[0] for output in links["main"]
                              for link in output)]
        assert sources[0].startswith("Wait for the end of quiet hours"), sources


def ancestors(data: dict[str, Any], target: str) -> set[str]:
    found: set[str] = set()
    todo = [target]
    while todo:
        name = todo.pop()
        for source, links in data["connections"].items():
            if source in found:
                continue
            if any(link["node"] == name for output in links["main"] for link in output):
                found.add(source)
                todo.append(source)
    return found


CODE = "Create the contact's single-use discount code"
REMINDER = "Send step 2 by whatsapp: message"


@pytest.mark.parametrize("preset", PRESETS)
def test_reminder_carries_step_one_code(preset: str) -> None:
    data = workflow(preset, "abandoned-checkout")
    before_reminder = ancestors(data, REMINDER)
    # The code is created once, after the first quiet-hours wait and before either
    # consent gate, and added to each contact on the chain both steps share.
    assert f"{CODE}: add to each contact" in before_reminder
    assert linked(data, "Contacts with consent for the code", f"{CODE}: request")
    assert linked(data, f"{CODE}: add to each contact", "Check email consent: request")
    assert linked(data, f"{CODE}: add to each contact", "Wait for the next step: due time")
    assert "Check email consent" not in ancestors(data, f"{CODE}: request")
    assert sum(node["name"] == CODE for node in data["nodes"]) == 1


def test_reminder_message_has_code_button() -> None:
    data = workflow("shopify-growth", "abandoned-checkout")
    contact = {"record": {"email": "noura@example.sa", "firstname": "نورة",
                          "phone": "+966501234567", "ecom_phone_e164": "+966501234567",
                          "ecom_customer_id": "77"},
               "key": "77", "flags": [], "payload": {"token": "tok-1"}}
    created = ("() => ({ data: { discountCodeBasicCreate: { codeDiscountNode: { id: 'D1' }, "
               "userErrors: [] } } })")
    subscribed = "() => ({ results: [{ channel: 'WHATSAPP', statusState: 'SUBSCRIBED' }] })"
    steps = [(f"{CODE}: request", node_code(data, f"{CODE}: request"), None),
             (CODE, None, created),
             (f"{CODE}: keep the code", node_code(data, f"{CODE}: keep the code"), None),
             ("Check whatsapp consent: request",
              node_code(data, "Check whatsapp consent: request"), None),
             ("Check whatsapp consent: read", None, subscribed),
             ("Check whatsapp consent", node_code(data, "Check whatsapp consent"), None),
             (REMINDER, node_code(data, REMINDER), None)]
    sent = run_chain(steps, [contact])
    assert len(sent) == 1
    buttons = [part for part in sent[0]["body"]["template"]["components"]
               if part["type"] == "button"]
    assert len(buttons) == 1
    assert buttons[0]["sub_type"] == "copy_code"
    code = buttons[0]["parameters"][0]["coupon_code"]
    assert code.startswith("RABT-")
    assert len(code) == len("RABT-") + 7


WIN_BACK_SEARCHES = {2: "Find the customers whose latest order is 52 days old",
                     3: "Find the customers whose latest order is 60 days old"}
WIN_BACK_CHANNELS = {2: ("whatsapp", "WHATSAPP"), 3: ("sms", "SMS")}


def win_back_send(step: int, properties: dict[str, str]) -> dict[str, Any]:
    """Run win-back step ``step`` on one found contact; return the request body it builds."""
    data = workflow("shopify-growth", "win-back")
    search = WIN_BACK_SEARCHES[step]
    channel, upper = WIN_BACK_CHANNELS[step]
    gate = f"Check {channel} consent"
    message = f"Send step {step} by {channel}: message"
    subscribed = f"() => ({{ results: [{{ channel: '{upper}', statusState: 'SUBSCRIBED' }}] }})"
    answer = {"results": [{"id": "501", "properties": {
        "email": "noura@example.sa", "firstname": "نورة", "phone": "+966501234567",
        "ecom_phone_e164": "+966501234567", "ecom_customer_id": "77", **properties}}]}
    steps = [(f"{search}: results", node_code(data, f"{search}: results"), None),
             (f"{gate}: request", node_code(data, f"{gate}: request"), None),
             (f"{gate}: read", None, subscribed),
             (gate, node_code(data, gate), None),
             (message, node_code(data, message), None)]
    sent = run_chain(steps, [answer])
    assert len(sent) == 1
    body: dict[str, Any] = sent[0]["body"]
    return body


STORED = {"ecom_discount_code": "RABT-0A1B2C3", "ecom_discount_expires_at": "2099-01-01T00:00:00Z"}


def coupon_buttons(body: dict[str, Any]) -> list[str]:
    return [part["parameters"][0]["coupon_code"] for part in body["template"]["components"]
            if part["type"] == "button"]


def test_win_back_whatsapp_repeats_stored_code() -> None:
    body = win_back_send(2, STORED)
    assert coupon_buttons(body) == ["RABT-0A1B2C3"]


def test_win_back_sms_repeats_stored_code() -> None:
    body = win_back_send(3, STORED)
    assert body["code"] == "RABT-0A1B2C3"


def test_win_back_expired_code_left_out() -> None:
    expired = {**STORED, "ecom_discount_expires_at": "2020-01-01T00:00:00Z"}
    assert coupon_buttons(win_back_send(2, expired)) == []
    assert win_back_send(3, expired)["code"] is None


def test_win_back_epoch_expiry_read() -> None:
    # HubSpot can return a datetime property as epoch milliseconds.
    future = {**STORED, "ecom_discount_expires_at": "4070908800000"}
    assert coupon_buttons(win_back_send(2, future)) == ["RABT-0A1B2C3"]


@pytest.mark.parametrize("step", [2, 3])
def test_win_back_search_reads_code_fields(step: int) -> None:
    data = workflow("shopify-growth", "win-back")
    code = node_code(data, f"{WIN_BACK_SEARCHES[step]}: request")
    assert '"ecom_discount_code"' in code
    assert '"ecom_discount_expires_at"' in code
