"""Make blueprints: contact routes by email and phone, deals without a contact, consent writes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from generator.ipaas import make
from generator.ipaas.crm_ids import with_stage_ids
from generator.ipaas.flows import build_flows
from generator.ipaas.make_outcomes import BATCH_CHECK_ROUTER_NAME
from tests.ipaas_cases import IPAAS_CASES, load_case
from tests.test_ipaas_make_iml import evaluate
from tests.test_ipaas_n8n_stages import recorded_state

CRM_CASES = [case for case in IPAAS_CASES if case[0] != "shopify-postgres"]
ROUTER = "Route by the email and phone the record carries"
PHONE_ONLY = {"1": {"id": 5001, "name": "#1001", "total_price": "10.00", "email": "",
                    "financial_status": "paid", "processed_at": "2026-03-01T10:00:00+03:00",
                    "customer": {"id": "", "email": "", "phone": "0501234567"},
                    "line_items": []}}
# The suffixes of a contact route's name for a won order and for any other order.
WON = "; won order"
NOT_WON = "; order not won: no latest order time"
NO_CONTACT = {"1": {"id": 5002, "name": "#1002", "total_price": "10.00", "email": "",
                    "phone": "", "customer": {"id": "", "email": "", "phone": ""},
                    "line_items": []}}


@cache
def blueprints(preset: str, values_json: str = "{}") -> dict[str, dict[str, Any]]:
    answers, plan, spec = load_case(preset, json.loads(values_json))
    return make.blueprints(build_flows(answers, plan, spec))


@cache
def blueprints_with_ids(preset: str) -> dict[str, dict[str, Any]]:
    """Return the blueprints built after ``rabt crm apply`` recorded the pipeline ids."""
    answers, plan, spec = load_case(preset, {})
    ids = recorded_state().ids()
    return make.blueprints(build_flows(answers, plan, with_stage_ids(spec, ids)))


def modules(flow: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for module in flow:
        yield module
        for route in module.get("routes", []):
            yield from modules(route["flow"])


def name_of(module: dict[str, Any]) -> str:
    return str(module["metadata"]["designer"]["name"])


def step_names(flow: list[dict[str, Any]]) -> list[str]:
    """Return the names of the flow's own steps, without the checks added after the writes."""
    added = (BATCH_CHECK_ROUTER_NAME, "Report the failed records of ", "Remember ")
    return [name_of(module) for module in modules(flow)
            if not name_of(module).startswith(added)]


def router(blueprint: dict[str, Any], name: str = ROUTER) -> dict[str, Any]:
    return next(module for module in modules(blueprint["flow"]) if name_of(module) == name)


def route_index(module: dict[str, Any], name: str) -> int:
    """Return the index of the router's route whose filter is named ``name``."""
    names = [route["flow"][0]["filter"]["name"] for route in module["routes"]]
    assert name in names, names
    return names.index(name)


def neither_index(module: dict[str, Any]) -> int:
    """Return the index of the one route that writes no contact.

    That route starts with the deal, whose own filter (the pipeline id check) names it.
    """
    found = [index for index, route in enumerate(module["routes"])
             if "Create or update the contact" not in map(name_of, modules(route["flow"]))]
    assert len(found) == 1
    return found[0]


class Bundles(dict[str, Any]):
    """Module outputs by module id; a module the test gives no output has an empty one."""

    def __missing__(self, key: str) -> Any:
        return {}


def passes(condition_filter: Mapping[str, Any], bundles: Mapping[str, Any]) -> bool:
    """Return whether a Make filter lets ``bundles`` through (text, boolean and date operators).

    A dedupe check the test gives no output reads as "not seen before".
    """
    known = Bundles(bundles)

    def holds(condition: Mapping[str, str]) -> bool:
        value = evaluate(condition["a"], known)
        if condition["o"] == "boolean:equal":
            return str(bool(value) and value not in ("false", "0")).lower() == condition["b"]
        text = str(value if value is not None else "")
        if condition["o"] == "date:less":
            other = str(evaluate(condition["b"], known) or "")
            return bool(text and other) and (
                datetime.fromisoformat(text) < datetime.fromisoformat(other))
        if condition["o"] == "text:equal":
            return text == condition["b"]
        assert condition["o"] == "text:notequal", condition["o"]
        return text != condition["b"]

    return any(all(holds(item) for item in group) for group in condition_filter["conditions"])


def taken_routes(module: dict[str, Any], bundles: Mapping[str, Any]) -> list[int]:
    return [index for index, route in enumerate(module["routes"])
            if passes(route["flow"][0]["filter"], bundles)]


def body_of(module: dict[str, Any], bundles: Mapping[str, Any]) -> Any:
    return json.loads(evaluate(module["mapper"]["jsonStringBodyContent"], bundles))


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
def test_phone_only_contact_body_no_email(preset: str) -> None:
    routes = router(blueprints(preset)["order-sync"])
    taken = taken_routes(routes, PHONE_ONLY)
    assert taken == [route_index(routes, "Phone only: the body has no email key" + WON)]
    upsert = next(module for module in routes["routes"][taken[0]]["flow"]
                  if name_of(module) == "Create or update the contact")
    text = upsert["mapper"]["jsonStringBodyContent"]
    if preset == "shopify-growth":
        body = body_of(upsert, PHONE_ONLY)
        assert "email" not in body["inputs"][0]["properties"]
        assert body["inputs"][0]["idProperty"] == "ecom_phone_e164"
        assert body["inputs"][0]["id"] == "+966501234567"
    else:
        assert '"Email"' not in text
        assert '"duplicate_check_fields": ["Ecom_Customer_ID"]' in text


def test_email_route_keeps_email() -> None:
    routes = router(blueprints("shopify-growth")["order-sync"])
    bundles = {"1": {**PHONE_ONLY["1"], "customer": {"id": 9, "email": "A@B.SA",
                                                     "phone": "0501234567"}}}
    taken = taken_routes(routes, bundles)
    assert taken == [route_index(routes, "Email and phone" + WON)]
    upsert = routes["routes"][taken[0]]["flow"][0]
    properties = body_of(upsert, bundles)["inputs"][0]["properties"]
    assert properties["email"] == "a@b.sa"
    assert properties["ecom_phone_e164"] == "+966501234567"


EMAIL_ONLY = "Email only: the body has no phone key"


@pytest.mark.parametrize(("preset", "flow"), [("shopify-growth", "order-sync"),
                                              ("shopify-growth", "contact-sync"),
                                              ("jeddah-fashion-zoho", "order-sync")])
def test_email_only_contact_body_no_phone(preset: str, flow: str) -> None:
    routes = router(blueprints(preset)[flow])
    bundles = {"1": {**PHONE_ONLY["1"], "id": 9, "email": "A@B.SA", "phone": "",
                     "customer": {"id": 9, "email": "A@B.SA", "phone": ""}}}
    taken = taken_routes(routes, bundles)
    assert len(taken) == 1
    route = routes["routes"][taken[0]]
    assert route["flow"][0]["filter"]["name"] == (EMAIL_ONLY + WON if flow == "order-sync"
                                                  else EMAIL_ONLY)
    upsert = next(module for module in modules(route["flow"])
                  if name_of(module) == "Create or update the contact")
    body = body_of(upsert, bundles)
    if preset == "shopify-growth":
        properties = body["inputs"][0]["properties"]
        assert properties["email"] == "a@b.sa"
        assert "ecom_phone_e164" not in properties
        assert body["inputs"][0]["idProperty"] != "ecom_phone_e164"
    else:
        assert body["data"][0]["Email"] == "a@b.sa"
        assert "Mobile" not in body["data"][0]
        assert "Mobile" not in body["duplicate_check_fields"]


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_no_contact_order_still_writes_deal(case: str, preset: str,
                                            values: dict[str, Any]) -> None:
    routes = router(blueprints(preset, json.dumps(values))["order-sync"])
    # Two contact routes, for a won order and another, per email and phone case.
    assert len(routes["routes"]) == 7
    neither = routes["routes"][neither_index(routes)]
    names = [name_of(module) for module in modules(neither["flow"])]
    assert names[0] == "Create or update the deal"
    assert "Create or update the contact" not in names
    assert "Link the order to its contact" not in names
    deal = neither["flow"][0]
    assert "Contact_Name" not in deal["mapper"]["jsonStringBodyContent"]


def test_no_contact_takes_only_deal_route() -> None:
    routes = router(blueprints_with_ids("shopify-growth")["order-sync"])
    assert taken_routes(routes, NO_CONTACT) == [neither_index(routes)]


def test_contact_routes_keep_links() -> None:
    routes = router(blueprints("shopify-growth")["order-sync"])
    neither = neither_index(routes)
    for route in [route for index, route in enumerate(routes["routes"]) if index != neither]:
        names = [name_of(module) for module in modules(route["flow"])]
        assert "Link the order to its contact" in names
    zoho = router(blueprints("jeddah-fashion-zoho")["order-sync"])
    deal = next(module for module in zoho["routes"][1]["flow"]
                if name_of(module) == "Create or update the deal")
    assert '"Contact_Name": {"id": "{{get(first(' in deal["mapper"]["jsonStringBodyContent"]


def test_contact_only_flow_has_no_deal_route() -> None:
    routes = router(blueprints("shopify-growth")["contact-sync"])
    names = [route["flow"][0]["filter"]["name"] for route in routes["routes"]]
    assert names == ["Email and phone", "Phone only: the body has no email key", EMAIL_ONLY]


def placeholders(text: str) -> list[str]:
    """Return the ``<...>`` placeholders left in a body outside its formulas."""
    outside = re.sub(r"\{\{.*?\}\}(?!\})", "", text, flags=re.S)
    return re.findall(r"<[^<>]*>", outside)


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_no_placeholder_left_in_requests(case: str, preset: str, values: dict[str, Any]) -> None:
    for stem, blueprint in blueprints(preset, json.dumps(values)).items():
        for module in modules(blueprint["flow"]):
            mapper = module.get("mapper") or {}
            if module["module"] != "http:MakeRequest":
                continue
            texts = [str(mapper.get("jsonStringBodyContent", "")), str(mapper["url"]),
                     *(str(item["value"]) for item in mapper["queryParameters"])]
            for text in texts:
                assert placeholders(text) == [], f"{stem}: {name_of(module)}"


CONSENT_ROUTER = "One route per channel with a consent state"
# A Shopify customers/update body: email consent only, no SMS state and no WhatsApp metafield.
EMAIL_CONSENT_ONLY = {"1": {"id": 7, "email": "A@B.SA", "phone": "",
                            "email_marketing_consent": {"state": "unsubscribed"}}}


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
def test_consent_without_state_left_out(preset: str) -> None:
    routes = router(blueprints(preset)["consent-sync"], CONSENT_ROUTER)
    assert taken_routes(routes, EMAIL_CONSENT_ONLY) == [1]
    assert routes["routes"][1]["flow"][0]["filter"]["name"] == (
        "Email state sent, with an email, no phone")
    text = json.dumps(routes["routes"][1]["flow"])
    for field in ("Ecom_WhatsApp_Opt_In", "Ecom_SMS_Opt_In", "ecom_whatsapp_consent",
                  "ecom_sms_consent"):
        assert field not in text


def consent_write(route: dict[str, Any]) -> dict[str, Any]:
    """Return the route's consent write: on Zoho, the update of a contact found by its key."""
    return next(module for module in modules(route["flow"])
                if name_of(module) == "Write the consent record to the CRM")


def test_zoho_consent_route_writes_opt_out() -> None:
    routes = router(blueprints("jeddah-fashion-zoho")["consent-sync"], CONSENT_ROUTER)
    text = consent_write(routes["routes"][0])["mapper"]["jsonStringBodyContent"]
    assert ('"Email_Opt_Out": {{if(first(map(12.data.data; "Email_Opt_Out")); true; '
            'if(lower(trim(toString(1.email_marketing_consent.state)))') in text
    assert "Ecom_WhatsApp_Opt_In" not in text


@pytest.mark.parametrize(("in_zoho", "state", "expected"), [
    (True, "subscribed", True),  # the opt-out made in Zoho wins
    (False, "subscribed", False),
    (None, "subscribed", False),  # Zoho returned no such field
    (False, "unsubscribed", True),
    (True, "unsubscribed", True),
])
def test_zoho_opt_out_kept_on_update(in_zoho: bool | None, state: str, expected: bool) -> None:
    flow = zoho_consent_route()
    search = flow[0]
    query = {item["name"]: item["value"] for item in search["mapper"]["queryParameters"]}
    assert query["fields"] == "id,Email_Opt_Out"
    contact: dict[str, Any] = {"id": "4100"}
    if in_zoho is not None:
        contact["Email_Opt_Out"] = in_zoho
    bundles = Bundles({"1": {**EMAIL_CONSENT_ONLY["1"], "email_marketing_consent": {
        "state": state}}, str(search["id"]): {"data": {"data": [contact]}}})
    update = next(module for module in modules(flow)
                  if name_of(module) == "Write the consent record to the CRM")
    assert body_of(update, bundles)["data"][0]["Email_Opt_Out"] is expected
    create = next(module for module in modules(flow)
                  if name_of(module) == "Write the consent record to the CRM (new contact)")
    # A new contact has no Zoho side yet, so the store's state is written as it is.
    assert body_of(create, bundles)["data"][0]["Email_Opt_Out"] is (state != "subscribed")


@pytest.mark.parametrize(("state", "expected"), [("subscribed", "SUBSCRIBED"),
                                                 ("unsubscribed", "NOT_SUBSCRIBED")])
def test_hubspot_status_from_consent_state(state: str, expected: str) -> None:
    blueprint = blueprints("shopify-growth")["consent-sync"]
    settings = next(module for module in modules(blueprint["flow"])
                    if module["module"] == "datastore:GetRecord")
    assert settings["mapper"]["key"] == "hubspot"
    routes = router(blueprint, CONSENT_ROUTER)
    status = next(module for module in modules(routes["routes"][0]["flow"])
                  if name_of(module) == "Set the email subscription status")
    bundles = {"1": {**EMAIL_CONSENT_ONLY["1"], "email_marketing_consent": {"state": state}},
               str(settings["id"]): {"email_subscription_id": "12345"}}
    body = body_of(status, bundles)
    assert body["statusState"] == expected
    assert body["subscriptionId"] == "12345"
    assert body["channel"] == "EMAIL"
    assert evaluate(status["mapper"]["url"], bundles).endswith("/statuses/a@b.sa")


def test_hubspot_no_email_route_skips_email_status() -> None:
    routes = router(blueprints("shopify-growth")["consent-sync"], CONSENT_ROUTER)
    for route in routes["routes"][2:4]:
        assert route["flow"][0]["filter"]["name"].startswith("Email state sent, no email")
        assert step_names(route["flow"]) == ["Write the consent record to the CRM"]


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
def test_consent_no_phone_body_has_no_phone_key(preset: str) -> None:
    routes = router(blueprints(preset)["consent-sync"], CONSENT_ROUTER)
    write = consent_write(routes["routes"][1])
    text = write["mapper"]["jsonStringBodyContent"]
    for key in ("ecom_phone_e164", "phone", "Mobile", "Phone"):
        assert f'"{key}":' not in text
    if preset == "shopify-growth":
        properties = body_of(write, EMAIL_CONSENT_ONLY)["inputs"][0]["properties"]
        assert properties["email"] == "a@b.sa"
    else:
        assert '"Email": "{{' in text


def test_consent_sms_route_without_phone_skips_status() -> None:
    routes = router(blueprints("shopify-growth")["consent-sync"], CONSENT_ROUTER)
    names = {route["flow"][0]["filter"]["name"]: step_names(route["flow"])
             for route in routes["routes"]}
    assert names["SMS state sent, with an email, no phone"] == [
        "Write the consent record to the CRM"]
    assert names["SMS state sent, with an email, a phone"][-1] == (
        "Set the sms subscription status")


def zoho_order_route(route: int = 0) -> list[dict[str, Any]]:
    routes = router(blueprints("jeddah-fashion-zoho")["order-sync"])
    return list(modules(routes["routes"][route]["flow"]))


def test_zoho_sales_order_real_subform() -> None:
    found = zoho_order_route()
    names = [name_of(module) for module in found]
    assert "Create or update the line items" not in names
    aggregate = next(module for module in found if module["module"] == "builtin:BasicAggregator")
    feeder = next(module for module in found if name_of(module) == "Each of line_items")
    product = next(module for module in found
                   if name_of(module) == "Create or update the product")
    order = next(module for module in found
                 if name_of(module) == "Create the sales order with its lines")
    assert aggregate["parameters"] == {"feeder": feeder["id"]}
    assert names.index("Create or update the product") < names.index(
        "Create the sales order with its lines")
    item = {"sku": "OUD-50", "variant_id": 11, "name": "Oud 50 ml", "quantity": 2,
            "price": "150.5"}
    product_body = body_of(product, {str(feeder["id"]): item})
    assert product_body["data"][0]["Product_Code"] == "OUD-50"
    assert product_body["data"][0]["Unit_Price"] == 150.5
    assert product_body["data"][0]["Ecom_Product_ID"] == "11"
    assert product_body["duplicate_check_fields"] == ["Ecom_Product_ID"]
    # The evaluator has no get(), so the product id's formula reads a plain field here.
    product_id = f'get(first({product["id"]}.data.data); "details.id")'
    assert product_id in aggregate["mapper"]["line"]
    bundles = {str(feeder["id"]): item, str(product["id"]): {"id": "4001"}}
    line = evaluate(aggregate["mapper"]["line"].replace(product_id, f'{product["id"]}.id'),
                    bundles)
    assert json.loads(line) == {"product": {"id": "4001"}, "quantity": 2, "list_price": 150.5}
    text = order["mapper"]["jsonStringBodyContent"]
    assert "Product_Details[]" not in text
    assert order["mapper"]["url"].endswith("/crm/v8/Sales_Orders")
    row_list = re.search(r'"Product_Details": (\{\{.*?\}\})[,}]', text)
    assert row_list is not None
    filled = evaluate(row_list.group(1), {str(aggregate["id"]): {"array": [{"line": line}] * 2}})
    assert json.loads(filled) == [{"product": {"id": "4001"}, "quantity": 2,
                                   "list_price": 150.5}] * 2
    assert '"Deal_Name": {"id": "{{get(first(' in text
    assert '"Subject": "{{' in text


def test_woocommerce_consent_route_reads_meta_state() -> None:
    routes = router(blueprints("woo-startup", json.dumps({"path": "ipaas", "crm": "hubspot"}))
                    ["consent-sync"], CONSENT_ROUTER)
    customer = {"id": 42, "email": "a@b.sa", "billing": {"phone": "0501234567"},
                "meta_data": [{"key": "_rabt_email_opt_in", "value": "yes"}]}
    taken = taken_routes(routes, {"1": customer})
    assert [routes["routes"][index]["flow"][0]["filter"]["name"] for index in taken] == [
        "Email state sent, with an email, a phone"]
    assert taken_routes(routes, {"1": {**customer, "meta_data": []}}) == []


ZOHO_FOUND = "Contact found in Zoho"
ZOHO_NEW = "Contact not in Zoho: create it with the placeholder last name"


def zoho_consent_route() -> list[dict[str, Any]]:
    """Return the Zoho consent route for an email state with an email and no phone."""
    routes = router(blueprints("jeddah-fashion-zoho")["consent-sync"], CONSENT_ROUTER)
    flow: list[dict[str, Any]] = routes["routes"][1]["flow"]
    return flow


def test_zoho_consent_updates_found_contact() -> None:
    from tests.test_ipaas_make_outcomes import run

    flow = zoho_consent_route()
    search = flow[0]
    assert search["mapper"]["method"] == "get"
    assert search["mapper"]["url"].endswith("/crm/v8/Contacts/search")
    query = {item["name"]: item["value"] for item in search["mapper"]["queryParameters"]}
    assert evaluate(query["criteria"], EMAIL_CONSENT_ONLY) == "(Ecom_Customer_ID:equals:7)"
    bundles = {**EMAIL_CONSENT_ONLY, str(search["id"]): {"data": {"data": [{"id": "4100"}]}}}
    ran = run(flow, bundles)
    assert "Write the consent record to the CRM" in ran
    assert "Write the consent record to the CRM (new contact)" not in ran
    assert ran[-1] == "Remember the event (data store processed_events)"
    update = next(module for module in modules(flow)
                  if name_of(module) == "Write the consent record to the CRM")
    assert update["filter"]["name"] == ZOHO_FOUND
    assert update["mapper"]["method"] == "put"
    assert evaluate(update["mapper"]["url"], Bundles(bundles)).endswith("/crm/v8/Contacts/4100")
    text = update["mapper"]["jsonStringBodyContent"]
    assert '"Email_Opt_Out": {{if(first(map(' in text
    assert '"Ecom_Customer_ID": "{{' in text
    assert "Last_Name" not in text
    assert "duplicate_check_fields" not in text
    assert "/upsert" not in json.dumps(flow)


def test_zoho_consent_creates_unknown_contact() -> None:
    from tests.test_ipaas_make_outcomes import run

    flow = zoho_consent_route()
    search = flow[0]
    # Zoho's search returns 204 with no body when no record matches.
    bundles = {**EMAIL_CONSENT_ONLY, str(search["id"]): {"data": ""}}
    ran = run(flow, bundles)
    assert "Write the consent record to the CRM" not in ran
    assert ran[-2:] == ["Write the consent record to the CRM (new contact)",
                        "Remember the event (data store processed_events)"]
    create = next(module for module in modules(flow)
                  if name_of(module) == "Write the consent record to the CRM (new contact)")
    assert create["filter"]["name"] == ZOHO_NEW
    assert create["mapper"]["method"] == "post"
    assert create["mapper"]["url"].endswith("/crm/v8/Contacts")
    text = create["mapper"]["jsonStringBodyContent"]
    assert text.endswith('"Last_Name": "-"}], "trigger": ["workflow"]}')
    assert '"Email_Opt_Out": {{if(lower(trim(toString(1.email_marketing_consent.state)))' in text
    assert '"Email": "{{' in text
    assert "duplicate_check_fields" not in text


def test_hubspot_consent_still_upserts() -> None:
    routes = router(blueprints("shopify-growth")["consent-sync"], CONSENT_ROUTER)
    write = consent_write(routes["routes"][0])
    assert write["mapper"]["url"].endswith("/crm/v3/objects/contacts/batch/upsert")


LAST_ORDER_AT = {"shopify-growth": "ecom_last_order_at",
                 "jeddah-fashion-zoho": "Ecom_Last_Order_At"}


def contact_properties(preset: str, bundles: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return the name of the contact route ``bundles`` take and the contact it writes."""
    routes = router(blueprints(preset)["order-sync"])
    taken = taken_routes(routes, bundles)
    assert len(taken) == 1
    route = routes["routes"][taken[0]]
    upsert = next(module for module in modules(route["flow"])
                  if name_of(module) == "Create or update the contact")
    body = body_of(upsert, bundles)
    record = body["inputs"][0]["properties"] if preset == "shopify-growth" else body["data"][0]
    return route["flow"][0]["filter"]["name"], record


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
def test_paid_order_sets_last_order_time(preset: str) -> None:
    name, record = contact_properties(preset, PHONE_ONLY)
    assert name.endswith(WON)
    assert record[LAST_ORDER_AT[preset]] == "2026-03-01T10:00:00+03:00"


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
@pytest.mark.parametrize("status", [{"financial_status": "pending"},
                                    {"financial_status": "voided"},
                                    {"cancelled_at": "2026-03-02T10:00:00+03:00"}])
def test_unpaid_order_leaves_last_order_time(preset: str, status: dict[str, str]) -> None:
    bundles = {"1": {**PHONE_ONLY["1"], **status}}
    name, record = contact_properties(preset, bundles)
    assert name.endswith(NOT_WON)
    assert LAST_ORDER_AT[preset] not in record
    assert record  # the contact itself is still written
