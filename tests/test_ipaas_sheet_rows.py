"""Build-sheet rows and Make modules: delays, loops and the consent behind a shared code."""

from __future__ import annotations

from typing import Any

from generator.ipaas import buildsheets
from generator.ipaas.flows import build_flows
from tests.ipaas_cases import load_case
from tests.test_ipaas_make import blueprints_for, modules


def sheet_flows(preset: str, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    answers, plan, spec = load_case(preset, values)
    return {flow["key"]: flow for flow in buildsheets.sheet_context(
        build_flows(answers, plan, spec))}


def test_sheet_delay_rows_carry_no_call() -> None:
    flows = sheet_flows("shopify-growth", {})
    waits = [step for flow in flows.values() for step in flow["steps"] if step["kind"] == "wait"]
    assert waits
    for step in waits:
        assert step["zapier_calls"] == [], step["key"]
        assert step["tray_calls"] == [], step["key"]
    searches = [step["due_calls"] for step in waits if step["due_calls"]]
    assert searches, "the Tray sheet names no due-record search"


def test_zapier_loop_is_its_own_step() -> None:
    flows = sheet_flows("headless-nextjs", {"path": "ipaas"})
    steps = [step for step in flows["order-sync"]["steps"] if step["key"] == "map_line_items"]
    tools = [action["tool"] for action in steps[0]["zapier"]]
    assert tools == ["Looping by Zapier", "Formatter by Zapier"]
    for action in steps[0]["zapier"]:
        assert f"pick the {action['tool']} action" in action["unconfirmed_en"]
        assert "Looping" not in action["settings_en"] or action["tool"] == "Looping by Zapier"


def test_zapier_shared_code_behind_consent() -> None:
    steps = sheet_flows("shopify-growth", {})["abandoned-checkout"]["steps"]
    discount = next(step for step in steps if step["kind"] == "discount")
    gate = discount["zapier"][0]
    assert gate["tool"] == "Paths by Zapier"
    assert "at least one channel whose send carries the code" in gate["settings_en"]
    assert "email:" in gate["settings_en"]
    assert "whatsapp:" in gate["settings_en"]
    assert 'rows from "Check email consent" on' in gate["settings_en"]
    assert discount["zapier"][1]["tool"] == "Webhooks by Zapier"


def consent_filter_of(flow: list[dict[str, Any]], name: str) -> dict[str, Any]:
    module = next(module for module in modules(flow)
                  if module["metadata"]["designer"]["name"] == name)
    assert "filter" in module, name
    return dict(module["filter"])


def test_make_shared_code_behind_consent() -> None:
    blueprints = blueprints_for("shopify-growth", {})
    runner = consent_filter_of(blueprints["abandoned-checkout-runner"]["flow"],
                               "Claim the code for this checkout (data store processed_events)")
    # HubSpot: each send reads its own status, so the code needs an address on a channel.
    assert "An address on a channel that carries the code (email, whatsapp)" in runner["name"]
    assert "No order since the checkout" in runner["name"]
    fields = {condition["a"] for group in runner["conditions"] for condition in group}
    assert any("ecom_phone_e164" in field for field in fields), fields
    win_back = consent_filter_of(blueprints["win-back"]["flow"],
                                 "Create the contact's single-use discount code")
    assert win_back["name"] == \
        "An address on a channel that carries the code (email, whatsapp, sms)"
    assert len(win_back["conditions"]) >= 3


def sheet_field(flows: dict[str, dict[str, Any]], flow: str, transform: str) -> dict[str, Any]:
    return next(row for row in flows[flow]["fields"] if row["transform"] == transform)


def test_sheet_order_source_lists_pick_list() -> None:
    flows = sheet_flows("shopify-growth", {})
    row = sheet_field(flows, "order-sync", "utm_channel")
    assert "Write only one of these values: meta, google, tiktok, snapchat, other." \
        in row["description_en"]
    assert "Any other channel becomes other" in row["description_en"]
    assert "meta، google، tiktok، snapchat، other" in row["description_ar"]


def test_sheet_unknown_city_left_out() -> None:
    flows = sheet_flows("jeddah-fashion-zoho", {})
    row = sheet_field(flows, "contact-sync", "city_canonical")
    assert "leave this field out of the request" in row["description_en"]
    assert "فلا ترسل هذا الحقل" in row["description_ar"]


def gate_rows(preset: str, flow: str) -> list[dict[str, Any]]:
    steps = sheet_flows(preset, {})[flow]["steps"]
    return [step for step in steps if step["kind"] == "consent_gate"]


def test_sheet_gates_read_hubspot_status() -> None:
    # Win-back items come from a HubSpot search and carry no store consent field.
    gates = gate_rows("shopify-growth", "win-back")
    assert {gate["gate"]["channel"] for gate in gates} == {"email", "whatsapp", "sms"}
    for gate in gates:
        channel = gate["gate"]["channel"].upper()
        assert gate["gate"]["field"] == f"results[].status (channel {channel})"
        assert gate["gate"]["granted"] == ["SUBSCRIBED"]
        read, check = gate["zapier"][0], gate["zapier"][-1]
        assert read["tool"] == "Webhooks by Zapier"
        assert f"communication-preferences/v4/statuses/{{subscriber}}?channel={channel}" in \
            read["settings_en"]
        assert "الموافقة الحالية" in read["settings_ar"]
        assert check["tool"] in ("Filter by Zapier", "Paths by Zapier")
        assert [action["tool"] for action in gate["tray"]] == ["HTTP Client",
                                                               "Boolean Condition"]
        assert "customer." not in gate["gate"]["field"]


def test_sheet_gates_read_crm_after_wait() -> None:
    # The post-purchase Zap waits days; the consent must be the CRM's at send time.
    gates = gate_rows("jeddah-fashion-zoho", "post-purchase")
    assert gates
    fields = {gate["gate"]["channel"]: (gate["gate"]["field"], gate["gate"]["granted"])
              for gate in gates}
    for channel, (field, granted) in fields.items():
        assert field.startswith("data[0]."), channel
        assert granted == (["false"] if field.endswith("Opt_Out") else ["true"])
    for gate in gates:
        assert "Contacts/search" in gate["zapier"][0]["settings_en"]
