"""Tests for the integration spec builder and its JSON Schemas."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import itertools
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from generator.model import Answers, Bilingual, Estimate, Plan
from generator.resources import load_data, load_schema
from generator.spec import SPEC_FILES, build_desired_state, build_spec
from generator.spec.conditions import copy_conditions
from generator.spec.segments import vip_threshold

CRMS = ("hubspot", "zoho", "custom")
PLATFORMS = ("shopify", "woocommerce", "headless", "custom")
SHOPIFY_FINANCIAL = (
    "pending", "authorized", "partially_paid", "paid",
    "partially_refunded", "refunded", "voided", "expired",
)
SHOPIFY_FULFILMENT = (None, "partial", "fulfilled", "restocked")
WOO_STATUSES = (
    "pending", "processing", "on-hold", "completed", "cancelled",
    "refunded", "failed", "checkout-draft", "trash",
)
STAGE_KEYS = (
    "cart_abandoned", "awaiting_payment", "paid_processing", "fulfilled", "cancelled", "refunded",
)
BASE_MODULES = ("contacts", "orders", "products", "playbooks", "consent")


def make_answers(**changes: Any) -> Answers:
    values: dict[str, Any] = {
        "client_name": "عطور الرياض \"الورد\": 0501234567",
        "project_slug": "riyadh-perfume",
        "platform": "shopify",
        "monthly_orders": 600,
        "store_count": 1,
        "growth": "steady",
        "sku_count": 420,
        "crm": "hubspot",
        "team_focus": None,
        "erp_bi": (),
        "deep_erp_link": False,
        "support_channels": ("whatsapp", "email"),
        "support_agents": 3,
        "marketing_channels": ("meta", "google"),
        "consent_channels": ("email", "whatsapp"),
        "goal": "repeat_purchase",
        "start_date": dt.date(2026, 1, 4),
        "path": None,
        "eid_al_fitr_days": 4,
        "eid_al_adha_days": 4,
    }
    values.update(changes)
    return Answers(**values)


def make_plan(**changes: Any) -> Plan:
    values: dict[str, Any] = {
        "path": "api",
        "recommended_path": "api",
        "crm": "hubspot",
        "platform": "shopify",
        "modules": (*BASE_MODULES, "events", "support"),
        "rules": (),
        "alternatives": (),
        "estimate": Estimate(
            path="api", days_min=10, days_max=15, setup_sar_min=15000, setup_sar_max=45000,
            subscription=Bilingual(en="hosting", ar="الاستضافة"),
        ),
        "contact_sync": "realtime",
        "product_sync_limit": 100,
    }
    values.update(changes)
    return Plan(**values)


def spec_for(crm: str = "hubspot", platform: str = "shopify", *,
             modules: tuple[str, ...] | None = None, path: str = "api",
             **answer_changes: Any) -> dict[str, dict[str, Any]]:
    plan_changes: dict[str, Any] = {"crm": crm, "platform": platform, "path": path,
                                    "recommended_path": path}
    if modules is not None:
        plan_changes["modules"] = modules
    answers = make_answers(crm=crm, platform=platform, **answer_changes)
    return build_spec(answers, make_plan(**plan_changes))


def schema_errors(name: str, document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(load_schema(f"spec-{name}"))
    return [f"{list(error.absolute_path)}: {error.message}"
            for error in validator.iter_errors(document)]


def fields_by_name(spec: dict[str, dict[str, Any]], entity: str) -> dict[str, dict[str, Any]]:
    return {field["name"]: field for field in spec["mapping"]["entities"][entity]["fields"]}


def first_matching_stage(rules: list[dict[str, Any]], facts: dict[str, Any]) -> str | None:
    """Return the stage of the first rule whose listed fields all match ``facts``."""
    for rule in rules:
        when = rule["when"]
        if all(_matches(key, expected, facts) for key, expected in when.items()):
            return str(rule["stage"])
    return None


def _matches(key: str, expected: Any, facts: dict[str, Any]) -> bool:
    if key == "checkout":
        return bool(facts.get("checkout") == expected)
    if key == "cancelled_at":
        return facts.get("cancelled_at") is not None
    return facts.get(key, "__absent__") in expected


# --- schemas and shape ------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_FILES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(f"spec-{name}")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(("crm", "platform"), list(itertools.product(CRMS, PLATFORMS)))
def test_every_file_validates(crm: str, platform: str) -> None:
    spec = spec_for(crm, platform)
    assert tuple(spec) == SPEC_FILES
    for name, document in spec.items():
        assert schema_errors(name, document) == [], name
        assert list(document)[:3] == ["version", "crm", "platform"]
        assert document["version"] == 1
        assert document["crm"] == crm
        assert document["platform"] == platform


@pytest.mark.parametrize("modules", [BASE_MODULES, (*BASE_MODULES, "erp_bi"), ("contacts",)])
@pytest.mark.parametrize("consent", [(), ("sms",), ("email", "sms", "whatsapp")])
def test_module_and_channel_variants_validate(
    modules: tuple[str, ...], consent: tuple[str, ...]
) -> None:
    spec = spec_for("zoho", "woocommerce", modules=modules, path="connector",
                    consent_channels=consent, support_channels=())
    for name, document in spec.items():
        assert schema_errors(name, document) == [], name


def test_transform_enum_matches_catalogue() -> None:
    catalogue = [entry["name"] for entry in load_data("spec/transforms")["transforms"]]
    schema = load_schema("spec-mapping")
    enum = schema["$defs"]["field"]["properties"]["transform"]["enum"]
    assert enum == catalogue
    listed = [entry["name"] for entry in spec_for()["mapping"]["transforms"]]
    assert listed == catalogue


def test_output_is_plain_data_without_floats() -> None:
    def walk(value: Any, path: str) -> None:
        assert not isinstance(value, float), path
        assert isinstance(value, (str, int, bool, type(None), list, dict)), path
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str), path
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    for crm, platform in itertools.product(CRMS, PLATFORMS):
        spec = spec_for(crm, platform)
        walk(spec, f"{crm}/{platform}")
        json.dumps(spec, ensure_ascii=False)


# --- stage table --------------------------------------------------------------


def test_stage_table_lists_six_stages() -> None:
    stages = spec_for()["mapping"]["order_stages"]["stages"]
    assert tuple(stage["key"] for stage in stages) == STAGE_KEYS
    flags = {stage["key"]: (stage["closed"], stage["won"]) for stage in stages}
    assert flags["cart_abandoned"] == (False, False)
    assert flags["awaiting_payment"] == (False, False)
    assert flags["paid_processing"] == (True, True)
    assert flags["fulfilled"] == (True, True)
    assert flags["cancelled"] == (True, False)
    assert flags["refunded"] == (True, False)
    for stage in stages:
        assert stage["label"]["en"]
        assert re.search("[\u0600-\u06ff]", stage["label"]["ar"])


def test_shopify_stage_table_covers_every_status() -> None:
    table = spec_for(platform="shopify")["mapping"]["order_stages"]
    rules = table["rules"]
    financial = {value for rule in rules for value in rule["when"].get("financial_status", [])}
    fulfilment = {value for rule in rules for value in rule["when"].get("fulfillment_status", [])}
    assert financial == set(SHOPIFY_FINANCIAL)
    assert fulfilment == set(SHOPIFY_FULFILMENT)
    assert any("cancelled_at" in rule["when"] for rule in rules)
    assert table["status_fields"]["financial_status"] == list(SHOPIFY_FINANCIAL)
    cancelled = (None, "2026-01-05T10:00:00Z")
    combos = itertools.product(SHOPIFY_FINANCIAL, SHOPIFY_FULFILMENT, cancelled)
    for financial_status, fulfillment_status, cancelled_at in combos:
        facts = {"financial_status": financial_status, "fulfillment_status": fulfillment_status,
                 "cancelled_at": cancelled_at}
        assert first_matching_stage(rules, facts) in STAGE_KEYS, facts


@pytest.mark.parametrize(("facts", "stage"), [
    ({"financial_status": "paid", "fulfillment_status": None}, "paid_processing"),
    ({"financial_status": "partially_refunded", "fulfillment_status": None}, "paid_processing"),
    ({"financial_status": "paid", "fulfillment_status": "fulfilled"}, "fulfilled"),
    ({"financial_status": "pending", "fulfillment_status": "partial"}, "fulfilled"),
    ({"financial_status": "pending", "fulfillment_status": None}, "awaiting_payment"),
    ({"financial_status": "authorized", "fulfillment_status": None}, "awaiting_payment"),
    ({"financial_status": "partially_paid", "fulfillment_status": None}, "awaiting_payment"),
    ({"financial_status": "refunded", "fulfillment_status": "fulfilled"}, "refunded"),
    ({"financial_status": "paid", "fulfillment_status": "restocked"}, "refunded"),
    ({"financial_status": "voided", "fulfillment_status": None}, "cancelled"),
    ({"financial_status": "expired", "fulfillment_status": None}, "cancelled"),
    ({"financial_status": "paid", "fulfillment_status": None, "cancelled_at": "2026-01-05"},
     "cancelled"),
    ({"checkout": "abandoned"}, "cart_abandoned"),
])
def test_shopify_status_maps_to_stage(facts: dict[str, Any], stage: str) -> None:
    rules = spec_for(platform="shopify")["mapping"]["order_stages"]["rules"]
    assert first_matching_stage(rules, facts) == stage


@pytest.mark.parametrize(("status", "stage"), [
    ("pending", "awaiting_payment"),
    ("on-hold", "awaiting_payment"),
    ("checkout-draft", "awaiting_payment"),
    ("processing", "paid_processing"),
    ("completed", "fulfilled"),
    ("cancelled", "cancelled"),
    ("failed", "cancelled"),
    ("trash", "cancelled"),
    ("refunded", "refunded"),
])
def test_woocommerce_status_maps_to_stage(status: str, stage: str) -> None:
    table = spec_for(platform="woocommerce")["mapping"]["order_stages"]
    assert first_matching_stage(table["rules"], {"status": status}) == stage


def test_woocommerce_stage_table_covers_every_status_once() -> None:
    rules = spec_for(platform="woocommerce")["mapping"]["order_stages"]["rules"]
    listed = [value for rule in rules for value in rule["when"].get("status", [])]
    assert sorted(listed) == sorted(WOO_STATUSES)
    assert {rule["stage"] for rule in rules} == set(STAGE_KEYS)


def test_storefront_stage_table_covers_its_statuses() -> None:
    table = spec_for(platform="headless")["mapping"]["order_stages"]
    for status in table["status_fields"]["status"]:
        assert first_matching_stage(table["rules"], {"status": status}) in STAGE_KEYS, status


def test_stage_crm_values_per_crm() -> None:
    hubspot = spec_for("hubspot")["mapping"]["order_stages"]["stages"]
    zoho = spec_for("zoho")["mapping"]["order_stages"]["stages"]
    custom = spec_for("custom")["mapping"]["order_stages"]["stages"]
    assert all(stage["crm_value"] is None for stage in hubspot)
    assert [stage["crm_value"] for stage in zoho][:2] == ["Cart Abandoned", "Awaiting Payment"]
    assert [stage["crm_value"] for stage in custom] == list(STAGE_KEYS)


# --- field map ----------------------------------------------------------------


def test_hubspot_contact_and_deal_targets() -> None:
    spec = spec_for("hubspot", "shopify")
    contact = fields_by_name(spec, "contact")
    assert contact["email"]["target"] == "email"
    assert contact["phone"]["target"] == "phone"
    assert contact["first_name"]["target"] == "firstname"
    assert contact["last_name"]["target"] == "lastname"
    assert contact["city"]["target"] == "city"
    assert contact["phone"]["source"] == "customer.phone"
    assert contact["phone"]["transform"] == "phone_e164_sa"
    assert contact["email"]["transform"] == "email_lower"
    order = fields_by_name(spec, "order")
    assert order["amount"]["source"] == "total_price"
    assert order["amount"]["target"] == "amount"
    assert order["amount"]["transform"] == "money_sar"
    assert order["deal_name"]["target"] == "dealname"
    assert order["currency"]["target"] == "deal_currency_code"
    assert order["stage"]["target"] == "dealstage"
    assert order["close_date"]["target"] == "closedate"
    assert order["external_order_id"]["target"] == "shopify_order_id"
    assert order["external_order_id"]["unique"] is True
    line = fields_by_name(spec, "line_item")
    assert line["sku"]["source"] == "line_items[].sku"
    assert line["sku"]["fallback_sources"] == ["line_items[].variant_id"]
    assert line["sku"]["target"] == "hs_sku"
    assert spec["mapping"]["entities"]["order"]["object"] == "deals"


def test_woocommerce_sources_and_external_order_id() -> None:
    spec = spec_for("hubspot", "woocommerce")
    contact = fields_by_name(spec, "contact")
    assert contact["phone"]["source"] == "billing.phone"
    assert contact["email"]["source"] == "billing.email"
    order = fields_by_name(spec, "order")
    assert order["amount"]["source"] == "total"
    assert order["stage"]["source"] == "status"
    assert order["external_order_id"]["target"] == "external_order_id"
    assert fields_by_name(spec, "line_item")["sku"]["source"] == "line_items[].sku"


def test_zoho_contact_maps_required_last_name() -> None:
    spec = spec_for("zoho", "shopify")
    contact = fields_by_name(spec, "contact")
    assert contact["last_name"]["target"] == "Last_Name"
    assert contact["last_name"]["required"] is True
    assert contact["last_name"]["placeholder"]
    assert contact["first_name"]["target"] == "First_Name"
    assert contact["email"]["target"] == "Email"
    assert contact["phone"]["target"] == "Mobile"
    assert contact["city"]["target"] == "Mailing_City"
    order = fields_by_name(spec, "order")
    assert order["close_date"]["target"] == "Closing_Date"
    assert order["close_date"]["transform"] == "riyadh_date"
    assert order["external_order_id"]["target"] == "Shopify_Order_ID"
    assert spec["mapping"]["entities"]["contact"]["object"] == "Contacts"
    hubspot_last_name = fields_by_name(spec_for("hubspot"), "contact")["last_name"]
    assert "required" not in hubspot_last_name


def test_zoho_line_items_are_marked_unconfirmed() -> None:
    line_item = spec_for("zoho")["mapping"]["entities"]["line_item"]
    assert line_item["confidence"] == "unconfirmed"
    assert "Product_Details" in line_item["note"]
    assert line_item["object"] == "Sales_Orders.Product_Details"
    title = next(field for field in line_item["fields"] if field["name"] == "title")
    assert title["target"] == "Product_Details[].product_description"
    assert title["confidence"] == "unconfirmed"


def test_hubspot_association_ids_are_marked_unconfirmed() -> None:
    order = spec_for("hubspot")["mapping"]["entities"]["order"]
    association = order["associations"][0]
    assert association == {
        "to": "contact", "kind": "association", "ref": 3,
        "confidence": "unconfirmed", "note": association["note"],
    }


def test_custom_crm_targets_are_table_columns() -> None:
    spec = spec_for("custom", "headless")
    assert fields_by_name(spec, "contact")["phone"]["target"] == "contacts.phone_e164"
    for name, entity in spec["mapping"]["entities"].items():
        for field in entity["fields"]:
            assert re.fullmatch(r"[a-z_]+\.[a-z_0-9]+", field["target"]), (name, field)
        for rollup in entity.get("rollups", []):
            assert rollup["target"].startswith("contacts."), rollup


def test_storefront_sources_are_documented() -> None:
    spec = spec_for("hubspot", "headless")
    mapping = spec["mapping"]
    documented = {field["name"] for field in mapping["storefront_event"]["fields"]}
    for entity_name in ("contact", "order", "line_item", "event"):
        for field in mapping["entities"][entity_name]["fields"]:
            assert field["source"].split(".")[0].split("[")[0] in documented, field
    assert "storefront_event" not in spec_for("hubspot", "shopify")["mapping"]


def test_identity_rules_order_and_phone_only() -> None:
    identity = spec_for("zoho")["mapping"]["identity"]
    keys = [(item["key"], item["target"]) for item in identity["match_order"]]
    assert keys == [("store_customer_id", "Ecom_Customer_ID"), ("phone", "Mobile"),
                    ("email", "Email")]
    assert any("no email" in rule["en"] for rule in identity["rules"])
    assert any("first source" in rule["en"].lower() for rule in identity["rules"])
    contact = spec_for("hubspot")["mapping"]["entities"]["contact"]
    updates = {rollup["name"]: rollup["update"] for rollup in contact["rollups"]}
    assert updates["first_source"] == "keep_first"
    assert updates["last_source"] == "keep_latest"


def test_hubspot_upsert_keys_phone_only() -> None:
    mapping = spec_for("hubspot")["mapping"]
    upsert = mapping["identity"]["upsert"]
    assert "idProperty email" in upsert["en"]
    assert "idProperty ecom_phone_e164" in upsert["en"]
    assert "identity table" in upsert["en"]
    assert "ecom_phone_e164" in upsert["ar"]
    fields = {field["name"]: field for field in mapping["entities"]["contact"]["fields"]}
    assert fields["phone_e164"]["target"] == "ecom_phone_e164"
    assert fields["phone_e164"]["transform"] == "phone_e164_sa"
    assert fields["phone_e164"]["unique"] is True
    zoho_fields = spec_for("zoho")["mapping"]["entities"]["contact"]["fields"]
    assert "phone_e164" not in {field["name"] for field in zoho_fields}


def test_ticket_enabled_only_with_support_module() -> None:
    with_support = spec_for(modules=(*BASE_MODULES, "support"))["mapping"]["entities"]
    without = spec_for(modules=BASE_MODULES)["mapping"]["entities"]
    assert with_support["ticket"]["enabled"] is True
    assert "disabled_reason" not in with_support["ticket"]
    assert without["ticket"]["enabled"] is False
    assert "support" in without["ticket"]["disabled_reason"]["en"]
    assert without["ticket"]["fields"]
    for name in ("contact", "order", "line_item", "product"):
        assert without[name]["enabled"] is True


def test_event_entity_follows_events_module() -> None:
    assert spec_for(modules=(*BASE_MODULES, "events"))["mapping"]["entities"]["event"]["enabled"]
    assert not spec_for(modules=BASE_MODULES)["mapping"]["entities"]["event"]["enabled"]


def test_plan_settings_reach_the_entities() -> None:
    plan = make_plan(contact_sync="daily", product_sync_limit=None)
    entities = build_spec(make_answers(), plan)["mapping"]["entities"]
    assert entities["contact"]["sync"] == "daily"
    assert entities["product"]["sync_limit"] is None


def test_hubspot_connector_note_only_for_shopify_connector() -> None:
    def unconfirmed_notes(spec: dict[str, dict[str, Any]]) -> list[str]:
        return [note["text"] for note in spec["mapping"]["notes"]
                if note.get("confidence") == "unconfirmed"]

    assert any("Orders object" in text
               for text in unconfirmed_notes(spec_for("hubspot", "shopify", path="connector")))
    assert unconfirmed_notes(spec_for("hubspot", "shopify", path="ipaas")) == []
    assert unconfirmed_notes(spec_for("zoho", "shopify", path="connector")) == []


def test_source_values_follow_marketing_channels() -> None:
    attribution = spec_for(marketing_channels=("snapchat", "meta"))["mapping"]["attribution"]
    assert attribution["values"] == ["meta", "snapchat", "other"]
    assert attribution["other_value"] == "other"
    assert spec_for(marketing_channels=())["mapping"]["attribution"]["values"] == ["other"]
    order = fields_by_name(spec_for(), "order")
    assert order["order_source"]["transform"] == "utm_channel"


def test_hubspot_commerce_objects_offered() -> None:
    def options(**changes: Any) -> dict[str, dict[str, Any]]:
        order = spec_for("hubspot", **changes)["mapping"]["entities"]["order"]
        return {option["object"]: option for option in order["object_options"]}

    connector = options(path="connector", platform="shopify")
    assert list(connector) == ["deals", "orders", "carts"]
    assert connector["orders"]["object_type_id"] == "0-123"
    assert connector["carts"]["object_type_id"] == "0-142"
    assert connector["orders"]["in_use"] is True
    assert connector["carts"]["written_by"] == "hubspot_data_sync"
    assert connector["orders"]["confidence"] == "unconfirmed"
    assert "confidence" not in connector["deals"]
    api = options(path="api", platform="shopify")
    assert api["deals"]["in_use"] is True
    assert api["orders"]["in_use"] is False
    assert options(path="connector", platform="woocommerce")["orders"]["in_use"] is False
    assert "object_options" not in spec_for("zoho")["mapping"]["entities"]["order"]


def test_partial_refunds_keep_the_stage() -> None:
    table = spec_for()["mapping"]["order_stages"]
    assert "partially_refunded" in table["partial_refunds"]["en"]
    assert "refunds[]" in table["partial_refunds"]["en"]
    assert re.search("[\u0600-\u06ff]", table["partial_refunds"]["ar"])


def test_support_channels_set_ticket_sla() -> None:
    ticket = spec_for(support_channels=("email", "whatsapp"))["mapping"]["entities"]["ticket"]
    sla = ticket["sla"]
    assert [target["channel"] for target in sla["targets"]] == ["whatsapp", "email"]
    assert sla["business_hours"]["days"] == ["sun", "mon", "tue", "wed", "thu"]
    assert sla["business_hours"]["timezone"] == "Asia/Riyadh"
    assert sla["confidence"] == "unconfirmed"
    assert str(sla["alert_at_percent"]) in sla["rule"]["en"]
    no_channels = spec_for(support_channels=())["mapping"]["entities"]["ticket"]
    assert "sla" not in no_channels
    off = spec_for(modules=BASE_MODULES, support_channels=("phone",))["mapping"]["entities"]
    assert "sla" not in off["ticket"]


def test_large_catalogue_limits_first_product_sync() -> None:
    product = spec_for()["mapping"]["entities"]["product"]
    assert product["sync_limit"] == 100
    assert "top 100 SKUs" in product["sync_limit_rule"]["en"]
    plan = make_plan(product_sync_limit=None)
    unlimited = build_spec(make_answers(), plan)["mapping"]["entities"]["product"]
    assert "sync_limit_rule" not in unlimited


def test_cart_rollups_for_the_cart_playbook() -> None:
    contact = spec_for("hubspot")["mapping"]["entities"]["contact"]
    targets = {rollup["name"]: rollup["target"] for rollup in contact["rollups"]}
    assert targets["last_cart_value_sar"] == "ecom_last_cart_value_sar"
    assert targets["last_cart_url"] == "ecom_last_cart_url"
    woo = spec_for("hubspot", "woocommerce")["mapping"]["entities"]["contact"]["rollups"]
    assert next(item for item in woo if item["name"] == "last_cart_url")["confidence"]


def test_every_enabled_field_names_source_target_transform() -> None:
    for crm, platform in itertools.product(CRMS, PLATFORMS):
        entities = spec_for(crm, platform)["mapping"]["entities"]
        assert list(entities) == ["contact", "order", "line_item", "product", "event", "ticket"]
        for name, entity in entities.items():
            for field in entity["fields"]:
                assert field["source"], (name, field)
                assert field["target"], (name, field)
                assert field["transform"], (name, field)


# --- lifecycle and segments ---------------------------------------------------


def test_lifecycle_stage_values_per_crm() -> None:
    hubspot = spec_for("hubspot")["lifecycle"]
    assert [stage["key"] for stage in hubspot["stages"]] == [
        "visitor", "lead", "first_time_customer", "repeat_customer"]
    assert [stage["crm_value"] for stage in hubspot["stages"]] == [
        "subscriber", "lead", "customer", "customer"]
    assert hubspot["crm_field"]["field"] == "lifecyclestage"
    assert hubspot["crm_field"]["confidence"] == "unconfirmed"
    zoho = spec_for("zoho")["lifecycle"]
    assert zoho["crm_field"] == {"field": "Ecom_Lifecycle_Stage"}
    assert all("detail_value" not in stage for stage in zoho["stages"])
    for stage in hubspot["stages"]:
        assert re.search("[\u0600-\u06ff]", stage["rule"]["ar"])


@pytest.mark.parametrize(("monthly_orders", "threshold"), [
    (0, 3000), (299, 3000), (300, 5000), (999, 5000), (1000, 8000), (4999, 8000),
    (5000, 12000), (100000, 12000),
])
def test_vip_threshold_grows_with_orders(monthly_orders: int, threshold: int) -> None:
    result = vip_threshold(monthly_orders)
    assert result["threshold_sar"] == threshold
    assert result["exit_threshold_sar"] == threshold * 90 // 100
    assert f"{monthly_orders:,}" in result["reason"]["en"]
    assert f"{threshold:,}" in result["reason"]["ar"]


def test_vip_threshold_rejects_negative_orders() -> None:
    with pytest.raises(ValueError, match="monthly_orders"):
        vip_threshold(-1)


def test_segments_use_the_vip_threshold() -> None:
    segments = spec_for(monthly_orders=2000)["segments"]
    vip = next(item for item in segments["segments"] if item["key"] == "vip")
    assert vip["entry"]["all"] == [{"rollup": "ltv_sar", "op": "gte", "value": 8000}]
    assert vip["exit"]["any"] == [{"rollup": "ltv_sar", "op": "lt", "value": 7200}]
    assert "8,000" in vip["rule"]["entry"]["en"]
    assert [item["key"] for item in segments["segments"]] == [
        "vip", "recent_buyers", "dormant_90", "new_subscribers"]


def test_copy_conditions_rejects_bad_data() -> None:
    with pytest.raises(ValueError, match="roll-up"):
        copy_conditions([{"rollup": "ltv", "op": "gte", "value": 1}], {})
    with pytest.raises(ValueError, match="operator"):
        copy_conditions([{"rollup": "ltv_sar", "op": "between", "value": 1}], {})
    with pytest.raises(ValueError, match="variable"):
        copy_conditions([{"rollup": "ltv_sar", "op": "gte", "value": "$nope"}], {})
    with pytest.raises(ValueError, match="integer"):
        copy_conditions([{"rollup": "ltv_sar", "op": "gte"}], {})


# --- playbooks and consent ----------------------------------------------------


def all_consent_subsets() -> list[tuple[str, ...]]:
    channels = ("email", "sms", "whatsapp")
    return [subset for size in range(4) for subset in itertools.combinations(channels, size)]


@pytest.mark.parametrize("consent", all_consent_subsets())
def test_marketing_steps_only_on_consent_channels(consent: tuple[str, ...]) -> None:
    playbooks = spec_for(consent_channels=consent)["playbooks"]["playbooks"]
    assert [playbook["key"] for playbook in playbooks] == [
        "abandoned_cart", "post_purchase", "win_back", "vip_care", "loyalty", "smart_segmentation"]
    for playbook in playbooks:
        for step in playbook["steps"]:
            if step["kind"] == "marketing":
                assert step["channel"] in consent, (playbook["key"], step)
                assert step["consent"] == step["channel"]
        for dropped in playbook["dropped_steps"]:
            if dropped["kind"] == "marketing":
                assert dropped["channel"] not in consent
                assert dropped["channel"] in dropped["reason"]["en"].lower()


def test_service_steps_follow_support_channels() -> None:
    playbooks = spec_for(support_channels=("phone",))["playbooks"]["playbooks"]
    vip = next(playbook for playbook in playbooks if playbook["key"] == "vip_care")
    assert [(step["channel"], step["kind"]) for step in vip["steps"]] == [
        ("phone", "service"), ("internal", "internal")]
    assert {item["channel"] for item in vip["dropped_steps"]} == {"whatsapp", "email"}
    assert all(step["consent"] == "none" for step in vip["steps"])


def test_playbook_without_steps_is_disabled() -> None:
    playbooks = spec_for(consent_channels=(), support_channels=())["playbooks"]["playbooks"]
    by_key = {playbook["key"]: playbook for playbook in playbooks}
    assert by_key["abandoned_cart"]["enabled"] is False
    assert by_key["abandoned_cart"]["steps"] == []
    assert by_key["abandoned_cart"]["disabled_reason"]["en"]
    assert by_key["vip_care"]["enabled"] is True
    assert by_key["loyalty"]["enabled"] is True


def test_whatsapp_steps_use_templates_and_codes_expire() -> None:
    document = spec_for(consent_channels=("email", "sms", "whatsapp"))["playbooks"]
    whatsapp_steps = [step for playbook in document["playbooks"] for step in playbook["steps"]
                      if step["channel"] == "whatsapp" and step["kind"] == "marketing"]
    assert whatsapp_steps
    for step in whatsapp_steps:
        assert step["template"]
        assert step["template_category"] in ("MARKETING", "UTILITY")
    assert document["discount"]["single_use"] is True
    assert document["discount"]["expires_after_hours"] > 0
    assert document["quiet_hours"]["timezone"] == "Asia/Riyadh"
    cart = document["playbooks"][0]
    assert (cart["delay"]["min"], cart["delay"]["max"], cart["delay"]["unit"]) == (1, 4, "hours")
    win_back = document["playbooks"][2]
    assert (win_back["delay"]["min"], win_back["delay"]["max"]) == (45, 60)


def test_consent_lists_only_managed_channels_in_fixed_order() -> None:
    first = spec_for(consent_channels=("whatsapp", "email"))["consent"]
    second = spec_for(consent_channels=("email", "whatsapp"))["consent"]
    assert first == second
    assert first["managed_channels"] == ["email", "whatsapp"]
    assert first["unmanaged_channels"] == ["sms"]
    assert [channel["channel"] for channel in first["channels"]] == ["email", "whatsapp"]
    email = first["channels"][0]
    assert email["source"]["field"] == "customer.email_marketing_consent.state"
    whatsapp = first["channels"][1]
    assert whatsapp["rules"]
    assert "WHATSAPP" in whatsapp["crm_status"]
    assert "UNSUBSCRIBED" in first["two_way"]["en"]
    assert len(first["pdpl"]["basis"]) >= 3


def test_consent_sources_per_platform() -> None:
    woo = spec_for("zoho", "woocommerce", consent_channels=("sms",))["consent"]
    assert woo["channels"][0]["source"]["field"].startswith("meta_data[")
    assert woo["channels"][0]["source"]["confidence"] == "unconfirmed"
    assert "Zoho" in woo["residency"]["text"]
    shopify = spec_for("hubspot", "shopify", consent_channels=("sms",))["consent"]
    assert shopify["channels"][0]["source"]["field"] == "customer.sms_marketing_consent.state"


def test_playbook_kpis_exist() -> None:
    spec = spec_for()
    keys = {kpi["key"] for kpi in spec["kpis"]["kpis"]}
    for playbook in spec["playbooks"]["playbooks"]:
        assert playbook["kpis"], playbook["key"]
        assert set(playbook["kpis"]) <= keys, playbook["key"]


@pytest.mark.parametrize("path", ["connector", "ipaas", "api"])
def test_unsubscribe_is_honoured_on_each_path(path: str) -> None:
    consent = spec_for(path=path)["consent"]
    assert consent["unsubscribe"]["path"] == path
    assert consent["unsubscribe"]["text"]["en"]
    assert re.search("[\u0600-\u06ff]", consent["unsubscribe"]["text"]["ar"])
    texts = {spec_for(path=other)["consent"]["unsubscribe"]["text"]["en"]
             for other in ("connector", "ipaas", "api")}
    assert len(texts) == 3


def test_opt_in_capture_follows_platform() -> None:
    shopify = spec_for(platform="shopify")["consent"]["opt_in_capture"]["en"]
    woo = spec_for(platform="woocommerce")["consent"]["opt_in_capture"]["en"]
    assert "Shopify" in shopify
    assert "WooCommerce" in woo


def test_consent_target_fields_per_crm() -> None:
    zoho = spec_for("zoho", consent_channels=("sms",))["consent"]["channels"][0]["target"]
    assert zoho["fields"][0] == "Ecom_SMS_Opt_In"
    hubspot = spec_for("hubspot", consent_channels=("sms",))["consent"]["channels"][0]["target"]
    # The consent record needs each consent's time, source and wording version.
    assert hubspot["fields"] == [
        "ecom_sms_consent_at", "ecom_sms_consent_source", "ecom_sms_consent_wording"]
    custom = spec_for("custom", consent_channels=("sms",))["consent"]["channels"][0]["target"]
    assert all(name.startswith("consents.") for name in custom["fields"])


def test_residency_offers_zoho_saudi_data_centre() -> None:
    assert "zoho.sa" in spec_for("hubspot")["consent"]["residency"]["text"]
    assert "zoho.sa" in spec_for("zoho")["consent"]["residency"]["text"]


# --- KPIs ---------------------------------------------------------------------


@pytest.mark.parametrize(("goal", "primary"), [
    ("repeat_purchase", "repeat_purchase_rate_90d"),
    ("average_order_value", "average_order_value_sar"),
    ("fewer_returns", "return_rate"),
])
def test_goal_marks_primary_kpi(goal: str, primary: str) -> None:
    kpis = spec_for(goal=goal)["kpis"]
    assert kpis["primary_kpi"] == primary
    assert [kpi["key"] for kpi in kpis["kpis"] if kpi["primary"]] == [primary]


def test_cac_needs_external_ad_spend() -> None:
    kpis = spec_for(marketing_channels=("snapchat", "meta"), path="ipaas")["kpis"]
    by_key = {kpi["key"]: kpi for kpi in kpis["kpis"]}
    assert by_key["cac_sar"]["inputs"][0]["external"] is True
    assert by_key["cac_sar"]["per_channel"] == ["meta", "snapchat"]
    assert by_key["cac_sar"]["direction"] == "decrease"
    assert "iPaaS" in by_key["sync_success_rate"]["source"]
    assert kpis["business_hours"]["days"] == ["sun", "mon", "tue", "wed", "thu"]
    assert kpis["business_hours"]["timezone"] == "Asia/Riyadh"


def test_every_kpi_lists_inputs_and_systems() -> None:
    kpis = spec_for(path="api")["kpis"]["kpis"]
    for kpi in kpis:
        assert kpi["inputs"], kpi["key"]
        assert kpi["formula"] and kpi["source"], kpi["key"]
    by_key = {kpi["key"]: kpi for kpi in kpis}
    cac = {item["name"]: item for item in by_key["cac_sar"]["inputs"]}
    assert cac["ad_spend_sar"]["system"] == "ad_platforms"
    assert cac["first_source"]["system"] == "crm"
    assert by_key["repeat_purchase_rate_90d"]["inputs"][0]["system"] == "store"
    assert by_key["avg_response_time"]["inputs"][1]["system"] == "support_inbox"
    externals = [item["name"] for kpi in kpis for item in kpi["inputs"] if item["external"]]
    assert externals == ["ad_spend_sar"]


@pytest.mark.parametrize(("path", "system"), [
    ("connector", "connector"), ("ipaas", "ipaas"), ("api", "integration")])
def test_sync_kpi_reads_the_path_log(path: str, system: str) -> None:
    kpis = {kpi["key"]: kpi for kpi in spec_for(path=path)["kpis"]["kpis"]}
    assert kpis["sync_success_rate"]["inputs"][0]["system"] == system


# --- serialisation and determinism --------------------------------------------


@pytest.mark.parametrize(("crm", "platform"), list(itertools.product(CRMS, PLATFORMS)))
def test_yaml_round_trip_is_lossless(crm: str, platform: str) -> None:
    spec = spec_for(crm, platform, consent_channels=("email", "sms", "whatsapp"))
    for name, document in spec.items():
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
        assert yaml.safe_load(text) == document, name


def test_phone_and_id_like_strings_stay_strings() -> None:
    spec = spec_for("zoho", "woocommerce", consent_channels=("email", "sms", "whatsapp"))
    loaded = {name: yaml.safe_load(yaml.safe_dump(document, allow_unicode=True))
              for name, document in spec.items()}
    examples = {item["name"]: item["example"] for item in loaded["mapping"]["transforms"]
                if "example" in item}
    assert examples["phone_e164_sa"]["output"] == "+966501234567"
    assert examples["id_text"]["input"] == "820982911946154508"
    assert examples["riyadh_date"]["output"] == "2026-03-02"
    states = loaded["consent"]["channels"][0]["source"]["states"]
    assert [state["value"] for state in states][:2] == ["yes", "no"]
    window = loaded["playbooks"]["quiet_hours"]["windows"][0]
    assert (window["start"], window["end"]) == ("22:00", "09:00")


def test_two_calls_give_equal_output() -> None:
    answers = make_answers(platform="woocommerce", crm="zoho")
    plan = make_plan(platform="woocommerce", crm="zoho")
    first = build_spec(answers, plan)
    second = build_spec(answers, plan)
    assert first == second
    assert first is not second
    assert json.dumps(first, ensure_ascii=False) == json.dumps(second, ensure_ascii=False)


def test_answer_list_order_does_not_change_output() -> None:
    forward = spec_for(consent_channels=("email", "sms", "whatsapp"),
                       support_channels=("whatsapp", "phone", "email"),
                       marketing_channels=("meta", "google", "tiktok"))
    backward = spec_for(consent_channels=("whatsapp", "sms", "email"),
                        support_channels=("email", "phone", "whatsapp"),
                        marketing_channels=("tiktok", "google", "meta"))
    assert json.dumps(forward, ensure_ascii=False) == json.dumps(backward, ensure_ascii=False)


def test_mutating_output_does_not_leak_into_next_build() -> None:
    first = spec_for()
    first["mapping"]["entities"]["contact"]["label"]["en"] = "changed"
    first["mapping"]["order_stages"]["rules"][1]["when"]["cancelled_at"] = "changed"
    first["playbooks"]["quiet_hours"]["windows"][0]["days"].append("changed")
    assert spec_for() != first
    assert spec_for()["mapping"]["entities"]["contact"]["label"]["en"] == "Contact"


# --- hand-broken files fail their schema ---------------------------------------


def broken(name: str, edit: Any) -> list[str]:
    document = copy.deepcopy(spec_for("hubspot", "shopify")[name])
    edit(document)
    return schema_errors(name, document)


def test_bad_stage_key_fails_schema() -> None:
    def edit(document: dict[str, Any]) -> None:
        document["order_stages"]["rules"][0]["stage"] = "paid_procesing"
    assert broken("mapping", edit)


def test_unknown_transform_fails_schema() -> None:
    def edit(document: dict[str, Any]) -> None:
        document["entities"]["contact"]["fields"][0]["transform"] = "phone_e164"
    assert broken("mapping", edit)


@pytest.mark.parametrize("edit", [
    pytest.param(lambda d: d["entities"]["order"]["fields"][0].update(colour="red"),
                 id="extra-field-key"),
    pytest.param(lambda d: d["order_stages"]["rules"][1]["when"].update(status=["shipped"]),
                 id="unknown-status"),
    pytest.param(lambda d: d["order_stages"]["stages"][0].update(won=True),
                 id="won-but-open"),
    pytest.param(lambda d: d["entities"].pop("ticket"), id="missing-entity"),
    pytest.param(lambda d: d["entities"]["ticket"].update(enabled=False), id="off-without-reason"),
    pytest.param(lambda d: d["entities"]["contact"]["fields"][1].update(confidence="unsure"),
                 id="bad-confidence"),
    pytest.param(lambda d: d.update(version=2), id="version"),
    pytest.param(lambda d: d["attribution"].update(values=["radio"]), id="source-value"),
    pytest.param(lambda d: d["order_stages"].pop("partial_refunds"), id="no-partial-refunds"),
    pytest.param(lambda d: d["entities"]["ticket"]["sla"]["targets"][0].update(channel="fax"),
                 id="sla-channel"),
    pytest.param(lambda d: d["entities"]["order"]["object_options"][1].update(
        object_type_id="orders"), id="object-type-id"),
])
def test_broken_mapping_fails_schema(edit: Any) -> None:
    assert broken("mapping", edit)


@pytest.mark.parametrize(("name", "edit"), [
    pytest.param("playbooks",
                 lambda d: d["playbooks"][0]["steps"][0].update(channel="e-mail"), id="channel"),
    pytest.param("playbooks",
                 lambda d: d["playbooks"][0]["steps"][0].update(consent="whatsapp"),
                 id="consent-mismatch"),
    pytest.param("playbooks",
                 lambda d: d["playbooks"][0]["steps"][1].pop("template_category"),
                 id="whatsapp-without-category"),
    pytest.param("playbooks", lambda d: d["discount"].update(single_use=False), id="reusable-code"),
    pytest.param("playbooks",
                 lambda d: d["quiet_hours"]["windows"][0].update(start="25:00"), id="quiet-hour"),
    pytest.param("lifecycle",
                 lambda d: d["stages"][0]["entry"][0].update(rollup="orders"), id="rollup"),
    pytest.param("lifecycle", lambda d: d["stages"][0]["entry"][0].pop("value"), id="no-value"),
    pytest.param("segments", lambda d: d["segments"][0].update(key="vips"), id="segment-key"),
    pytest.param("segments",
                 lambda d: d["vip_threshold"].update(threshold_sar=5000.5), id="float-money"),
    pytest.param("consent",
                 lambda d: d["channels"][0].update(channel="telegram"), id="consent-channel"),
    pytest.param("kpis", lambda d: d["kpis"][1].update(primary=True), id="two-primaries"),
    pytest.param("kpis", lambda d: d["kpis"][0].update(direction="up"), id="direction"),
    pytest.param("kpis", lambda d: d["kpis"][0].pop("inputs"), id="no-inputs"),
    pytest.param("kpis", lambda d: d["kpis"][0]["inputs"][0].update(system="excel"),
                 id="input-system"),
    pytest.param("consent", lambda d: d["unsubscribe"].update(path="manual"),
                 id="unsubscribe-path"),
    pytest.param("consent", lambda d: d["channels"][0]["target"].pop("fields"),
                 id="target-fields"),
])
def test_broken_files_fail_schema(name: str, edit: Any) -> None:
    assert broken(name, edit)


# --- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(("answer_changes", "plan_changes", "message"), [
    ({}, {"crm": "undecided"}, "plan.crm"),
    ({}, {"platform": "magento"}, "plan.platform"),
    ({}, {"path": "manual"}, "plan.path"),
    ({}, {"modules": ("contacts", "loyalty")}, "plan.modules"),
    ({"consent_channels": ("email", "telegram")}, {}, "consent_channels"),
    ({"support_channels": ("fax",)}, {}, "support_channels"),
    ({"marketing_channels": ("radio",)}, {}, "marketing_channels"),
    ({"goal": "more_traffic"}, {}, "answers.goal"),
    ({"monthly_orders": -5}, {}, "monthly_orders"),
])
def test_build_spec_rejects_bad_input(
    answer_changes: dict[str, Any], plan_changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_spec(make_answers(**answer_changes), make_plan(**plan_changes))


def test_build_spec_reports_every_problem_at_once() -> None:
    plan = dataclasses.replace(make_plan(), crm="undecided", platform="wix")
    with pytest.raises(ValueError) as caught:
        build_spec(make_answers(goal="nope"), plan)
    text = str(caught.value)
    assert "plan.crm" in text
    assert "plan.platform" in text
    assert "answers.goal" in text


# --- Fixes from the review -------------------------------------------------------


def test_discount_code_covers_its_last_step() -> None:
    every = ("email", "sms", "whatsapp")
    playbooks = {item["key"]: item
                 for item in spec_for(consent_channels=every)["playbooks"]["playbooks"]}
    win_back = playbooks["win_back"]
    # Email on day 0, WhatsApp on day 7, SMS on day 15: the code outlives day 15.
    assert win_back["discount_code"] == {
        "issued_at_step": 1, "last_step": 3, "expires_after_hours": 15 * 24 + 48}
    assert playbooks["abandoned_cart"]["discount_code"]["expires_after_hours"] == 20 + 48
    assert "discount_code" not in playbooks["post_purchase"]
    email_only = {item["key"]: item for item in
                  spec_for(consent_channels=("email",))["playbooks"]["playbooks"]}
    assert email_only["win_back"]["discount_code"]["expires_after_hours"] == 48


def test_ticket_stages_shared_by_mapping_and_desired_state() -> None:
    spec = spec_for("zoho")
    table = spec["mapping"]["ticket_stages"]
    assert [stage["crm_value"] for stage in table["stages"]] == ["New", "On Hold", "Closed"]
    state = build_desired_state(spec, make_plan(crm="zoho"))
    status = next(item for item in state["picklists"] if item["field"] == "Status")
    assert [value["actual_value"] for value in status["values"]] == ["New", "On Hold", "Closed"]
    custom = spec_for("custom")["mapping"]["ticket_stages"]["stages"]
    assert [stage["crm_value"] for stage in custom] == ["open", "waiting", "resolved"]


def test_deals_carry_the_pipeline() -> None:
    hubspot = spec_for("hubspot")["mapping"]
    field = hubspot["entities"]["order"]["setup_fields"][0]
    assert (field["name"], field["target"], field["value"]) == ("pipeline", "pipeline", None)
    assert field["filled_at_setup"] is True
    pending = hubspot["order_stages"]["setup_pending"]["values"]
    assert pending[0] == "pipeline"
    assert "paid_processing" in pending
    zoho = spec_for("zoho")["mapping"]
    assert zoho["entities"]["order"]["setup_fields"][0]["target"] == "Pipeline"
    assert zoho["order_stages"]["setup_pending"]["values"] == ["pipeline"]
    custom = spec_for("custom")["mapping"]
    assert custom["entities"]["order"]["setup_fields"][0]["value"] == "ecommerce"
    assert "setup_pending" not in custom["order_stages"]


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "headless"])
def test_line_items_have_an_identity_key(platform: str) -> None:
    hubspot = fields_by_name(spec_for("hubspot", platform), "line_item")
    assert hubspot["store_line_item_id"]["unique"] is True
    assert hubspot["store_line_item_id"]["target"] == "ecom_line_item_id"
    custom = fields_by_name(spec_for("custom", platform), "line_item")
    assert custom["store_line_item_id"]["target"] == "order_lines.store_line_item_id"
    zoho = spec_for("zoho", platform)["mapping"]["entities"]["line_item"]
    assert "store_line_item_id" not in fields_by_name(spec_for("zoho", platform), "line_item")
    assert "not on subform rows" in zoho["note"]


def test_consent_withdrawal_matches_the_path() -> None:
    for path in ("connector", "ipaas", "api"):
        consent = spec_for(path=path)["consent"]
        withdrawal = consent["pdpl"]["basis"][-1]["en"]
        if path == "connector":
            assert "at once" not in withdrawal.split(";")[-1]
            assert "the same day" in withdrawal
            assert "the same day" in consent["unsubscribe"]["text"]["en"]
        else:
            assert "at once" in withdrawal


def test_opt_in_capture_follows_consent_channels() -> None:
    email = spec_for(consent_channels=("email",))["consent"]["opt_in_capture"]
    assert "SMS" not in email["en"]
    assert "WhatsApp" not in email["en"]
    assert "واتساب" not in email["ar"]
    assert "النصية" not in email["ar"]
    every = spec_for(consent_channels=("email", "sms", "whatsapp"))["consent"]["opt_in_capture"]
    assert "SMS" in every["en"]
    assert "WhatsApp" in every["en"]
    none = spec_for(consent_channels=())["consent"]["opt_in_capture"]
    assert "no marketing consent" in none["en"]


def test_response_time_kpi_per_crm() -> None:
    def kpi(crm: str, **changes: Any) -> dict[str, Any]:
        return next(item for item in spec_for(crm, **changes)["kpis"]["kpis"]
                    if item["key"] == "avg_response_time")

    assert "HubSpot" not in kpi("zoho")["source"]
    assert "HubSpot" not in kpi("custom")["source"]
    assert kpi("custom")["source"] == "tickets.opened_at and tickets.first_reply_at"
    assert kpi("hubspot")["enabled"] is True
    off = kpi("hubspot", modules=BASE_MODULES)
    assert off["enabled"] is False
    assert "support" in off["disabled_reason"]["en"]


def test_shopify_void_with_restock_is_cancelled() -> None:
    rules = spec_for()["mapping"]["order_stages"]["rules"]
    for status in ("voided", "expired"):
        facts = {"financial_status": status, "fulfillment_status": "restocked"}
        assert first_matching_stage(rules, facts) == "cancelled", status
    unpaid = {"financial_status": "pending", "fulfillment_status": "restocked"}
    assert first_matching_stage(rules, unpaid) == "cancelled"
    paid = {"financial_status": "paid", "fulfillment_status": "restocked"}
    assert first_matching_stage(rules, paid) == "refunded"


def test_line_item_name_includes_the_variant() -> None:
    shopify = fields_by_name(spec_for("hubspot", "shopify"), "line_item")["title"]
    assert shopify["source"] == "line_items[].name"
    assert shopify["fallback_sources"] == ["line_items[].title"]
    storefront = spec_for("hubspot", "headless")["mapping"]["storefront_event"]["fields"]
    order = next(field for field in storefront if field["name"] == "order")
    assert "variant title" in order["description"]


def test_lifecycle_rule_names_what_each_crm_receives() -> None:
    def rule(crm: str) -> str:
        rollups = spec_for(crm)["mapping"]["entities"]["contact"]["rollups"]
        stage = next(item for item in rollups if item["name"] == "lifecycle_stage")
        return str(stage["rule"]["en"])

    assert "First-time Customer" in rule("zoho")
    assert not rule("zoho").startswith("Key")
    assert rule("hubspot").startswith("Key")
    assert rule("custom").startswith("Key")
