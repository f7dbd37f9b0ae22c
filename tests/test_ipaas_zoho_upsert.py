"""Zoho upserts of the iPaaS workflows, sent to the Zoho stand-in seeded from the desired state."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from generator.ipaas import make, n8n
from generator.ipaas.flows import build_flows
from generator.spec import build_desired_state
from generator.standins import zoho
from tests.ipaas_cases import load_case
from tests.servers import serve
from tests.test_ipaas_make_records import (
    PHONE_ONLY,
    body_of,
    modules,
    name_of,
    router,
    taken_routes,
)

TOKEN = "test-token-1"
BACKSLASH_TEXT = "\\"
BACKSLASH = re.escape("\\")
# A Make request: its URL names the module; the body's check list follows.
MAKE_CHECKS = re.compile(r'/crm/v8/(\w+)/upsert.*?"duplicate_check_fields' + BACKSLASH
                         + r'*":\s*(\[[^\]]*\])')
# An n8n batch node: the check list, then the mapping entity the node writes.
N8N_CHECKS = re.compile(r'duplicate_check_fields' + BACKSLASH + r'*":\s*(\[[^\]]*\])'
                        r'[^\]]{0,80}?"entity' + BACKSLASH + r'*":\s*' + BACKSLASH + r'*"(\w+)')


def zoho_case() -> tuple[Any, dict[str, Any]]:
    answers, plan, spec = load_case("jeddah-fashion-zoho", {})
    return build_flows(answers, plan, spec), build_desired_state(spec, plan)


def n8n_checks() -> set[tuple[str, tuple[str, ...]]]:
    answers, plan, spec = load_case("jeddah-fashion-zoho", {})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    objects = {name: str(entity["object"]).split(".")[0]
               for name, entity in spec["mapping"]["entities"].items()}
    found = set()
    for content in files.values():
        for match in N8N_CHECKS.finditer(content.decode()):
            fields = json.loads(match.group(1).replace(BACKSLASH_TEXT, ""))
            found.add((objects[match.group(2)], tuple(fields)))
    return found


@pytest.fixture(scope="module")
def zoho_url() -> Iterator[str]:
    _, desired = zoho_case()
    app = zoho.create_seeded_app(
        desired, zoho.ZohoStandinConfig(static_access_tokens=frozenset({TOKEN})))
    with serve(app) as base_url:
        yield base_url


def upsert(base_url: str, module: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{base_url}/crm/v8/{module}/upsert", json=body, timeout=10,
                          headers={"Authorization": f"Zoho-oauthtoken {TOKEN}"})
    return {"status": response.status_code, **response.json()}


def check_lists() -> set[tuple[str, tuple[str, ...]]]:
    """Return each (module, duplicate_check_fields) pair the Make and n8n workflows send."""
    project, _ = zoho_case()
    found = n8n_checks()
    for blueprint in make.blueprints(project).values():
        for match in MAKE_CHECKS.finditer(json.dumps(blueprint)):
            fields = json.loads(match.group(2).replace(BACKSLASH_TEXT, ""))
            found.add((match.group(1), tuple(fields)))
    return found


def test_contact_checks_leave_out_mobile() -> None:
    found = check_lists()
    contacts = {fields for module, fields in found if module == "Contacts"}
    assert ("Ecom_Customer_ID", "Email") in contacts
    assert all("Mobile" not in fields for fields in contacts)


def test_every_check_list_accepted(zoho_url: str) -> None:
    found = check_lists()
    assert ("Products", ("Ecom_Product_ID",)) in found
    assert all(fields != ("Product_Code",) for _, fields in found)
    for module, fields in sorted(found):
        answer = upsert(zoho_url, module, {"data": [{}], "duplicate_check_fields": list(fields)})
        problem = answer.get("details", {}).get("json_path", "")
        assert "duplicate_check_fields" not in problem, (module, fields, answer)


def test_make_line_product_written(zoho_url: str) -> None:
    project, _ = zoho_case()
    flow = make.blueprints(project)["order-sync"]["flow"]
    feeder = next(item for item in modules(flow) if item["module"] == "builtin:BasicFeeder")
    module = next(item for item in modules(flow) if name_of(item) == "Create or update the product")
    line = {"sku": "DRESS-RED-M", "variant_id": 44001, "title": "test-dress", "quantity": 2,
            "price": "250.00"}
    body = body_of(module, {"1": {"id": 5001, "line_items": [line]}, str(feeder["id"]): line})
    assert body["duplicate_check_fields"] == ["Ecom_Product_ID"]
    assert body["data"][0]["Ecom_Product_ID"] == "44001"
    assert body["data"][0]["Product_Code"] == "DRESS-RED-M"
    first = upsert(zoho_url, "Products", body)
    assert first["data"][0]["code"] == "SUCCESS", first
    assert first["data"][0]["action"] == "insert"
    second = upsert(zoho_url, "Products", body)
    assert second["data"][0]["action"] == "update", second
    assert second["data"][0]["details"]["id"] == first["data"][0]["details"]["id"]


def test_phone_only_body_written(zoho_url: str) -> None:
    project, _ = zoho_case()
    routes = router(make.blueprints(project)["order-sync"])
    # One route runs: the phone-only route, in its variant for an order that is not won.
    taken = taken_routes(routes, PHONE_ONLY)
    assert len(taken) == 1
    module = next(item for item in routes["routes"][taken[0]]["flow"]
                  if name_of(item) == "Create or update the contact")
    order = {**PHONE_ONLY["1"], "created_at": "2026-01-05T10:00:00+03:00",
             "processed_at": "2026-01-05T10:00:00+03:00"}
    body = body_of(module, {"1": order})
    assert body["duplicate_check_fields"] == ["Ecom_Customer_ID"]
    body["data"][0]["Last_Name"] = "test-customer"
    answer = upsert(zoho_url, "Contacts", body)
    assert answer["data"][0]["code"] == "SUCCESS", answer
