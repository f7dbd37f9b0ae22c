"""The mapping engine: source paths, fallbacks, records per item, identity and problems."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.runtime.engine import (
    TOPICS,
    MappedRecords,
    accepted_platforms,
    accepted_topics,
    canonical_topic,
    is_empty,
    map_payload,
    resolve_path,
    topics,
)

ENGINE = Path(__file__).resolve().parents[1] / "generator" / "runtime" / "engine.py"
CONSENT_SPEC = Path(__file__).resolve().parents[1] / "generator" / "data" / "spec" / "consent.yaml"


def field(name: str, source: str, target: str | None = None, transform: str = "identity",
          **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": source, "target": target or name, "transform": transform,
            **extra}


def mapping(platform: str = "shopify", **entities: dict[str, Any]) -> dict[str, Any]:
    return {
        "platform": platform,
        "identity": {"match_order": [
            {"key": "store_customer_id", "target": "customer_id"},
            {"key": "phone", "target": "phone"},
            {"key": "email", "target": "email"},
        ]},
        "entities": entities,
    }


def entity(*fields: dict[str, Any], enabled: bool = True, obj: str = "things") -> dict[str, Any]:
    return {"enabled": enabled, "object": obj, "fields": list(fields)}


CONTACT = entity(
    field("store_customer_id", "customer.id", "customer_id", "id_text", unique=True),
    field("email", "customer.email", "email", "email_lower", fallback_sources=["email"]),
    field("phone", "customer.phone", "phone", "phone_e164_sa",
          fallback_sources=["billing_address.phone", "phone"]),
    field("city_raw", "customer.city", "city_raw"),
    obj="contacts",
)
LINE_ITEM = entity(
    field("sku", "line_items[].sku", "sku", "sku_or_variant_id",
          fallback_sources=["line_items[].variant_id"]),
    field("quantity", "line_items[].quantity", "quantity"),
    field("order_id", "id", "order_id", "id_text"),
    obj="line_items",
)
ORDER = entity(
    field("external_order_id", "id", "order_id", "id_text", unique=True),
    field("codes", "discount_codes[].code", "codes", "list_join"),
    obj="deals",
)
BODY: dict[str, Any] = {
    "id": 1001,
    "email": "Fallback@Example.com",
    "phone": "0500000009",
    "customer": {"id": 42, "email": "", "phone": None, "city": "جدة"},
    "billing_address": {"phone": "+966 50 000 0001"},
    "discount_codes": [{"code": "A"}, {"code": "B"}],
    "line_items": [
        {"sku": "SKU-1", "variant_id": 11, "quantity": 2},
        {"sku": None, "variant_id": 12, "quantity": 1},
        {"sku": "", "variant_id": 13, "quantity": 5},
    ],
}


def run(body: Any = BODY, topic: str = "orders/create", platform: str = "shopify",
        document: dict[str, Any] | None = None) -> MappedRecords:
    document = document or mapping(contact=CONTACT, order=ORDER, line_item=LINE_ITEM)
    return map_payload(document, platform, topic, body)


PATH_CASES: list[tuple[str, Any]] = [
    ("id", 1001),
    ("customer.id", 42),
    ("customer.missing", None),
    ("missing.deeper.still", None),
    ("email.not_an_object", None),
    ("discount_codes[].code", ["A", "B"]),
    ("discount_codes[]", [{"code": "A"}, {"code": "B"}]),
    ("discount_codes[1].code", "B"),
    ("discount_codes[7].code", None),
    ("line_items[].sku", ["SKU-1", ""]),
    ("nothing[].sku", []),
    ("id[]", []),
    ("", None),
]


@pytest.mark.parametrize(("path", "expected"), PATH_CASES,
                         ids=[path for path, _ in PATH_CASES])
def test_resolve_path(path: str, expected: Any) -> None:
    assert resolve_path(BODY, path) == expected


def test_resolve_path_nested_lists() -> None:
    body = {"refunds": [{"transactions": [{"amount": "5.00"}, {"amount": "2.50"}]},
                        {"transactions": [{"amount": "1.00"}]}]}
    assert resolve_path(body, "refunds[].transactions[].amount") == ["5.00", "2.50", "1.00"]


def test_resolve_path_meta_key() -> None:
    body = {"meta_data": [{"id": 1, "key": "_other", "value": "x"},
                          {"id": 2, "key": "_wc_order_attribution_utm_source", "value": "google"}]}
    assert resolve_path(body, "meta_data[_wc_order_attribution_utm_source]") == "google"
    assert resolve_path(body, "meta_data[_absent]") is None
    assert resolve_path({"meta_data": "not a list"}, "meta_data[_other]") is None


@pytest.mark.parametrize(("value", "empty"), [
    (None, True), ("", True), ("  ", True), ([], True), ([None, ""], True), ({}, True),
    (0, True), (False, False), ("0", False), (7, False), (0.0, False), (["a"], False),
    ({"a": 1}, False),
])
def test_is_empty(value: Any, empty: bool) -> None:
    assert is_empty(value) is empty


def test_fallback_used_when_primary_empty() -> None:
    contact = run().records[0]
    assert contact.entity == "contact"
    # customer.email is "" and customer.phone is None, so both come from fallbacks.
    assert contact.properties["email"] == "fallback@example.com"
    assert contact.properties["phone"] == "+966500000001"
    assert contact.flags["email"] == ["fallback:email"]
    assert contact.flags["phone"] == ["fallback:billing_address.phone"]


def test_primary_wins_over_fallback() -> None:
    body = copy.deepcopy(BODY)
    body["customer"]["email"] = "Own@Example.com"
    contact = run(body).records[0]
    assert contact.properties["email"] == "own@example.com"
    assert "email" not in contact.flags


def test_record_per_line_item() -> None:
    items = [record for record in run().records if record.entity == "line_item"]
    assert [record.properties for record in items] == [
        {"sku": "SKU-1", "quantity": 2, "order_id": "1001"},
        {"sku": "12", "quantity": 1, "order_id": "1001"},
        {"sku": "13", "quantity": 5, "order_id": "1001"},
    ]
    assert all(record.object == "line_items" for record in items)
    assert items[1].flags["sku"][-1] == "fallback:line_items[].variant_id"


def test_list_field_is_joined() -> None:
    order = next(record for record in run().records if record.entity == "order")
    assert order.properties == {"order_id": "1001", "codes": "A, B"}
    assert order.identity == [("order_id", "1001")]


def test_none_values_left_out() -> None:
    body = {"id": 5, "customer": {"id": 42, "email": "", "phone": "not a phone"}, "email": None,
            "line_items": []}
    contact = run(body).records[0]
    assert contact.properties == {"customer_id": "42"}
    assert "email" not in contact.properties
    assert "phone" not in contact.properties
    assert "invalid_phone" in contact.flags["phone"]
    assert "" not in contact.properties.values()


def test_identity_follows_match_order() -> None:
    contact = run().records[0]
    assert contact.identity == [("customer_id", "42"), ("phone", "+966500000001"),
                                ("email", "fallback@example.com")]


def test_records_in_entity_then_item_order() -> None:
    assert [record.entity for record in run().records] == [
        "contact", "order", "line_item", "line_item", "line_item"]


def test_no_line_items_is_a_problem() -> None:
    body = {**BODY, "line_items": []}
    result = run(body)
    assert [record.entity for record in result.records] == ["contact", "order"]
    assert result.problems == [
        "line_item: the body has no items at line_items[], so no record was made."]


def test_unknown_topic_is_a_problem() -> None:
    result = run(topic="orders/exploded")
    assert result.records == []
    assert len(result.problems) == 1
    assert result.problems[0].startswith("Unknown shopify topic 'orders/exploded'")
    assert "orders/create" in result.problems[0]


def test_unknown_platform_is_a_problem() -> None:
    result = run(platform="magento")
    assert result.records == []
    assert result.problems == [
        "Unknown platform 'magento': expected one of shopify, woocommerce, storefront."]


@pytest.mark.parametrize(("body", "kind"), [
    ([BODY], "array"), (None, "null"), ("text", "string"), (12, "number"), (True, "boolean"),
])
def test_body_not_object_is_a_problem(body: Any, kind: str) -> None:
    result = run(body=body)
    assert result.records == []
    assert result.problems == [f"The body is a JSON {kind}, but it must be a JSON object."]


def test_wrong_family_is_a_problem() -> None:
    result = run(topic="order.created", platform="woocommerce")
    assert result.records == []
    assert result.problems == [
        "This field map reads shopify bodies; a woocommerce 'order.created' body feeds "
        "none of its entities."]


def test_disabled_entity_is_skipped() -> None:
    off = {**ORDER, "enabled": False,
           "disabled_reason": {"en": "Off: the plan has no orders module."}}
    result = run(document=mapping(contact=CONTACT, order=off, line_item=LINE_ITEM))
    assert "order" not in {record.entity for record in result.records}
    assert result.problems == ["order: not mapped. Off: the plan has no orders module."]


def test_missing_entity_is_a_problem() -> None:
    result = run(document=mapping(contact=CONTACT))
    assert [record.entity for record in result.records] == ["contact"]
    assert result.problems == ["order: the field map has no such entity.",
                               "line_item: the field map has no such entity."]


def test_record_without_values_is_a_problem() -> None:
    result = run(body={"note": "nothing the map reads"}, topic="customers/update")
    assert result.records == []
    assert result.problems == ["contact: no field of the body had a value, so no record was made."]


def test_placeholder_for_required_field() -> None:
    names = entity(
        field("first_name", "customer.first_name", "First_Name", "split_name"),
        field("last_name", "customer.last_name", "Last_Name", "split_name", required=True,
              placeholder="-"),
        field("phone", "customer.phone", "Mobile", "phone_e164_sa"),
    )
    body = {"first_name": "", "last_name": None, "phone": "0500000001"}
    record = run(body, "customers/update", document=mapping(contact=names)).records[0]
    assert record.properties == {"Last_Name": "-", "Mobile": "+966500000001"}
    assert record.flags["last_name"][-1] == "placeholder"


def test_split_name_fills_both_targets() -> None:
    names = entity(
        field("first_name", "customer.first_name", "firstname", "split_name"),
        field("last_name", "customer.last_name", "lastname", "split_name"),
    )
    whole = {"first_name": "عبد الله بن سعيد", "last_name": ""}
    record = run(whole, "customers/update", document=mapping(contact=names)).records[0]
    assert record.properties == {"firstname": "عبد الله", "lastname": "بن سعيد"}
    both = {"first_name": "Test", "last_name": "Customer"}
    record = run(both, "customers/update", document=mapping(contact=names)).records[0]
    assert record.properties == {"firstname": "Test", "lastname": "Customer"}


def test_customer_topic_reads_top_level_body() -> None:
    body = {"id": 42, "email": "Sara@Example.com", "phone": "0500000001"}
    record = run(body, "customers/update").records[0]
    assert record.properties == {"customer_id": "42", "email": "sara@example.com",
                                 "phone": "+966500000001"}


def test_refund_topic_maps_refund_fields_only() -> None:
    order = entity(
        field("external_order_id", "id", "order_id", "id_text", unique=True),
        field("amount", "total_price", "amount", "money_sar"),
        field("refunded_amount", "refunds[].transactions[].amount", "refunded",
              "refund_total_sar"),
    )
    body = {"id": 9, "order_id": 1001, "transactions": [{"amount": "20.00"}, {"amount": "5.5"}]}
    result = run(body, "refunds/create", document=mapping(order=order))
    assert result.problems == []
    [record] = result.records
    # The target contains the sum of every refund, so one refund alone is never written there.
    assert record.properties == {"order_id": "1001"}
    assert record.not_sent == {"refunded_amount": "25.50"}
    assert record.flags == {"refunded_amount": ["not_written", "this_refund_only"]}


def test_woocommerce_customer_topic() -> None:
    contact = entity(
        field("store_customer_id", "customer_id", "customer_id", "id_text"),
        field("email", "billing.email", "email", "email_lower"),
    )
    body = {"id": 12, "email": "Woo@Example.com", "billing": {"email": ""}}
    document = mapping("woocommerce", contact=contact)
    record = run(body, "customer.updated", "woocommerce", document).records[0]
    assert record.properties == {"customer_id": "12", "email": "woo@example.com"}


# The contact map of a Zoho project: Last_Name is required and gets a placeholder.
ZOHO_CONTACT = entity(
    field("store_customer_id", "customer.id", "customer_id", "id_text", unique=True),
    field("email", "customer.email", "email", "email_lower", fallback_sources=["email"]),
    field("phone", "customer.phone", "phone", "phone_e164_sa", fallback_sources=["phone"]),
    field("first_name", "customer.first_name", "First_Name", "split_name"),
    field("last_name", "customer.last_name", "Last_Name", "split_name", required=True,
          placeholder="-"),
    obj="Contacts",
)
SMS_CONSENT_BODY = {
    "id": 7300000000021,
    "phone": "+966 50 000 0004",
    "sms_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                              "consent_updated_at": "2026-03-02T19:40:00+03:00",
                              "consent_collected_from": "SHOPIFY"},
}
EMAIL_CONSENT_BODY = {
    "customer_id": 7300000000021,
    "email_address": "Reem.Consent@Example.com",
    "email_marketing_consent": {"state": "unsubscribed", "opt_in_level": "single_opt_in",
                                "consent_updated_at": "2026-03-03T08:15:00+03:00"},
}


def test_sms_consent_topic_maps_identity_only() -> None:
    result = run(SMS_CONSENT_BODY, "customers_marketing_consent/update",
                 document=mapping(contact=ZOHO_CONTACT))
    assert result.problems == []
    [record] = result.records
    # No placeholder Last_Name, because the body contains no names.
    assert record.properties == {"customer_id": "7300000000021", "phone": "+966500000004"}
    assert record.identity == [("customer_id", "7300000000021"), ("phone", "+966500000004")]


def test_email_consent_topic_maps_identity_only() -> None:
    result = run(EMAIL_CONSENT_BODY, "customers_email_marketing_consent/update",
                 document=mapping(contact=ZOHO_CONTACT))
    assert result.problems == []
    [record] = result.records
    assert record.properties == {"customer_id": "7300000000021",
                                 "email": "reem.consent@example.com"}
    assert record.identity == [("customer_id", "7300000000021"),
                               ("email", "reem.consent@example.com")]


def test_sms_consent_topic_reads_customer_id() -> None:
    body = {"customer_id": 7300000000021, "phone": None,
            "sms_marketing_consent": {"state": "unsubscribed"}}
    [record] = run(body, "customers_marketing_consent/update",
                   document=mapping(contact=ZOHO_CONTACT)).records
    assert record.properties == {"customer_id": "7300000000021"}


def test_consent_topic_without_ids_is_a_problem() -> None:
    result = run({"sms_marketing_consent": {"state": "subscribed"}},
                 "customers_marketing_consent/update", document=mapping(contact=ZOHO_CONTACT))
    assert result.records == []
    assert result.problems == ["contact: no field of the body had a value, so no record was made."]


@pytest.mark.parametrize(("topic", "body", "channel"), [
    ("customers_marketing_consent/update", SMS_CONSENT_BODY, "sms"),
    ("customers_email_marketing_consent/update", EMAIL_CONSENT_BODY, "email"),
])
def test_consent_topic_view_has_consent_paths(topic: str, body: dict[str, Any],
                                              channel: str) -> None:
    consent = yaml.safe_load(CONSENT_SPEC.read_text(encoding="utf-8"))
    source = consent["channels"][channel]["source"]["shopify"]
    view = TOPICS["shopify"][topic].views["contact"](body)
    state = resolve_path(view, source["field"])
    meanings = {entry["value"]: entry["meaning"] for entry in source["states"]}
    assert meanings[state] == ("granted" if channel == "sms" else "withdrawn")
    extra = {path.rsplit(".", 1)[-1]: resolve_path(view, path)
             for path in source["extra_fields"]}
    assert extra == {"opt_in_level": "single_opt_in",
                     "consent_updated_at": body[f"{channel}_marketing_consent"][
                         "consent_updated_at"]}


def test_storefront_event_on_woocommerce_project() -> None:
    event = entity(field("event_id", "event_id", "event_id", "id_text", unique=True))
    document = mapping("woocommerce", contact=CONTACT, event=event)
    body = {"event": "purchase_completed", "event_id": "evt_1", "customer": {"id": 42}}
    result = run(body, "purchase_completed", "storefront", document)
    assert [record.entity for record in result.records] == ["event"]
    assert result.records[0].identity == [("event_id", "evt_1")]
    assert result.problems == []


def test_storefront_event_name_mismatch() -> None:
    event = entity(field("event_id", "event_id", "event_id", "id_text"))
    document = mapping("headless", event=event)
    result = run({"event": "page_view", "event_id": "e1"}, "add_to_cart", "storefront", document)
    assert [record.properties for record in result.records] == [{"event_id": "e1"}]
    assert result.problems == [
        "The body's event is 'page_view', not 'add_to_cart'; it was mapped as 'add_to_cart'."]


def test_shopify_checkout_becomes_event() -> None:
    event = entity(
        field("event_key", "name", "key", "event_key"),
        field("event_id", "id", "event_id", "id_text", unique=True),
        field("cart_token", "data.checkout.token", "cart_token", "id_text"),
        field("cart_value", "data.checkout.totalPrice.amount", "value", "money_sar"),
    )
    body = {"id": 77, "token": "tok1", "updated_at": "2026-03-01T10:00:00+03:00",
            "total_price": "99.5", "currency": "SAR", "email": "a@example.com"}
    result = run(body, "checkouts/update", document=mapping(event=event))
    assert [record.properties for record in result.records] == [{
        "key": "checkout_started", "event_id": "tok1:2026-03-01T10:00:00+03:00",
        "cart_token": "tok1", "value": "99.50"}]


def test_unknown_map_platform_is_a_problem() -> None:
    result = run(document={**mapping(contact=CONTACT), "platform": "magento"})
    assert result.records == []
    assert result.problems == [
        "The field map's platform 'magento' is unknown: expected one of shopify, woocommerce, "
        "headless, custom."]


def test_unusable_value_left_out() -> None:
    odd = entity(field("store_customer_id", "customer.id", "customer_id", "id_text"),
                 field("mystery", "id", "mystery", "no_such_transform"))
    record = run(document=mapping(contact=odd)).records[0]
    assert record.properties == {"customer_id": "42"}
    assert record.flags == {"mystery": ["unknown_transform"]}


def test_split_name_single_field_gets_whole_name() -> None:
    names = entity(field("full_name", "customer.first_name", "name", "split_name"))
    body = {"first_name": "  سارة   العتيبي ", "last_name": None}
    record = run(body, "customers/update", document=mapping(contact=names)).records[0]
    assert record.properties == {"name": "سارة العتيبي"}


def test_topics_table() -> None:
    assert set(topics("shopify")) >= {
        "orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled",
        "refunds/create", "customers/create", "customers/update",
        "customers_marketing_consent/update", "customers_email_marketing_consent/update",
        "products/create", "products/update",
        "checkouts/create", "checkouts/update"}
    assert topics("woocommerce") == (
        "order.created", "order.updated", "customer.created", "customer.updated",
        "product.created", "product.updated")
    assert "add_to_cart" in topics("storefront")
    assert topics("magento") == ()
    assert set(TOPICS) == {"shopify", "woocommerce", "storefront"}


def test_old_sms_consent_name_is_alias() -> None:
    old = "customers/marketing_consent"
    assert old not in topics("shopify")
    assert old in accepted_topics("shopify")
    assert canonical_topic("shopify", old) == "customers_marketing_consent/update"
    assert canonical_topic("shopify", "orders/create") == "orders/create"
    by_alias = run(SMS_CONSENT_BODY, old, document=mapping(contact=ZOHO_CONTACT))
    by_name = run(SMS_CONSENT_BODY, "customers_marketing_consent/update",
                  document=mapping(contact=ZOHO_CONTACT))
    assert by_alias.problems == []
    assert by_alias.records == by_name.records


@pytest.mark.parametrize(("platform", "accepted"), [
    ("shopify", ("shopify", "storefront")),
    ("woocommerce", ("woocommerce", "storefront")),
    ("headless", ("storefront",)),
    ("custom", ("storefront",)),
    ("magento", ()),
])
def test_accepted_platforms(platform: str, accepted: tuple[str, ...]) -> None:
    assert accepted_platforms({"platform": platform}) == accepted


def test_deterministic() -> None:
    first = run().to_data()
    for _ in range(3):
        assert run(copy.deepcopy(BODY)).to_data() == first
    assert list(first["records"][0]["properties"]) == ["customer_id", "email", "phone",
                                                        "city_raw"]


def test_does_not_change_body() -> None:
    body = copy.deepcopy(BODY)
    run(body)
    assert body == BODY


def test_to_data_shape() -> None:
    data = run().to_data()
    assert data["platform"] == "shopify"
    assert data["topic"] == "orders/create"
    assert data["problems"] == []
    assert list(data["records"][0]["identity"].items()) == [
        ("customer_id", "42"), ("phone", "+966500000001"), ("email", "fallback@example.com")]
    assert set(data["records"][0]) == {"entity", "object", "properties", "identity", "flags",
                                       "not_sent"}


def test_engine_imports_only_runtime_and_stdlib() -> None:
    tree = ast.parse(ENGINE.read_text(encoding="utf-8"))
    absolute: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                absolute.add(node.module.split(".")[0])
            else:
                assert node.level == 1, "relative imports stay inside generator.runtime"
    allowed = {"__future__", "re", "collections", "dataclasses", "functools", "typing", "yaml"}
    assert absolute <= allowed
    assert "generator" not in absolute


# --- Values that must not be sent as they are --------------------------------------


def own_problems(result: MappedRecords) -> list[str]:
    """The problems besides the entities these small field maps leave out."""
    return [text for text in result.problems if "has no such entity" not in text]


def stage_mapping(crm_value: str | None, pipeline: dict[str, Any] | None = None,
                  crm: str = "hubspot") -> dict[str, Any]:
    order = entity(
        field("external_order_id", "id", "order_id", "id_text", unique=True),
        field("stage", "financial_status", "dealstage", "status_to_stage"),
        obj="deals",
    )
    document = mapping(order=order)
    document["crm"] = crm
    document["order_stages"] = {
        "stages": [{"key": "paid_processing", "crm_value": crm_value}],
        "rules": [{"when": {"financial_status": ["paid"]}, "stage": "paid_processing"}],
    }
    if pipeline is not None:
        document["order_stages"]["pipeline"] = pipeline
    return document


def test_stage_without_crm_id_is_flagged() -> None:
    result = run({"id": 1, "financial_status": "paid"}, document=stage_mapping(None))
    [record] = result.records
    assert record.properties == {"order_id": "1", "dealstage": "paid_processing"}
    assert record.flags == {"stage": ["stage_id_pending"]}
    assert own_problems(result) == [
        "order: the CRM's stage ids are not filled yet (crm_value is null), so stage contains the "
        "stage key. Fill each stage's crm_value with the id the CRM returns at set-up."]


def test_stage_with_crm_id_has_no_flag() -> None:
    result = run({"id": 1, "financial_status": "paid"}, document=stage_mapping("12345"))
    assert result.records[0].properties == {"order_id": "1", "dealstage": "12345"}
    assert result.records[0].flags == {}
    assert own_problems(result) == []


def test_pipeline_without_crm_id_is_flagged() -> None:
    document = stage_mapping("12345", {"field": "pipeline", "crm_value": None})
    result = run({"id": 1, "financial_status": "paid"}, document=document)
    [record] = result.records
    assert "pipeline" not in record.properties
    assert record.flags == {"stage": ["pipeline_id_pending"]}
    assert own_problems(result) == [
        "The pipeline id is not filled yet (order_stages.pipeline.crm_value is null), so "
        "pipeline was left out: fill it with the id the CRM returns at set-up."]


def test_pipeline_with_crm_id_is_written() -> None:
    document = stage_mapping("12345", {"field": "pipeline", "crm_value": "default"})
    result = run({"id": 1, "financial_status": "paid"}, document=document)
    assert result.records[0].properties == {"order_id": "1", "dealstage": "12345",
                                            "pipeline": "default"}
    assert own_problems(result) == []


EVENT = entity(field("event_key", "event", "eventName", "event_key"),
               field("event_id", "event_id", "event_id", "id_text", unique=True),
               obj="custom_behavioral_events")


@pytest.mark.parametrize(("crm", "name", "flags"), [
    ("hubspot", "ecom_add_to_cart", {"event_key": ["needs_hub_id_prefix"]}),
    ("zoho", "add_to_cart", {}),
    ("custom", "add_to_cart", {}),
])
def test_event_name_is_the_desired_state_name(crm: str, name: str,
                                              flags: dict[str, list[str]]) -> None:
    document = mapping("headless", event=EVENT)
    document["crm"] = crm
    result = run({"event": "add_to_cart", "event_id": "e1"}, "add_to_cart", "storefront",
                 document)
    assert result.records[0].properties == {"eventName": name, "event_id": "e1"}
    assert result.records[0].flags == flags


def name_mapping(zoho: bool) -> dict[str, Any]:
    last: dict[str, Any] = {"required": True, "placeholder": "-"} if zoho else {}
    contact = entity(
        field("store_customer_id", "customer.id", "customer_id", "id_text", unique=True),
        field("first_name", "customer.first_name", "First_Name" if zoho else "firstname",
              "split_name"),
        field("last_name", "customer.last_name", "Last_Name" if zoho else "lastname",
              "split_name", **last),
        obj="contacts",
    )
    return mapping(contact=contact)


@pytest.mark.parametrize(("zoho", "first", "last"), [
    (False, "firstname", "lastname"),
    (True, "First_Name", "Last_Name"),
])
@pytest.mark.parametrize("where", ["first_name", "last_name"])
def test_one_word_name(zoho: bool, first: str, last: str, where: str) -> None:
    body = {"customer": {"id": 5, where: "نورة"}}
    record = run(body, document=name_mapping(zoho)).records[0]
    if zoho:
        # Zoho rejects a contact without Last_Name, so the one name goes there.
        assert record.properties == {"customer_id": "5", last: "نورة"}
        assert record.flags == {"last_name": ["single_name"]}
    else:
        assert record.properties == {"customer_id": "5", first: "نورة"}
        assert record.flags == {"first_name": ["single_name"]}


def test_two_word_name_is_split_the_same_everywhere() -> None:
    body = {"customer": {"id": 5, "first_name": "سارة العتيبي"}}
    for zoho, first, last in ((False, "firstname", "lastname"), (True, "First_Name", "Last_Name")):
        record = run(body, document=name_mapping(zoho)).records[0]
        assert record.properties == {"customer_id": "5", first: "سارة", last: "العتيبي"}


def sar_mapping() -> dict[str, Any]:
    order = entity(
        field("external_order_id", "id", "order_id", "id_text", unique=True),
        field("amount", "total_price", "amount", "money_sar"),
        field("total", "total_price", "ecom_total_sar", "money_sar"),
        obj="deals",
    )
    return mapping(order=order)


def test_foreign_currency_skips_sar_targets() -> None:
    result = run({"id": 1, "currency": "USD", "total_price": "40.00"}, document=sar_mapping())
    [record] = result.records
    assert record.properties == {"order_id": "1", "amount": "40.00"}
    assert record.not_sent == {"total": "40.00"}
    assert record.flags == {"amount": ["currency_not_sar", "currency:USD"],
                            "total": ["currency_not_sar", "currency:USD", "not_sar_not_written"]}
    assert own_problems(result) == [
        "order: the body is in USD, so ecom_total_sar was left out: it is for SAR amounts, and "
        "converting needs an exchange rate the project does not have."]


def test_amount_in_sar_is_written() -> None:
    result = run({"id": 1, "currency": "SAR", "total_price": "40"}, document=sar_mapping())
    assert result.records[0].properties == {"order_id": "1", "amount": "40.00",
                                            "ecom_total_sar": "40.00"}
    assert own_problems(result) == []


def zoho_line_items() -> dict[str, Any]:
    line = entity(
        field("sku", "line_items[].sku", "Product_Details[].product", "sku_or_variant_id"),
        field("quantity", "line_items[].quantity", "Product_Details[].quantity"),
        obj="Sales_Orders.Product_Details",
    )
    line["associations"] = [
        {"to": "order", "kind": "lookup", "ref": "Deal_Name"},
        {"to": "product", "kind": "lookup", "ref": "Product_Details[].product"},
    ]
    return mapping(line_item=line)


def test_zoho_lookups_are_marked_pending() -> None:
    result = run(document=zoho_line_items())
    assert [record.properties["Product_Details[].product"] for record in result.records] == [
        "SKU-1", "12", "13"]
    assert result.records[0].flags == {"sku": ["pending_lookup"]}
    # One line for the record type, not one per item.
    assert own_problems(result) == [
        "line_item (Sales_Orders.Product_Details): lookups take Zoho record ids, so before "
        "sending the sync sets Deal_Name to the id of the order record; "
        "Product_Details[].product contains the store's sku until the sync puts in the id of the "
        "product record it finds by that value; each item is sent inside its parent "
        "Sales_Orders record, which the sync finds or creates for the order."]


def test_ticket_topic_feeds_tickets_on_shopify_projects() -> None:
    ticket = entity(field("subject", "ticket.subject", "subject"), obj="tickets")
    result = run({"event": "ticket_created", "ticket": {"subject": "Late"}}, "ticket_created",
                 "storefront", mapping(ticket=ticket))
    assert own_problems(result) == []
    assert [record.properties for record in result.records] == [{"subject": "Late"}]
