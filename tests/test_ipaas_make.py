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


def test_make_abandoned_split_into_runner() -> None:
    blueprints = blueprints_for("shopify-growth", {})
    capture = [module["module"] for module in blueprints["abandoned-checkout"]["flow"]]
    runner = blueprints["abandoned-checkout-runner"]
    assert capture[0] == "gateway:CustomWebHook"
    assert runner["flow"][0]["module"] == "http:MakeRequest"
    assert runner["flow"][1]["module"] == "builtin:BasicFeeder"
    assert runner["metadata"]["instant"] is False


def test_make_runner_searches_due_checkouts() -> None:
    runner = blueprints_for("shopify-growth", {})["abandoned-checkout-runner"]
    search = runner["flow"][0]["mapper"]
    body = json.loads(search["jsonStringBodyContent"])
    assert search["url"] == "https://api.hubapi.com/crm/v3/objects/contacts/search"
    flt = body["filterGroups"][0]["filters"][0]
    assert flt["propertyName"] == "ecom_last_checkout_at"
    assert flt["value"] == '{{formatDate(addMinutes(now; -135); "YYYY-MM-DDTHH:mm:ssZ")}}'
    assert flt["highValue"] == '{{formatDate(addMinutes(now; -120); "YYYY-MM-DDTHH:mm:ssZ")}}'


def test_make_dedupe_filter_on_add() -> None:
    flow = blueprints_for("shopify-growth", {})["order-sync"]["flow"]
    assert [module["module"] for module in flow[:3]] == [
        "gateway:CustomWebHook", "datastore:ExistRecord", "datastore:AddRecord"]
    condition = flow[2]["filter"]["conditions"][0][0]
    assert condition == {"a": "{{2.exist}}", "o": "boolean:equal", "b": "false"}


def test_make_calls_retry_with_break() -> None:
    flow = blueprints_for("shopify-growth", {})["contact-sync"]["flow"]
    upsert = next(module for module in flow if module["module"] == "http:MakeRequest")
    handler = [module["module"] for module in upsert["onerror"]]
    assert handler == ["http:MakeRequest", "builtin:Break"]
    assert upsert["onerror"][1]["mapper"] == {"retry": True, "count": 3, "interval": 15}


def test_make_contact_body_mapping() -> None:
    flow = blueprints_for("shopify-growth", {})["contact-sync"]["flow"]
    upsert = next(module for module in flow if module["module"] == "http:MakeRequest")
    body = json.loads(upsert["mapper"]["jsonStringBodyContent"])
    properties = body["inputs"][0]["properties"]
    assert properties["email"] == "{{lower(trim(ifempty(1.customer.email; 1.email)))}}"
    assert body["inputs"][0]["id"] == "{{1.customer.id}}"
    assert upsert["filter"]["name"] == "Continue only with an email or a phone"


def test_make_zoho_base_url_saudi() -> None:
    flow = blueprints_for("jeddah-fashion-zoho", {})["contact-sync"]["flow"]
    upsert = next(module for module in flow if module["module"] == "http:MakeRequest")
    assert upsert["mapper"]["url"] == "https://www.zohoapis.sa/crm/v8/Contacts/upsert"


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
