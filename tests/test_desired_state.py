"""Tests for the CRM desired state (crm/desired-state.yaml) and its JSON Schema."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from typing import Any

import jsonschema
import pytest
import yaml

import generator.spec
from generator.resources import load_schema
from generator.spec import build_desired_state, build_spec
from tests.test_spec import BASE_MODULES, make_answers, make_plan

CRMS = ("hubspot", "zoho", "custom")
PLATFORMS = ("shopify", "woocommerce", "headless", "custom")
ALL_CONSENT = ("email", "sms", "whatsapp")
FULL_MODULES = (*BASE_MODULES, "events", "support")
SEGMENT_KEYS = ["vip", "recent_buyers", "dormant_90", "new_subscribers"]
STAGE_KEYS = ["cart_abandoned", "awaiting_payment", "paid_processing", "fulfilled", "cancelled",
              "refunded"]


def build(crm: str = "hubspot", platform: str = "shopify", *,
          modules: tuple[str, ...] = FULL_MODULES, path: str = "api",
          **answer_changes: Any) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Return the spec and the desired state for one combination."""
    answer_changes.setdefault("consent_channels", ALL_CONSENT)
    plan = make_plan(crm=crm, platform=platform, modules=modules, path=path,
                     recommended_path=path)
    spec = build_spec(make_answers(crm=crm, platform=platform, **answer_changes), plan)
    return spec, build_desired_state(spec, plan)


def state_for(crm: str = "hubspot", platform: str = "shopify", **changes: Any) -> dict[str, Any]:
    return build(crm, platform, **changes)[1]


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(load_schema("crm-desired-state"))
    return [f"{list(error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(document)]


def properties_by_name(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {prop["name"]: prop for prop in state["properties"]}


def zoho_fields(state: dict[str, Any], module: str) -> dict[str, dict[str, Any]]:
    found = next(item for item in state["modules"] if item["module"] == module)
    return {field["api_name"]: field for field in found["fields"]}


def table(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in state["tables"] if item["name"] == name)


def columns(state: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    return {column["name"]: column for column in table(state, name)["columns"]}


# --- shape and schema -------------------------------------------------------------


def test_exported_from_spec_package() -> None:
    assert "build_desired_state" in generator.spec.__all__
    assert generator.spec.build_desired_state is build_desired_state


def test_schema_is_strict_draft_2020_12() -> None:
    schema = load_schema("crm-desired-state")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        if definition.get("type") == "object":
            assert definition["additionalProperties"] is False, name


@pytest.mark.parametrize(("crm", "platform"), list(itertools.product(CRMS, PLATFORMS)))
@pytest.mark.parametrize("path", ["connector", "api"])
def test_every_combination_validates(crm: str, platform: str, path: str) -> None:
    state = state_for(crm, platform, path=path)
    assert schema_errors(state) == []
    assert list(state)[:3] == ["version", "crm", "platform"]
    assert (state["version"], state["crm"], state["platform"]) == (1, crm, platform)


@pytest.mark.parametrize("crm", CRMS)
@pytest.mark.parametrize("consent", [(), ("sms",), ALL_CONSENT])
@pytest.mark.parametrize("modules", [BASE_MODULES, FULL_MODULES, ("contacts",)])
def test_module_and_consent_variants_validate(
    crm: str, consent: tuple[str, ...], modules: tuple[str, ...]
) -> None:
    state = state_for(crm, "woocommerce", modules=modules, consent_channels=consent,
                      support_channels=())
    assert schema_errors(state) == []


@pytest.mark.parametrize("crm", CRMS)
def test_only_the_crm_sections_appear(crm: str) -> None:
    sections = {
        "hubspot": {"property_groups", "properties", "pipelines", "lists", "event_definitions"},
        "zoho": {"modules", "picklists", "pipeline", "segments"},
        "custom": {"tables", "views"},
    }
    state = state_for(crm)
    keys = set(state) - {"version", "crm", "platform", "manual_steps"}
    assert keys == sections[crm]


# --- HubSpot --------------------------------------------------------------------------


def test_hubspot_unique_keys_and_group() -> None:
    state = state_for("hubspot", "shopify")
    props = properties_by_name(state)
    assert props["ecom_customer_id"]["hasUniqueValue"] is True
    assert props["ecom_customer_id"]["object"] == "contacts"
    assert props["ecom_phone_e164"]["hasUniqueValue"] is True
    assert props["ecom_phone_e164"]["object"] == "contacts"
    assert props["shopify_order_id"]["hasUniqueValue"] is True
    assert props["shopify_order_id"]["object"] == "deals"
    assert props["ecom_ltv_sar"]["hasUniqueValue"] is False
    assert {prop["groupName"] for prop in state["properties"]} == {"ecommerce"}
    groups = [(group["object"], group["name"]) for group in state["property_groups"]]
    assert groups == [("contacts", "ecommerce"), ("deals", "ecommerce"),
                      ("line_items", "ecommerce"), ("products", "ecommerce"),
                      ("tickets", "ecommerce")]
    assert props["ecom_line_item_id"]["hasUniqueValue"] is True
    assert props["ecom_line_item_id"]["object"] == "line_items"
    woo = properties_by_name(state_for("hubspot", "woocommerce"))
    assert woo["external_order_id"]["hasUniqueValue"] is True
    assert "shopify_order_id" not in woo


def test_hubspot_rollup_and_source_properties() -> None:
    props = properties_by_name(state_for("hubspot", marketing_channels=("snapchat", "meta")))
    expected_types = {
        "ecom_first_order_at": ("datetime", "date"),
        "ecom_last_order_at": ("datetime", "date"),
        "ecom_orders_count": ("number", "number"),
        "ecom_ltv_sar": ("number", "number"),
        "ecom_first_source": ("enumeration", "select"),
        "ecom_last_source": ("enumeration", "select"),
        "ecom_last_checkout_at": ("datetime", "date"),
        "ecom_last_cart_value_sar": ("number", "number"),
        "ecom_last_cart_url": ("string", "text"),
        "ecom_marketing_opt_in_at": ("datetime", "date"),
        "ecom_lifecycle_stage": ("enumeration", "select"),
        "ecom_refunded_sar": ("number", "number"),
        "ecom_order_source": ("enumeration", "select"),
    }
    for name, pair in expected_types.items():
        assert (props[name]["type"], props[name]["fieldType"]) == pair, name
    options = props["ecom_first_source"]["options"]
    assert [option["value"] for option in options] == ["meta", "snapchat", "other"]
    assert [option["displayOrder"] for option in options] == [0, 1, 2]
    assert options[0]["label"] == "Meta"
    lifecycle = [option["value"] for option in props["ecom_lifecycle_stage"]["options"]]
    assert lifecycle == ["visitor", "lead", "first_time_customer", "repeat_customer"]


def test_hubspot_skips_standard_properties() -> None:
    names = set(properties_by_name(state_for("hubspot")))
    for standard in ("email", "phone", "firstname", "dealname", "amount", "dealstage",
                     "hs_sku", "price", "subject", "lifecyclestage", "pipeline"):
        assert standard not in names


def test_hubspot_labels_in_both_languages() -> None:
    for prop in state_for("hubspot")["properties"]:
        assert prop["label"] and prop["description"], prop["name"]
        assert any("\u0600" <= char <= "\u06ff" for char in prop["label_ar"]), prop["name"]
        assert prop["description_ar"], prop["name"]


def test_hubspot_pipeline_follows_stage_table() -> None:
    spec, state = build("hubspot")
    pipeline = state["pipelines"][0]
    assert (pipeline["object"], pipeline["label"], pipeline["id"]) == ("deals", "E-commerce", None)
    stages = pipeline["stages"]
    assert [stage["key"] for stage in stages] == STAGE_KEYS
    assert [stage["displayOrder"] for stage in stages] == list(range(6))
    assert all(stage["id"] is None for stage in stages)
    closed = {stage["key"]: stage["closed"] for stage in spec["mapping"]["order_stages"]["stages"]}
    for stage in stages:
        assert stage["metadata"]["isClosed"] == ("true" if closed[stage["key"]] else "false")
    probability = {stage["key"]: stage["metadata"]["probability"] for stage in stages}
    assert probability["paid_processing"] == "1.0"
    assert probability["cancelled"] == "0.0"
    assert pipeline["confidence"] == "unconfirmed"


def test_hubspot_lists_follow_segment_entry_rules() -> None:
    state = state_for("hubspot", monthly_orders=2000)
    lists = {item["key"]: item for item in state["lists"]}
    assert list(lists) == SEGMENT_KEYS
    for item in lists.values():
        assert (item["objectTypeId"], item["processingType"]) == ("0-1", "DYNAMIC")
        assert item["filterBranch"]["filterBranchType"] == "OR"
    vip_filters = lists["vip"]["filterBranch"]["filterBranches"][0]["filters"]
    assert vip_filters == [{
        "filterType": "PROPERTY",
        "property": "ecom_ltv_sar",
        "operation": {"operationType": "NUMBER", "operator": "IS_GREATER_THAN_OR_EQUAL_TO",
                      "value": 8000, "includeObjectsWithNoValueSet": False},
    }]
    recent = lists["recent_buyers"]["filterBranch"]["filterBranches"][0]["filters"][0]
    assert recent["property"] == "ecom_last_order_at"
    assert recent["operation"]["operationType"] == "ROLLING_DATE_RANGE"
    assert recent["operation"]["numberOfDays"] == 30
    subscribers = lists["new_subscribers"]["filterBranch"]["filterBranches"][0]["filters"]
    zero_orders = next(item for item in subscribers if item["property"] == "ecom_orders_count")
    assert zero_orders["operation"]["includeObjectsWithNoValueSet"] is True


def test_hubspot_lists_mark_unconfirmed_operators() -> None:
    for item in state_for("hubspot")["lists"]:
        assert item["confidence"] == "unconfirmed"
        assert "not confirmed" in item["note"]
    lists = {item["key"]: item for item in state_for("hubspot")["lists"]}
    assert "IS_LESS_THAN_X_DAYS_AGO" in lists["recent_buyers"]["note"]


def test_exit_note_only_where_exit_differs() -> None:
    lists = {item["key"]: item for item in state_for("hubspot", monthly_orders=600)["lists"]}
    assert "exit_note" not in lists["recent_buyers"]
    assert "4,500" in lists["vip"]["exit_note"]["en"]
    assert "4,500" in lists["vip"]["exit_note"]["ar"]


def test_hubspot_events_follow_events_module() -> None:
    with_events = state_for("hubspot", modules=FULL_MODULES)
    names = [item["name"] for item in with_events["event_definitions"]]
    assert names == ["ecom_page_view", "ecom_add_to_cart", "ecom_checkout_started",
                     "ecom_purchase_completed", "ecom_return_requested"]
    props = [prop["name"] for prop in with_events["event_definitions"][0]["propertyDefinitions"]]
    assert props == ["event_id", "cart_token", "cart_value_sar", "sku"]
    assert all(item["confidence"] == "unconfirmed" for item in with_events["event_definitions"])
    assert "event_definitions" not in state_for("hubspot", modules=BASE_MODULES)


def test_disabled_ticket_creates_nothing() -> None:
    with_support = properties_by_name(state_for("hubspot", modules=FULL_MODULES))
    without = properties_by_name(state_for("hubspot", modules=BASE_MODULES))
    assert with_support["ecom_order_id"]["object"] == "tickets"
    assert "ecom_order_id" not in without
    assert "tickets" not in {group["object"] for group in state_for(
        "hubspot", modules=BASE_MODULES)["property_groups"]}


# --- Zoho ---------------------------------------------------------------------------


def test_zoho_custom_fields_and_types() -> None:
    state = state_for("zoho", "shopify", consent_channels=ALL_CONSENT)
    contacts = zoho_fields(state, "Contacts")
    assert contacts["Ecom_Customer_ID"]["unique"] is True
    assert contacts["Ecom_Customer_ID"]["data_type"] == "text"
    assert contacts["Ecom_Customer_ID"]["field_label"] == "Ecom Customer ID"
    assert contacts["Ecom_LTV_SAR"]["data_type"] == "currency"
    assert contacts["Ecom_Orders_Count"]["data_type"] == "integer"
    assert contacts["Ecom_Last_Order_At"]["data_type"] == "datetime"
    assert contacts["Ecom_SMS_Opt_In"]["data_type"] == "boolean"
    assert contacts["Ecom_WhatsApp_Consent_At"]["data_type"] == "datetime"
    stage_values = contacts["Ecom_Lifecycle_Stage"]["pick_list_values"]
    assert [value["actual_value"] for value in stage_values] == [
        "Visitor", "Lead", "First-time Customer", "Repeat Customer"]
    for standard in ("Email", "Mobile", "Last_Name", "Lead_Source", "Email_Opt_Out"):
        assert standard not in contacts
    deals = zoho_fields(state, "Deals")
    assert deals["Shopify_Order_ID"]["unique"] is True
    assert deals["Ecom_Refunded_SAR"]["data_type"] == "currency"
    assert "Stage" not in deals
    events = zoho_fields(state, "Ecom_Events")
    assert events["Contact"]["data_type"] == "lookup"
    assert events["Contact"]["lookup"] == {"module": "Contacts"}
    assert next(m for m in state["modules"] if m["module"] == "Ecom_Events")["custom_module"]


def test_zoho_consent_fields_follow_managed_channels() -> None:
    contacts = zoho_fields(state_for("zoho", consent_channels=("email",)), "Contacts")
    assert "Ecom_Email_Consent_At" in contacts
    assert "Ecom_SMS_Opt_In" not in contacts
    assert "Ecom_WhatsApp_Opt_In" not in contacts


def test_zoho_stage_picklist_and_pipeline() -> None:
    spec, state = build("zoho")
    stage = state["picklists"][0]
    assert (stage["module"], stage["field"]) == ("Deals", "Stage")
    zoho_values = [item["crm_value"] for item in spec["mapping"]["order_stages"]["stages"]]
    assert [value["display_value"] for value in stage["values"]] == zoho_values
    forecast = {value["key"]: value["forecast_type"] for value in stage["values"]}
    assert forecast["awaiting_payment"] == "Open"
    assert forecast["fulfilled"] == "Closed Won"
    assert forecast["refunded"] == "Closed Lost"
    assert {value["key"]: value["probability"] for value in stage["values"]}["cart_abandoned"] == 10
    pipeline = state["pipeline"]
    assert (pipeline["field"], pipeline["name"], pipeline["id"]) == ("Pipeline", "E-commerce", None)
    assert pipeline["stages"] == zoho_values


def test_zoho_lead_source_gets_the_source_values() -> None:
    state = state_for("zoho", marketing_channels=("tiktok", "organic"))
    lead_source = next(item for item in state["picklists"] if item["field"] == "Lead_Source")
    assert [value["actual_value"] for value in lead_source["values"]] == [
        "tiktok", "organic", "other"]


def test_zoho_segments_are_manual_views() -> None:
    state = state_for("zoho", monthly_orders=100)
    views = {view["key"]: view for view in state["segments"]}
    assert list(views) == SEGMENT_KEYS
    assert all(view["manual"] is True for view in views.values())
    assert views["vip"]["criteria"] == [{"field": "Ecom_LTV_SAR", "op": "gte", "value": 3000}]
    steps = {step["key"]: step for step in state["manual_steps"]}
    assert "zoho_custom_views" in steps
    assert "zoho_data_centre" in steps
    for step in steps.values():
        assert step["text"]["en"] and step["text"]["ar"]
        assert any("\u0600" <= char <= "\u06ff" for char in step["text"]["ar"])


def test_zoho_events_module_step_follows_events() -> None:
    with_events = {step["key"] for step in state_for("zoho", modules=FULL_MODULES)["manual_steps"]}
    without = {step["key"] for step in state_for("zoho", modules=BASE_MODULES)["manual_steps"]}
    assert "zoho_events_module" in with_events
    assert "zoho_events_module" not in without


@pytest.mark.parametrize(("platform", "path", "expected"), [
    ("shopify", "connector", False),  # HubSpot's data sync app writes Orders, not deals
    ("woocommerce", "connector", True),
    ("shopify", "ipaas", True),
    ("headless", "api", True),
])
def test_hubspot_currency_step_where_deals_written(platform: str, path: str,
                                                   expected: bool) -> None:
    steps = {step["key"]: step["text"] for step in
             state_for("hubspot", platform, path=path)["manual_steps"]}
    assert ("hubspot_currency" in steps) is expected
    if expected:
        assert "deal" in steps["hubspot_currency"]["en"]
        assert "صفقةً" in steps["hubspot_currency"]["ar"]


def test_currency_step_keys_unique_per_project() -> None:
    for platform, path in itertools.product(PLATFORMS, ("connector", "ipaas", "api")):
        keys = [step["key"] for step in state_for("hubspot", platform, path=path)["manual_steps"]]
        assert len(keys) == len(set(keys)), (platform, path)


# --- custom (PostgreSQL) -----------------------------------------------------------------


def test_postgres_tables_types_and_keys() -> None:
    state = state_for("custom", "headless")
    names = [item["name"] for item in state["tables"]]
    assert names[:4] == ["contacts", "orders", "order_lines", "products"]
    assert {"events", "tickets", "consents"} <= set(names)
    contacts = columns(state, "contacts")
    assert contacts["id"] == {"name": "id", "type": "bigint", "identity": True,
                              "nullable": False, "used_by": ["keys"]}
    assert contacts["ltv_sar"]["type"] == "numeric(12,2)"
    assert (contacts["ltv_sar"]["nullable"], contacts["ltv_sar"]["default"]) == (False, "0")
    assert contacts["first_order_at"]["type"] == "timestamptz"
    assert contacts["phone_e164"]["check"] == "phone_e164 ~ '^\\+[1-9][0-9]{7,14}$'"
    assert contacts["last_cart_value_sar"]["nullable"] is True
    assert table(state, "contacts")["unique"] == [["store_customer_id"], ["email"], ["phone_e164"]]
    orders = columns(state, "orders")
    assert orders["total_sar"]["type"] == "numeric(12,2)"
    assert "stage IN ('cart_abandoned'" in orders["stage"]["check"]
    assert "pipeline" in orders
    assert table(state, "orders")["foreign_keys"] == [
        {"columns": ["contact_id"], "references": {"table": "contacts", "column": "id"}}]


def test_postgres_foreign_keys_point_at_tables() -> None:
    state = state_for("custom", "shopify")
    names = {item["name"] for item in state["tables"]}
    for item in state["tables"]:
        column_names = {column["name"] for column in item["columns"]}
        for key in item["foreign_keys"]:
            assert key["references"]["table"] in names, item["name"]
            assert set(key["columns"]) <= column_names, item["name"]
        for unique in item["unique"]:
            assert set(unique) <= column_names, item["name"]


def test_postgres_consents_only_with_managed_channels() -> None:
    with_consent = state_for("custom", consent_channels=("sms", "email"))
    channel = columns(with_consent, "consents")["channel"]
    assert channel["check"] == "channel IN ('email', 'sms')"
    without = state_for("custom", consent_channels=())
    assert "consents" not in {item["name"] for item in without["tables"]}


def test_postgres_views_hold_entry_rules() -> None:
    views = {view["key"]: view for view in state_for("custom", monthly_orders=6000)["views"]}
    assert list(views) == SEGMENT_KEYS
    assert views["vip"]["name"] == "segment_vip"
    assert views["vip"]["where"] == "ltv_sar >= 12000"
    assert views["dormant_90"]["where"] == (
        "orders_count >= 1 AND last_order_at < now() - interval '90 days'")
    assert views["recent_buyers"]["where"] == "last_order_at >= now() - interval '30 days'"
    assert views["new_subscribers"]["from"] == "contacts"


# --- every item has a use, every use exists ---------------------------------------------


def used_items(state: dict[str, Any]) -> list[tuple[str, list[str]]]:
    items: list[tuple[str, list[str]]] = []
    for prop in state.get("properties", ()):
        items.append((prop["name"], prop["used_by"]))
    for definition in state.get("event_definitions", ()):
        items += [(prop["name"], prop["used_by"]) for prop in definition["propertyDefinitions"]]
    for module in state.get("modules", ()):
        items += [(field["api_name"], field["used_by"]) for field in module["fields"]]
    for item in state.get("tables", ()):
        items += [(f"{item['name']}.{column['name']}", column["used_by"])
                  for column in item["columns"]]
    return items


def use_exists(use: str, spec: dict[str, dict[str, Any]]) -> bool:
    part, _, rest = use.partition(".")
    if part == "keys" or (part in ("lifecycle", "consent") and not rest):
        return True
    if part == "mapping":
        entity, _, name = rest.partition(".")
        if entity == "order_stages":
            return name == "pipeline"
        found = spec["mapping"]["entities"][entity]
        names = {item["name"] for item in [*found["fields"], *found.get("rollups", ())]}
        return name in names or name.startswith("associations.")
    keys = {
        "segments": [item["key"] for item in spec["segments"]["segments"]],
        "lifecycle": [item["key"] for item in spec["lifecycle"]["stages"]],
        "kpis": [item["key"] for item in spec["kpis"]["kpis"]],
        "consent": spec["consent"]["managed_channels"],
        "playbooks": [item["key"] for item in spec["playbooks"]["playbooks"] if item["enabled"]],
    }
    return rest in keys[part]


@pytest.mark.parametrize(("crm", "platform"), list(itertools.product(CRMS, PLATFORMS)))
def test_every_item_is_used_by_the_spec(crm: str, platform: str) -> None:
    spec, state = build(crm, platform)
    for name, uses in used_items(state):
        assert uses, name
        for use in uses:
            assert use_exists(use, spec), (name, use)


@pytest.mark.parametrize("crm", ["hubspot", "zoho"])
def test_connector_items_are_used_by_the_spec(crm: str) -> None:
    spec, state = build(crm, "woocommerce", path="connector")
    assert schema_errors(state) == []
    for name, uses in used_items(state):
        for use in uses:
            assert use_exists(use, spec), (name, use)


# The contact fields that a connector project's playbook workflows read and write:
# (HubSpot name, Zoho name, HubSpot type, Zoho data type, playbooks that use it).
WORKFLOW_FIELDS = [
    ("ecom_vip_since", "Ecom_VIP_Since", "date", "date", ["playbooks.vip_care"]),
    ("ecom_last_review_at", "Ecom_Last_Review_At", "datetime", "datetime",
     ["playbooks.post_purchase", "playbooks.loyalty"]),
    ("ecom_last_referral_at", "Ecom_Last_Referral_At", "datetime", "datetime",
     ["playbooks.loyalty"]),
]


def test_connector_hubspot_gets_workflow_fields() -> None:
    props = properties_by_name(state_for("hubspot", "woocommerce", path="connector"))
    for name, _, hubspot_type, _, used_by in WORKFLOW_FIELDS:
        prop = props[name]
        assert prop["object"] == "contacts", name
        assert prop["type"] == hubspot_type, name
        assert prop["fieldType"] == "date", name
        assert prop["groupName"] == "ecommerce", name
        assert prop["used_by"] == used_by, name
        assert prop["label_ar"], name


def test_connector_zoho_gets_workflow_fields() -> None:
    fields = zoho_fields(state_for("zoho", "woocommerce", path="connector"), "Contacts")
    for _, name, _, data_type, used_by in WORKFLOW_FIELDS:
        field = fields[name]
        assert field["data_type"] == data_type, name
        assert field["field_label"] == name.replace("_", " "), name
        assert field["used_by"] == used_by, name


@pytest.mark.parametrize("path", ["api", "ipaas"])
@pytest.mark.parametrize("crm", ["hubspot", "zoho"])
def test_workflow_fields_only_on_connector(crm: str, path: str) -> None:
    state = state_for(crm, "woocommerce", path=path)
    names = {name for name, _ in used_items(state)}
    for hubspot_name, zoho_name, *_ in WORKFLOW_FIELDS:
        assert hubspot_name not in names
        assert zoho_name not in names


def test_workflow_fields_follow_enabled_playbooks() -> None:
    modules = tuple(module for module in FULL_MODULES if module != "playbooks")
    state = state_for("hubspot", "woocommerce", path="connector", modules=modules)
    names = set(properties_by_name(state))
    for hubspot_name, *_ in WORKFLOW_FIELDS:
        assert hubspot_name not in names


def test_segment_and_kpi_uses_are_recorded() -> None:
    props = properties_by_name(state_for("hubspot"))
    assert "segments.vip" in props["ecom_ltv_sar"]["used_by"]
    assert "kpis.cac_sar" in props["ecom_first_source"]["used_by"]
    assert "lifecycle.lead" in props["ecom_last_checkout_at"]["used_by"]


# --- determinism and serialisation ---------------------------------------------------------


def test_two_calls_give_equal_output() -> None:
    plan = make_plan(crm="zoho", platform="woocommerce")
    spec = build_spec(make_answers(crm="zoho", platform="woocommerce"), plan)
    first = build_desired_state(spec, plan)
    second = build_desired_state(spec, plan)
    assert first == second
    assert json.dumps(first, ensure_ascii=False) == json.dumps(second, ensure_ascii=False)


def test_answer_order_does_not_change_output() -> None:
    forward = state_for("hubspot", marketing_channels=("meta", "google", "tiktok"),
                        consent_channels=("email", "sms", "whatsapp"))
    backward = state_for("hubspot", marketing_channels=("tiktok", "google", "meta"),
                         consent_channels=("whatsapp", "sms", "email"))
    assert forward == backward


@pytest.mark.parametrize("crm", CRMS)
def test_yaml_has_no_aliases_and_round_trips(crm: str) -> None:
    state = state_for(crm)
    text = yaml.safe_dump(state, allow_unicode=True, sort_keys=False)
    assert "&id" not in text
    assert yaml.safe_load(text) == state


def test_output_is_plain_data_without_floats() -> None:
    def walk(value: Any, where: str) -> None:
        assert not isinstance(value, float), where
        assert isinstance(value, (str, int, bool, type(None), list, dict)), where
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")

    for crm in CRMS:
        walk(state_for(crm), crm)


def test_mutating_output_does_not_leak() -> None:
    first = state_for("hubspot")
    first["properties"][0]["used_by"].append("changed")
    first["lists"][0]["filterBranch"]["filterBranches"][0]["filters"].clear()
    assert state_for("hubspot") != first


# --- bad input ------------------------------------------------------------------------------


def test_rejects_undecided_crm() -> None:
    spec, _ = build("hubspot")
    plan = dataclasses.replace(make_plan(), crm="undecided")
    with pytest.raises(ValueError, match=r"plan\.crm"):
        build_desired_state(spec, plan)


def test_rejects_missing_spec_part() -> None:
    spec, _ = build("hubspot")
    del spec["segments"]
    with pytest.raises(ValueError, match="lacks segments"):
        build_desired_state(spec, make_plan())


def test_rejects_spec_for_another_crm() -> None:
    spec, _ = build("zoho")
    with pytest.raises(ValueError, match="for crm 'zoho'"):
        build_desired_state(spec, make_plan(crm="hubspot"))


def test_rejects_spec_for_another_platform() -> None:
    spec, _ = build("hubspot", "woocommerce")
    with pytest.raises(ValueError, match="platform"):
        build_desired_state(spec, make_plan(crm="hubspot", platform="shopify"))


def test_reports_every_problem_at_once() -> None:
    spec, _ = build("zoho")
    del spec["kpis"]
    with pytest.raises(ValueError) as caught:
        build_desired_state(spec, make_plan(crm="hubspot"))
    assert "lacks kpis" in str(caught.value)
    assert "for crm 'zoho'" in str(caught.value)


@pytest.mark.parametrize("crm", ["hubspot", "zoho"])
def test_custom_field_without_definition_is_rejected(crm: str) -> None:
    spec, _ = build(crm)
    spec = copy.deepcopy(spec)
    target = "ecom_unknown" if crm == "hubspot" else "Ecom_Unknown"
    spec["mapping"]["entities"]["contact"]["fields"].append(
        {"name": "unknown", "source": "customer.note", "target": target, "transform": "identity"})
    with pytest.raises(ValueError, match=target):
        build_desired_state(spec, make_plan(crm=crm))


# --- hand-broken documents fail the schema ----------------------------------------------------


def broken(crm: str, edit: Any) -> list[str]:
    state = copy.deepcopy(state_for(crm))
    edit(state)
    return schema_errors(state)


@pytest.mark.parametrize(("crm", "edit"), [
    pytest.param("hubspot", lambda d: d["properties"][0].pop("used_by"), id="unused-property"),
    pytest.param("hubspot", lambda d: d["properties"][0].update(used_by=[]), id="empty-use"),
    pytest.param("hubspot", lambda d: next(p for p in d["properties"] if "options" in p).pop(
        "options"), id="enumeration-without-options"),
    pytest.param("hubspot", lambda d: d["properties"][0].update(type="enumeration"),
                 id="options-missing"),
    pytest.param("hubspot", lambda d: d["properties"][0].update(name="Ecom-ID"), id="bad-name"),
    pytest.param("hubspot", lambda d: d["pipelines"][0]["stages"][0]["metadata"].update(
        probability="2.0"), id="probability"),
    pytest.param("hubspot", lambda d: d["lists"][0].update(processingType="MANUAL"),
                 id="manual-list"),
    pytest.param("hubspot", lambda d: d.update(tables=[]), id="foreign-section"),
    pytest.param("hubspot", lambda d: d.pop("lists"), id="missing-lists"),
    pytest.param("zoho", lambda d: d["modules"][0]["fields"][0].update(data_type="string"),
                 id="zoho-type"),
    pytest.param("zoho", lambda d: d["picklists"][0]["values"][0].update(forecast_type="Won"),
                 id="forecast"),
    pytest.param("zoho", lambda d: d["segments"][0].update(manual=False), id="view-not-manual"),
    pytest.param("custom", lambda d: d["tables"][0]["columns"][1].update(type="float"),
                 id="pg-type"),
    pytest.param("custom", lambda d: d["views"][0].update(name="Segment VIP"), id="view-name"),
    pytest.param("custom", lambda d: d.update(version=2), id="version"),
])
def test_broken_documents_fail_schema(crm: str, edit: Any) -> None:
    assert broken(crm, edit)


# --- Fixes from the review -------------------------------------------------------


def test_exit_note_only_on_vip() -> None:
    # dormant_90 and new_subscribers leave exactly when an entry condition stops
    # holding, so a dynamic list or view applies their exit rule by itself.
    for crm, section in (("hubspot", "lists"), ("zoho", "segments"), ("custom", "views")):
        items = state_for(crm)[section]
        noted = sorted(str(item.get("key", item.get("name"))) for item in items
                       if "exit_note" in item)
        assert len(noted) == 1 and "vip" in noted[0], (crm, noted)


def test_line_item_key_in_every_store() -> None:
    hubspot = properties_by_name(state_for("hubspot"))
    assert hubspot["ecom_line_item_id"]["hasUniqueValue"] is True
    custom = state_for("custom")
    assert "store_line_item_id" in columns(custom, "order_lines")
    assert ["store_line_item_id"] in table(custom, "order_lines")["unique"]


def test_response_time_columns_exist() -> None:
    custom = state_for("custom")
    assert {"opened_at", "first_reply_at"} <= set(columns(custom, "tickets"))
    zoho = state_for("zoho")
    cases = next(item for item in zoho["modules"] if item["module"] == "Cases")
    assert "Ecom_First_Reply_At" in {field["api_name"] for field in cases["fields"]}


def test_hubspot_consent_record_properties() -> None:
    props = properties_by_name(state_for("hubspot", consent_channels=("email", "whatsapp")))
    for name in ("ecom_email_consent_source", "ecom_email_consent_wording",
                 "ecom_whatsapp_consent_source", "ecom_whatsapp_consent_wording"):
        assert props[name]["object"] == "contacts", name
    assert "ecom_sms_consent_source" not in props
