"""Make blueprints: schema, confirmed module ids, no secrets, and the wait split."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from generator.ipaas import make
from generator.ipaas.flows import build_flows
from generator.resources import load_data, load_schema
from tests.ipaas_cases import IPAAS_CASES, load_case

CRM_CASES = [case for case in IPAAS_CASES if case[0] != "shopify-postgres"]


def blueprints_for(preset: str, values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    answers, plan, spec = load_case(preset, values)
    return make.blueprints(build_flows(answers, plan, spec))


def modules(flow: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for module in flow:
        yield module
        for route in module.get("routes", []):
            yield from modules(route["flow"])
        yield from modules(module.get("onerror", []))


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_make_blueprints_match_schema(case: str, preset: str, values: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(load_schema("make-blueprint"))
    for stem, blueprint in blueprints_for(preset, values).items():
        errors = [error.message for error in validator.iter_errors(blueprint)]
        assert errors == [], stem


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_make_modules_all_confirmed(case: str, preset: str, values: dict[str, Any]) -> None:
    confirmed = load_data("ipaas/make-modules")["modules"]
    for stem, blueprint in blueprints_for(preset, values).items():
        for module in modules(blueprint["flow"]):
            assert module["module"] in confirmed, f"{stem}: {module['module']}"
            assert module["version"] == confirmed[module["module"]]["version"]


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_make_module_ids_unique(case: str, preset: str, values: dict[str, Any]) -> None:
    for stem, blueprint in blueprints_for(preset, values).items():
        ids = [module["id"] for module in modules(blueprint["flow"])]
        assert len(ids) == len(set(ids)), stem


def test_make_module_sources_recorded() -> None:
    data = load_data("ipaas/make-modules")
    assert data["source_repository"] == "integromat/make-blueprints"
    for name, entry in data["modules"].items():
        assert entry["use"], name
        assert entry["confirmed_in"] or entry.get("confidence") == "secondary", name


def test_make_no_connection_or_secret() -> None:
    text = json.dumps(blueprints_for("shopify-growth", {}))
    assert "__IMTCONN__" not in text
    assert "__IMTHOOK__" not in text
    assert "HUBSPOT-PRIVATE-APP-TOKEN" in text


def runner_routes(blueprint: dict[str, Any]) -> list[dict[str, Any]]:
    router = next(module for module in modules(blueprint["flow"])
                  if module["metadata"]["designer"]["name"] == "One route per due day")
    routes: list[dict[str, Any]] = router["routes"]
    return routes


def test_make_abandoned_split_into_runner() -> None:
    blueprints = blueprints_for("shopify-growth", {})
    capture = [module["module"] for module in blueprints["abandoned-checkout"]["flow"]]
    runner = blueprints["abandoned-checkout-runner"]
    assert capture[0] == "gateway:CustomWebHook"
    first_step = runner_routes(runner)[0]["flow"]
    assert [module["module"] for module in first_step[:4]] == [
        "datastore:GetRecord", "http:MakeRequest", "datastore:AddRecord", "builtin:BasicFeeder"]
    assert runner["metadata"]["instant"] is False


def test_make_runner_searches_due_checkouts() -> None:
    runner = blueprints_for("shopify-growth", {})["abandoned-checkout-runner"]
    page, search = (module["mapper"] for module in runner_routes(runner)[0]["flow"][:2])
    text = search["jsonStringBodyContent"]
    assert search["url"] == "https://api.hubapi.com/crm/v3/objects/contacts/search"
    assert '"propertyName": "ecom_last_checkout_at"' in text
    # From the last run's mark (or 15 minutes ago on the first run), two hours back,
    # unless the route's page record keeps the start of a search with more pages.
    assert page["key"] == "abandoned-checkout-runner:wait_delay"
    assert ('"value": "{{if(4.after = emptystring; formatDate(addMinutes(ifempty(1.since; '
            'addMinutes(now; -15)); -120); "YYYY-MM-DDTHH:mm:ssZ"); 4.since)}}"') in text
    assert '"highValue": "{{formatDate(addMinutes(now; -120); "YYYY-MM-DDTHH:mm:ssZ")}}"' in text
    assert '"ecom_phone_e164"' in text  # the sends read the phone from the found contact


def test_make_runner_step_two_waits_offset() -> None:
    runner = blueprints_for("shopify-growth", {})["abandoned-checkout-runner"]
    first, second = runner_routes(runner)
    names = [module["metadata"]["designer"]["name"] for module in modules(first["flow"])]
    assert "Send step 2 by whatsapp" not in names
    page = second["flow"][0]["id"]
    text = second["flow"][1]["mapper"]["jsonStringBodyContent"]
    # Two hours' delay, then step 2's offset of 20 hours, from the last run's mark.
    assert (f'"value": "{{{{if({page}.after = emptystring; formatDate(addMinutes(ifempty('
            '1.since; addMinutes(now; -15)); -1320); "YYYY-MM-DDTHH:mm:ssZ"); '
            f'{page}.since)}}}}"') in text
    assert '"highValue": "{{formatDate(addMinutes(now; -1320); "YYYY-MM-DDTHH:mm:ssZ")}}"' in text
    names = {module["metadata"]["designer"]["name"]: module for module in modules(second["flow"])}
    read = names["Read the current whatsapp subscription status"]
    assert read["filter"]["name"] == (
        "Not sent for this checkout; No order since the checkout; WhatsApp address known")
    assert names["Send step 2 by whatsapp"]["filter"]["name"] == "WhatsApp consent granted"
    feeder = second["flow"][3]["id"]
    no_order, after_checkout = read["filter"]["conditions"][:2]
    assert {"a": f"{{{{{feeder}.properties.ecom_last_order_at}}}}", "o": "text:equal",
            "b": ""} in no_order
    assert {"a": f"{{{{{feeder}.properties.ecom_last_order_at}}}}", "o": "date:less",
            "b": f"{{{{{feeder}.properties.ecom_last_checkout_at}}}}"} in after_checkout


def test_make_dedupe_checks_before_writes() -> None:
    flow = blueprints_for("shopify-growth", {})["order-sync"]["flow"]
    assert [module["module"] for module in flow[:3]] == [
        "gateway:CustomWebHook", "datastore:ExistRecord", "builtin:BasicRouter"]
    # Make takes no filter on a router, so each route carries the dedupe condition.
    for route in flow[2]["routes"]:
        conditions = route["flow"][0]["filter"]["conditions"]
        for group in conditions:
            assert {"a": "{{2.exist}}", "o": "boolean:equal", "b": "false"} in group


def test_make_calls_retry_with_break() -> None:
    flow = blueprints_for("shopify-growth", {})["contact-sync"]["flow"]
    upsert = next(module for module in modules(flow) if module["module"] == "http:MakeRequest")
    handler = [module["module"] for module in upsert["onerror"]]
    assert handler == ["http:MakeRequest", "builtin:Break"]
    assert upsert["onerror"][1]["mapper"] == {"retry": True, "count": 3, "interval": 15}


def test_make_contact_body_mapping() -> None:
    from tests.test_ipaas_make_iml import evaluate

    flow = blueprints_for("shopify-growth", {})["contact-sync"]["flow"]
    upsert = next(module for module in modules(flow) if module["module"] == "http:MakeRequest")
    text = upsert["mapper"]["jsonStringBodyContent"]
    # A customers/* body is the customer itself, so the paths start at the top.
    assert "lower(trim(1.email))" in text
    assert "1.customer." not in text
    body = json.loads(evaluate(text, {"1": {"id": 7, "email": " Noura@Example.SA "}}))
    assert body["inputs"][0]["properties"]["email"] == "noura@example.sa"
    assert body["inputs"][0]["id"] == "7"
    assert upsert["filter"]["name"] == "Email and phone"


def zoho_modules(stem: str) -> list[dict[str, Any]]:
    return list(modules(blueprints_for("jeddah-fashion-zoho", {})[stem]["flow"]))


def test_make_zoho_base_url_saudi() -> None:
    upsert = next(module for module in zoho_modules("contact-sync")
                  if module["metadata"]["designer"]["name"] == "Create or update the contact")
    token = next(module for module in zoho_modules("contact-sync")
                 if module["metadata"]["designer"]["name"].startswith("Read the current Zoho"))
    assert upsert["mapper"]["url"] == ("{{ifempty(" + f"{token['id']}" + '.api_domain; '
                                       '"https://www.zohoapis.sa")}}/crm/v8/Contacts/upsert')
    assert upsert["mapper"]["headers"] == [
        {"name": "Authorization", "value": "Zoho-oauthtoken {{" + f"{token['id']}" +
         ".access_token}}"}]


@pytest.mark.parametrize("stem", ["contact-sync", "order-sync", "post-purchase",
                                  "abandoned-checkout-runner", "ticket-sync"])
def test_make_zoho_token_refreshed(stem: str) -> None:
    flow = blueprints_for("jeddah-fashion-zoho", {})[stem]["flow"]
    start = 1 if flow[0]["module"] == "gateway:CustomWebHook" else 0
    cached, router = flow[start], flow[start + 1]
    assert cached["module"] == "datastore:GetRecord"
    assert cached["mapper"] == {"key": "access-token", "returnWrapped": False}
    refresh, current = router["routes"]
    client, request, save = refresh["flow"]
    assert client["filter"]["conditions"][1][0] == {
        "a": "{{" + f"{cached['id']}.expires_at" + "}}", "o": "date:less",
        "b": "{{addMinutes(now; 5)}}"}
    accounts = "{{" + f"{client['id']}.accounts_server" + "}}"
    assert request["mapper"]["url"] == f"{accounts}/oauth/v2/token"
    query = {item["name"]: item["value"] for item in request["mapper"]["queryParameters"]}
    assert query["grant_type"] == "refresh_token"
    assert query["refresh_token"] == "{{" + f"{client['id']}.refresh_token" + "}}"
    assert save["mapper"]["overwrite"] is True
    assert save["mapper"]["data"]["expires_at"] == (
        "{{" + f"addSeconds(now; {request['id']}.data.expires_in)" + "}}")
    assert current["flow"][0]["module"] == "datastore:GetRecord"
    assert current["flow"][0]["mapper"]["key"] == "access-token"


def test_make_zoho_no_fixed_token() -> None:
    text = json.dumps(blueprints_for("jeddah-fashion-zoho", {}))
    assert "ZOHO-ACCESS-TOKEN" not in text
    assert "zohoapis.com" not in text


def test_make_postgres_crm_gets_no_blueprints() -> None:
    answers, plan, spec = load_case("shopify-growth", {"crm": "custom", "path": "ipaas"})
    files = make.files(answers, plan, spec, {})
    assert list(files) == ["schemas/make-blueprint.schema.json"]


def test_make_files_paths() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    files = make.files(answers, plan, spec, {})
    assert "workflows/make/order-sync.blueprint.json" in files
    assert "workflows/make/abandoned-checkout-runner.blueprint.json" in files
    assert json.loads(files["workflows/make/order-sync.blueprint.json"])["name"]
