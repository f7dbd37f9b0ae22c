"""The HubSpot stand-in under a real uvicorn server on 127.0.0.1, driven with httpx."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from generator.standins.hubspot import (
    HubSpotStandinConfig,
    create_app,
    create_seeded_app,
    main,
    seed_from_desired_state,
)
from tests.servers import serve
from tests.test_desired_state import state_for

TOKEN = "test-token-not-real"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STANDINS_DIR = Path(__file__).resolve().parent.parent / "generator" / "standins"


class FakeClock:
    """A clock that moves only when a test moves it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client_for(app: Any) -> Iterator[httpx.Client]:
    with serve(app) as base_url, httpx.Client(base_url=base_url, headers=AUTH,
                                               timeout=10) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hubspot(clock: FakeClock) -> Iterator[httpx.Client]:
    config = HubSpotStandinConfig(rate_limit_per_10s=0, search_rate_per_second=0, clock=clock)
    yield from client_for(create_app(config))


@pytest.fixture
def seeded(clock: FakeClock) -> Iterator[httpx.Client]:
    config = HubSpotStandinConfig(rate_limit_per_10s=0, search_rate_per_second=0, clock=clock)
    yield from client_for(create_seeded_app(state_for("hubspot", "headless"), config))


def upsert_contacts(client: httpx.Client, *emails: str, **properties: str) -> httpx.Response:
    inputs = [{"idProperty": "email", "id": email, "properties": dict(properties)}
              for email in emails]
    return client.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})


# Authentication


def test_auth_missing_token(hubspot: httpx.Client) -> None:
    response = hubspot.get("/crm/v3/properties/contacts", headers={"Authorization": ""})
    body = response.json()
    assert response.status_code == 401
    assert body["status"] == "error"
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")
    assert len(body["correlationId"]) == 36


def test_auth_unknown_token() -> None:
    config = HubSpotStandinConfig(accepted_tokens=frozenset({"other-token-not-real"}))
    for client in client_for(create_app(config)):
        response = client.get("/crm/v3/properties/contacts")
        assert response.status_code == 401
        assert response.json()["category"] == "INVALID_AUTHENTICATION"
        ok = client.get("/crm/v3/properties/contacts",
                        headers={"Authorization": "Bearer other-token-not-real"})
        assert ok.status_code == 200


# Objects


def test_upsert_new_then_existing(hubspot: httpx.Client) -> None:
    first = upsert_contacts(hubspot, "sara@example.com", firstname="Sara")
    second = upsert_contacts(hubspot, "SARA@example.com", city="Riyadh")
    assert first.status_code == 200
    assert first.json()["results"][0]["new"] is True
    assert second.status_code == 200
    assert second.json()["results"][0]["new"] is False
    assert second.json()["results"][0]["id"] == first.json()["results"][0]["id"]
    stored = hubspot.get("/_standin/records/contacts").json()
    assert stored["total"] == 1
    assert stored["results"][0]["properties"]["city"] == "Riyadh"
    assert stored["results"][0]["properties"]["firstname"] == "Sara"


def test_upsert_type_id_alias(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/objects/0-1/batch/upsert", json={"inputs": [
        {"idProperty": "email", "id": "a@example.com", "properties": {}}]})
    assert response.status_code == 200
    assert hubspot.get("/_standin/records/contacts").json()["total"] == 1


def test_batch_limit_100_and_101(hubspot: httpx.Client) -> None:
    emails = [f"user{number}@example.com" for number in range(101)]
    rejected = upsert_contacts(hubspot, *emails)
    accepted = upsert_contacts(hubspot, *emails[:100])
    body = rejected.json()
    assert rejected.status_code == 400
    assert body["category"] == "VALIDATION_ERROR"
    assert "100" in body["message"]
    assert accepted.status_code == 200
    assert len(accepted.json()["results"]) == 100


def test_batch_duplicate_ids(hubspot: httpx.Client) -> None:
    response = upsert_contacts(hubspot, "a@example.com", "a@example.com")
    assert response.status_code == 400
    assert response.json()["message"].startswith("Duplicate IDs found in batch input")
    assert response.json()["context"] == {"ids": ["a@example.com"]}


def test_create_conflict_names_existing_id(hubspot: httpx.Client) -> None:
    created = hubspot.post("/crm/v3/objects/contacts",
                           json={"properties": {"email": "sara@example.com"}})
    again = hubspot.post("/crm/v3/objects/contacts",
                         json={"properties": {"email": "Sara@Example.com"}})
    batch = hubspot.post("/crm/v3/objects/contacts/batch/create", json={"inputs": [
        {"properties": {"email": "new@example.com"}},
        {"properties": {"email": "sara@example.com"}}]})
    existing_id = created.json()["id"]
    assert created.status_code == 201
    assert again.status_code == 409
    assert again.json()["category"] == "CONFLICT"
    assert again.json()["message"] == f"Contact already exists. Existing ID: {existing_id}"
    assert batch.status_code == 409
    assert hubspot.get("/_standin/records/contacts").json()["total"] == 1


def test_unique_custom_property(seeded: httpx.Client) -> None:
    first = seeded.post("/crm/v3/objects/deals/batch/upsert", json={"inputs": [
        {"idProperty": "external_order_id", "id": "1001", "properties": {"dealname": "#1001"}}]})
    conflict = seeded.post("/crm/v3/objects/deals",
                           json={"properties": {"external_order_id": "1001"}})
    deal_id = first.json()["results"][0]["id"]
    assert first.status_code == 200
    assert conflict.status_code == 409
    assert conflict.json()["message"] == f"Deal already exists. Existing ID: {deal_id}"


def test_unique_index_follows_email_change(hubspot: httpx.Client) -> None:
    first = upsert_contacts(hubspot, "old@example.com").json()["results"][0]
    changed = hubspot.patch(f"/crm/v3/objects/contacts/{first['id']}",
                            json={"properties": {"email": "new@example.com"}})
    by_new = upsert_contacts(hubspot, "new@example.com").json()["results"][0]
    by_old = upsert_contacts(hubspot, "old@example.com").json()["results"][0]
    assert changed.status_code == 200
    assert by_new["id"] == first["id"]
    assert by_new["new"] is False
    assert by_old["id"] != first["id"]
    assert by_old["new"] is True


def test_upsert_not_unique_id_property(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [
        {"idProperty": "city", "id": "Riyadh", "properties": {}}]})
    assert response.status_code == 207
    assert "not a unique identifier property" in response.json()["errors"][0]["message"]


def test_upsert_partial_failure_207(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [
        {"idProperty": "email", "id": "good@example.com", "properties": {"city": "Jeddah"}},
        {"idProperty": "email", "id": "bad@example.com", "properties": {"shoe_size": "42"}},
    ]})
    body = response.json()
    error = body["errors"][0]
    assert response.status_code == 207
    assert [item["properties"]["email"] for item in body["results"]] == ["good@example.com"]
    assert body["numErrors"] == 1
    assert error["status"] == "error"
    assert error["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in error["message"]
    assert error["context"] == {"ids": ["bad@example.com"]}


def test_unknown_property_single_create(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/objects/contacts",
                            json={"properties": {"email": "a@example.com", "shoe_size": "42"}})
    message = response.json()["message"]
    assert response.status_code == 400
    assert message.startswith("Property values were not valid: ")
    problems = json.loads(message.removeprefix("Property values were not valid: "))
    assert problems[0]["error"] == "PROPERTY_DOESNT_EXIST"
    assert problems[0]["name"] == "shoe_size"


def test_invalid_option_and_number(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/objects/deals", json={"properties": {
        "dealname": "x", "amount": "ten", "dealstage": "nope"}})
    bad_stage = hubspot.post("/crm/v3/objects/deals", json={"properties": {
        "dealname": "x", "dealstage": "nope"}})
    assert response.status_code == 400
    assert "INVALID_FLOAT" in response.json()["message"]
    assert bad_stage.status_code == 400
    assert "INVALID_OPTION" in bad_stage.json()["message"]


def test_get_and_patch_record(hubspot: httpx.Client) -> None:
    created = hubspot.post("/crm/v3/objects/contacts", json={"properties": {
        "email": "a@example.com", "city": "Dammam"}}).json()
    patched = hubspot.patch(f"/crm/v3/objects/contacts/{created['id']}",
                            json={"properties": {"city": ""}})
    read = hubspot.get(f"/crm/v3/objects/contacts/{created['id']}",
                       params={"properties": "city,email"})
    by_email = hubspot.get("/crm/v3/objects/contacts/a@example.com",
                           params={"idProperty": "email"})
    missing = hubspot.get("/crm/v3/objects/contacts/999999")
    assert patched.status_code == 200
    assert read.json()["properties"]["city"] is None
    assert read.json()["properties"]["email"] == "a@example.com"
    assert by_email.json()["id"] == created["id"]
    assert missing.status_code == 404


def test_batch_update_missing_207(hubspot: httpx.Client) -> None:
    created = hubspot.post("/crm/v3/objects/contacts",
                           json={"properties": {"email": "a@example.com"}}).json()
    response = hubspot.post("/crm/v3/objects/contacts/batch/update", json={"inputs": [
        {"id": created["id"], "properties": {"city": "Abha"}},
        {"id": "424242", "properties": {"city": "Abha"}}]})
    assert response.status_code == 207
    assert response.json()["results"][0]["properties"]["city"] == "Abha"
    assert response.json()["errors"][0]["context"] == {"ids": ["424242"]}


def test_batch_read_missing_ids(hubspot: httpx.Client) -> None:
    upsert_contacts(hubspot, "a@example.com")
    partial = hubspot.post("/crm/v3/objects/contacts/batch/read", json={
        "idProperty": "email", "properties": ["email"],
        "inputs": [{"id": "a@example.com"}, {"id": "gone@example.com"}]})
    none = hubspot.post("/crm/v3/objects/contacts/batch/read", json={
        "inputs": [{"id": "777"}]})
    assert partial.status_code == 207
    assert partial.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert partial.json()["errors"][0]["context"] == {"ids": ["gone@example.com"]}
    assert none.status_code == 404


# Search


def test_search_filters(hubspot: httpx.Client) -> None:
    upsert_contacts(hubspot, "a@example.com", city="Riyadh")
    upsert_contacts(hubspot, "b@example.com", city="Jeddah")
    upsert_contacts(hubspot, "c@example.com")

    def emails(*filters: dict[str, Any]) -> list[str]:
        response = hubspot.post("/crm/v3/objects/contacts/search", json={
            "filterGroups": [{"filters": list(filters)}], "properties": ["email"]})
        assert response.status_code == 200
        return sorted(item["properties"]["email"] for item in response.json()["results"])

    assert emails({"propertyName": "email", "operator": "EQ", "value": "A@example.com"}) == [
        "a@example.com"]
    assert emails({"propertyName": "city", "operator": "IN",
                   "values": ["Riyadh", "Jeddah"]}) == ["a@example.com", "b@example.com"]
    assert emails({"propertyName": "city", "operator": "HAS_PROPERTY"}) == [
        "a@example.com", "b@example.com"]


def test_search_too_many_groups(hubspot: httpx.Client) -> None:
    group = {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}
    response = hubspot.post("/crm/v3/objects/contacts/search",
                            json={"filterGroups": [group] * 6})
    assert response.status_code == 400
    assert "filterGroups" in response.json()["message"]


def test_search_indexing_delay(clock: FakeClock) -> None:
    config = HubSpotStandinConfig(indexing_delay_seconds=5, clock=clock)
    search = {"filterGroups": [{"filters": [
        {"propertyName": "email", "operator": "EQ", "value": "a@example.com"}]}]}
    for client in client_for(create_app(config)):
        upsert_contacts(client, "a@example.com")
        before = client.post("/crm/v3/objects/contacts/search", json=search).json()
        clock.advance(5)
        after = client.post("/crm/v3/objects/contacts/search", json=search).json()
        assert before["total"] == 0
        assert after["total"] == 1


# Associations


def test_associations_create_and_read(hubspot: httpx.Client) -> None:
    contact = hubspot.post("/crm/v3/objects/contacts",
                           json={"properties": {"email": "a@example.com"}}).json()
    deal = hubspot.post("/crm/v3/objects/deals", json={"properties": {"dealname": "#1"}}).json()
    created = hubspot.post("/crm/v4/associations/deals/contacts/batch/create", json={"inputs": [
        {"from": {"id": deal["id"]}, "to": {"id": contact["id"]},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]})
    read = hubspot.post("/crm/v4/associations/contacts/deals/batch/read",
                        json={"inputs": [{"id": contact["id"]}]})
    assert created.status_code == 201
    assert created.json()["results"][0]["toObjectId"] == contact["id"]
    linked = read.json()["results"][0]["to"][0]
    assert linked["toObjectId"] == deal["id"]
    assert linked["associationTypes"][0]["typeId"] == 4


def test_associations_missing_id(hubspot: httpx.Client) -> None:
    deal = hubspot.post("/crm/v3/objects/deals", json={"properties": {"dealname": "#1"}}).json()
    item = hubspot.post("/crm/v3/objects/line_items", json={"properties": {"name": "Oud"}}).json()
    response = hubspot.post("/crm/v4/associations/deals/line_items/batch/associate/default",
                            json={"inputs": [
                                {"from": {"id": deal["id"]}, "to": {"id": item["id"]}},
                                {"from": {"id": deal["id"]}, "to": {"id": "55555"}}]})
    body = response.json()
    assert response.status_code == 207
    assert body["results"][0]["associationSpec"]["associationTypeId"] == 19
    assert "55555" in body["errors"][0]["message"]
    assert body["errors"][0]["context"] == {"ids": [deal["id"], "55555"]}


def test_association_wrong_type(hubspot: httpx.Client) -> None:
    deal = hubspot.post("/crm/v3/objects/deals", json={"properties": {"dealname": "#1"}}).json()
    contact = hubspot.post("/crm/v3/objects/contacts",
                           json={"properties": {"email": "a@example.com"}}).json()
    response = hubspot.post("/crm/v4/associations/deals/contacts/batch/create", json={"inputs": [
        {"from": {"id": deal["id"]}, "to": {"id": contact["id"]},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 19}]}]})
    assert response.status_code == 207
    assert "not valid from deals to contacts" in response.json()["errors"][0]["message"]


# Properties and groups


def test_properties_and_groups_crud(hubspot: httpx.Client) -> None:
    group = hubspot.post("/crm/v3/properties/contacts/groups",
                         json={"name": "ecommerce", "label": "E-commerce"})
    created = hubspot.post("/crm/v3/properties/contacts", json={
        "name": "ecom_customer_id", "label": "Store customer ID", "type": "string",
        "fieldType": "text", "groupName": "ecommerce", "hasUniqueValue": True})
    again = hubspot.post("/crm/v3/properties/contacts", json={
        "name": "ecom_customer_id", "label": "Again", "type": "string",
        "fieldType": "text", "groupName": "ecommerce"})
    patched = hubspot.patch("/crm/v3/properties/contacts/ecom_customer_id",
                            json={"label": "Customer ID"})
    renamed_group = hubspot.patch("/crm/v3/properties/contacts/groups/ecommerce",
                                  json={"label": "Store"})
    groups = hubspot.get("/crm/v3/properties/contacts/groups").json()["results"]
    deleted = hubspot.delete("/crm/v3/properties/contacts/ecom_customer_id")
    gone = hubspot.get("/crm/v3/properties/contacts/ecom_customer_id")
    assert group.status_code == 201
    assert created.status_code == 201
    assert created.json()["hasUniqueValue"] is True
    assert again.status_code == 409
    assert patched.json()["label"] == "Customer ID"
    assert renamed_group.json()["label"] == "Store"
    assert "ecommerce" in [item["name"] for item in groups]
    assert deleted.status_code == 204
    assert gone.status_code == 404


@pytest.mark.parametrize(("change", "words"), [
    ({"name": "Bad Name"}, "Invalid property name"),
    ({"type": "color"}, "Invalid type"),
    ({"fieldType": "select"}, "Invalid fieldType"),
    ({"groupName": "missing"}, "does not exist"),
    ({"type": "enumeration", "fieldType": "select"}, "needs options"),
    ({"type": "datetime", "fieldType": "date", "hasUniqueValue": True}, "hasUniqueValue"),
])
def test_property_create_invalid(hubspot: httpx.Client, change: dict[str, Any],
                                 words: str) -> None:
    body = {"name": "ecom_x", "label": "X", "type": "string", "fieldType": "text",
            "groupName": "contactinformation", **change}
    response = hubspot.post("/crm/v3/properties/contacts", json=body)
    assert response.status_code == 400
    assert words in response.json()["message"]


def test_default_property_not_deletable(hubspot: httpx.Client) -> None:
    response = hubspot.delete("/crm/v3/properties/contacts/email")
    assert response.status_code == 400
    assert hubspot.get("/crm/v3/properties/contacts/email").status_code == 200


# Pipelines


def test_default_deal_pipeline(hubspot: httpx.Client) -> None:
    pipelines = hubspot.get("/crm/v3/pipelines/deals").json()["results"]
    stages = [stage["id"] for stage in pipelines[0]["stages"]]
    assert pipelines[0]["id"] == "default"
    assert stages[0] == "appointmentscheduled"
    assert stages[-2:] == ["closedwon", "closedlost"]


def test_pipelines_crud(hubspot: httpx.Client) -> None:
    created = hubspot.post("/crm/v3/pipelines/deals", json={
        "label": "E-commerce", "displayOrder": 1, "stages": [
            {"label": "Paid", "displayOrder": 0, "metadata": {"probability": 1.0}}]})
    pipeline = created.json()
    stage = hubspot.post(f"/crm/v3/pipelines/deals/{pipeline['id']}/stages", json={
        "label": "Refunded", "displayOrder": 1, "metadata": {"probability": "0.0"}})
    patched = hubspot.patch(f"/crm/v3/pipelines/deals/{pipeline['id']}/stages/"
                            f"{stage.json()['id']}", json={"label": "Refunded / returned"})
    renamed = hubspot.patch(f"/crm/v3/pipelines/deals/{pipeline['id']}",
                            json={"label": "Store orders"})
    stages = hubspot.get(f"/crm/v3/pipelines/deals/{pipeline['id']}/stages").json()["results"]
    deal = hubspot.post("/crm/v3/objects/deals", json={"properties": {
        "dealname": "#1", "pipeline": pipeline["id"], "dealstage": stage.json()["id"]}})
    wrong_stage = hubspot.post("/crm/v3/objects/deals", json={"properties": {
        "dealname": "#2", "pipeline": pipeline["id"], "dealstage": "closedwon"}})
    assert created.status_code == 201
    assert pipeline["id"].isdigit()
    assert pipeline["stages"][0]["metadata"]["probability"] == "1.0"
    assert stage.status_code == 201
    assert patched.json()["label"] == "Refunded / returned"
    assert renamed.json()["label"] == "Store orders"
    assert [item["label"] for item in stages] == ["Paid", "Refunded / returned"]
    assert deal.status_code == 201
    assert wrong_stage.status_code == 400


@pytest.mark.parametrize("metadata", [{}, {"probability": "1.5"}, {"probability": "high"}])
def test_deal_stage_probability_invalid(hubspot: httpx.Client,
                                        metadata: dict[str, Any]) -> None:
    response = hubspot.post("/crm/v3/pipelines/deals", json={
        "label": "E-commerce", "stages": [{"label": "Paid", "metadata": metadata}]})
    assert response.status_code == 400
    assert "probability" in response.json()["message"]


def test_ticket_stage_needs_state(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/pipelines/tickets", json={
        "label": "Store support", "stages": [{"label": "New", "metadata": {}}]})
    assert response.status_code == 400
    assert "ticketState" in response.json()["message"]


# Lists and events


def test_lists_crud(hubspot: httpx.Client) -> None:
    hubspot.post("/crm/v3/properties/contacts", json={
        "name": "ecom_ltv_sar", "label": "LTV", "type": "number", "fieldType": "number",
        "groupName": "contactinformation"})
    branch = {"filterBranchType": "OR", "filters": [], "filterBranches": [
        {"filterBranchType": "AND", "filterBranches": [], "filters": [
            {"filterType": "PROPERTY", "property": "ecom_ltv_sar", "operation": {
                "operationType": "NUMBER", "operator": "IS_GREATER_THAN", "value": 5000}}]}]}
    created = hubspot.post("/crm/v3/lists", json={
        "name": "VIP", "objectTypeId": "0-1", "processingType": "DYNAMIC",
        "filterBranch": branch})
    list_id = created.json()["list"]["listId"]

    by_name = hubspot.get("/crm/v3/lists/object-type-id/0-1/name/VIP")
    with_filters = hubspot.get(f"/crm/v3/lists/{list_id}", params={"includeFilters": "true"})
    renamed = hubspot.put(f"/crm/v3/lists/{list_id}/update-list-name",
                          params={"listName": "VIP customers"})
    refiltered = hubspot.put(f"/crm/v3/lists/{list_id}/update-list-filters",
                             json={"filterBranch": branch})
    found = hubspot.post("/crm/v3/lists/search", json={"query": "vip"})
    duplicate = hubspot.post("/crm/v3/lists", json={
        "name": "VIP customers", "objectTypeId": "0-1", "processingType": "MANUAL"})
    deleted = hubspot.delete(f"/crm/v3/lists/{list_id}")

    assert created.status_code == 200
    assert by_name.json()["list"]["listId"] == list_id
    assert "filterBranch" not in by_name.json()["list"]
    assert with_filters.json()["list"]["filterBranch"] == branch
    assert renamed.json()["updatedList"]["name"] == "VIP customers"
    assert refiltered.json()["updatedList"]["listVersion"] == 2
    assert found.json()["total"] == 1
    assert duplicate.status_code == 409
    assert deleted.status_code == 204
    assert hubspot.get(f"/crm/v3/lists/{list_id}").status_code == 404


def test_list_filter_unknown_property(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/lists", json={
        "name": "VIP", "objectTypeId": "0-1", "processingType": "DYNAMIC",
        "filterBranch": {"filterBranchType": "OR", "filters": [], "filterBranches": [
            {"filterBranchType": "AND", "filterBranches": [], "filters": [
                {"filterType": "PROPERTY", "property": "ecom_missing", "operation": {
                    "operationType": "NUMBER", "operator": "IS_EQUAL_TO", "value": 1}}]}]}})
    assert response.status_code == 400
    assert "ecom_missing" in response.json()["message"]


def test_events_define_and_send(hubspot: httpx.Client) -> None:
    defined = hubspot.post("/events/v3/event-definitions", json={
        "label": "Cart abandoned", "name": "ecom_cart_abandoned", "primaryObject": "CONTACT",
        "propertyDefinitions": [{"name": "cart_value_sar", "label": "Cart", "type": "number"}]})
    name = defined.json()["fullyQualifiedName"]
    sent = hubspot.post("/events/v3/send", json={
        "eventName": name, "email": "a@example.com", "properties": {"cart_value_sar": "120"}})
    unknown = hubspot.post("/events/v3/send", json={"eventName": "pe1_missing",
                                                    "email": "a@example.com"})
    assert defined.status_code == 201
    assert name == "pe1234567_ecom_cart_abandoned"
    assert sent.status_code == 204
    assert unknown.status_code == 400
    assert len(hubspot.get("/_standin/events").json()["results"]) == 1


# Rate limits


def test_rate_limit_429_and_recovery(clock: FakeClock) -> None:
    config = HubSpotStandinConfig(rate_limit_per_10s=3, clock=clock, retry_after_seconds=10)
    for client in client_for(create_app(config)):
        responses = [client.get("/crm/v3/properties/contacts/groups") for _ in range(4)]
        headers = responses[1].headers
        limited = responses[3]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert headers["X-HubSpot-RateLimit-Max"] == "3"
        assert headers["X-HubSpot-RateLimit-Remaining"] == "1"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert headers["X-HubSpot-RateLimit-Daily"] == "250000"
        assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "249998"
        assert limited.json()["errorType"] == "RATE_LIMIT"
        assert limited.json()["policyName"] == "TEN_SECONDLY_ROLLING"
        assert limited.json()["status"] == "error"
        assert limited.headers["Retry-After"] == "10"
        assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        clock.advance(10)
        assert client.get("/crm/v3/properties/contacts/groups").status_code == 200


def test_retry_after_off_by_default(clock: FakeClock) -> None:
    config = HubSpotStandinConfig(rate_limit_per_10s=1, clock=clock)
    for client in client_for(create_app(config)):
        client.get("/crm/v3/pipelines/deals")
        limited = client.get("/crm/v3/pipelines/deals")
        assert limited.status_code == 429
        assert "Retry-After" not in limited.headers


def test_search_rate_limit(clock: FakeClock) -> None:
    config = HubSpotStandinConfig(search_rate_per_second=2, clock=clock)
    for client in client_for(create_app(config)):
        search = [client.post("/crm/v3/objects/contacts/search", json={}) for _ in range(3)]
        other = client.get("/crm/v3/pipelines/deals")
        assert [r.status_code for r in search] == [200, 200, 429]
        assert search[2].json()["policyName"] == "SECONDLY"
        assert "X-HubSpot-RateLimit-Remaining" not in search[0].headers
        assert other.status_code == 200
        clock.advance(1)
        assert client.post("/crm/v3/objects/contacts/search", json={}).status_code == 200


# Faults and inspection


def test_fault_injection_count(hubspot: httpx.Client) -> None:
    injected = hubspot.post("/_standin/faults", json={
        "status": 503, "count": 2, "path_prefix": "/crm/v3/objects"})
    failed = [upsert_contacts(hubspot, "a@example.com").status_code for _ in range(2)]
    other = hubspot.get("/crm/v3/pipelines/deals")
    recovered = upsert_contacts(hubspot, "a@example.com")
    calls = hubspot.get("/_standin/calls").json()
    upserts = {item["status"]: item["count"] for item in calls["calls"]
               if item["path"] == "/crm/v3/objects/{object_type}/batch/upsert"}
    assert injected.status_code == 201
    assert failed == [503, 503]
    assert other.status_code == 200
    assert recovered.status_code == 200
    assert upserts == {200: 1, 503: 2}
    assert calls["total"] == 4


def test_fault_injection_seconds(hubspot: httpx.Client, clock: FakeClock) -> None:
    hubspot.post("/_standin/faults", json={"status": 429, "seconds": 5})
    during = hubspot.get("/crm/v3/pipelines/deals")
    clock.advance(5)
    after = hubspot.get("/crm/v3/pipelines/deals")
    assert during.status_code == 429
    assert during.json()["errorType"] == "RATE_LIMIT"
    assert after.status_code == 200


RATE_LIMIT_HEADERS = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
                      "X-HubSpot-RateLimit-Interval-Milliseconds", "X-HubSpot-RateLimit-Daily",
                      "X-HubSpot-RateLimit-Daily-Remaining", "Retry-After")


def test_injected_429_headers_match(clock: FakeClock) -> None:
    config = HubSpotStandinConfig(rate_limit_per_10s=3, clock=clock, retry_after_seconds=10)
    for client in client_for(create_app(config)):
        client.get("/crm/v3/pipelines/deals")
        client.post("/_standin/faults", json={"status": 429, "count": 1})
        injected = client.get("/crm/v3/pipelines/deals")
        client.get("/crm/v3/pipelines/deals")
        client.get("/crm/v3/pipelines/deals")
        organic = client.get("/crm/v3/pipelines/deals")

        assert injected.status_code == 429
        assert organic.status_code == 429
        assert injected.json()["policyName"] == organic.json()["policyName"]
        for name in RATE_LIMIT_HEADERS:
            assert name in injected.headers, name
            assert name in organic.headers, name
        assert injected.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert injected.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert injected.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert injected.headers["X-HubSpot-RateLimit-Daily"] == "250000"
        # One call was counted before the fault; the injected 429 itself is not.
        assert injected.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "249999"
        assert injected.headers["Retry-After"] == "10"


def test_injected_503_no_rate_headers(clock: FakeClock) -> None:
    config = HubSpotStandinConfig(rate_limit_per_10s=3, clock=clock, retry_after_seconds=10)
    for client in client_for(create_app(config)):
        client.post("/_standin/faults", json={"status": 503, "count": 1})
        failed = client.get("/crm/v3/pipelines/deals")
        assert failed.status_code == 503
        for name in RATE_LIMIT_HEADERS:
            assert name not in failed.headers, name


@pytest.mark.parametrize("body", [
    {"status": 200, "count": 1},
    {"status": 503},
    {"status": 503, "count": 1, "seconds": 1},
    {"status": 503, "count": 0},
    {"status": 503, "count": 1, "path_prefix": "crm"},
])
def test_fault_injection_invalid(hubspot: httpx.Client, body: dict[str, Any]) -> None:
    response = hubspot.post("/_standin/faults", json=body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_reset_and_health(seeded: httpx.Client) -> None:
    upsert_contacts(seeded, "a@example.com")
    reset = seeded.post("/_standin/reset")
    kept = seeded.get("/crm/v3/properties/deals/external_order_id")
    empty = seeded.post("/_standin/reset", json={"seed": False})
    dropped = seeded.get("/crm/v3/properties/deals/external_order_id")
    assert seeded.get("/_standin/health").json()["status"] == "ok"
    assert reset.json() == {"status": "reset", "seeded": True}
    assert seeded.get("/_standin/records/contacts").json()["total"] == 0
    assert kept.status_code == 200
    assert empty.json()["seeded"] is False
    assert dropped.status_code == 404


def test_unknown_object_type(hubspot: httpx.Client) -> None:
    response = hubspot.post("/crm/v3/objects/widgets", json={"properties": {}})
    assert response.status_code == 400
    assert "widgets" in response.json()["message"]


# Seeding and the command line


def test_seed_from_desired_state() -> None:
    desired = state_for("hubspot", "headless")
    app = create_app()
    ids = seed_from_desired_state(app, desired)
    state = app.state.hubspot
    unique = state.schema.unique_properties("deals")
    pipeline = ids["pipelines"]["E-commerce"]
    assert "external_order_id" in unique
    assert "ecom_customer_id" in state.schema.unique_properties("contacts")
    assert set(pipeline["stages"]) == {stage["key"] for stage in desired["pipelines"][0]["stages"]}
    assert all(stage_id and stage_id.isdigit() for stage_id in pipeline["stages"].values())
    assert seed_from_desired_state(app, desired) == ids


def test_seed_rejects_zoho_state() -> None:
    with pytest.raises(ValueError, match="crm: hubspot"):
        seed_from_desired_state(create_app(), {"crm": "zoho"})


def test_main_rejects_remote_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--host", "0.0.0.0", "--port", "1"])
    assert raised.value.code == 2
    assert "not a loopback address" in capsys.readouterr().err


def test_main_bad_seed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "desired-state.yaml"
    seed.write_text(yaml.safe_dump({"crm": "zoho"}), encoding="utf-8")
    assert main(["--seed", str(seed), "--port", "1"]) == 2
    assert "crm: hubspot" in capsys.readouterr().err


@pytest.mark.parametrize("standin", ["hubspot", "zoho", "woocommerce"])
def test_help_names_rabt_module(standin: str) -> None:
    result = subprocess.run([sys.executable, "-m", f"generator.standins.{standin}", "--help"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m generator.standins.{standin} ")


@pytest.mark.parametrize("standin", ["hubspot", "zoho", "woocommerce"])
def test_help_names_service_module(standin: str, tmp_path: Path) -> None:
    # Generated services copy the package to storesync/standins/.
    package = tmp_path / "storesync"
    shutil.copytree(STANDINS_DIR, package / "standins",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (package / "__init__.py").write_text("", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", f"storesync.standins.{standin}", "--help"],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m storesync.standins.{standin} ")
    assert "generator" not in result.stdout


def test_standin_imports_stay_inside() -> None:
    stdlib = frozenset(sys.stdlib_module_names)
    for path in sorted(STANDINS_DIR.glob("hubspot*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = set(tree.body)
        for node in ast.walk(tree):
            names = _imported(node)
            # uvicorn and PyYAML may be imported only inside main(), never by the app.
            allowed = {"starlette"} if node in top_level else {"starlette", "uvicorn", "yaml"}
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in stdlib, f"{path.name} imports {name}"


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return []
